"""The audit's intervals near no effect: the interval function by hand, the simultaneous intervals of the minima,
the random-assignment baselines of the quality metrics against brute-force permutations, the disclosure of
subsamples, and a small null simulation (every interval contains its estimate and covers the true value)."""
import json
import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dashboard_lib import auditing as A
from dashboard_lib import metrics as M
from dashboard_lib import report
from dashboard_lib.cli import audit_summary


# --- the interval function, by hand -----------------------------------------------------------------------------------
def test_a_symmetric_sample_gives_the_same_percentile_and_basic_interval():
    samples = 0.5 + np.linspace(-1, 1, 1001)  # 2.5 % and 97.5 % quantiles: 0.5 ∓ 0.95
    for method in ("percentile", "basic", "union"):
        low, high = A._interval(samples, 0.5, 0.95, method=method)
        assert (low, high) == pytest.approx((-0.45, 1.45)), method
    low, high = A._interval(samples, 0.5, 0.95, method="bca")  # z0 = 0 (ties count half), no acceleration
    assert (low, high) == pytest.approx((-0.45, 1.45), abs=1e-3)


def test_a_sample_entirely_above_the_estimate_still_gives_an_interval_that_contains_it():
    samples = 1 + np.linspace(0, 1, 1001)  # quantiles 1.025 and 1.975, all above the estimate 0.5
    assert A._interval(samples, 0.5, 0.95, method="percentile", contain=False) == pytest.approx((1.025, 1.975))
    assert A._interval(samples, 0.5, 0.95, method="percentile") == pytest.approx((0.5, 1.975))  # low widened to θ
    # Basic: [2θ - 1.975, 2θ - 1.025] = [-0.975, -0.025]: the reflection lands below θ, high widened to θ.
    assert A._interval(samples, 0.5, 0.95, method="basic", contain=False) == pytest.approx((-0.975, -0.025))
    assert A._interval(samples, 0.5, 0.95, method="basic") == pytest.approx((-0.975, 0.5))
    assert A._interval(samples, 0.5, 0.95, method="union") == pytest.approx((-0.975, 1.975))
    low, high = A._interval(samples, 0.5, 0.95, method="bca")  # z0 at its floor: the lowest resamples
    assert low == 0.5 and high == pytest.approx(1.0, abs=0.01)


def test_the_interval_is_clipped_to_the_metrics_range():
    samples = 0.02 + np.linspace(-0.1, 0.1, 1001)
    assert A._interval(samples, 0.02, 0.95, (0.0, 1.0)) == pytest.approx((0.0, 0.115))
    # NMI-like: every resample above a near-zero estimate; the basic interval reaches 0, not below.
    assert A._interval(0.05 + np.linspace(0, 0.02, 1001), 0.01, 0.95, A.RANGES["nmi"]) == pytest.approx((0.0, 0.01))


def test_mostly_infinite_resamples_give_no_interval():
    samples = np.r_[np.full(60, np.inf), np.linspace(0, 1, 40)]
    assert A._interval(samples, 0.5, 0.95) == (None, None)
    assert A._interval(np.linspace(0, 1, 100), math.inf, 0.95) == (None, None)


def test_minimum_intervals_contain_the_estimate_and_narrow_with_more_rows():
    table = np.array([[30, 70], [45, 55], [20, 30]])
    point = A._fairness_batch(table, 0, 1)
    widths = []
    for scale in (1, 100):
        intervals = A._minimum_intervals(table * scale, 0.95, 0, 1)
        for key, (low, high) in intervals.items():
            assert low <= float(point[key]) <= high, (key, low, high, point[key])
        widths.append(intervals["balance"][1] - intervals["balance"][0])
    assert widths[1] < widths[0] / 5
    # A cluster that misses a group: Balance 0, and its interval starts at 0.
    low, high = A._minimum_intervals(np.array([[0, 40], [50, 50]]), 0.95, 0, 1)["balance"]
    assert low == 0 and 0 < high < 0.15


# --- baselines ----------------------------------------------------------------------------------------------------------
def test_quality_baselines_equal_a_brute_force_permutation_mean():
    rng = np.random.default_rng(4)
    clusters = rng.choice(3, 60, p=[0.5, 0.3, 0.2])
    y = rng.choice(2, 60, p=[0.7, 0.3])
    groups = rng.integers(0, 2, 60)
    draws = 1500
    result = A.audit(clusters, groups, y=y, resamples=0, random_draws=draws, probe=False)
    brute = {"acc": [], "nmi": [], "nmi_geometric": [], "ari": []}
    for _ in range(draws):
        shuffled = rng.permutation(clusters)
        brute["acc"].append(M.clustering_accuracy(y, shuffled))
        brute["nmi"].append(normalized_mutual_info_score(y, shuffled))
        brute["nmi_geometric"].append(normalized_mutual_info_score(y, shuffled, average_method="geometric"))
        brute["ari"].append(adjusted_rand_score(y, shuffled))
    for key, values in brute.items():
        e = result.quality[key]
        se = np.std(values) / math.sqrt(draws) * math.sqrt(2)  # both are means of `draws` draws
        assert abs(e.baseline - np.mean(values)) < 4 * se + 1e-12, (key, e.baseline, np.mean(values))
    assert result.quality["nmi"].baseline > 0.005  # no longer a fixed 0: chance gives a 60-row table some NMI
    assert result.quality["ari"].baseline == 0 and "0 (exact)" in result.quality["ari"].baseline_label
    assert "majority-class rate 0." in result.quality["acc"].baseline_label  # the second reference for ACC


# --- subsamples -----------------------------------------------------------------------------------------------------------
def test_a_subsample_is_disclosed_and_absent_when_every_row_is_used(monkeypatch):
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=(n, 2))
    clusters, groups = (x[:, 0] > 0).astype(int), rng.integers(0, 2, n)
    full = A.audit(clusters, groups, embedding=x, resamples=50, random_draws=2, probe=False).to_dict()
    assert all(m["n_used"] is None for m in full["attributes"][0]["metrics"].values())

    monkeypatch.setattr(A, "SILHOUETTE_SAMPLE", 200)
    result = A.audit(clusters, groups, embedding=x, resamples=50, random_draws=2, probe=False)
    metrics = result.to_dict()["attributes"][0]["metrics"]
    assert metrics["silhouette_diff"]["n_used"] == 200
    assert metrics["social_fairness_ratio"]["n_used"] is None  # all rows, whatever their number
    assert metrics["balance"]["n_used"] is None
    assert "on 200 rows (a subsample)" in report.build_report(result, title="t")
    assert json.loads(report.report_json(result))["attributes"][0]["metrics"]["silhouette_diff"]["n_used"] == 200
    lines = audit_summary(result)
    assert any("Silhouette difference" in line and "on 200 rows (a subsample)" in line for line in lines)
    assert not any("Balance " in line and "subsample" in line for line in lines)
    assert any(line.startswith("intervals: 95% bootstrap: the union of the basic") for line in lines)


def test_the_social_fairness_ratio_uses_every_row_of_a_large_table():
    rng = np.random.default_rng(1)
    n = 30_000  # above the old 20,000-row subsample
    x = rng.normal(size=(n, 2))
    clusters, groups = rng.integers(0, 3, n), rng.integers(0, 2, n)
    e = A.audit(clusters, groups, embedding=x, resamples=20, random_draws=2, probe=False).attributes[0].metrics
    assert e["social_fairness_ratio"].value == pytest.approx(M.social_fairness_ratio(x, clusters, groups)[0])
    assert e["social_fairness_ratio"].low <= e["social_fairness_ratio"].value <= e["social_fairness_ratio"].high
    assert e["silhouette_diff"].n_used == A.SILHOUETTE_SAMPLE


# --- a small null simulation -------------------------------------------------------------------------------------------
def _truths(k_probs, class_probs, sex_probs, race_probs):
    """Each metric of the population (the table of expected counts): the value the intervals must cover."""
    out = {"acc": float(M.accuracy_from_tables(np.outer(class_probs, k_probs)[None] * 1e6)[0]), "nmi": 0.0,
           "nmi_geometric": 0.0, "ari": 0.0}
    joint = np.einsum("k,s,r->ksr", k_probs, sex_probs, race_probs)
    views = {"sex": joint.sum(2), "race": joint.sum(1), "sex × race": joint.reshape(len(k_probs), -1)}
    for name, table in views.items():
        sizes = table.sum(0)
        values = A._fairness_batch(table * 1e6, int(np.argmin(sizes)), int(np.argmax(sizes)))
        out.update({f"{name}: {key}": float(v) for key, v in values.items()})
        out[f"{name}: f_beta"] = 0.0
    return out


def test_null_simulation_every_interval_contains_its_estimate_and_covers_the_truth():
    """Random clusterings (independent of classes and groups) of 500-2,000 rows: every interval contains its own
    estimate, and each metric's interval covers the population's value at least 90 % of the time (95 % nominal)."""
    rng = np.random.default_rng(2026)
    class_probs, sex_probs, race_probs = np.array([0.6, 0.4]), np.array([0.35, 0.65]), np.array([0.6, 0.3, 0.1])
    settings = [(n, k) for n in (500, 1000, 2000) for k in (2, 3, 5)]
    replications = 150
    covered, total = {}, {}
    for r in range(replications):
        n, k = settings[r % len(settings)]
        k_probs = np.linspace(1, 2, k) / np.linspace(1, 2, k).sum()
        truth = _truths(k_probs, class_probs, sex_probs, race_probs)
        clusters = rng.choice(k, n, p=k_probs)
        y, sex, race = rng.choice(2, n, p=class_probs), rng.choice(2, n, p=sex_probs), rng.choice(3, n, p=race_probs)
        if len(np.unique(clusters)) < k:
            continue
        result = A.audit(clusters, {"sex": sex, "race": race}, y=y, resamples=200, random_draws=2, seed=r, probe=False)
        estimates = dict(result.quality)
        for a in result.attributes:
            estimates.update({f"{a.name}: {key}": e for key, e in a.metrics.items()})
        for key, e in estimates.items():
            assert e.low <= e.value <= e.high, (key, e)
            base = key.split(": ")[-1]
            covered[base] = covered.get(base, 0) + (e.low - 1e-12 <= truth[key] <= e.high + 1e-12)
            total[base] = total.get(base, 0) + 1
    rates = {key: covered[key] / total[key] for key in total}
    assert min(total.values()) >= 140
    assert all(rate >= 0.90 for rate in rates.values()), rates
