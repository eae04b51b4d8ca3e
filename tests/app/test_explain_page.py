"""The Explain page through Streamlit's AppTest, with real tiny ERM and ClusterFix runs in a real run store."""
import pytest

from dashboard_lib import explain
from dashboard_lib.jobs import JobRegistry, RunConfig
from dashboard_lib.store import RunStore
from tests.app.helpers import open_app

TIMEOUT = 60
HPARAMS = {"ae_epochs": 1, "epochs": 1, "batch_size": 64, "width": 8}


def _train(home, runs, dataset: str = "colored_digits") -> list[str]:
    registry = JobRegistry(RunStore(home / "store"))
    ids = [registry.start(RunConfig(dataset=dataset, method=method, dataset_options=options,
                                    hparams={**HPARAMS, **({"clusters_per_class": 2} if method == "clusterfix" else {})}))
           for method, options in runs]
    for run_id in ids:
        assert registry.wait(run_id, TIMEOUT)
        assert registry.store.get_run(run_id).status == "finished"
    return ids


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """One store with an ERM and a ClusterFix run on the same 300 coloured digits, the quick demo's data (shared by the
    tests that only read it)."""
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


def test_the_headline_is_the_flip_rate_with_its_references_and_sentence(trained_home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(trained_home))
    at = open_app("pages/explain.py")
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Does the model read the colour instead of the digit?"
    # The only large numbers are the two flip rates, first on the page.
    assert [m.label for m in at.metric] == ["ERM: flips when recoloured", "ClusterFix: flips when recoloured"]
    flips = {m.label.split(":")[0]: float(m.value) for m in at.metric}
    assert all(0.0 <= v <= 1.0 for v in flips.values())
    texts = [m.value for m in at.markdown]
    assert any("= a colour-blind model" in t and "= a model that reads only the colour" in t for t in texts)
    # The sentence follows the numbers shown (rounded to two decimals: a gap right at the tolerance may go either way).
    sentence = next(t for t in texts if t.startswith("**") and t.endswith("**"))
    gap = flips["ERM"] - flips["ClusterFix"]
    if abs(gap) > explain.FLIP_TOLERANCE + 0.01:
        assert sentence.startswith(f"**{'ERM' if gap > 0 else 'ClusterFix'} relies on the colour more than"), sentence
    elif abs(gap) < explain.FLIP_TOLERANCE - 0.01:
        assert "change about as many predictions" in sentence, sentence
    else:
        assert "relies on the colour more" in sentence or "change about as many predictions" in sentence, sentence
    page_text = " ".join(texts + [c.value for c in at.caption])
    assert "−0.00" not in page_text and "-0.00" not in page_text
    assert "ERM: worst-group accuracy" in page_text


def test_maps_predictions_and_stroke_share_side_by_side(trained_home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(trained_home))
    at = open_app("pages/explain.py")
    assert at.selectbox(key="explain_cf").value.split("-")[2] == "clusterfix"
    assert at.selectbox(key="explain_erm").value.split("-")[2] == "erm"
    stroke_lines = [m.value for m in at.markdown if "of the map on the strokes" in m.value]
    assert len(stroke_lines) == 1 and "- ERM: " in stroke_lines[0] and "- ClusterFix: " in stroke_lines[0]
    assert [h.value for h in at.subheader] == ["Does the model read the colour instead of the digit?",
                                               "Where the models look (Grad-CAM)", "Bias-aligned", "Bias-conflicting"]
    # Per group: one row of inputs and one row per model, 8 images each (one image per column, so rows never wrap).
    rows = image_rows(at, 8)
    assert len(rows) == 6
    assert all(c.startswith("true ") for c in rows[0])
    assert all(c.startswith("ERM: ") and c.endswith(")") for c in rows[1])
    assert all(c.startswith("ClusterFix: ") for c in rows[2])


def test_data_without_colours_has_no_flip_rate_and_says_so(fclab_home):
    _train(fclab_home, [("erm", {"n": 300}), ("clusterfix", {"n": 300})], dataset="mnist_optdigits")
    at = open_app("pages/explain.py")
    assert not at.exception, at.exception
    assert not at.metric
    assert "has no colour to swap" in at.info[0].value


def test_fewer_images_and_an_earlier_layer(trained_home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(trained_home))
    at = open_app("pages/explain.py")
    at.slider(key="explain_n").set_value(2).run()
    at.selectbox(key="explain_block").select_index(2).run()
    assert not at.exception, at.exception
    assert len(image_rows(at, 2)) == 6
