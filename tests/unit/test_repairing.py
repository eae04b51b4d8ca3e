"""The repair of an audited clustering (dashboard_lib.repairing) on hand-made tables whose answer is known: which
points must move, the price, the metrics before and after, the run it is saved as and the original left as it was."""
import hashlib
import importlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from dashboard_lib import external, repairing, report
from dashboard_lib.store import RunStore

classic_repair = importlib.import_module("dashboard_lib.classic.repair")  # the module (the package exports a function by its name)


def _table() -> pd.DataFrame:
    """Two clusters that split the groups exactly: cluster 0 holds group a at x = 0..3, cluster 1 group b at 10..13.
    With equal shares forced (δ = 0), two a's and two b's must swap: those nearest the other cluster (x = 2, 3 and
    x = 10, 11). Sum of |x − centre| before: 2 × (1.5 + 0.5 + 0.5 + 1.5) = 8; after, with the same centres 1.5 and
    11.5: 1.5 + 0.5 (a's kept) + 9.5 + 8.5 (a's moved) + 8.5 + 9.5 (b's moved) + 0.5 + 1.5 (b's kept) = 40."""
    return pd.DataFrame({"id": [f"r{i}" for i in range(8)], "c": [0] * 4 + [1] * 4, "s": ["a"] * 4 + ["b"] * 4,
                         "t": ["u", "v"] * 4, "x": [0.0, 1, 2, 3, 10, 11, 12, 13], "y": ["p", "p", "q", "q"] * 2})


def _prepared(embedding=True, sensitive=("s",)):
    table = _table()
    prepared = external.prepare(table, clusters="c", sensitive=list(sensitive), class_column="y",
                                embedding_columns=["x"] if embedding else None, id_column="id")
    return prepared, external.audit_table(prepared, resamples=20)


@pytest.mark.parametrize("cost", ["moves", "distance"])
def test_the_points_that_must_move_move_and_the_price_is_the_hand_computed_one(cost):
    prepared, original = _prepared()
    repair = repairing.repair_clustering(prepared, original, delta=0.0, cost=cost)
    assert repair.n_moved == 4
    moves = repair.moves()
    assert moves["row_id"].tolist() == ["r2", "r3", "r4", "r5"]
    assert moves["s"].tolist() == ["a", "a", "b", "b"]
    assert moves["cluster"].tolist() == ["0", "0", "1", "1"] and moves["repaired_cluster"].tolist() == ["1", "1", "0", "0"]
    assert repair.assignment.tolist() == [0, 0, 1, 1, 0, 0, 1, 1]  # the original ids, type kept
    assert (repair.cost_before, repair.cost_after, repair.cost_ratio) == (8.0, 40.0, 5.0)
    # Before: each cluster holds one group (Balance 0, ACC 0.5); after: two of each (Balance 1), and the classes
    # (p at x = 0, 1, 10, 11) now fall one per cluster (ACC 1).
    assert original.attribute("s").metrics["balance"].value == 0.0 and repair.repaired.attribute("s").metrics["balance"].value == 1.0
    assert original.quality["acc"].value == 0.5 and repair.repaired.quality["acc"].value == 1.0
    table = repair.comparison().set_index(["part", "key"])
    assert table.loc[("s", "balance"), "change"] == "+1.000" and table.loc[("quality", "acc"), "change"] == "+0.500"
    assert table.loc[("s", "balance"), "before"] == original.attribute("s").metrics["balance"].text()
    assert table.loc[("s", "balance"), "after"] == repair.repaired.attribute("s").metrics["balance"].text()
    assert repair.repaired.settings == original.settings  # audited as the original was


def test_the_assignments_csv_holds_both_clusters_of_every_row_and_the_moves_csv_the_moved_ones():
    prepared, original = _prepared()
    repair = repairing.repair_clustering(prepared, original, delta=0.0)
    rows = pd.read_csv(io.StringIO(report.repair_assignments_csv(repair)), dtype=str)
    assert rows.columns.tolist() == ["row_id", "s", "cluster", "repaired_cluster", "moved"]
    assert rows["cluster"].tolist() == ["0"] * 4 + ["1"] * 4
    assert rows["repaired_cluster"].tolist() == ["0", "0", "1", "1", "0", "0", "1", "1"]
    assert rows["moved"].tolist() == ["False", "False", "True", "True", "True", "True", "False", "False"]
    moved = pd.read_csv(io.StringIO(report.moves_csv(repair)), dtype=str)
    assert moved["row_id"].tolist() == ["r2", "r3", "r4", "r5"]


def test_bounds_from_delta_are_beras_and_groups_set_by_hand_keep_theirs():
    labels = np.asarray(["a"] + ["b"] * 3, dtype=object)  # r = 0.25, 0.75
    bounds = repairing.repair_bounds(labels, "s", ["a", "b"], delta=0.2)
    assert bounds.population == [0.25, 0.75]
    assert bounds.lower == pytest.approx([0.2, 0.6]) and bounds.upper == pytest.approx([0.3125, 0.9375])
    bounds = repairing.repair_bounds(labels, "s", ["a", "b"], delta=0.5, shares={"a": (0.1, 0.4)})
    assert bounds.lower == pytest.approx([0.1, 0.375]) and bounds.upper == pytest.approx([0.4, 1.0]) and bounds.by_hand == ["a"]
    with pytest.raises(ValueError) as err:
        repairing.repair_bounds(labels, "s", ["a", "b"], shares={"z": (0.1, 0.4)})
    assert str(err.value) == repairing.ERR_UNKNOWN_GROUP.format(group="z", attribute="s", have=["a", "b"])
    with pytest.raises(ValueError) as err:
        repairing.repair_bounds(labels, "s", ["a", "b"], shares={"a": (0.5, 0.4)})
    assert str(err.value) == repairing.ERR_SHARE.format(group="a", lower="0.5", upper="0.4")
    # One side by hand, the other from δ: a's upper stays r / (1 − δ) = 0.3125.
    bounds = repairing.repair_bounds(labels, "s", ["a", "b"], delta=0.2, shares={"a": (0.25, None)})
    assert bounds.lower[0] == 0.25 and bounds.upper[0] == pytest.approx(0.3125) and bounds.by_hand == ["a"]
    with pytest.raises(ValueError) as err:
        repairing.repair_bounds(labels, "s", ["a", "b"], delta=1.0)
    assert str(err.value) == repairing.ERR_DELTA.format(value=1.0)


def test_bounds_text():
    assert repairing.parse_bounds("0.1") == (0.1, {})
    assert repairing.parse_bounds("F=0.3:0.7,M=0.25: 0.75") == (repairing.DEFAULT_DELTA, {"F": (0.3, 0.7), "M": (0.25, 0.75)})
    assert repairing.parse_bounds(" 0.1 , Male =0:1") == (0.1, {" Male ": (0.0, 1.0)})  # a group's name read exactly
    assert repairing.parse_bounds("0.1,a=b=0:1") == (0.1, {"a=b": (0.0, 1.0)})
    for text in ("", "x", "F=0.3", "F=a:b", "=0:1", "-0.1"):
        with pytest.raises(ValueError) as err:
            repairing.parse_bounds(text)
        assert str(err.value) == repairing.ERR_BOUNDS_TEXT.format(text=text)


def test_repair_for_the_intersection_meets_its_bounds_in_every_cluster():
    prepared, original = _prepared(sensitive=("s", "t"))
    assert repairing.attributes(prepared) == ["s", "t", "s × t"]
    assert repairing.attribute_labels(prepared, "s × t").tolist() == ["a × u", "a × v"] * 2 + ["b × u", "b × v"] * 2
    repair = repairing.repair_clustering(prepared, original, attribute="s × t", delta=0.0)
    after = repair.repaired.attribute("s × t")
    shares = after.table / after.table.sum(1, keepdims=True)
    assert np.allclose(shares, 0.25) and repair.n_moved == 4
    with pytest.raises(ValueError) as err:
        repairing.repair_clustering(prepared, original, attribute="nope")
    assert str(err.value) == repairing.ERR_UNKNOWN_ATTRIBUTE.format(name="nope", have=["s", "t", "s × t"])


def test_infeasible_bounds_say_which_group_and_cluster():
    prepared, original = _prepared()
    with pytest.raises(ValueError) as err:
        repairing.repair_clustering(prepared, original, shares={"a": (0.6, 0.7)})
    # Cluster 0 holds 4 points: group a's share in [0.6, 0.7] asks for between 3 (⌈2.4⌉) and 2 (⌊2.8⌋) of them.
    assert str(err.value) == classic_repair.ERR_CELL.format(cluster=0, size=4, group="a", lower=0.6, upper=0.7, low=3, high=2)


def test_without_features_the_distance_is_refused_and_the_moves_have_no_price():
    prepared, original = _prepared(embedding=False)
    with pytest.raises(ValueError) as err:
        repairing.repair_clustering(prepared, original, delta=0.0, cost="distance")
    assert str(err.value) == repairing.ERR_DISTANCE_NO_FEATURES
    repair = repairing.repair_clustering(prepared, original, delta=0.0)
    assert repair.n_moved == 4 and repair.cost_before is None and repair.cost_ratio is None
    assert f"  cost: {repairing.NOTE_NO_FEATURES}" in repair.summary_lines()
    assert repairing.NOTE_NO_FEATURES in report.repair_report(repair, title="t")


def _files(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_repair_is_a_run_of_its_own_with_its_provenance_and_the_original_is_untouched(tmp_path):
    store = RunStore(tmp_path / "store")
    prepared, original = _prepared()
    original_id = external.record_external(store, prepared, original, "people")
    before_files, before_run = _files(store.run_dir(original_id)), store.get_run(original_id)
    # The stored run's inputs are the table's: its repair is the same.
    stored = external.stored_table(store, original_id)
    repair = repairing.repair_clustering(stored, external.audit_table(stored, resamples=20), delta=0.0, cost="distance")
    assert repair.moves()["row_id"].tolist() == ["r2", "r3", "r4", "r5"] and repair.cost_after == 40.0
    repaired_id = repairing.record_repair(store, repair, name="people", original_run=original_id,
                                          dataset=before_run.dataset)
    assert repaired_id != original_id
    assert _files(store.run_dir(original_id)) == before_files
    after_run = store.get_run(original_id)
    assert (after_run.config, after_run.metrics, after_run.status) == (before_run.config, before_run.metrics, before_run.status)
    run = store.get_run(repaired_id)
    assert run.status == "finished" and run.dataset == before_run.dataset == "external:people"
    assert run.dataset_info["name"] == "people repaired"
    provenance = run.config["repair"]
    assert provenance["repaired_run"] == original_id and provenance["attribute"] == "s"
    assert provenance["cost"] == "distance" and provenance["n_moved"] == 4 and provenance["solver"] == repairing.SOLVER
    assert (provenance["cost_before"], provenance["cost_after"], provenance["cost_ratio"]) == (8.0, 40.0, 5.0)
    assert provenance["bounds"]["groups"]["a"] == {"population": 0.5, "lower": 0.5, "upper": 0.5, "by_hand": False}
    assert run.config["provenance"]["repair"] == provenance
    assert run.label() == f"external on external:people (repair of {original_id}) · finished · {repaired_id}"
    assert run.metrics["balance"] == 1.0
    # Audited from the store, the repaired run is the repaired clustering, row ids kept.
    again = external.stored_table(store, repaired_id)
    assert again.assignment.tolist() == [0, 0, 1, 1, 0, 0, 1, 1] and again.row_id.tolist() == [f"r{i}" for i in range(8)]
    assert external.audit_stored_run(store, repaired_id, resamples=0).attribute("s").metrics["balance"].value == 1.0


def test_the_report_and_json_hold_both_clusterings(tmp_path):
    store = RunStore(tmp_path / "store")
    prepared, original = _prepared()
    original_id = external.record_external(store, prepared, original, "people")
    repair = repairing.repair_clustering(prepared, original, delta=0.0)
    repaired_id = repairing.record_repair(store, repair, name="people", original_run=original_id)
    page = report.repair_report(repair, title="Repair", original_run=store.get_run(original_id), epoch=0,
                                repaired_run=store.get_run(repaired_id))
    assert f"Original clustering (run {original_id})" in page and f"Repaired clustering (run {repaired_id})" in page
    assert "<b>4</b> of 8 points moved" in page and "ratio 5.000" in page
    payload = json.loads(report.repair_json(repair, original_run=store.get_run(original_id),
                                            repaired_run=store.get_run(repaired_id)))
    assert payload["repair"]["repaired_run"] == original_id and payload["repaired_run"] == repaired_id
    assert [m["row_id"] for m in payload["moves"]] == ["r2", "r3", "r4", "r5"]
    assert payload["original"]["attributes"][0]["metrics"]["balance"]["value"] == 0.0
    assert payload["repaired"]["attributes"][0]["metrics"]["balance"]["value"] == 1.0
