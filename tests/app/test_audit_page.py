"""The Audit page: a table with a cluster column audited, recorded as a run, reported; a bad choice explained."""
import io

import numpy as np
import pandas as pd

from dashboard_lib.store import RunStore
from tests.app.helpers import open_app


def _csv(n=400, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.3, 0.7])
    frame = pd.DataFrame({"id": np.arange(n), "segment": np.where(sex == "male", rng.integers(0, 3, n), rng.integers(0, 2, n)),
                          "sex": sex, "region": rng.choice(["north", "south"], n), "income": rng.integers(0, 2, n)})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def _bring(at, content=None):
    at.file_uploader(key="audit.file").set_value(("segments.csv", content or _csv(), "text/csv")).run()
    assert not at.exception, at.exception
    return at


def test_bring_a_clustering_audits_and_records_it(fclab_home):
    at = _bring(open_app("pages/audit.py"))
    assert at.selectbox(key="audit.clusters").value == "segment"  # guessed from its name
    at.multiselect(key="audit.sensitive").set_value(["sex", "region"])
    at.selectbox(key="audit.class").set_value("income")
    at.selectbox(key="audit.id").set_value("id")
    at.number_input(key="audit.resamples").set_value(200)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Audited and saved as run" in at.success[0].value
    (run,) = RunStore(fclab_home / "store").list_runs()
    assert run.method == "external" and run.dataset == "external:segments"
    assert [t.label for t in at.tabs][-3:] == ["sex", "region", "sex × region"]
    tables = [t.value for t in at.table]
    balance = next(t for t in tables if "Balance" in set(t.index))
    row = balance.loc["Balance"]
    # Cluster 2 holds men only: Balance 0; its exact interval still allows a few women in that cluster's population.
    assert row["value [interval]"].startswith("0.000 [0.000, 0.") and row["rows used"] == "all"
    assert "ceiling" in row["compare with"]
    assert any("cluster 2 misses at least one group" in i.value for i in at.info)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Report (HTML)", "Numbers (JSON)", "Assignments by row id (CSV)"]


def test_a_bad_choice_is_explained_and_nothing_saved(fclab_home):
    at = _bring(open_app("pages/audit.py"))
    at.multiselect(key="audit.sensitive").set_value(["segment"])  # the cluster column again
    at.button[0].click().run()
    assert "cannot be both the cluster and the sensitive column" in at.error[0].value
    assert RunStore(fclab_home / "store").list_runs() == []


def test_audit_a_trained_run(fclab_home):
    from dashboard_lib.jobs import JobRegistry, RunConfig

    registry = JobRegistry(RunStore(fclab_home / "store"))
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": 300},
                                      hparams={"n_init": 2}))
    assert registry.wait(run_id, 120)
    at = open_app("pages/audit.py", query={"run": run_id})
    assert at.radio(key="audit.mode").value == "Audit a run"  # a run link opens the run's audit
    at.number_input(key="audit.run_resamples").set_value(100).run()
    assert not at.exception, at.exception
    tables = [t.value for t in at.table]
    assert any("ACC" in set(t.index) for t in tables) and any("MNCE" in set(t.index) for t in tables)


def test_a_saved_upload_with_its_assignments(fclab_home):
    from dashboard_lib.data import upload

    rng = np.random.default_rng(1)
    table = pd.DataFrame({"f1": rng.normal(size=60), "f2": rng.normal(size=60), "site": rng.choice(["a", "b"], 60),
                          "label": rng.integers(0, 2, 60)})
    upload.build_upload(table, ["f1", "f2"], "site", "label", name="survey")
    clusters = pd.DataFrame({"row": np.arange(60)[::-1], "cluster": (table["f1"][::-1] > 0).astype(int).to_numpy()})
    at = open_app("pages/audit.py")
    at.radio(key="audit.source").set_value("A saved upload and its assignments").run()
    at.file_uploader(key="audit.assignments").set_value(("kmeans.csv", clusters.to_csv(index=False).encode(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.selectbox(key="audit.assign_row").set_value("row").run()
    # The upload's own columns are the defaults: its sensitive, class and feature columns, the row numbers as ids.
    assert at.multiselect(key="audit.sensitive").value == ["site"] and at.selectbox(key="audit.class").value == "label"
    assert at.multiselect(key="audit.embedding").value == ["f1", "f2"]
    at.number_input(key="audit.resamples").set_value(100)
    at.button[0].click().run()
    assert not at.error, [e.value for e in at.error]
    (run,) = RunStore(fclab_home / "store").list_runs()
    assert run.config["provenance"]["upload"] == "survey"
    arrays = RunStore(fclab_home / "store").load_arrays(run.id, 0)
    assert arrays["row_id"].tolist() == list(range(59, -1, -1))  # matched on the row column, kept in the file's order
    expected = (table["f1"].to_numpy()[arrays["row_id"]] > 0).astype(int)
    assert np.array_equal(arrays["assignment"], expected)


def test_an_external_run_shows_on_the_other_pages(fclab_home):
    from dashboard_lib import external

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"segment": rng.integers(0, 3, 300), "sex": rng.choice(["f", "m"], 300),
                          "e0": rng.normal(size=300), "e1": rng.normal(size=300)})
    prepared = external.prepare(frame, clusters="segment", sensitive=["sex"], embedding_columns=["e0", "e1"],
                                provenance={"file": "seg.csv"})
    run_id = external.record_external(RunStore(fclab_home / "store"), prepared, external.audit_table(prepared, resamples=20), "seg")
    for page in ("pages/embeddings.py", "pages/compare.py", "pages/monitor.py"):
        at = open_app(page, query={"run": run_id})
        assert not at.exception and not at.error, (page, [e.value for e in at.error])
        assert not at.warning, (page, [w.value for w in at.warning])
    assert at.get("plotly_chart") or at.metric  # the Monitor shows its metrics


def test_near_duplicate_groups_are_warned_of_and_merged_with_one_click(fclab_home):
    n = 120
    frame = pd.DataFrame({"segment": np.arange(n) % 3,
                          "sex": ["female"] * 50 + ["male"] * 50 + ["male "] * 12 + ["Male"] * 8})
    at = _bring(open_app("pages/audit.py"), frame.to_csv(index=False).encode())
    at.multiselect(key="audit.sensitive").set_value(["sex"])
    at.number_input(key="audit.resamples").set_value(50)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("'Male' / 'male' / 'male '" in w.value and "audited as separate groups" in w.value for w in at.warning)
    assert [t.label for t in at.tabs] == ["sex"]
    at.button(key="audit.merge").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not any("audited as separate groups" in w.value for w in at.warning)
    assert any("near-duplicate values merged on request" in i.value and "→ 'male'" in i.value for i in at.info)
    first, merged = sorted(RunStore(fclab_home / "store").list_runs(), key=lambda r: r.created)
    assert merged.config["provenance"]["merged_near_duplicates"] == {"sex": {"male": ["Male", "male "]}}
    assert merged.dataset_info["group_names"] == ["female", "male"]
    assert "merged_near_duplicates" not in first.config["provenance"]
    assert not [b for b in at.button if b.key == "audit.merge"]  # nothing left to merge
