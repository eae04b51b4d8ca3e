"""Socially fair k-means: Fair-Lloyd (Ghadiri, Samadi and Vempala, FAccT 2021).

Objective: minimise max_g Φ_g, Φ_g = (1/|G_g|) Σ_{j∈G_g} ||x_j − μ_c(j)||², the group's average k-means cost.
Assignment step: each point to its nearest centre (lowers every Φ_g, hence the max), as in Lloyd.
Centre step (their Sec. 3): with m_gc the mean of group g in cluster c and w_gc = |G_g ∩ C_c| / |G_g|,
Φ_g(μ) = a_g + Σ_c w_gc ||μ_c − m_gc||², a convex function of the centres. For weights p on the simplex, the
minimiser of Σ_g p_g Φ_g is μ_c(p) = Σ_g p_g w_gc m_gc / Σ_g p_g w_gc, a convex combination of the group means, and
the best centres are μ(p*) for the p* that maximises the concave dual D(p) = Σ_g p_g Φ_g(μ(p)).
- Two groups (their algorithm): p = (t, 1 − t); Φ_0(μ(t)) falls and Φ_1(μ(t)) rises with t, so the line search is a
  bisection on Φ_0 − Φ_1 (60 halvings), or an end point when one group's own means already leave it below the other.
- M > 2 groups (our generalisation): exponentiated-gradient ascent on D (∂D/∂p_g = Φ_g(μ(p)) by Danskin's theorem),
  keeping the centres with the lowest max_g Φ_g seen.
A centre step is kept only if it does not raise max_g Φ_g, so the objective never increases; it stops when the
labels stop changing. Cost O(N K d) per iteration, plus O(M K d) per line-search step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import as_features, check_k, group_codes, kmeans_pp, sq_distances

ASCENT_STEPS = 300
ERR_MAX_ITER = "max_iter must be an integer >= 1, got {value!r}"


@dataclass
class SociallyFairResult:
    labels: np.ndarray
    centres: np.ndarray
    group_costs: np.ndarray  # Φ_g per group, in np.unique order of the group labels
    iterations: int


def group_costs(features, labels, centres, groups) -> np.ndarray:
    """Φ_g = the mean squared distance of group g's points to their cluster's centre."""
    x = as_features(features)
    codes, _ = group_codes(groups, len(x))
    d = ((x - np.asarray(centres)[np.asarray(labels)]) ** 2).sum(1)
    return np.bincount(codes, weights=d) / np.bincount(codes)


def socially_fair_kmeans(features, groups, n_clusters, *, init=None, max_iter=100, random_state=0):
    """Fair-Lloyd: minimise the largest group-average k-means cost (module docstring)."""
    x = as_features(features)
    codes, _ = group_codes(groups, len(x))
    k = check_k(n_clusters, len(x))
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(ERR_MAX_ITER.format(value=max_iter))
    centres = kmeans_pp(x, k, np.random.default_rng(random_state)) if init is None else np.array(init, float)
    labels = None
    iterations = 0
    for iterations in range(1, max_iter + 1):
        new = sq_distances(x, centres).argmin(1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centres = _centre_step(x, codes, labels, centres)
    costs = np.bincount(codes, weights=((x - centres[labels]) ** 2).sum(1)) / np.bincount(codes)
    return SociallyFairResult(labels, centres, costs, iterations)


def _centre_step(x, codes, labels, centres) -> np.ndarray:
    m, k = codes.max() + 1, len(centres)
    group_size = np.bincount(codes, minlength=m).astype(np.float64)
    cell = codes * k + labels
    count = np.bincount(cell, minlength=m * k).reshape(m, k).astype(np.float64)
    sums = np.zeros((m * k, x.shape[1]))
    np.add.at(sums, cell, x)
    means = sums.reshape(m, k, -1) / np.maximum(count, 1)[:, :, None]
    sq = np.bincount(cell, weights=(x * x).sum(1), minlength=m * k).reshape(m, k)
    within = (sq - count * (means ** 2).sum(2)).sum(1) / group_size  # a_g
    weight = count / group_size[:, None]  # w_gc

    def phi(mu):
        return within + (weight * ((mu[None] - means) ** 2).sum(2)).sum(1)

    def centres_for(p):
        w = np.maximum(p, 1e-12)[:, None] * weight  # M × K; no group's weight exactly 0, so a cluster of one
        # group alone still gets that group's mean at the line search's end points
        total = w.sum(0)
        mu = (w[:, :, None] * means).sum(0) / np.maximum(total, 1e-300)[:, None]
        return np.where(total[:, None] > 0, mu, centres)

    if m == 2:
        def gap(t):
            f = phi(centres_for(np.array([t, 1 - t])))
            return f[0] - f[1]
        if gap(0.0) <= 0:
            best = centres_for(np.array([0.0, 1.0]))
        elif gap(1.0) >= 0:
            best = centres_for(np.array([1.0, 0.0]))
        else:
            lo, hi = 0.0, 1.0
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
            best = centres_for(np.array([(lo + hi) / 2, 1 - (lo + hi) / 2]))
    else:
        p = np.full(m, 1.0 / m)
        best, best_value = None, np.inf
        for step in range(ASCENT_STEPS):
            mu = centres_for(p)
            f = phi(mu)
            if f.max() < best_value:
                best, best_value = mu, f.max()
            scale = f.max() - f.min()
            if scale <= 1e-12 * max(f.max(), 1e-300):
                break
            p = p * np.exp(4.0 * (f - f.max()) / scale / np.sqrt(step + 1))
            p /= p.sum()
    return best if phi(best).max() <= phi(centres).max() else centres
