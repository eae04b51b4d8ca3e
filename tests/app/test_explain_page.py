"""The Explain page through Streamlit's AppTest, with real tiny ERM and ClusterFix runs in a real run store."""
import pytest

from dashboard_lib.jobs import JobRegistry, RunConfig
from dashboard_lib.store import RunStore
from tests.app.helpers import open_app

TIMEOUT = 60
HPARAMS = {"ae_epochs": 1, "epochs": 1, "batch_size": 64, "width": 8}


def _train(home, runs) -> list[str]:
    registry = JobRegistry(RunStore(home / "store"))
    ids = [registry.start(RunConfig(dataset="mnist_optdigits", method=method, dataset_options=options,
                                    hparams={**HPARAMS, **({"clusters_per_class": 2} if method == "clusterfix" else {})}))
           for method, options in runs]
    for run_id in ids:
        assert registry.wait(run_id, TIMEOUT)
        assert registry.store.get_run(run_id).status == "finished"
    return ids


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """One store with an ERM and a ClusterFix run on the same 300 digits (shared by the tests that only read it)."""
    home = tmp_path_factory.mktemp("explain_home")
    _train(home, [("erm", {"n": 300}), ("clusterfix", {"n": 300})])
    return home


def test_empty_state_says_what_to_run_first(fclab_home):
    at = open_app("pages/explain.py")
    text = at.info[0].value
    assert "Nothing to explain yet" in text and "an ERM run and a ClusterFix run" in text and "method=" not in text
    assert "Use that data" in text and "--" not in text  # the app's way to the demo's data, no CLI flags


def test_runs_on_different_data_are_not_paired(fclab_home):
    _train(fclab_home, [("erm", {"n": 300}), ("clusterfix", {"n": 320})])
    at = open_app("pages/explain.py")
    assert "on the same data" in at.info[0].value


def image_rows(at, per_row: int) -> list[list[str]]:
    """The captions of the page's images, row by row: each st.columns row holds per_row columns of one image each."""
    image_columns = [column for column in at.columns if len(column.image) == 1]
    captions = [column.image[0].captions[0] for column in image_columns]
    assert len(captions) == len(at.image) and len(captions) % per_row == 0, len(captions)
    return [captions[i:i + per_row] for i in range(0, len(captions), per_row)]


def test_maps_predictions_and_stroke_share_side_by_side(trained_home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(trained_home))
    at = open_app("pages/explain.py")
    assert at.selectbox(key="explain_cf").value.split("-")[2] == "clusterfix"
    assert at.selectbox(key="explain_erm").value.split("-")[2] == "erm"
    labels = [m.label for m in at.metric]
    assert "ERM: CAM mass on strokes" in labels and "ClusterFix: CAM mass on strokes" in labels
    for metric in at.metric:
        assert 0.0 <= float(metric.value) <= 1.0
    assert [h.value for h in at.subheader][1:] == ["Bias-aligned", "Bias-conflicting"]
    # Per group: one row of inputs and one row per model, 8 images each (one image per column, so rows never wrap).
    rows = image_rows(at, 8)
    assert len(rows) == 6
    assert all(c.startswith("true ") for c in rows[0])
    assert all(c.startswith("ERM: ") and c.endswith(")") for c in rows[1])
    assert all(c.startswith("ClusterFix: ") for c in rows[2])


def test_fewer_images_and_an_earlier_layer(trained_home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(trained_home))
    at = open_app("pages/explain.py")
    at.slider(key="explain_n").set_value(2).run()
    at.selectbox(key="explain_block").select_index(2).run()
    assert not at.exception, at.exception
    assert len(image_rows(at, 2)) == 6
