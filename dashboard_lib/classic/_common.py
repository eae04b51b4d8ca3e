"""Shared input checks, error messages and small numeric kernels of the classic fair-clustering algorithms."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

ERR_FEATURES = "features must be a finite 2-D array (n_samples, n_features), got shape {shape}"
ERR_NOT_FINITE = "features contain NaN or infinite values: drop or impute those samples first"
ERR_LENGTH = "groups has {n_groups} labels for {n} samples: pass one group label per sample"
ERR_ONE_GROUP = (
    "groups holds a single group ({group}): fair clustering balances groups, so pass at least two distinct group "
    "labels (combine several sensitive columns into one code for their intersections)"
)
ERR_K = "n_clusters must be an integer between 1 and the number of samples ({n}), got {k!r}"
ERR_BOUNDS_SHAPE = "lower and upper must hold one share per group ({m} groups), got {lower} and {upper} values"
ERR_BOUNDS_RANGE = "group {group}: the bounds [{lower}, {upper}] on its share must satisfy 0 <= lower <= upper <= 1"
ERR_DELTA = "delta must be in [0, 1), got {delta!r}"
ERR_TOO_LARGE = (
    "{what}: {size:,} {unit} is over the limit of {limit:,} for the exact solver: subsample, or use {instead}"
)


def as_features(features) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(ERR_FEATURES.format(shape=x.shape))
    if not np.isfinite(x).all():
        raise ValueError(ERR_NOT_FINITE)
    return x


def group_codes(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Groups re-coded to 0..M-1 (any labels, e.g. an intersection code) and the original labels; M >= 2."""
    g = np.asarray(groups).ravel()
    if len(g) != n:
        raise ValueError(ERR_LENGTH.format(n_groups=len(g), n=n))
    uniques, codes = np.unique(g, return_inverse=True)
    if len(uniques) < 2:
        raise ValueError(ERR_ONE_GROUP.format(group=uniques[0] if len(uniques) else None))
    return codes.astype(np.int64), uniques


def check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(ERR_K.format(n=n, k=k))
    return int(k)


def check_bounds(lower, upper, m: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.atleast_1d(np.asarray(lower, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(upper, dtype=np.float64))
    if lo.size == 1:
        lo = np.full(m, lo[0])
    if hi.size == 1:
        hi = np.full(m, hi[0])
    if lo.shape != (m,) or hi.shape != (m,):
        raise ValueError(ERR_BOUNDS_SHAPE.format(m=m, lower=lo.size, upper=hi.size))
    for g in range(m):
        if not (0 <= lo[g] <= hi[g] <= 1):
            raise ValueError(ERR_BOUNDS_RANGE.format(group=g, lower=lo[g], upper=hi[g]))
    return lo, hi


def proportional_bounds(groups, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Bera et al. (2019), Sec. 5: each cluster's share of group g within [(1 - δ) r_g, r_g / (1 - δ)], r_g the data's
    share of g, groups in the order of np.unique."""
    if not 0 <= delta < 1:
        raise ValueError(ERR_DELTA.format(delta=delta))
    g = np.asarray(groups).ravel()
    codes, _ = group_codes(g, len(g))
    share = np.bincount(codes) / len(codes)
    return (1 - delta) * share, np.minimum(1.0, share / (1 - delta))


def sq_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, N × K, clipped at 0 against rounding."""
    d = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    return np.maximum(d, 0.0)


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur and Vassilvitskii 2007): centres drawn with probability ∝ squared distance."""
    centres = [x[rng.integers(len(x))]]
    closest = sq_distances(x, centres[0][None])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        i = rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x))
        centres.append(x[i])
        closest = np.minimum(closest, sq_distances(x, x[i][None])[:, 0])
    return np.array(centres)


def cluster_means(x: np.ndarray, labels: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Mean of each cluster; an empty cluster keeps its previous centre."""
    k = len(previous)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.stack([x[labels == c].sum(0) for c in range(k)])  # K passes: np.add.at is many times slower
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], previous)


def lloyd(x: np.ndarray, centres: np.ndarray, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Plain Lloyd iterations from the given centres, until the labels stop changing."""
    labels = None
    for _ in range(max_iter):
        new = sq_distances(x, centres).argmin(1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centres = cluster_means(x, labels, centres)
    return labels, centres


FREE_START = 1000  # points left free in the first restricted LP of a column generation
PRICE_SAMPLE = 10_000  # points over which the smoothed dual is maximised first
FINAL_STEPS = 30  # L-BFGS-B steps over all points after the sample's


def smoothed_dual_prices(cost, codes, m, k, linear, constant, bounds) -> np.ndarray:
    """Starting prices for column_generation: maximise an LP's Lagrangian dual over v,
    Σ_j min_c (cost_jc + s[g_j, c]) + constant · v with s = (linear @ v) as M × K, by L-BFGS-B within bounds, the
    min smoothed (soft-min at temperature τ = 0.1, 0.01, then 0.001 × the median cost): first over a random sample
    of about PRICE_SAMPLE points (each group in proportion) weighted to their group's size, then FINAL_STEPS steps
    over all points at the lowest τ, so that the prices fit every point's counts. Returns −s, a starting point only:
    column_generation makes the optimum exact whatever the prices are."""
    n = len(codes)
    scale = float(np.median(np.abs(cost))) or 1.0
    v = np.zeros(linear.shape[1])
    sample = np.arange(n)
    if n > PRICE_SAMPLE:  # each group in proportion, and at least 100 of it (or all) so that none is left out
        rng = np.random.default_rng(0)
        sample = np.sort(np.concatenate([
            rng.choice(members, min(len(members), max(100, round(PRICE_SAMPLE * len(members) / n))), replace=False)
            for members in (np.flatnonzero(codes == g) for g in range(m))]))
    for points, taus, steps in ((sample, (0.1, 0.01, 0.001), 200), (np.arange(n), (0.001,), FINAL_STEPS)):
        per_group = [points[codes[points] == g] for g in range(m)]
        # float32: the prices need not be exact, and the soft-min over N × K is the whole cost
        group_cost = [cost[members].astype(np.float32) for members in per_group]
        weight = [np.float32(np.sum(codes == g) / max(len(members), 1)) for g, members in enumerate(per_group)]

        def negative_dual(v, tau):
            shift = (linear @ v).reshape(m, k).astype(np.float32)
            value = float(constant @ v)
            cell = np.zeros((m, k))
            for g in range(m):
                z = group_cost[g] + shift[g]
                low = z.min(1)
                z -= low[:, None]
                z *= np.float32(-1 / tau)
                np.exp(z, out=z)
                total = z.sum(1)
                z /= total[:, None]
                value += weight[g] * float((low - np.float32(tau) * np.log(total)).sum(dtype=np.float64))
                cell[g] = weight[g] * z.sum(0, dtype=np.float64)
            return -value, -(linear.T @ cell.ravel() + constant)

        for tau in taus:
            v = minimize(negative_dual, v, args=(tau * scale,), jac=True, method="L-BFGS-B", bounds=bounds,
                         options={"maxiter": steps}).x
        if len(points) == n:
            break
    return -(linear @ v).reshape(m, k)


def column_generation(cost: np.ndarray, codes: np.ndarray, k: int, m: int, prices: np.ndarray, solve):
    """An LP over N points × K columns (each point in exactly one column, constraints on the (group, column) counts)
    solved exactly over a few of its points. Each point's best column under the reduced cost cost − prices[group]; the
    FREE_START points whose best column is least certain stay free, the rest are fixed to it. solve(free, cell) solves
    the LP over the free points, given the fixed points' (group, column) counts `cell` (M × K ints): (its solution or
    None when infeasible, new prices M × K). Fixed points that the new prices would rather send elsewhere are freed
    (the most mispriced first, at most as many as are free, so that each LP stays small), until none is: then the
    duals price every fixed point right (complementary slackness), so the optimum is the full LP's. An infeasible
    restricted LP frees twice as many points. Returns (solution over the free points or None when even all points
    free are infeasible, each point's best column, the free mask)."""
    n = len(codes)
    reduced = cost - prices[codes]
    best = reduced.argmin(1)
    margin = np.partition(reduced, 1, axis=1)[:, 1] - reduced[np.arange(n), best]
    by_margin = np.argsort(margin, kind="stable")
    free = np.zeros(n, dtype=bool)
    free[by_margin[:FREE_START]] = True
    while True:
        fixed = np.flatnonzero(~free)
        cell = np.bincount(codes[fixed] * k + best[fixed], minlength=m * k).reshape(m, k)
        solution, prices = solve(free, cell)
        if solution is None:
            if free.all():
                return None, best, free
            free[by_margin[:2 * free.sum()]] = True  # the fixed points alone break a bound: free more of them
            continue
        reduced = cost[fixed] - prices[codes[fixed]]
        excess = reduced[np.arange(len(fixed)), best[fixed]] - reduced.min(1)
        wrong = np.flatnonzero(excess > 1e-9 * (1 + np.abs(reduced).max()))
        if len(wrong) == 0:
            return solution, best, free
        # the most mispriced first, at most as many as are free: the duals of a small restricted LP can misprice
        # many points at once, and one LP over all of them would cost more than a few rounds over some
        wrong = wrong[np.argsort(-excess[wrong], kind="stable")[:free.sum()]]
        free[fixed[wrong]] = True
