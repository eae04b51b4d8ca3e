"""Variational fair clustering, k-means version (Ziko, Yuan, Granger and Ben Ayed, AAAI 2021).

Energy (their Eq. 3 with the k-means term): E(S) = Σ_j Σ_k s_jk ||x_j − c_k||² + λ Σ_k KL(U || P_k), S the N × K
soft assignments, U the data's group proportions u_g and P_k = (P(g | k)) with P(g | k) = Σ_{j∈G_g} s_jk / Σ_j s_jk.
Bound optimisation (their Eqs. 8–10): at S^i, the fairness term is bounded above by a linear term with gradient
b_jk = λ (1 / Σ_j s^i_jk − u_g(j) / Σ_{l∈G_g(j)} s^i_lk) plus the Lipschitz/entropy terms, and the bound is minimised
in closed form, s_j ← s^i_j ⊙ softmax((−a_j − b_j) / L) (normalised), a_jk = ||x_j − c_k||², L the Lipschitz
constant; these updates run until the bound stops decreasing (relative change 1e-5, at most ``bound_iter``).
Outer loop (their Alg. 1): centres updated as the means of the hard labels argmax_k s_jk, as in the authors' code,
until the labels stop changing; the result is the iterate of lowest energy E (soft S), since the bound is only an
upper bound when L is at least the Lipschitz constant of the fairness gradient, which grows with λ: with a large λ
and a small L the labels can oscillate. With λ = 0 each bound step gives s_j ∝ exp(−(1 + i/L) a_j), whose argmax is the
nearest centre: the method is Lloyd's k-means.
Left out: the paper's K-median and Ncut clustering terms, its mini-batch variant and any scaling of λ to the data;
λ is on the scale of the squared distances.
Cost O(N K (d + M) · bound iterations) time per outer iteration, O(N K) memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._common import as_features, check_k, cluster_means, group_codes, kmeans_pp, sq_distances

ERR_LAMBDA = "lam (λ, the fairness weight) must be a finite number >= 0, got {value!r}"
ERR_LIPSCHITZ = "lipschitz (L) must be a finite number > 0, got {value!r}"
_TINY = 1e-15


@dataclass
class VariationalResult:
    labels: np.ndarray
    centres: np.ndarray
    soft: np.ndarray  # N × K, the last bound step's assignments
    kmeans_cost: float  # Σ_j ||x_j − c_k(j)||² with hard labels
    fairness: float  # Σ_k KL(U || P_k) with the hard labels' proportions (inf when a cluster lacks a group)
    iterations: int


def kl_fairness(labels, codes, k: int, m: int) -> float:
    """Σ_k KL(U || P_k) over non-empty clusters, P_k the group proportions within cluster k."""
    u = np.bincount(codes, minlength=m) / len(codes)
    table = np.bincount(labels * m + codes, minlength=k * m).reshape(k, m).astype(np.float64)
    table = table[table.sum(1) > 0]
    p = table / table.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        return float((u[None] * (np.log(u)[None] - np.log(p))).sum())


def variational_fair_kmeans(features, groups, n_clusters, *, lam=1.0, lipschitz=2.0, init=None, max_iter=50,
                            bound_iter=200, random_state=0) -> VariationalResult:
    """Ziko et al.'s bound optimisation of k-means + λ Σ_k KL(U || P_k) (module docstring)."""
    x = as_features(features)
    codes, names = group_codes(groups, len(x))
    k = check_k(n_clusters, len(x))
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.number)) or not math.isfinite(lam) or lam < 0:
        raise ValueError(ERR_LAMBDA.format(value=lam))
    if (isinstance(lipschitz, bool) or not isinstance(lipschitz, (int, float, np.number))
            or not math.isfinite(lipschitz) or lipschitz <= 0):
        raise ValueError(ERR_LIPSCHITZ.format(value=lipschitz))
    m = len(names)
    u = np.bincount(codes, minlength=m) / len(x)
    centres = kmeans_pp(x, k, np.random.default_rng(random_state)) if init is None else np.array(init, float)
    labels = None
    best = (np.inf, None, None, None)  # energy, labels, centres, soft
    iterations = 0
    for iterations in range(1, max_iter + 1):
        a = sq_distances(x, centres)
        soft = _bound_update(a, codes, u, m, float(lam), float(lipschitz), bound_iter)
        energy = float((soft * a).sum()) + lam * _soft_kl(soft, codes, u, m)
        if energy < best[0]:
            best = (energy, soft.argmax(1), centres, soft)
        new = soft.argmax(1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centres = cluster_means(x, labels, centres)
    _, labels, centres, soft = best
    cost = float(((x - centres[labels]) ** 2).sum())
    return VariationalResult(labels, centres, soft, cost, kl_fairness(labels, codes, k, m), iterations)


def _soft_kl(soft, codes, u, m) -> float:
    mass = np.stack([soft[codes == g].sum(0) for g in range(m)])
    p = np.maximum(mass / np.maximum(mass.sum(0, keepdims=True), _TINY), _TINY)
    return float((u[:, None] * (np.log(u)[:, None] - np.log(p))).sum())


def _log_softmax(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log softmax of each row, each row's log-sum-exp)."""
    top = z.max(1, keepdims=True)
    lse = top + np.log(np.exp(z - top).sum(1, keepdims=True))
    return z - lse, lse


def _bound_update(a, codes, u, m, lam, lipschitz, bound_iter) -> np.ndarray:
    """The bound steps at fixed centres, s_j ← s_j ⊙ exp((−a_j − b_j) / L) normalised, until the bound's value changes
    by at most 1e-5 relative (tested from the third step on, as the authors' code does) or ``bound_iter`` steps. In
    logarithms: with a large λ the product of the two factors underflows to a row of zeros in floating point.
    The bound's value Σ_jk s_jk (log s_jk − log s^in_jk) + (a_jk + b_jk) s_jk is computed from log s − log s^in =
    (−a − b)/L − lse_j: (1 − 1/L) Σ (a + b) s − Σ_j lse_j, rows of s summing to one."""
    onehot = np.zeros((len(codes), m))
    onehot[np.arange(len(codes)), codes] = 1.0
    share = u[codes][:, None]
    log_s = _log_softmax(-a)[0]
    s = np.exp(log_s)
    old = np.inf
    for step in range(bound_iter):
        group_mass = onehot.T @ s  # Σ_{l∈G_g} s_lk, M × K
        cost = a + lam * (1.0 / np.maximum(s.sum(0), _TINY)[None] - share / np.maximum(group_mass[codes], _TINY))
        log_s, lse = _log_softmax(log_s - cost / lipschitz)
        s = np.exp(log_s)
        energy = float((1.0 - 1.0 / lipschitz) * (cost * s).sum() - lse.sum())
        if step > 1 and abs(energy - old) <= 1e-5 * abs(old):
            break
        old = energy
    return s
