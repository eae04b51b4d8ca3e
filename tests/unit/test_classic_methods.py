"""The classic fair-clustering algorithms as registered methods: each keeps its guarantee when run as the app runs it
(a real job, a real run store), and refuses what its solver cannot do before the run starts."""
import re

import numpy as np
import pytest

from dashboard_lib import classic, metrics
from dashboard_lib.classic._common import ERR_TOO_LARGE
from dashboard_lib.classic.assignment import MAX_VARIABLES
from dashboard_lib.classic.fairlets import EXACT_MAX_VARIABLES
from dashboard_lib.data import load_dataset
from dashboard_lib.jobs import RunConfig
from dashboard_lib.methods import FairAssignment, Fairlets, SociallyFairKMeans, VariationalFair, get_method


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist_optdigits", {"n": 400})


def test_a_fairlet_run_through_the_job_registry_keeps_balance_at_least_one_over_t(registry, digits):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", dataset_options={"n": 400}, method="fairlets",
                                      hparams={"n_clusters": 5}, seed=0))
    assert registry.wait(run_id, timeout=120)
    run = registry.store.get_run(run_id)
    assert run.status == "finished", run.error
    t = np.ceil(np.bincount(digits.g).max() / np.bincount(digits.g).min())
    assert run.metrics["balance"] >= 1 / t - 1e-12
    assert registry.store.last_scalars(run_id, ("cost", "fairlet_cost", "t"))["t"] == t


def test_fair_assignment_keeps_each_cluster_within_its_bounds_up_to_the_rounding(digits):
    model = FairAssignment(n_clusters=4, delta=0.1, random_state=0).fit(digits)
    lower, upper = classic.proportional_bounds(digits.g, 0.1)
    counts = metrics.count_table(model.labels_, digits.g).counts
    sizes = counts.sum(1, keepdims=True)
    assert np.all(counts >= lower * sizes - 2) and np.all(counts <= upper * sizes + 2)
    assert model.metrics_["balance"] > get_method("kmeans")(n_clusters=4, random_state=0).fit(digits).metrics_["balance"]


def test_variational_lambda_zero_is_k_means_and_a_large_lambda_is_fairer(digits):
    x = digits.X.flatten(1).double().numpy()
    raw = VariationalFair(n_clusters=4, lam=0.0, normalize=False, random_state=0).fit(digits)
    assert np.array_equal(raw.labels_, classic.variational_fair_kmeans(x, digits.g, 4, lam=0.0, random_state=0).labels)
    plain = VariationalFair(n_clusters=4, lam=0.0, random_state=0).fit(digits)
    fair = VariationalFair(n_clusters=4, lam=100.0, random_state=0).fit(digits)
    assert fair.metrics_["mnce"] > plain.metrics_["mnce"]


def test_socially_fair_k_means_lowers_the_worst_group_cost_against_its_lloyd_start(digits):
    x = digits.X.flatten(1).double().numpy()
    model = SociallyFairKMeans(n_clusters=4, random_state=0).fit(digits)
    worst = model.history_["scalars"]["worst_group_cost"]["value"][-1]
    assert worst == pytest.approx(classic.group_costs(x, model.labels_, model.centers_.astype(np.float64), digits.g).max(),
                                  rel=1e-5)
    lloyd = get_method("kmeans")(n_clusters=4, random_state=0).fit(digits)
    centres = np.stack([x[lloyd.labels_ == c].mean(0) for c in range(4)])
    assert worst <= classic.group_costs(x, lloyd.labels_, centres, digits.g).max() * 1.05


def test_solver_limits_are_said_before_the_run_starts(digits, monkeypatch):
    exact = Fairlets(decomposition="exact")
    monkeypatch.setattr("dashboard_lib.methods.classic.EXACT_MAX_VARIABLES", 10)
    sizes = np.bincount(digits.g)
    pairs = int(sizes.min()) * int(sizes.sum() - sizes.min())
    with pytest.raises(ValueError, match=re.escape(ERR_TOO_LARGE.format(
            what="exact fairlet decomposition", size=pairs, unit="anchor-point pairs", limit=10,
            instead="decomposition 'scalable'"))):
        exact.check_data(digits)
    monkeypatch.setattr("dashboard_lib.methods.classic.MAX_VARIABLES", 100)
    with pytest.raises(ValueError, match=re.escape(ERR_TOO_LARGE.format(
            what="fair assignment", size=len(digits) * 10, unit="point-centre pairs", limit=100,
            instead="fewer points (dataset option n) or clusters"))):
        FairAssignment(n_clusters=10).check_data(digits)
    assert EXACT_MAX_VARIABLES > 10 and MAX_VARIABLES > 100  # the real limits are untouched outside this test


def test_each_classic_method_states_its_source_and_guarantee():
    for cls in (Fairlets, FairAssignment, VariationalFair, SociallyFairKMeans):
        assert cls.paper and cls.guarantee and cls.needs_groups and cls.kind == "clustering"
        assert all(p.help for p in cls.params)
