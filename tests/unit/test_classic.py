"""Classic fair clustering: hand-made cases, brute force on tiny inputs, and every error message."""

import importlib
import itertools
import re

import numpy as np
import pytest
from scipy.optimize import linprog

from dashboard_lib import metrics
from dashboard_lib.classic import (fair_assignment, fairlet_clustering, proportional_bounds, repair,
                                   socially_fair_kmeans, variational_fair_kmeans)
from dashboard_lib.classic import _common, assignment, fairlets, variational
from dashboard_lib.classic.repair import (DISTANCE_MAX_VARIABLES, ERR_CELL, ERR_CLUSTER_HIGH, ERR_CLUSTER_LOW,
                                          ERR_COST, ERR_DISTANCE_NEEDS_FEATURES, ERR_GROUP_HIGH, ERR_GROUP_LOW,
                                          ERR_JOINT, ERR_LABELS_LENGTH)
from dashboard_lib.classic._common import kmeans_pp, lloyd

repair_module = importlib.import_module("dashboard_lib.classic.repair")  # the package's `repair` is the function


def raises(message):
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


# ---------- fairlets ----------

LINE = np.array([[0.0], [10.0], [20.0], [0.1], [10.1], [20.1]])
LINE_GROUPS = np.array([0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("decomposition", ["exact", "scalable"])
def test_fairlets_pair_the_obvious_neighbours_on_a_line(decomposition):
    result = fairlet_clustering(LINE, LINE_GROUPS, 3, decomposition=decomposition)
    pairs = {frozenset(np.flatnonzero(result.fairlets == f)) for f in range(3)}
    assert pairs == {frozenset({0, 3}), frozenset({1, 4}), frozenset({2, 5})}
    assert result.fairlet_cost == pytest.approx(0.3)
    assert result.t == 1
    assert result.cost == pytest.approx(0.1)  # k-center: each pair is a cluster around its anchor
    assert metrics.balance(result.labels, LINE_GROUPS) == 1.0


def test_exact_fairlets_match_brute_force():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 2))
    groups = np.array([0, 0, 1, 1, 1, 1, 1])  # anchors 0, 1; five points, t = 3: each anchor takes 2 or 3
    found, anchors, t = fairlets.decompose(x, groups, decomposition="exact")
    assert t == 3 and list(anchors) == [0, 1]
    best = np.inf
    for choice in itertools.product(range(2), repeat=5):
        counts = np.bincount(choice, minlength=2)
        if counts.min() >= 1 and counts.max() <= 3:
            best = min(best, sum(np.linalg.norm(x[2 + j] - x[a]) for j, a in enumerate(choice)))
    ours = sum(np.linalg.norm(x[j] - x[anchors[found[j]]]) for j in range(2, 7))
    assert ours == pytest.approx(best)


@pytest.mark.parametrize("decomposition", ["exact", "scalable"])
@pytest.mark.parametrize("objective", ["k-center", "k-median"])
def test_every_fairlet_and_cluster_has_balance_at_least_one_over_t(decomposition, objective):
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], [40, 70, 100])
    x = rng.normal(size=(210, 3)) + groups[:, None]
    result = fairlet_clustering(x, groups, 4, decomposition=decomposition, objective=objective)
    assert result.t == 3  # ⌈100 / 40⌉
    for f in range(len(result.fairlet_centres)):
        counts = np.bincount(groups[result.fairlets == f], minlength=3)
        assert counts[0] == 1 and counts.min() >= 1 and counts.max() <= 3
    assert metrics.balance(result.labels, groups) >= 1 / 3
    assert len(np.unique(result.labels)) == 4


def test_fairlet_errors():
    x, g = LINE, LINE_GROUPS
    with raises(fairlets.ERR_T_INFEASIBLE.format(group=1, n_group=5, t=2, anchor=0, n_anchor=2, needed=3)):
        fairlet_clustering(np.zeros((7, 1)), [0, 0, 1, 1, 1, 1, 1], 1, t=2)
    with raises(fairlets.ERR_T.format(t=0)):
        fairlet_clustering(x, g, 2, t=0)
    with raises(fairlets.ERR_K_FAIRLETS.format(k=4, n_fairlets=3)):
        fairlet_clustering(x, g, 4)
    with raises(_common.ERR_K.format(n=6, k=7)):
        fairlet_clustering(x, g, 7)
    with raises(_common.ERR_ONE_GROUP.format(group=0)):
        fairlet_clustering(x, np.zeros(6, int), 2)
    with raises(fairlets.ERR_DECOMPOSITION.format(value="greedy")):
        fairlet_clustering(x, g, 2, decomposition="greedy")
    with raises(fairlets.ERR_OBJECTIVE.format(value="k-means")):
        fairlet_clustering(x, g, 2, objective="k-means")
    big = np.repeat([0, 1], [500, 501])
    with raises(_common.ERR_TOO_LARGE.format(what="exact fairlet decomposition", size=250_500,
                                             unit="anchor-point pairs", limit=fairlets.EXACT_MAX_VARIABLES,
                                             instead="decomposition='scalable'")):
        fairlet_clustering(np.zeros((1001, 1)), big, 2, decomposition="exact")


# ---------- fair assignment ----------

def test_assignment_lp_has_the_hand_computed_optimum():
    # A at 0 and 1, B at 9 and 10, centres 0 and 10, each cluster half A half B: cost 20 − 2m for m ≤ 1 units of A
    # mass at centre 0, minimum 18 with A at 0 and B at 9 in cluster 0 (worked out in the test's comment above).
    x = np.array([[0.0], [1.0], [9.0], [10.0]])
    result = fair_assignment(x, [0, 0, 1, 1], 0.5, 0.5, centres=[[0.0], [10.0]])
    assert result.lp_cost == pytest.approx(18.0)
    assert result.cost == pytest.approx(18.0)
    assert list(result.labels) == [0, 1, 0, 1]


def _bounds_violation(labels, groups, lower, upper, k):
    m = groups.max() + 1
    table = np.bincount(labels * m + groups, minlength=k * m).reshape(k, m)
    size = table.sum(1, keepdims=True)
    return (lower[None] * size - table).max(), (table - upper[None] * size).max()


@pytest.mark.parametrize("seed", range(4))
def test_assignment_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 2))
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1]) if seed % 2 else np.array([0, 0, 0, 1, 1, 1, 2, 2])
    lower, upper = proportional_bounds(groups, 0.3)
    centres = x[rng.choice(8, 3, replace=False)] + 0.05
    result = fair_assignment(x, groups, lower, upper, centres=centres)
    d = np.linalg.norm(x[:, None] - centres[None], axis=2)
    best = np.inf
    for labels in itertools.product(range(3), repeat=8):
        labels = np.array(labels)
        low_gap, high_gap = _bounds_violation(labels, groups, lower, upper, 3)
        if low_gap <= 1e-9 and high_gap <= 1e-9:
            best = min(best, d[np.arange(8), labels].sum())
    assert result.lp_cost <= best + 1e-7
    assert result.cost <= result.lp_cost + 1e-7
    low_gap, high_gap = _bounds_violation(result.labels, groups, lower, upper, 3)
    table_k = np.bincount(result.labels, minlength=3)
    assert low_gap < 1 + lower.max() and high_gap < 1 + upper.max()  # the stated additive violation
    assert table_k.sum() == 8


def test_assignment_kmeans_objective_and_rounding_on_larger_data():
    rng = np.random.default_rng(1)
    groups = rng.choice(3, 600, p=[0.5, 0.3, 0.2])
    x = rng.normal(size=(600, 2)) + 3 * groups[:, None]
    lower, upper = proportional_bounds(groups, 0.2)
    result = fair_assignment(x, groups, lower, upper, n_clusters=5, objective="k-means")
    low_gap, high_gap = _bounds_violation(result.labels, groups, lower, upper, 5)
    assert low_gap < 1 + lower.max() and high_gap < 1 + upper.max()
    assert result.cost <= result.lp_cost + 1e-6
    plain = ((x[:, None] - result.centres[None]) ** 2).sum(2).min(1).sum()
    assert result.lp_cost >= plain - 1e-6  # fairness costs something against the nearest centre


@pytest.mark.parametrize("price_sample", [10_000, 100])  # prices over all points, or a sample then all
def test_column_generation_reaches_the_direct_lp_optimum(monkeypatch, price_sample):
    rng = np.random.default_rng(2)
    groups = rng.choice(3, 400, p=[0.5, 0.3, 0.2])
    x = rng.normal(size=(400, 2)) + 2 * groups[:, None]
    lower, upper = proportional_bounds(groups, 0.1)
    centres = x[rng.choice(400, 4, replace=False)]
    direct = fair_assignment(x, groups, lower, upper, centres=centres)
    monkeypatch.setattr(assignment, "DIRECT_VARIABLES", 100)
    monkeypatch.setattr(_common, "FREE_START", 50)
    monkeypatch.setattr(_common, "PRICE_SAMPLE", price_sample)
    generated = fair_assignment(x, groups, lower, upper, centres=centres)
    assert generated.lp_cost == pytest.approx(direct.lp_cost, rel=1e-9)


def test_assignment_errors():
    x = np.array([[0.0], [1.0], [9.0], [10.0]])
    g = [0, 0, 1, 1]
    with raises(assignment.ERR_SHARE.format(group=1, share=0.5, lower=0.6, upper=0.9, last=1)):
        fair_assignment(x, g, [0.1, 0.6], [0.9, 0.9], n_clusters=2)
    with raises(_common.ERR_K.format(n=4, k=5)):
        fair_assignment(x, g, 0.1, 0.9, n_clusters=5)
    with raises(_common.ERR_ONE_GROUP.format(group=1)):
        fair_assignment(x, [1, 1, 1, 1], 0.1, 0.9, n_clusters=2)
    with raises(assignment.ERR_OBJECTIVE.format(value="k-center")):
        fair_assignment(x, g, 0.1, 0.9, n_clusters=2, objective="k-center")
    with raises(assignment.ERR_CENTRES.format(d=1, shape=(2, 2))):
        fair_assignment(x, g, 0.1, 0.9, centres=np.zeros((2, 2)))
    with raises(_common.ERR_BOUNDS_RANGE.format(group=0, lower=0.6, upper=0.5)):
        fair_assignment(x, g, [0.6, 0.1], [0.5, 0.9], n_clusters=2)
    with raises(_common.ERR_BOUNDS_SHAPE.format(m=2, lower=3, upper=2)):
        fair_assignment(x, g, [0.1, 0.1, 0.1], [0.9, 0.9], n_clusters=2)
    with raises(_common.ERR_DELTA.format(delta=1.0)):
        proportional_bounds(g, 1.0)
    with raises(_common.ERR_LENGTH.format(n_groups=3, n=4)):
        fair_assignment(x, [0, 1, 1], 0.1, 0.9, n_clusters=2)
    with raises(_common.ERR_FEATURES.format(shape=(4,))):
        fair_assignment(x.ravel(), g, 0.1, 0.9, n_clusters=2)
    with raises(_common.ERR_NOT_FINITE):
        fair_assignment(np.array([[0.0], [np.nan], [1.0], [2.0]]), g, 0.1, 0.9, n_clusters=2)
    many = np.zeros((200_001, 1))
    with raises(_common.ERR_TOO_LARGE.format(what="fair assignment", size=2_000_010, unit="point-centre pairs",
                                             limit=assignment.MAX_VARIABLES, instead="fewer points or clusters")):
        fair_assignment(many, np.arange(200_001) % 2, 0.0, 1.0, centres=np.arange(10.0)[:, None])


# ---------- repair ----------

@pytest.mark.parametrize("seed", range(4))
def test_repair_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 2))
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    if seed % 2:
        groups = np.array([0, 0, 0, 1, 1, 0, 1, 1])
        lower, upper = proportional_bounds(groups, 0.6)
    else:  # three groups: a cluster of 2 cannot hold all three, so two groups may be absent from a cluster
        groups = np.array([0, 0, 1, 2, 2, 1, 0, 2])
        lower, upper = np.array([0.3, 0.0, 0.0]), np.array([0.7, 0.5, 0.7])
    sizes = np.bincount(labels)
    centres = np.array([x[labels == c].mean(0) for c in range(3)])
    d = np.linalg.norm(x[:, None] - centres[None], axis=2)
    fewest, least = np.inf, np.inf
    for new in itertools.product(range(3), repeat=8):
        new = np.array(new)
        if not np.array_equal(np.bincount(new, minlength=3), sizes):
            continue
        low_gap, high_gap = _bounds_violation(new, groups, lower, upper, 3)
        if low_gap <= 1e-9 and high_gap <= 1e-9:
            fewest = min(fewest, (new != labels).sum())
            least = min(least, d[np.arange(8), new].sum())
    assert np.isfinite(fewest)
    moves = repair(labels, groups, lower, upper, features=x)
    distance = repair(labels, groups, lower, upper, features=x, cost="distance")
    assert moves.n_moved == fewest
    assert distance.cost_after == pytest.approx(least)
    for result in (moves, distance):
        low_gap, high_gap = _bounds_violation(result.labels, groups, lower, upper, 3)
        assert low_gap <= 1e-9 and high_gap <= 1e-9  # exact: no violation
        assert np.array_equal(np.bincount(result.labels, minlength=3), sizes)
        assert np.array_equal(result.moved, result.labels != labels)
        assert result.cost_before == pytest.approx(d[np.arange(8), labels].sum())


@pytest.mark.parametrize("price_sample", [10_000, 100])
def test_distance_repair_column_generation_reaches_the_direct_optimum(monkeypatch, price_sample):
    rng = np.random.default_rng(4)
    groups = rng.choice(3, 400, p=[0.5, 0.3, 0.2])
    x = rng.normal(size=(400, 2)) + 2 * groups[:, None]
    labels = rng.integers(0, 4, 400) * (x[:, 0] > 1)  # biased: cluster 0 takes the points left of x = 1
    lower, upper = proportional_bounds(groups, 0.2)
    direct = repair(labels, groups, lower, upper, features=x, cost="distance")
    monkeypatch.setattr(repair_module, "DIRECT_VARIABLES", 100)
    monkeypatch.setattr(_common, "FREE_START", 50)
    monkeypatch.setattr(_common, "PRICE_SAMPLE", price_sample)
    generated = repair(labels, groups, lower, upper, features=x, cost="distance")
    assert generated.cost_after == pytest.approx(direct.cost_after, rel=1e-9)
    low_gap, high_gap = _bounds_violation(np.unique(generated.labels, return_inverse=True)[1], groups, lower, upper,
                                          4)
    assert low_gap <= 1e-9 and high_gap <= 1e-9


def test_repair_keeps_label_values_and_a_fair_clustering():
    labels = np.array([7, 7, 9, 9])
    groups = np.array(["a", "b", "a", "b"])
    result = repair(labels, groups, 0.5, 0.5)
    assert result.n_moved == 0 and list(result.labels) == [7, 7, 9, 9]
    assert result.cost_before is None and result.cost_after is None
    segregated = repair(np.array([7, 7, 9, 9]), np.array(["a", "a", "b", "b"]), 0.5, 0.5)
    assert segregated.n_moved == 2
    assert metrics.balance(np.unique(segregated.labels, return_inverse=True)[1], [0, 0, 1, 1]) == 1.0


def test_repair_scales_by_aggregating_cells():
    rng = np.random.default_rng(0)
    groups = rng.choice(4, 20_000, p=[0.4, 0.3, 0.2, 0.1])
    labels = (rng.integers(0, 10, 20_000) + groups) % 10  # groups drift to different clusters
    lower, upper = proportional_bounds(groups, 0.1)
    result = repair(labels, groups, lower, upper)
    low_gap, high_gap = _bounds_violation(result.labels, groups, lower, upper, 10)
    assert low_gap <= 1e-9 and high_gap <= 1e-9
    assert 0 < result.n_moved < 20_000


def test_repair_errors_name_the_group_and_cluster():
    with raises(ERR_CELL.format(cluster=5, size=3, group="b", lower=0.5, upper=0.5, low=2, high=1)):
        repair([4, 4, 4, 4, 5, 5, 5], ["a", "b", "a", "b", "a", "b", "a"], [0.0, 0.5], [1.0, 0.5])
    with raises(ERR_CLUSTER_LOW.format(cluster=1, size=2, need=3, group=0, most=1)):
        repair([0, 0, 0, 0, 0, 0, 1, 1], [0, 1, 2, 0, 1, 2, 0, 1], 0.3, 1.0)
    with raises(ERR_CLUSTER_HIGH.format(cluster=0, size=2, room=0, group=0, least=0)):
        repair([0, 0, 1, 1], [0, 1, 0, 1], [0.0, 0.0], [0.4, 0.4])
    with raises(ERR_GROUP_LOW.format(group=0, size=1, need=2, cluster=0, most=1)):
        repair([0, 0, 0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1], [0.2, 0.0], 1.0)
    with raises(ERR_GROUP_HIGH.format(group=1, size=7, room=6, cluster=0, least=3)):
        repair([0, 0, 0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1], [0.0, 0.0], [1.0, 0.75])
    with raises(ERR_COST.format(value="time")):
        repair([0, 1], [0, 1], 0.0, 1.0, cost="time")
    with raises(ERR_DISTANCE_NEEDS_FEATURES):
        repair([0, 1], [0, 1], 0.0, 1.0, cost="distance")
    with raises(ERR_LABELS_LENGTH.format(n_labels=3, n=2)):
        repair([0, 1, 1], [0, 1], 0.0, 1.0)
    with raises(_common.ERR_ONE_GROUP.format(group="a")):
        repair([0, 1], ["a", "a"], 0.0, 1.0)
    many = np.arange(200_001)
    with raises(_common.ERR_TOO_LARGE.format(what="repair with cost='distance'", size=2_000_010,
                                             unit="point-cluster pairs", limit=DISTANCE_MAX_VARIABLES,
                                             instead="cost='moves'")):
        repair(many % 10, many % 2, 0.0, 1.0, features=np.zeros((200_001, 1)), cost="distance")


def test_repair_joint_infeasibility_names_one_group_and_one_cluster():
    # every cluster and every group passes its own check, the transportation problem as a whole has no solution
    # (found by a random search over small cases): group 1 has 8 points; cluster 1 has 5 places, of which groups 0
    # and 2 keep ⌈0.25·5⌉ = 2 each, and group 1's upper bound 0.4 lets clusters 0, 2, 3 (7, 3, 8 points) hold
    # 2 + 1 + 3 = 6: 1 + 6 = 7 < 8
    labels = np.repeat([0, 1, 2, 3], [7, 5, 3, 8])
    groups = [1, 0, 1, 2, 1, 2, 2, 1, 1, 0, 2, 1, 0, 2, 1, 2, 0, 0, 0, 1, 2, 0, 2]
    with raises(ERR_JOINT.format(groups="1", points=8, room=7, inside=1, clusters="1", places=5, others=4,
                                 outside=6)):
        repair(labels, groups, [0.25, 0.0, 0.25], [0.6, 0.4, 2 / 3])


def test_repair_joint_infeasibility_names_two_groups_together():
    # groups b and c (5 + 3 = 8 points) fit 6 − 2 = 4 into cluster 10 (group a keeps ⌈0.17·6⌉ = 2 there) and
    # ⌊0.58·5⌋ + ⌊0.38·5⌋ = 2 + 1 = 3 into cluster 20: 7 < 8; b alone fits (3 + 2 = 5), c alone fits (2 + 1 = 3)
    labels = np.repeat([10, 20], [6, 5])
    groups = np.array(list("aabcbbbcacb"))
    with raises(ERR_JOINT.format(groups="b, c", points=8, room=7, inside=4, clusters="10", places=6, others=2,
                                 outside=3)):
        repair(labels, groups, [0.17, 0.04, 0.09], [0.74, 0.58, 0.38])


@pytest.mark.parametrize("cost", ["moves", "distance"])
def test_repair_joint_infeasibility_over_too_many_groups_to_name(monkeypatch, cost):
    monkeypatch.setattr(repair_module, "CERTIFICATE_MAX_GROUPS", 2)  # the case above has three groups
    with raises(repair_module.ERR_JOINT_UNNAMED.format(m=3, limit=2)):
        repair(np.repeat([10, 20], [6, 5]), np.array(list("aabcbbbcacb")), [0.17, 0.04, 0.09], [0.74, 0.58, 0.38],
               features=np.arange(11.0)[:, None], cost=cost)


@pytest.mark.parametrize("seed", range(3))
def test_joint_violation_against_the_lp_and_brute_force(seed):
    rng = np.random.default_rng(seed)
    outcomes = set()
    for _ in range(80):
        m, k = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        total = int(rng.integers(4, 12))
        group_sizes = np.bincount(rng.integers(0, m, total), minlength=m)
        cluster_sizes = np.bincount(rng.integers(0, k, total), minlength=k)
        low = rng.integers(0, 3, (m, k))
        high = low + rng.integers(0, 4, (m, k))
        cells = np.arange(m * k)
        a_eq = np.r_[(cells[None] // k == np.arange(m)[:, None]), (cells[None] % k == np.arange(k)[:, None])]
        lp = linprog(np.zeros(m * k), A_eq=a_eq.astype(float), b_eq=np.r_[group_sizes, cluster_sizes],
                     bounds=list(zip(low.ravel(), high.ravel())), method="highs")
        broken = []  # every (A, B) that breaks the condition
        for a in itertools.product([False, True], repeat=m):
            for b in itertools.product([False, True], repeat=k):
                a, b = np.array(a), np.array(b)
                if group_sizes[a].sum() > (cluster_sizes[b].sum() - low[np.ix_(~a, b)].sum()
                                                        + high[np.ix_(a, ~b)].sum()):
                    broken.append((a.sum(), b.sum(), set(np.flatnonzero(a)), set(np.flatnonzero(b))))
        found = repair_module.joint_violation(group_sizes, cluster_sizes, low, high)
        outcomes.add(found is None)
        assert (found is None) == (lp.status == 0) == (not broken)
        if found is not None:
            a, b = found
            assert (set(a), set(b)) in [(x[2], x[3]) for x in broken]
            assert (len(a), len(b)) == min(x[:2] for x in broken)  # the fewest groups, then the fewest clusters
    assert outcomes == {True, False}


# ---------- socially fair k-means ----------

def _worst_group_case():
    rng = np.random.default_rng(0)
    big = np.r_[rng.normal(size=(45, 2)) * 0.3, rng.normal(size=(45, 2)) * 0.3 + [10.0, 0.0]]
    small = rng.normal(size=(10, 2)) * 0.3 + [5.0, 6.0]
    return np.r_[big, small], np.repeat([0, 1], [90, 10])


def test_socially_fair_lowers_the_worst_group_cost_against_lloyd():
    x, groups = _worst_group_case()
    init = kmeans_pp(x, 2, np.random.default_rng(4))
    labels, centres = lloyd(x, init)
    plain = np.bincount(groups, weights=((x - centres[labels]) ** 2).sum(1)) / np.bincount(groups)
    fair = socially_fair_kmeans(x, groups, 2, init=init)
    assert fair.group_costs.max() < 0.8 * plain.max()
    assert fair.group_costs[0] > plain[0]  # the price: the larger group pays


def test_socially_fair_three_groups_and_errors():
    x, groups = _worst_group_case()
    groups = groups.copy()
    groups[45:90] = 2
    init = kmeans_pp(x, 2, np.random.default_rng(4))
    labels, centres = lloyd(x, init)
    plain = np.bincount(groups, weights=((x - centres[labels]) ** 2).sum(1)) / np.bincount(groups)
    fair = socially_fair_kmeans(x, groups, 2, init=init)
    assert fair.group_costs.max() < plain.max()
    from dashboard_lib.classic import socially_fair
    with raises(socially_fair.ERR_MAX_ITER.format(value=0)):
        socially_fair_kmeans(x, groups, 2, max_iter=0)
    with raises(_common.ERR_K.format(n=100, k=101)):
        socially_fair_kmeans(x, groups, 101)
    with raises(_common.ERR_ONE_GROUP.format(group=0)):
        socially_fair_kmeans(x, np.zeros(100, int), 2)


# ---------- variational fair clustering ----------

def test_variational_lambda_zero_is_lloyd():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 2)) + rng.integers(0, 3, 200)[:, None] * 4.0
    groups = rng.integers(0, 2, 200)
    init = kmeans_pp(x, 3, np.random.default_rng(5))
    labels, centres = lloyd(x, init)
    result = variational_fair_kmeans(x, groups, 3, lam=0.0, init=init)
    assert np.array_equal(result.labels, labels)
    np.testing.assert_allclose(result.centres, centres)


def test_variational_large_lambda_moves_shares_toward_the_population():
    # four blobs: group 0 on the left, group 1 on the right, 10 apart vertically; from centres that split left from
    # right, Lloyd stays in that segregated local optimum, the fairness term pulls it to the mixed top/bottom split
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1], 100)
    blob = np.repeat([[0.0, 0.0], [0.0, 10.0], [3.0, 0.0], [3.0, 10.0]], 50, axis=0)
    x = rng.normal(size=(200, 2)) * 0.5 + blob
    init = np.array([[0.0, 5.0], [3.0, 5.0]])

    def share_gap(labels):
        return max(abs((groups[labels == k] == 0).mean() - 0.5) for k in np.unique(labels))

    plain = variational_fair_kmeans(x, groups, 2, lam=0.0, init=init)
    fair = variational_fair_kmeans(x, groups, 2, lam=30.0, init=init)
    assert share_gap(plain.labels) > 0.45
    assert share_gap(fair.labels) < 0.05
    assert fair.fairness < plain.fairness
    # the bound is an upper bound only while L is at least the fairness gradient's Lipschitz constant, which grows
    # with λ: at λ = 100 the default L = 2 is too small and the labels oscillate; a larger L restores the fair split
    assert share_gap(variational_fair_kmeans(x, groups, 2, lam=100.0, lipschitz=10.0, init=init).labels) < 0.05


def test_variational_bound_steps_run_to_convergence():
    """The bound loop runs until its value settles (the authors' code tests from the third step on), not one step:
    at fixed centres, λ = 10, the first step's fairness gradient pushes a third of group 0 out of its nearer cluster;
    the later steps, each multiplying in the distances again, sharpen the assignments back towards it."""
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1], 100)
    blob = np.repeat([[0.0, 0.0], [0.0, 10.0], [3.0, 0.0], [3.0, 10.0]], 50, axis=0)
    x = rng.normal(size=(200, 2)) * 0.5 + blob
    a = _common.sq_distances(x, np.array([[0.0, 5.0], [3.0, 5.0]]))  # group 0 (x = 0) nearer cluster 0
    u = np.array([0.5, 0.5])

    def kept(s):  # group 0's mass in its nearer cluster
        return s[groups == 0, 0].sum()

    one = variational._bound_update(a, groups, u, 2, 10.0, 2.0, 1)
    settled = variational._bound_update(a, groups, u, 2, 10.0, 2.0, 200)
    assert 50 < kept(one) < 80 and kept(settled) > 95
    np.testing.assert_allclose(settled, variational._bound_update(a, groups, u, 2, 10.0, 2.0, 1000))


def test_variational_bound_steps_never_underflow_to_an_empty_row():
    """With a large λ the two factors of s_j ⊙ exp((−a_j − b_j)/L) underflow in floating point; each row of the
    assignments still sums to one."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3)) * 30
    groups = rng.integers(0, 3, 300)
    a = _common.sq_distances(x, x[:4])
    s = variational._bound_update(a, groups, np.bincount(groups) / 300, 3, 1e6, 2.0, 50)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(1), 1.0)


def test_variational_errors():
    x = np.zeros((4, 1))
    for bad in (-1.0, float("nan"), float("inf"), "1"):
        with raises(variational.ERR_LAMBDA.format(value=bad)):
            variational_fair_kmeans(x, [0, 1, 0, 1], 2, lam=bad)
    with raises(variational.ERR_LIPSCHITZ.format(value=0)):
        variational_fair_kmeans(x, [0, 1, 0, 1], 2, lipschitz=0)
    with raises(_common.ERR_K.format(n=4, k=0)):
        variational_fair_kmeans(x, [0, 1, 0, 1], 0)
    with raises(_common.ERR_ONE_GROUP.format(group=3)):
        variational_fair_kmeans(x, [3, 3, 3, 3], 2)
