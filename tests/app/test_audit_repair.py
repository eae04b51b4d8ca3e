"""The repair on the Audit page: bring a table, audit it, repair it; the repaired run saved beside the original, the
before/after shown; bounds it cannot meet explained, with nothing saved."""
import io

import numpy as np
import pandas as pd

from dashboard_lib.store import RunStore
from tests.app.helpers import open_app


def _csv(n=120, seed=0) -> bytes:
    """Segments that follow sex: segment 2 is men only, so any repair must move points."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.3, 0.7])
    segment = np.where(sex == "male", rng.integers(0, 3, n), rng.integers(0, 2, n))
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(n)], "segment": segment, "sex": sex,
                          "region": rng.choice(["north", "south"], n), "income": rng.integers(0, 2, n),
                          "x": segment * 3.0 + rng.normal(size=n)})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_repair_a_brought_clustering_on_the_audit_page(fclab_home):
    at = open_app("pages/audit.py")
    at.file_uploader(key="audit.file").set_value(("segments.csv", _csv(), "text/csv")).run()
    at.multiselect(key="audit.sensitive").set_value(["sex", "region"])
    at.selectbox(key="audit.class").set_value("income")
    at.multiselect(key="audit.embedding").set_value(["x"])
    at.selectbox(key="audit.id").set_value("id")
    at.number_input(key="audit.resamples").set_value(50)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    store = RunStore(fclab_home / "store")
    (original,) = store.list_runs()
    key = f"audit.new.{original.id}"
    assert at.selectbox(key=f"{key}.repair_for").options == ["sex", "region", "sex × region"]
    assert at.selectbox(key=f"{key}.repair_for").value == "sex × region"  # the intersection by default
    at.selectbox(key=f"{key}.repair_for").set_value("sex").run()
    # δ = 0 asks each cluster for the data's exact mix, no whole number here: refused, explained, nothing saved.
    at.number_input(key=f"{key}.delta").set_value(0.0)
    at.button(key=f"{key}.repair_go").click().run()
    assert not at.exception, at.exception
    assert at.error and at.error[0].value.startswith("Not repaired, nothing saved: infeasible bounds: cluster")
    assert len(store.list_runs()) == 1
    at.number_input(key=f"{key}.delta").set_value(0.2)
    at.radio(key=f"{key}.cost").set_value("distance")
    at.button(key=f"{key}.repair_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    repaired, again = store.list_runs()
    assert again.id == original.id and repaired.config["repair"]["repaired_run"] == original.id
    assert repaired.config["repair"]["attribute"] == "sex" and repaired.config["repair"]["cost"] == "distance"
    assert repaired.dataset == original.dataset
    assert f"saved as run **{repaired.id}**" in at.success[-1].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Points moved (of 120)"] == f"{repaired.config['repair']['n_moved']:,}"
    assert repaired.config["repair"]["n_moved"] > 0 and metrics["Price of fairness"].startswith("× ")
    table = next(d.value for d in at.dataframe if "before [interval]" in d.value.columns)
    balance = table[(table["attribute"] == "sex") & (table["metric"] == "Balance")].iloc[0]
    assert balance["before [interval]"].startswith("0.000") and not balance["after [interval]"].startswith("0.000")
    labels = [b.label for b in at.get("download_button")]
    assert labels[-4:] == ["Repair report (HTML)", "Numbers (JSON)", "Both assignments (CSV)", "Moved points (CSV)"]


def test_repair_a_stored_run_without_features(fclab_home):
    from dashboard_lib import external, repairing

    table = pd.read_csv(io.BytesIO(_csv()))
    prepared = external.prepare(table, clusters="segment", sensitive=["sex"], id_column="id")
    store = RunStore(fclab_home / "store")
    run_id = external.record_external(store, prepared, external.audit_table(prepared, resamples=0), "segments")
    at = open_app("pages/audit.py", query={"run": run_id})
    at.number_input(key="audit.run_resamples").set_value(0).run()
    key = f"audit.{run_id}"
    assert at.radio(key=f"{key}.cost").disabled  # no features: fewest moved only, and the page says why
    assert any("Least added distance needs features or an embedding" in c.value for c in at.caption)
    at.button(key=f"{key}.repair_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    repaired = store.list_runs()[0]
    assert repaired.config["repair"]["repaired_run"] == run_id and repaired.config["repair"]["cost"] == "moves"
    assert {m.label: m.value for m in at.metric}["Cost after repair"] == "n/a"
    assert any(repairing.NOTE_NO_FEATURES in c.value for c in at.caption)
    assert any(repairing.NOTE_NO_CLASS in c.value for c in at.caption)
