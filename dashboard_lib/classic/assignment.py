"""Fair assignment with proportion bounds (Bera, Chakrabarty, Flores and Negahbani, NeurIPS 2019).

Given centres (by default from k-means: k-means++ seeding and Lloyd), assign each point to a centre so that every
cluster's share of each group g lies within [β_g, α_g], at least cost Σ_j d(x_j, μ_c(j))^p (p = 1, the k-median
objective, or p = 2, the k-means objective):
1. The LP relaxation (their LP (2)): x_jc ≥ 0, Σ_c x_jc = 1, β_g Σ_j x_jc ≤ Σ_{j∈g} x_jc ≤ α_g Σ_j x_jc, solved
   with HiGHS (dual simplex). Its value lower-bounds every fair integral assignment to these centres.
2. Their rounding (Sec. 3): keep the points the LP assigns integrally; for the others, a min-cost flow on the LP's
   support whose (group, cluster) counts lie between ⌊n*_gc⌋ and ⌈n*_gc⌉ and cluster sizes between ⌊s*_c⌋ and
   ⌈s*_c⌉ (n*, s* the LP's fractional counts). The LP solution is feasible for that flow and its matrix is totally
   unimodular, so the simplex vertex is integral and costs no more than the LP.
Guarantee (disjoint groups; an intersection of sensitive columns is one group code): in every cluster c and group g,
β_g s_c − n_gc < 1 + β_g and n_gc − α_g s_c < 1 + α_g, i.e. the bounds are violated additively by under 2 points,
at a cost at most the LP optimum. The bounds are feasible iff every group's share of the data is within them.
Cost: N·K variables and 2·M·K dense ratio rows (2·M·N·K non-zeros). Above DIRECT_VARIABLES, column generation
(see ``_relaxation``) keeps the optimum exact and solves LPs over the contested points only; refused above
MAX_VARIABLES (memory: a few N × K float arrays; time: the smoothed dual is O(N K) per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from ._common import (ERR_TOO_LARGE, as_features, check_bounds, check_k, column_generation, group_codes, kmeans_pp,
                      lloyd, smoothed_dual_prices, sq_distances)

MAX_VARIABLES = 2_000_000
# Cannot happen when every group's share is within its bounds (checked first): a solver failure, not a user's.
ERR_SOLVER = "HiGHS found the fair assignment LP infeasible although every share is within bounds"
DIRECT_VARIABLES = 20_000  # up to here one LP; above, column generation on a sample's prices
ERR_OBJECTIVE = "objective must be 'k-median' or 'k-means', got {value!r}"
ERR_CENTRES = "centres must be an array of shape (n_clusters, {d}), got shape {shape}"
ERR_SHARE = (
    "infeasible bounds: group {group} makes up {share:.4g} of the data, outside its bounds [{lower:.4g}, "
    "{upper:.4g}]; every cluster's share is bounded and their average is the data's share, so no cluster "
    "(cluster 0 to {last}) can meet them; widen group {group}'s bounds to include {share:.4g}"
)


@dataclass
class AssignmentResult:
    labels: np.ndarray
    centres: np.ndarray
    lp_cost: float  # the LP relaxation's optimum, a lower bound
    cost: float  # Σ_j d(x_j, μ_c(j))^p of the rounded assignment (<= lp_cost up to solver tolerance)
    fractional: np.ndarray  # N × K, the LP solution


def fair_assignment(features, groups, lower, upper, *, n_clusters=None, centres=None, objective="k-median",
                    random_state=0) -> AssignmentResult:
    """Bera et al.'s LP and rounding: each cluster's share of group g within [lower_g, upper_g], additive violation
    under 2 points per (cluster, group) (module docstring)."""
    x = as_features(features)
    codes, names = group_codes(groups, len(x))
    m = len(names)
    lower, upper = check_bounds(lower, upper, m)
    if objective not in ("k-median", "k-means"):
        raise ValueError(ERR_OBJECTIVE.format(value=objective))
    if centres is None:
        k = check_k(n_clusters, len(x))
        centres = lloyd(x, kmeans_pp(x, k, np.random.default_rng(random_state)))[1]
    else:
        centres = np.asarray(centres, dtype=np.float64)
        if centres.ndim != 2 or centres.shape[1] != x.shape[1]:
            raise ValueError(ERR_CENTRES.format(d=x.shape[1], shape=centres.shape))
        k = check_k(len(centres), len(x))
    share = np.bincount(codes, minlength=m) / len(x)
    for g in range(m):
        if not lower[g] - 1e-12 <= share[g] <= upper[g] + 1e-12:
            raise ValueError(ERR_SHARE.format(group=names[g], share=share[g], lower=lower[g], upper=upper[g],
                                              last=k - 1))
    n = len(x)
    if n * k > MAX_VARIABLES:
        raise ValueError(ERR_TOO_LARGE.format(what="fair assignment", size=n * k, unit="point-centre pairs",
                                              limit=MAX_VARIABLES, instead="fewer points or clusters"))
    d = sq_distances(x, centres)
    cost = d if objective == "k-means" else np.sqrt(d)
    frac = _relaxation(cost, codes, m, k, lower, upper)
    labels = _round(frac, cost, codes, m, k)
    return AssignmentResult(labels, centres, float((cost * frac).sum()), float(cost[np.arange(n), labels].sum()),
                            frac)


def _relaxation(cost, codes, m, k, lower, upper) -> np.ndarray:
    """The LP optimum. Small inputs: one LP. Large: exact column generation (_common.column_generation) started from
    the smoothed Lagrangian dual's prices of each (group, cluster)."""
    n = len(codes)
    if n * k <= DIRECT_VARIABLES:
        frac, _ = _restricted_lp(cost, codes, m, k, lower, upper, np.zeros((m, k)), np.zeros(k))
        if frac is None:
            raise RuntimeError(ERR_SOLVER)
        return frac
    frac_free, best, free = column_generation(
        cost, codes, k, m, _smoothed_dual_prices(cost, codes, m, k, lower, upper),
        lambda free, cell: _restricted_lp(cost[free], codes[free], m, k, lower, upper, cell.astype(np.float64),
                                          cell.sum(0).astype(np.float64)))
    if frac_free is None:
        raise RuntimeError(ERR_SOLVER)
    frac = np.zeros((n, k))
    frac[~free, best[~free]] = 1.0
    frac[free] = frac_free
    return frac


def _smoothed_dual_prices(cost, codes, m, k, lower, upper) -> np.ndarray:
    """Starting prices: the LP's Lagrangian dual max_{μ ≥ 0} Σ_j min_c (cost_jc + q_g(j)c(μ)), q_hc the ratio rows'
    weights 1[h = g] − α_g (upper, μ_hi) and β_g − 1[h = g] (lower, μ_lo) summed over g
    (_common.smoothed_dual_prices)."""
    mk = m * k
    row = np.arange(mk)  # (h, c) -> h*k + c, in s = linear @ μ; μ_hi[g, c] is column g*k + c, μ_lo[g, c] mk + g*k + c
    h, c = np.repeat(row // k, m), np.repeat(row % k, m)
    g = np.tile(np.arange(m), mk)
    same = (h == g).astype(np.float64)
    rows = np.r_[h * k + c, h * k + c]
    cols = np.r_[g * k + c, mk + g * k + c]
    linear = sparse.csr_matrix((np.r_[same - upper[g], lower[g] - same], (rows, cols)), shape=(mk, 2 * mk))
    return smoothed_dual_prices(cost, codes, m, k, linear, np.zeros(2 * mk), [(0, None)] * (2 * mk))


def _restricted_lp(cost, codes, m, k, lower, upper, fixed_cell, fixed_size):
    """Bera et al.'s LP over the given points, with fixed points' counts (M × K, and per cluster) added to every
    ratio row: (fractional assignment or None when infeasible, the dual price of each (group, cluster))."""
    n = len(codes)
    cols = np.arange(n * k)  # variable j*k + c
    point, cluster = cols // k, cols % k
    a_point = sparse.csr_matrix((np.ones(n * k), (point, cols)), shape=(n, n * k))
    # row g*k + c: Σ_j (1[g_j = g] − α_g) x_jc ≤ −fixed part, then Σ_j (β_g − 1[g_j = g]) x_jc ≤ −fixed part
    rows, vals_hi, vals_lo = [], [], []
    for g in range(m):
        member = (codes[point] == g).astype(np.float64)
        rows.append(g * k + cluster)
        vals_hi.append(member - upper[g])
        vals_lo.append(lower[g] - member)
    rows = np.concatenate(rows)
    a_hi = sparse.csr_matrix((np.concatenate(vals_hi), (rows, np.tile(cols, m))), shape=(m * k, n * k))
    a_lo = sparse.csr_matrix((np.concatenate(vals_lo), (rows, np.tile(cols, m))), shape=(m * k, n * k))
    b_hi = -(fixed_cell - upper[:, None] * fixed_size[None, :]).ravel()
    b_lo = -(lower[:, None] * fixed_size[None, :] - fixed_cell).ravel()
    result = linprog(cost.ravel(), A_ub=sparse.vstack([a_hi, a_lo]).tocsr(), b_ub=np.r_[b_hi, b_lo],
                     A_eq=a_point, b_eq=np.ones(n), bounds=(0, None), method="highs-ds")
    if result.status == 2:
        return None, None
    if result.status != 0:
        raise RuntimeError(f"HiGHS stopped without an optimum: {result.message}")
    y_hi = result.ineqlin.marginals[:m * k].reshape(m, k)
    y_lo = result.ineqlin.marginals[m * k:].reshape(m, k)
    # a column of group h in cluster c meets row (g, c) with 1[h = g] − α_g (upper) and β_g − 1[h = g] (lower)
    price = y_hi - y_lo - (upper[:, None] * y_hi).sum(0)[None] + (lower[:, None] * y_lo).sum(0)[None]
    return np.clip(result.x.reshape(n, k), 0, 1), price


def _round(frac, cost, codes, m, k) -> np.ndarray:
    """Bera et al.'s rounding: a totally unimodular flow over the fractional points' support."""
    tol = 1e-7
    labels = frac.argmax(1)
    fractional = np.flatnonzero(frac.max(1) < 1 - tol)
    if len(fractional) == 0:
        return labels
    cell = np.zeros((m, k))
    np.add.at(cell, codes, frac)
    size = frac.sum(0)
    fixed = np.setdiff1d(np.arange(len(codes)), fractional)
    fixed_cell = np.bincount(codes[fixed] * k + labels[fixed], minlength=m * k).reshape(m, k)
    fixed_size = np.bincount(labels[fixed], minlength=k)
    cell_low = np.floor(cell + tol) - fixed_cell
    cell_high = np.ceil(cell - tol) - fixed_cell
    size_low = np.floor(size + tol) - fixed_size
    size_high = np.ceil(size - tol) - fixed_size
    point, cluster = np.nonzero(frac[fractional] > tol)
    n_var, n_f = len(point), len(fractional)
    cols = np.arange(n_var)
    a_point = sparse.csr_matrix((np.ones(n_var), (point, cols)), shape=(n_f, n_var))
    a_cell = sparse.csr_matrix((np.ones(n_var), (codes[fractional[point]] * k + cluster, cols)), shape=(m * k, n_var))
    a_size = sparse.csr_matrix((np.ones(n_var), (cluster, cols)), shape=(k, n_var))
    a_ub = sparse.vstack([a_cell, -a_cell, a_size, -a_size]).tocsr()
    b_ub = np.r_[cell_high.ravel(), -cell_low.ravel(), size_high, -size_low]
    result = linprog(cost[fractional[point], cluster], A_ub=a_ub, b_ub=b_ub, A_eq=a_point, b_eq=np.ones(n_f),
                     bounds=(0, None), method="highs-ds")
    if result.status != 0:
        raise RuntimeError(f"HiGHS stopped without an optimum: {result.message}")
    chosen = result.x > 0.5
    labels[fractional[point[chosen]]] = cluster[chosen]
    return labels
