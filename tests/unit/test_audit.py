"""The audit: new metrics against hand-computed tables, intersections, bootstrap coverage, the random baseline against
brute force, bad input, the external run in a real store, the report files and the CLI."""
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import dashboard_lib
from dashboard_lib import auditing as A
from dashboard_lib import external, metrics as M, report
from dashboard_lib.cli import main
from dashboard_lib.store import RunStore

# HolisticAI's documented example: groups a (first four) and b, three clusters.
HAI_GROUPS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
HAI_CLUSTERS = np.array([0, 1, 1, 2, 0, 0, 0, 0, 1, 2])


def test_holisticai_example_by_hand():
    # Table (cluster × group): c0 [1, 4], c1 [2, 1], c2 [1, 1]; p(a) = 0.4, p(b) = 0.6.
    assert M.cluster_balance(HAI_CLUSTERS, HAI_GROUPS) == pytest.approx(0.5)  # c0: (1/5) / 0.4; HolisticAI gives 0.5
    assert M.min_cluster_ratio(HAI_CLUSTERS, HAI_GROUPS) == pytest.approx(0.25)  # c0: 1 / 4; HolisticAI 0.2499…
    # Each group against the population P(C) = [.5, .3, .2]: P(C|a) = [.25, .5, .25], P(C|b) = [4/6, 1/6, 1/6].
    tv = M.cluster_distribution_tv(HAI_CLUSTERS, HAI_GROUPS)
    assert tv == pytest.approx([0.5 * (0.25 + 0.2 + 0.05), 0.5 * (1 / 6 + 0.3 - 1 / 6 + 0.2 - 1 / 6)])
    kl = M.cluster_distribution_kl(HAI_CLUSTERS, HAI_GROUPS)
    kl_a = 0.25 * math.log(0.25 / 0.5) + 0.5 * math.log(0.5 / 0.3) + 0.25 * math.log(0.25 / 0.2)
    kl_b = 4 / 6 * math.log((4 / 6) / 0.5) + 1 / 6 * math.log((1 / 6) / 0.3) + 1 / 6 * math.log((1 / 6) / 0.2)
    assert kl == pytest.approx([kl_a, kl_b])


def test_three_groups_by_hand():
    # Table [[2, 1, 1], [1, 2, 2]]: every group 3 of 9.
    clusters = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    groups = np.array([0, 0, 1, 2, 0, 1, 1, 2, 2])
    # c0 shares [.5, .25, .25] -> r [1.5, .75, .75] -> min(1/1.5, .75) = 2/3; c1 shares [.2, .4, .4] -> r = .6.
    assert M.cluster_balance(clusters, groups) == pytest.approx(0.6)
    assert M.balance(clusters, groups) == pytest.approx(0.5)
    assert M.cluster_distribution_tv(clusters, groups) == pytest.approx([2 / 9, 1 / 9, 1 / 9])
    # All groups tie at 3: the smallest is the first, the largest the last (a different one).
    assert M.minority_majority([3, 3, 3]) == (0, 2)
    assert M.min_cluster_ratio(clusters, groups) == pytest.approx(min(2 / 1, 1 / 2))


def test_embedding_metrics_by_hand():
    # Cluster 0 at centre 1: a at 0 and 1, b at 2; cluster 1 at centre 12: a at 10, b at 14.
    x = np.array([[0.0], [2.0], [1.0], [10.0], [14.0]])
    clusters, groups = np.array([0, 0, 0, 1, 1]), np.array([0, 1, 0, 0, 1])
    assert M.centre_distances(x, clusters) == pytest.approx([1, 1, 0, 2, 2])
    ratio, per_group = M.social_fairness_ratio(x, clusters, groups)
    assert per_group == pytest.approx([1.0, 1.5]) and ratio == pytest.approx(1.5)
    from sklearn.metrics import silhouette_samples

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    clusters, groups = (x[:, 0] > 0).astype(int), rng.integers(0, 3, 200)
    diff, per_group = M.silhouette_by_group(x, clusters, groups)
    s = silhouette_samples(x, clusters)
    expected = [s[groups == g].mean() for g in range(3)]
    assert per_group == pytest.approx(expected) and diff == pytest.approx(max(expected) - min(expected))


def test_batched_table_metrics_equal_the_label_functions_and_ignore_empty_clusters():
    rng = np.random.default_rng(5)
    for _ in range(20):
        clusters, groups = rng.integers(0, 5, 300), rng.integers(0, 3, 300)
        table = np.zeros((5, 3), int)
        np.add.at(table, (clusters, groups), 1)
        padded = np.vstack([table, np.zeros((2, 3), int)])  # two empty clusters, as a resample can make
        assert M.balance_from_tables(padded) == pytest.approx(M.balance(clusters, groups))
        assert M.mnce_from_tables(padded) == pytest.approx(M.mnce(clusters, groups))
        assert M.entropy_from_tables(padded) == pytest.approx(M.entropy(clusters, groups).per_group)
        assert M.cluster_balance_from_tables(padded) == pytest.approx(M.cluster_balance(clusters, groups))
        batch = np.stack([table, padded[:5]])
        assert M.cluster_tv_from_tables(batch).shape == (2, 3)


def test_batched_quality_metrics_equal_scikit_learn():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(6)
    y, c = rng.integers(0, 4, 500), rng.integers(0, 6, 500)
    table = np.zeros((4, 6))
    np.add.at(table, (y, c), 1)
    assert M.nmi_from_tables(table[None], "arithmetic")[0] == pytest.approx(normalized_mutual_info_score(y, c))
    assert M.nmi_from_tables(table[None], "geometric")[0] == pytest.approx(
        normalized_mutual_info_score(y, c, average_method="geometric"))
    assert M.ari_from_tables(table[None])[0] == pytest.approx(adjusted_rand_score(y, c))
    assert M.accuracy_from_tables(table[None])[0] == pytest.approx(M.clustering_accuracy(y, c))


def test_intersection_counts_small_and_empty_combinations():
    # sex × race with one combination missing (f × c) and one tiny (m × c).
    sex = np.array(["f"] * 60 + ["m"] * 60 + ["m"] * 5)
    race = np.array(["a"] * 30 + ["b"] * 30 + ["a"] * 30 + ["b"] * 30 + ["c"] * 5)
    clusters = np.tile([0, 1, 2], 42)[:125]
    result = A.audit(clusters, {"sex": sex, "race": race}, resamples=50, random_draws=5)
    names = [a.name for a in result.attributes]
    assert names == ["sex", "race", "sex × race"]
    inter = result.attribute("sex × race")
    assert inter.group_names == ["f × a", "f × b", "m × a", "m × b", "m × c"]
    assert inter.group_counts == [30, 30, 30, 30, 5]
    assert inter.empty_combinations == ["f × c"]
    expected = np.zeros((3, 5), int)
    codes = {n: i for i, n in enumerate(inter.group_names)}
    np.add.at(expected, (clusters, [codes[f"{s} × {r}"] for s, r in zip(sex, race)]), 1)
    assert np.array_equal(inter.table, expected)
    assert inter.metrics["balance"].value == pytest.approx(M.balance(clusters, [codes[f"{s} × {r}"] for s, r in zip(sex, race)]))
    caveats = " ".join(result.caveats)
    assert "m × c (5)" in caveats and "too small to judge" in caveats and "f × c" in caveats
    assert "race: group(s) under 30 samples: c (5)" in caveats


def test_bootstrap_interval_covers_the_true_value_at_about_its_rate():
    # A population whose clusters are clearly unfair; the true value is the metric of its probability table.
    probabilities = np.array([[0.20, 0.05], [0.10, 0.15], [0.15, 0.05], [0.05, 0.25]])  # cluster × group
    truth = {"cluster_tv": float(M.cluster_tv_from_tables(probabilities * 1e6).max()),
             "entropy": float(M.entropy_from_tables(probabilities * 1e6).mean())}
    rng = np.random.default_rng(11)
    hits = {k: 0 for k in truth}
    replications = 150
    for r in range(replications):
        cells = rng.choice(8, size=1500, p=probabilities.ravel())
        result = A.audit(cells // 2, cells % 2, resamples=300, random_draws=2, seed=r, probe=False)
        for key, value in truth.items():
            e = result.attributes[0].metrics[key]
            hits[key] += e.low <= value <= e.high
    for key, count in hits.items():
        # TV's lower end and the entropy's upper end reach exact simultaneous bounds (auditing._edge_bounds):
        # conservative by design, so no upper limit on their coverage.
        assert 0.88 <= count / replications, (key, count / replications)


def test_random_baseline_matches_brute_force_permutations():
    rng = np.random.default_rng(3)
    clusters = rng.choice(4, 240, p=[0.4, 0.3, 0.2, 0.1])
    groups = rng.choice(3, 240, p=[0.5, 0.3, 0.2])
    table = np.zeros((4, 3), int)
    np.add.at(table, (clusters, groups), 1)
    drawn = A.random_assignment_tables(table.sum(1), table.sum(0), 3000, np.random.default_rng(0))
    assert np.array_equal(drawn.sum(2), np.broadcast_to(table.sum(1), (3000, 4)))  # cluster sizes kept
    assert np.array_equal(drawn.sum(1), np.broadcast_to(table.sum(0), (3000, 3)))  # group sizes kept
    brute = np.zeros((3000, 4, 3), int)
    for i in range(3000):
        np.add.at(brute[i], (rng.permutation(clusters), groups), 1)
    for fn in (M.balance_from_tables, M.mnce_from_tables, lambda t: M.cluster_tv_from_tables(t).max(-1)):
        a, b = fn(drawn), fn(brute)
        se = math.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4 * se + 1e-9, (a.mean(), b.mean())


def test_audit_function_is_the_packages_front_door():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 2, 400)
    result = dashboard_lib.audit(rng.integers(0, 3, 400), g, resamples=100)
    assert result.attributes[0].name == "group" and result.n == 400
    e = result.attributes[0].metrics["balance"]
    assert re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", e.text())
    assert e.baseline is not None and "ceiling" in e.baseline_label


@pytest.mark.parametrize("kwargs, message", [
    (dict(assignment=np.zeros(10, int)), "holds a single cluster"),
    (dict(assignment=np.array([0.5, 1] * 5)), A.ERR_CLUSTER_LABELS.format(name="cluster", found=0.5, row=0)),
    (dict(assignment=pd.Series([0, 1, None, 1] + [0] * 6)), "has 1 missing value(s) (first at row 2)"),
    (dict(groups={"sex": np.zeros(10)}), "the sensitive column 'sex' holds a single group"),
    (dict(groups={"sex": np.arange(10)[:9]}), "the sensitive column 'sex' has 9 rows but the clustering has 10"),
    (dict(embedding=np.array([[np.nan]] + [[0.0]] * 9)), "the embedding holds 1 NaN or infinite value(s) (first at row 0"),
    (dict(embedding=np.zeros((9, 2))), "the embedding has 9 rows but the clustering has 10"),
    (dict(groups={}), "pick at least one sensitive column"),
])
def test_bad_input_says_what_and_where(kwargs, message):
    args = dict(assignment=np.array([0, 1] * 5), groups={"sex": np.array([0, 0, 1, 1, 0] * 2)}) | kwargs
    with pytest.raises(ValueError) as info:
        A.audit(args.pop("assignment"), args.pop("groups"), resamples=10, **args)
    assert message in str(info.value)


def test_continuous_sensitive_column_warns():
    rng = np.random.default_rng(0)
    result = A.audit(rng.integers(0, 2, 100), {"income": rng.normal(size=100)}, resamples=10)
    assert any("looks continuous" in w and "'income'" in w for w in result.warnings)


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.3, 0.7])
    race = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    emb = rng.normal(size=(n, 2)) + (sex == "male")[:, None] * 2
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "segment": (emb[:, 0] > 1).astype(int) + 2 * (emb[:, 1] > 1),
                         "sex": sex, "race": race, "label": rng.integers(0, 2, n), "e0": emb[:, 0], "e1": emb[:, 1]})


@pytest.mark.parametrize("kwargs, message", [
    (dict(clusters="nope"), "no cluster column 'nope' in the table"),
    (dict(clusters=""), "choose the cluster column"),
    (dict(sensitive=["segment"]), "column 'segment' cannot be both the cluster and the sensitive column"),
    (dict(embedding_columns=["race"]), "embedding column(s) ['race'] are not numeric (e.g. '"),
    (dict(embedding_columns=["e0"], embedding=np.zeros((600, 1))), "either as columns of the table or as a separate file"),
    (dict(id_column="label"), "the row-id column 'label' repeats 2 value(s)"),
])
def test_prepare_refuses_a_bad_choice_of_columns(kwargs, message):
    args = dict(clusters="segment", sensitive=["sex"]) | kwargs
    with pytest.raises(ValueError) as info:
        external.prepare(_table(), **args)
    assert message in str(info.value)


def test_prepare_refuses_more_rows_than_the_upload_limit():
    big = pd.DataFrame({"c": np.zeros(2_000_001, np.int8), "g": np.zeros(2_000_001, np.int8)})
    with pytest.raises(ValueError, match="2,000,001 rows, over the 2,000,000-row limit"):
        external.prepare(big, clusters="c", sensitive=["g"])


def test_external_run_in_the_store_then_its_report(fclab_home, tmp_path):
    table = _table()
    path = tmp_path / "segments.csv"
    table.to_csv(path, index=False)
    frame, provenance = external.read_audit_file(path)
    prepared = external.prepare(frame, clusters="segment", sensitive=["sex", "race"], class_column="label",
                                embedding_columns=["e0", "e1"], id_column="id", provenance=provenance)
    result = external.audit_table(prepared, resamples=200)
    store = RunStore(fclab_home / "store")
    run_id = external.record_external(store, prepared, result, "segments")
    run = store.get_run(run_id)
    assert (run.method, run.dataset, run.status) == ("external", "external:segments", "finished")
    assert run.config["provenance"]["sha256"] == external.file_sha256(path.read_bytes())
    assert run.config["provenance"]["columns"]["sensitive"] == ["sex", "race"]
    arrays = store.load_arrays(run_id, 0)
    assert list(arrays["row_id"][:3]) == ["r0", "r1", "r2"]
    assert np.array_equal(arrays["assignment"], table["segment"].to_numpy())
    assert run.metrics["balance"] == pytest.approx(M.balance(table["segment"], table["sex"].map({"female": 0, "male": 1})))
    again = external.audit_stored_run(store, run_id, resamples=200)  # the same numbers from what the store kept
    for a, b in zip(again.attributes, result.attributes):
        assert a.name == b.name and a.metrics["mnce"].value == pytest.approx(b.metrics["mnce"].value)

    page = report.build_report(result, title="Audit", provenance=provenance, run=run, epoch=0)
    assert "<script" not in page and not re.search(r"(src|href)=['\"]?https?:", page)  # opens offline
    assert provenance["sha256"] in page and "sex × race" in page and "<svg" in page
    assert "[" in page and "ceiling" in page and "torch threads" in page
    payload = json.loads(report.report_json(result, provenance=provenance, run=run, epoch=0))
    assert payload["attributes"][0]["metrics"]["balance"]["low"] is not None
    rows = pd.read_csv(pd.io.common.StringIO(report.assignments_csv(arrays, result)))
    assert list(rows.columns) == ["row_id", "cluster"] and rows["row_id"][5] == "r5"
    assert rows["cluster"].tolist() == table["segment"].tolist()


def test_a_stopped_runs_report_says_which_epoch_its_numbers_come_from(fclab_home):
    store = RunStore(fclab_home / "store")
    run_id = store.create_run(dataset="mnist_optdigits", method="dec", config={}, seed=0, device="cpu", environment={})
    rng = np.random.default_rng(0)
    store.add_evaluation(run_id, 3, {}, {"assignment": rng.integers(0, 3, 200), "g": rng.integers(0, 2, 200),
                                         "row_id": np.arange(200)})
    store.finish(run_id, "stopped")
    result = external.audit_stored_run(store, run_id, resamples=50)
    page = report.build_report(result, title="t", run=store.get_run(run_id), epoch=external.evaluation_epoch(store, run_id))
    assert "This run ended stopped" in page and "at epoch 3" in page


def test_cli_audit_writes_the_report_and_records_the_run(fclab_home, tmp_path, capsys):
    path = tmp_path / "segments.csv"
    _table().to_csv(path, index=False)
    out = tmp_path / "out" / "audit.html"
    assert main(["audit", str(path), "--clusters", "segment", "--sensitive", "sex", "race", "--class", "label",
                 "--embedding", "e0", "e1", "--id", "id", "--resamples", "100", "--report", str(out),
                 "--report-json", str(out.with_suffix(".json")), "--assignments", str(out.with_suffix(".csv"))]) == 0
    text = capsys.readouterr().out
    assert "sex × race" in text and "Balance" in text and "recorded as run" in text
    assert out.is_file() and out.with_suffix(".json").is_file() and out.with_suffix(".csv").is_file()
    (run,) = RunStore(fclab_home / "store").list_runs()
    assert run.method == "external"
    assert main(["audit", "--run", run.id, "--resamples", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["attributes"][0]["name"] == "sex"
    assert main(["audit", str(path), "--clusters", "nope", "--sensitive", "sex"]) == 2
    assert "error: no cluster column 'nope'" in capsys.readouterr().err
    assert len(RunStore(fclab_home / "store").list_runs()) == 1  # nothing saved for the bad call


def test_every_trained_run_saves_row_ids_that_join_back_to_the_source(registry):
    from dashboard_lib.data import load_dataset
    from dashboard_lib.jobs import RunConfig

    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": 300},
                                      hparams={"n_init": 1}))
    assert registry.wait(run_id, 120)
    arrays = registry.store.load_arrays(run_id, external.evaluation_epoch(registry.store, run_id))
    full, subset = load_dataset("mnist_optdigits", {"n": 0}), load_dataset("mnist_optdigits", {"n": 300})
    assert len(arrays["row_id"]) == 300 and len(np.unique(arrays["row_id"])) == 300
    assert np.array_equal(full.g[arrays["row_id"]], arrays["g"]) and np.array_equal(full.y[arrays["row_id"]], arrays["y"])
    assert np.array_equal(full.X[arrays["row_id"]], subset.X)  # the very samples clustered


def test_assignments_join_a_table_by_order_or_by_row_number():
    table = pd.DataFrame({"x": [10.0, 11.0, 12.0]})
    by_order = external.with_assignments(table, pd.DataFrame({"c": [2, 0, 1]}), "c")
    assert by_order["cluster"].tolist() == [2, 0, 1] and by_order["row"].tolist() == [0, 1, 2]
    by_row = external.with_assignments(table, pd.DataFrame({"r": [2, 0], "c": [5, 6]}), "c", "r")
    assert by_row["x"].tolist() == [12.0, 10.0] and by_row["row"].tolist() == [2, 0] and by_row["cluster"].tolist() == [5, 6]
    with pytest.raises(ValueError, match="the assignments have 2 rows but the upload has 3"):
        external.with_assignments(table, pd.DataFrame({"c": [1, 2]}), "c")
    with pytest.raises(ValueError, match=r"the row column 'r' holds 3, not a row of the upload \(0 to 3 − 1\)"):
        external.with_assignments(table, pd.DataFrame({"r": [0, 3], "c": [1, 2]}), "c", "r")
    with pytest.raises(ValueError, match="no cluster column 'k'"):
        external.with_assignments(table, pd.DataFrame({"c": [1, 2, 3]}), "k")
