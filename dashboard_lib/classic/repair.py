"""Repair of any clustering: the nearest assignment whose every cluster holds each group's share within bounds.

Problem. Given labels (K clusters), a group code per point (M groups; an intersection of several sensitive columns is
one combined code) and share bounds [β_g, α_g], reassign points so that every cluster c keeps its size s_c and holds
between ⌈β_g s_c⌉ and ⌊α_g s_c⌋ points of group g, at least cost:
- ``cost="moves"``: the fewest points moved (cost 0 to stay, 1 to move). Points of the same (group, cluster) are
  interchangeable, so the problem is a transportation problem on the (group, current cluster) → (group, new cluster)
  → new cluster network, with M·K² variables whatever N: O(N) to count, then an LP of size independent of N. Which
  points of a (group, cluster) move, when features are given, is the ones whose distance to the new centre grows
  least, a greedy choice among solutions with the same (optimal) number moved; without features, the first in
  index order.
- ``cost="distance"``: the least total distance of the points to their cluster's centre, the centres being the
  original clusters' means (``squared=True``: squared distances, the k-means cost). One variable per (point,
  cluster), N·K in all: one LP up to DIRECT_VARIABLES, above it exact column generation over the contested points
  (``_least_distance``); refused above DISTANCE_MAX_VARIABLES.
Both constraint matrices are totally unimodular (the point or (group, cluster) rows and the (group, new cluster) ⊂
new cluster rows form two laminar families), so the HiGHS simplex vertex is integral: the repair is exactly optimal
and meets the bounds exactly.

Interpretation where the issue is silent: cluster sizes stay as they are. With free sizes the share bounds are
ratio constraints, the matrix is no longer totally unimodular and the LP optimum can be fractional; fixed sizes also
make infeasibility specific: the error names the group and the cluster (or the group, or the cluster) at fault, and
when only several together are, the fewest groups and clusters whose counts cannot add up (``joint_violation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from ._common import (ERR_TOO_LARGE, as_features, check_bounds, column_generation, group_codes,
                      smoothed_dual_prices)

DISTANCE_MAX_VARIABLES = 2_000_000
DIRECT_VARIABLES = 20_000  # up to here one LP; above, column generation
ERR_COST = "cost must be 'moves' or 'distance', got {value!r}"
ERR_DISTANCE_NEEDS_FEATURES = "cost='distance' needs features (or an embedding): the distance is to cluster centres"
ERR_LABELS_LENGTH = "labels has {n_labels} entries for {n} group labels: pass one cluster label per sample"
ERR_CELL = (
    "infeasible bounds: cluster {cluster} has {size} points, and group {group}'s share bounds [{lower:.4g}, "
    "{upper:.4g}] ask for between {low} and {high} of them, no whole number; widen group {group}'s bounds"
)
ERR_CLUSTER_LOW = (
    "infeasible bounds: cluster {cluster} has {size} points, fewer than the {need} the groups' lower bounds ask for "
    "(group {group} asks for {most}); lower the lower bounds"
)
ERR_CLUSTER_HIGH = (
    "infeasible bounds: cluster {cluster} has {size} points, more than the {room} the groups' upper bounds allow "
    "(group {group} allows {least}); raise the upper bounds"
)
ERR_GROUP_LOW = (
    "infeasible bounds: group {group} has {size} points, fewer than the {need} its lower bound asks for over all "
    "clusters (cluster {cluster} asks for {most}); lower group {group}'s lower bound"
)
ERR_GROUP_HIGH = (
    "infeasible bounds: group {group} has {size} points, more than the {room} its upper bound lets the clusters hold "
    "(cluster {cluster} holds at most {least}); raise group {group}'s upper bound"
)
ERR_JOINT = (
    "infeasible bounds: every cluster and every group can meet them alone, but not all together: groups "
    "{{{groups}}} have {points} points, and the clusters can hold at most {room} of them, {inside} in clusters "
    "{{{clusters}}} (their {places} places less the {others} that the other groups' lower bounds keep there) and "
    "{outside} in the other clusters (the upper bounds of groups {{{groups}}} there); widen these groups' bounds"
)
ERR_JOINT_UNNAMED = (
    "infeasible bounds: every cluster and every group can meet them alone, but not all together (over {m} "
    "groups, too many to name the ones at fault; up to {limit} are named); widen the bounds"
)
CERTIFICATE_MAX_GROUPS = 16  # the certificate tries every subset of groups
_EPS = 1e-9


@dataclass
class RepairResult:
    labels: np.ndarray  # the repaired labels, in the original label values
    moved: np.ndarray  # boolean mask of the points whose cluster changed
    n_moved: int
    cost_before: float | None  # Σ distance to the original clusters' centres (None without features)
    cost_after: float | None  # the same sum for the repaired labels, same centres


def count_bounds(sizes: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer bounds (M × K) on each group's count in each cluster of the given sizes."""
    low = np.ceil(lower[:, None] * sizes[None, :] - _EPS).astype(np.int64)
    high = np.floor(upper[:, None] * sizes[None, :] + _EPS).astype(np.int64)
    return low, high


def check_feasible(group_sizes, cluster_sizes, low, high, group_names, cluster_names, lower, upper) -> None:
    """Feasibility of the bounds, each failure with its own message naming the groups and clusters at fault: one
    cell, one cluster, one group, then (joint_violation) several together."""
    for c, size in enumerate(cluster_sizes):
        for g in range(len(group_sizes)):
            if low[g, c] > high[g, c]:
                raise ValueError(ERR_CELL.format(cluster=cluster_names[c], size=size, group=group_names[g],
                                                 lower=lower[g], upper=upper[g], low=low[g, c], high=high[g, c]))
        if low[:, c].sum() > size:
            g = int(low[:, c].argmax())
            raise ValueError(ERR_CLUSTER_LOW.format(cluster=cluster_names[c], size=size, need=low[:, c].sum(),
                                                    group=group_names[g], most=low[g, c]))
        if high[:, c].sum() < size:
            g = int(high[:, c].argmin())
            raise ValueError(ERR_CLUSTER_HIGH.format(cluster=cluster_names[c], size=size, room=high[:, c].sum(),
                                                     group=group_names[g], least=high[g, c]))
    for g, size in enumerate(group_sizes):
        if low[g].sum() > size:
            c = int(low[g].argmax())
            raise ValueError(ERR_GROUP_LOW.format(group=group_names[g], size=size, need=low[g].sum(),
                                                  cluster=cluster_names[c], most=low[g, c]))
        if high[g].sum() < size:
            c = int(high[g].argmin())
            raise ValueError(ERR_GROUP_HIGH.format(group=group_names[g], size=size, room=high[g].sum(),
                                                   cluster=cluster_names[c], least=high[g, c]))
    if len(group_sizes) > CERTIFICATE_MAX_GROUPS:
        return  # an infeasible LP then says ERR_JOINT_UNNAMED
    violation = joint_violation(np.asarray(group_sizes), np.asarray(cluster_sizes), low, high)
    if violation is not None:
        a, b = violation
        in_a, in_b = np.isin(np.arange(len(group_sizes)), a), np.isin(np.arange(len(cluster_sizes)), b)
        places, others = int(cluster_sizes[b].sum()), int(low[np.ix_(~in_a, in_b)].sum())
        outside = int(high[np.ix_(in_a, ~in_b)].sum())
        raise ValueError(ERR_JOINT.format(
            groups=", ".join(str(group_names[g]) for g in a), points=int(group_sizes[a].sum()),
            room=places - others + outside, inside=places - others, places=places, others=others, outside=outside,
            clusters=", ".join(str(cluster_names[c]) for c in b)))


def joint_violation(group_sizes, cluster_sizes, low, high):
    """The smallest groups A and clusters B (fewest groups, then fewest clusters) that break the bounded
    transportation problem's feasibility condition (Hoffman's circulation theorem on the group × cluster network):
    Σ_{g∈A} N_g <= Σ_{c∈B} s_c − Σ_{g∉A, c∈B} low_gc + Σ_{g∈A, c∉B} high_gc for every A and B, i.e. groups A fit
    into clusters B's places left by the other groups' lower bounds plus their upper bounds elsewhere. Integer
    counts meeting the bounds, the group sizes and the cluster sizes exist iff no (A, B) breaks it (the matrix is
    totally unimodular). For a fixed A the best B is every cluster whose gain Σ_{g∈A} high_gc + Σ_{g∉A} low_gc − s_c
    is positive, and the smallest B that breaks it takes the largest gains first, so trying each A (2^M) suffices;
    A may be empty (B's lower bounds alone exceed its sizes: check_feasible's one-cluster message comes first).
    Returns (A, B) as index arrays, or None when feasible; only for M <= CERTIFICATE_MAX_GROUPS."""
    m = len(group_sizes)
    subsets = (np.arange(2 ** m)[:, None] >> np.arange(m) & 1).astype(bool)  # every A, one a row
    gain = subsets @ high + ~subsets @ low - cluster_sizes[None, :]
    excess = subsets @ (group_sizes - high.sum(1))  # Σ_A N − Σ_{A × all clusters} high: the condition with B empty
    order = np.argsort(-gain, axis=1, kind="stable")
    reach = excess[:, None] + np.cumsum(np.take_along_axis(gain, order, 1), axis=1)
    n_clusters = np.where(excess > 0, 0, np.where((reach > 0).any(1), (reach > 0).argmax(1) + 1, -1))
    broken = np.flatnonzero(n_clusters >= 0)
    if len(broken) == 0:
        return None
    first = broken[np.lexsort((n_clusters[broken], subsets[broken].sum(1)))[0]]
    return np.flatnonzero(subsets[first]), np.sort(order[first, :n_clusters[first]])


def repair(labels, groups, lower, upper, *, features=None, cost="moves", squared=False) -> RepairResult:
    """The fewest moves, or least distance, that put every group's share in every cluster within [lower, upper]
    (module docstring: the LP, its integrality, what stays fixed)."""
    if cost not in ("moves", "distance"):
        raise ValueError(ERR_COST.format(value=cost))
    codes, group_names = group_codes(groups, len(np.asarray(groups).ravel()))
    lab = np.asarray(labels).ravel()
    if len(lab) != len(codes):
        raise ValueError(ERR_LABELS_LENGTH.format(n_labels=len(lab), n=len(codes)))
    cluster_names, clusters = np.unique(lab, return_inverse=True)
    m, k = len(group_names), len(cluster_names)
    lower, upper = check_bounds(lower, upper, m)
    x = None
    if features is not None:
        x = as_features(features)
        if len(x) != len(codes):
            raise ValueError(ERR_LABELS_LENGTH.format(n_labels=len(lab), n=len(x)))
    elif cost == "distance":
        raise ValueError(ERR_DISTANCE_NEEDS_FEATURES)
    sizes = np.bincount(clusters, minlength=k)
    low, high = count_bounds(sizes, lower, upper)
    check_feasible(np.bincount(codes, minlength=m), sizes, low, high, group_names, cluster_names, lower, upper)
    distance = None
    if x is not None:
        centres = np.zeros((k, x.shape[1]))
        np.add.at(centres, clusters, x)
        centres /= sizes[:, None]
        sq = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
        distance = np.maximum(sq, 0) if squared else np.sqrt(np.maximum(sq, 0))
    if cost == "moves":
        new = _fewest_moves(clusters, codes, k, m, low, high, sizes, distance)
    else:
        new = _least_distance(codes, k, m, low, high, sizes, distance)
    moved = new != clusters
    before = after = None
    if distance is not None:
        rows = np.arange(len(codes))
        before, after = float(distance[rows, clusters].sum()), float(distance[rows, new].sum())
    return RepairResult(cluster_names[new], moved, int(moved.sum()), before, after)


def _solve(cost, a_eq, b_eq, a_cell, low, high):
    """min cost·x over x >= 0 with a_eq x = b_eq and low <= a_cell x <= high, written with one count variable per
    cell (a_cell x − n = 0, low <= n <= high) so that the bounds are variable bounds, not rows: (integral x or None
    when infeasible, the dual of each cell row (M × K), of each a_eq row)."""
    n_cell = a_cell.shape[0]
    a = sparse.vstack([sparse.hstack([a_eq, sparse.csr_matrix((a_eq.shape[0], n_cell))]),
                       sparse.hstack([a_cell, -sparse.identity(n_cell)])]).tocsr()
    bounds = np.c_[np.r_[np.zeros(len(cost)), low.ravel()], np.r_[np.full(len(cost), np.inf), high.ravel()]]
    # presolve off: its search for dependent equations (Σ points = Σ sizes makes one) takes seconds at 10,000
    # columns, the simplex itself a fraction of that
    result = linprog(np.r_[cost, np.zeros(n_cell)], A_eq=a, b_eq=np.r_[b_eq, np.zeros(n_cell)], bounds=bounds,
                     method="highs-ds", options={"presolve": False})
    if result.status == 2:
        return None, None, None
    if result.status != 0:
        raise RuntimeError(f"HiGHS stopped without an optimum: {result.message}")
    duals = result.eqlin.marginals
    # a vertex of a totally unimodular system: integral
    return (np.rint(result.x[:len(cost)]).astype(np.int64), duals[len(b_eq):].reshape(low.shape),
            duals[:len(b_eq)])


def _fewest_moves(clusters, codes, k, m, low, high, sizes, distance) -> np.ndarray:
    counts = np.bincount(codes * k + clusters, minlength=m * k)  # (g, c) cells
    source = np.repeat(np.arange(m * k), k)  # variable (g, c, c'): g*k*k + c*k + c'
    target = np.tile(np.arange(k), m * k)
    cell_to = (source // k) * k + target  # (g, c')
    n_var = len(source)
    cols = np.arange(n_var)
    a_supply = sparse.csr_matrix((np.ones(n_var), (source, cols)), shape=(m * k, n_var))
    a_size = sparse.csr_matrix((np.ones(n_var), (target, cols)), shape=(k, n_var))
    a_cell = sparse.csr_matrix((np.ones(n_var), (cell_to, cols)), shape=(m * k, n_var))
    cost = (target != source % k).astype(np.float64)
    flow, _, _ = _solve(cost, sparse.vstack([a_supply, a_size]).tocsr(), np.r_[counts, sizes], a_cell, low, high)
    if flow is None:
        raise ValueError(ERR_JOINT_UNNAMED.format(m=m, limit=CERTIFICATE_MAX_GROUPS))
    new = clusters.copy()
    flow = flow.reshape(m, k, k)
    for g, c in zip(*np.nonzero(flow.sum(2) - flow[:, np.arange(k), np.arange(k)])):
        members = np.flatnonzero((codes == g) & (clusters == c))
        for target_cluster in np.flatnonzero(flow[g, c]):
            if target_cluster == c:
                continue
            if distance is not None:
                rise = distance[members, target_cluster] - distance[members, c]
                members = members[np.argsort(rise, kind="stable")]
            n = flow[g, c, target_cluster]
            new[members[:n]] = target_cluster
            members = members[n:]
    return new


def _least_distance(codes, k, m, low, high, sizes, distance) -> np.ndarray:
    """One LP over every (point, cluster) pair when small; above DIRECT_VARIABLES, exact column generation: prices
    from the smoothed Lagrangian dual fix the points with the clearest best cluster, an LP places the rest, and fixed
    points that its duals would rather send elsewhere are freed, until none is (complementary slackness then proves
    the optimum, and the restricted LP is totally unimodular too, so it stays integral)."""
    n = len(codes)
    if n * k > DISTANCE_MAX_VARIABLES:
        raise ValueError(ERR_TOO_LARGE.format(what="repair with cost='distance'", size=n * k,
                                              unit="point-cluster pairs", limit=DISTANCE_MAX_VARIABLES,
                                              instead="cost='moves'"))
    if n * k <= DIRECT_VARIABLES:
        labels, _ = _distance_lp(distance, codes, k, m, low, high, sizes)
        if labels is None:
            raise ValueError(ERR_JOINT_UNNAMED.format(m=m, limit=CERTIFICATE_MAX_GROUPS))
        return labels
    labels_free, best, free = column_generation(
        distance, codes, k, m, _smoothed_dual_prices(distance, codes, k, m, low, high, sizes),
        lambda free, cell: _distance_lp(distance[free], codes[free], k, m, low - cell, high - cell,
                                        sizes - cell.sum(0)))
    if labels_free is None:
        raise ValueError(ERR_JOINT_UNNAMED.format(m=m, limit=CERTIFICATE_MAX_GROUPS))
    labels = best.copy()
    labels[free] = labels_free
    return labels


def _distance_lp(distance, codes, k, m, low, high, sizes):
    """The least-distance LP over these points: (labels or None when infeasible, price of each (group, cluster),
    the part of a column's reduced cost shared by every point of that group: distance − price − the point's dual)."""
    n = len(codes)
    if (sizes < 0).any() or (high < 0).any():
        return None, None
    cols = np.arange(n * k)  # variable j*k + c
    point, cluster = cols // k, cols % k
    a_point = sparse.csr_matrix((np.ones(n * k), (point, cols)), shape=(n, n * k))
    a_size = sparse.csr_matrix((np.ones(n * k), (cluster, cols)), shape=(k, n * k))
    a_cell = sparse.csr_matrix((np.ones(n * k), (codes[point] * k + cluster, cols)), shape=(m * k, n * k))
    x, cell_dual, eq_dual = _solve(distance.ravel(), sparse.vstack([a_point, a_size]).tocsr(),
                                   np.r_[np.ones(n), sizes], a_cell, low, high)
    if x is None:
        return None, None
    return x.reshape(n, k).argmax(1), cell_dual + eq_dual[n:][None, :]


def _smoothed_dual_prices(distance, codes, k, m, low, high, sizes) -> np.ndarray:
    """Starting prices: the Lagrangian dual of the least-distance LP, max over π_hi, π_lo >= 0 and w of
    Σ_j min_c (d_jc + π_hi[g_j, c] − π_lo[g_j, c] + w_c) − Σ high·π_hi + Σ low·π_lo − Σ_c s_c w_c
    (_common.smoothed_dual_prices)."""
    mk = m * k
    per_cluster = sparse.csr_matrix((np.ones(mk), (np.arange(mk), np.arange(mk) % k)), shape=(mk, k))
    linear = sparse.hstack([sparse.identity(mk), -sparse.identity(mk), per_cluster]).tocsr()
    constant = np.r_[-high.ravel(), low.ravel(), -sizes].astype(np.float64)
    return smoothed_dual_prices(distance, codes, m, k, linear, constant, [(0, None)] * (2 * mk) + [(None, None)] * k)
