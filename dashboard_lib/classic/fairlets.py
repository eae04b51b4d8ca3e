"""Fair clustering through fairlets (Chierichetti et al., NeurIPS 2017), with a scalable decomposition in the spirit
of Backurs et al. (ICML 2019), for any number of groups.

Fairlets. The paper's (1, t') fairlet: one point of the smaller group and between 1 and t' points of the larger.
Our interpretation for M groups: the *anchor group* is the smallest group; a fairlet is one anchor point plus, for
every other group h, between 1 and t points of h. Every fairlet then has balance (min over groups / max over groups)
at least 1/t, and so has every union of fairlets: for any two groups g, h, n_g(C) = Σ_F n_g(F) ≥ Σ_F n_h(F) / t.
A decomposition exists iff every group has between n_min and t · n_min points, i.e. t ≥ ⌈n_max / n_min⌉; that
smallest t is the default, whose balance 1/t is the data's ceiling n_min / n_max when the ratio is an integer.

Fairlet cost: Σ_j ||x_j − anchor(j)||, the k-median cost of the fairlets with each anchor as its centre (an upper
bound on the paper's fairlet k-median cost, which takes the best point of the fairlet as centre). Given the anchors,
it separates into one transportation problem per non-anchor group h: send each point of h to one anchor, each anchor
receiving between 1 and t of them.
- ``decomposition="exact"``: that transportation LP, solved with HiGHS; its constraint matrix is totally unimodular,
  so the simplex vertex is integral and the decomposition is optimal for this cost. Cost O(n_min · n_h) variables per
  group; refused above EXACT_MAX_VARIABLES.
- ``decomposition="scalable"``: a randomly shifted quadtree (the hierarchically separated tree of Backurs et al.)
  orders the points depth-first (a Morton order of the shifted grid); in that order, the i-th point of group h goes
  to anchor ⌊i · n_min / n_h⌋, so each anchor receives ⌊n_h/n_min⌋ or ⌈n_h/n_min⌉ ∈ [1, t] points of h that lie
  next to it in the tree order. Guarantee kept: the exact balance ≥ 1/t of every fairlet. Not kept: Backurs et al.'s
  O(d log n) approximation of the fairlet cost, which needs their per-node minimal-unsaturation step; this order-based
  matching replaces it. Cost O(N d L + N log N) time, O(N d L / 8) bytes, L = 16 tree levels.

Clustering the fairlets (Chierichetti et al., Sec. 4): k-center by Gonzalez's farthest-first traversal on the
anchors (a 2-approximation on them), or k-median on the anchors weighted by fairlet size (D¹ seeding, then Voronoi
iteration over candidate medoids; a local-search heuristic, no factor claimed). Each point takes its fairlet's
cluster, so each cluster keeps balance ≥ 1/t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from ._common import ERR_TOO_LARGE, as_features, check_k, group_codes

EXACT_MAX_VARIABLES = 250_000
TREE_LEVELS = 16
MEDOID_CANDIDATES = 64
ERR_T = (
    "t must be an integer >= 1 (fairlet balance at least 1/t), got {t!r}"
)
ERR_T_INFEASIBLE = (
    "group {group} has {n_group} points, more than t = {t} times the smallest group {anchor} ({n_anchor} points): "
    "no fairlet decomposition with balance >= 1/{t} exists; raise t to at least {needed}"
)
ERR_DECOMPOSITION = "decomposition must be 'exact' or 'scalable', got {value!r}"
ERR_OBJECTIVE = "objective must be 'k-center' or 'k-median', got {value!r}"
ERR_K_FAIRLETS = (
    "n_clusters = {k} is more than the {n_fairlets} fairlets: each cluster is a union of fairlets; "
    "lower n_clusters or raise t"
)


@dataclass
class FairletResult:
    labels: np.ndarray  # cluster of each point
    centres: np.ndarray  # K × d, the chosen anchors' coordinates
    fairlets: np.ndarray  # fairlet of each point, an index into fairlet_centres
    fairlet_centres: np.ndarray  # point index of each fairlet's anchor
    cost: float  # k-center (max) or k-median (sum) distance of every point to its cluster's centre
    fairlet_cost: float  # Σ_j ||x_j − anchor(j)||
    t: int


def fairlet_clustering(features, groups, n_clusters, *, t=None, decomposition="scalable", objective="k-center",
                       random_state=0) -> FairletResult:
    """Fairlet decomposition with balance >= 1/t for any number of groups, then k-center or k-median on the
    fairlets (module docstring: interpretation, guarantee, cost)."""
    x = as_features(features)
    codes, _ = group_codes(groups, len(x))
    if decomposition not in ("exact", "scalable"):
        raise ValueError(ERR_DECOMPOSITION.format(value=decomposition))
    if objective not in ("k-center", "k-median"):
        raise ValueError(ERR_OBJECTIVE.format(value=objective))
    k = check_k(n_clusters, len(x))
    rng = np.random.default_rng(random_state)
    fairlets, anchors, t = decompose(x, codes, t=t, decomposition=decomposition, rng=rng)
    if k > len(anchors):
        raise ValueError(ERR_K_FAIRLETS.format(k=k, n_fairlets=len(anchors)))
    weights = np.bincount(fairlets, minlength=len(anchors)).astype(np.float64)
    reps = x[anchors]
    chosen = _gonzalez(reps, k, rng) if objective == "k-center" else _kmedian(reps, weights, k, rng)
    centres = reps[chosen]
    fairlet_cluster = _nearest(reps, centres)[0]
    labels = fairlet_cluster[fairlets]
    distance = np.linalg.norm(x - centres[labels], axis=1)
    cost = float(distance.max() if objective == "k-center" else distance.sum())
    fairlet_cost = float(np.linalg.norm(x - x[anchors][fairlets], axis=1).sum())
    return FairletResult(labels, centres, fairlets, anchors, cost, fairlet_cost, t)


def decompose(x: np.ndarray, codes: np.ndarray, *, t=None, decomposition="scalable", rng=None):
    """Fairlets of balance >= 1/t: (fairlet index of each point, anchor point of each fairlet, t)."""
    sizes = np.bincount(codes)
    anchor_group = int(sizes.argmin())
    n_anchor = int(sizes[anchor_group])
    needed = max(1, math.ceil(sizes.max() / n_anchor))
    if t is None:
        t = needed
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(ERR_T.format(t=t))
    for h, n_h in enumerate(sizes):
        if n_h > t * n_anchor:
            raise ValueError(ERR_T_INFEASIBLE.format(group=h, n_group=n_h, t=t, anchor=anchor_group,
                                                     n_anchor=n_anchor, needed=needed))
    anchors = np.flatnonzero(codes == anchor_group)
    fairlets = np.empty(len(x), dtype=np.int64)
    fairlets[anchors] = np.arange(n_anchor)
    others = [h for h in range(len(sizes)) if h != anchor_group]
    if decomposition == "exact":
        variables = int(sum(sizes[h] for h in others)) * n_anchor
        if variables > EXACT_MAX_VARIABLES:
            raise ValueError(ERR_TOO_LARGE.format(what="exact fairlet decomposition", size=variables,
                                                  unit="anchor-point pairs", limit=EXACT_MAX_VARIABLES,
                                                  instead="decomposition='scalable'"))
        for h in others:
            members = np.flatnonzero(codes == h)
            fairlets[members] = _exact_transport(x[anchors], x[members], t)
    else:
        order = tree_order(x, rng if rng is not None else np.random.default_rng(0))
        rank = np.empty(len(x), dtype=np.int64)
        rank[order] = np.arange(len(x))
        anchors = anchors[np.argsort(rank[anchors])]
        fairlets[anchors] = np.arange(n_anchor)
        for h in others:
            members = np.flatnonzero(codes == h)
            members = members[np.argsort(rank[members])]
            fairlets[members] = np.arange(len(members)) * n_anchor // len(members)
    return fairlets, anchors, int(t)


def _exact_transport(anchors: np.ndarray, points: np.ndarray, t: int) -> np.ndarray:
    """Each point to one anchor, each anchor receiving 1..t points, least total distance (an integral LP)."""
    a, n = len(anchors), len(points)
    cost = np.sqrt(np.maximum(_sq(points, anchors), 0)).ravel()  # variable j * a + i: point j to anchor i
    cols = np.arange(n * a)
    per_point = sparse.csr_matrix((np.ones(n * a), (cols // a, cols)), shape=(n, n * a))
    per_anchor = sparse.csr_matrix((np.ones(n * a), (cols % a, cols)), shape=(a, n * a))
    result = linprog(cost, A_ub=sparse.vstack([per_anchor, -per_anchor]), b_ub=np.r_[np.full(a, t), -np.ones(a)],
                     A_eq=per_point, b_eq=np.ones(n), bounds=(0, None), method="highs-ds")
    return result.x.reshape(n, a).argmax(1)


def tree_order(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depth-first order of a randomly shifted quadtree over x: sort by the cell of each level, coarsest first."""
    low = x.min(0)
    span = float((x.max(0) - low).max()) or 1.0
    shifted = ((x - low) / span + rng.random(x.shape[1])) / 2  # in [0, 1): the shift as in Backurs et al.
    grid = np.minimum((shifted * 2**TREE_LEVELS).astype(np.int64), 2**TREE_LEVELS - 1)
    keys = []
    for level in range(TREE_LEVELS):
        bits = ((grid >> (TREE_LEVELS - 1 - level)) & 1).astype(np.uint8)
        packed = np.packbits(bits, axis=1)
        keys.extend(packed[:, i] for i in range(packed.shape[1]))
    return np.lexsort(keys[::-1])


def _sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]


def _nearest(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(np.maximum(_sq(points, centres), 0))
    best = d.argmin(1)
    return best, d[np.arange(len(points)), best]


def _gonzalez(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [int(rng.integers(len(points)))]
    closest = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(1, k):
        chosen.append(int(closest.argmax()))
        closest = np.minimum(closest, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def _kmedian(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator,
             max_iter: int = 20) -> np.ndarray:
    """Weighted k-median with centres among the points: D¹ seeding, then Voronoi iteration (never worse)."""
    chosen = [int(rng.choice(len(points), p=weights / weights.sum()))]
    closest = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(1, k):
        p = weights * closest
        chosen.append(int(rng.choice(len(points), p=p / p.sum())) if p.sum() > 0 else int(closest.argmax()))
        closest = np.minimum(closest, np.linalg.norm(points - points[chosen[-1]], axis=1))
    chosen = np.array(chosen)
    for _ in range(max_iter):
        label = _nearest(points, points[chosen])[0]
        new = chosen.copy()
        for c in range(k):
            members = np.flatnonzero(label == c)
            if len(members) == 0:
                continue
            pool = rng.choice(members, min(MEDOID_CANDIDATES, len(members)), replace=False)
            pool = np.unique(np.r_[pool, chosen[c]])
            d = np.sqrt(np.maximum(_sq(points[pool], points[members]), 0)) @ weights[members]
            new[c] = pool[d.argmin()]
        if np.array_equal(new, chosen):
            break
        chosen = new
    return chosen
