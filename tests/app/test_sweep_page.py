"""The Sweep page through AppTest: the form reacts (presets, grids, errors, the estimate), and a real finished sweep
(trained on a local Ray by the same runner the page uses) is drawn as curves, a scatter naming its runs, and exports."""
import pytest

from dashboard_lib.store import RunStore
from dashboard_lib.sweeps import Axis, SweepSpec
from tests.app.helpers import charts, finished_sweep, open_app

OWN = "sweep.Build your own"


@pytest.fixture(scope="module")
def swept_home(tmp_path_factory):
    """An app home with one finished sweep: k-means, K ∈ {4, 6} × 2 seeds on 400 samples, on a local Ray."""
    home = tmp_path_factory.mktemp("sweep") / "home"
    spec = SweepSpec("mnist_optdigits", "kmeans", [Axis("n_clusters", values=[4, 6])], seeds=2, preset="paper",
                     fixed={"n_init": 1}, dataset_options={"n": 400})
    return home, finished_sweep(home, spec)


def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
                     + [i.value for i in at.info])


def test_a_first_visit_offers_the_papers_presets_and_a_preset_fills_the_form(fclab_home):
    at = open_app("pages/sweep.py")
    assert "No sweeps yet" in _text(at)
    assert "Pick one or two hyperparameters to sweep." in _text(at)
    assert at.button(key="sweep.start").disabled
    at.selectbox(key="sweep.preset").select("DFC Figure 6 (a)").run()
    k = "sweep.DFC Figure 6 (a)"
    assert at.selectbox(key=f"{k}.method").value == "dfc"
    assert at.multiselect(key=f"{k}.dfc.axes").value == ["alpha_f"]
    assert at.text_input(key=f"{k}.dfc.alpha_f.values").value == "0, 0.1, 0.5, 1, 2"
    assert at.number_input(key=f"{k}.dfc.quick.fixed.alpha_s").value == 0.0  # Figure 6 (a): no structural term
    assert "Balance against α_f" in _text(at)
    assert "**5 trials**" in _text(at) and "No estimate yet" in _text(at)
    assert not at.button(key="sweep.start").disabled


def test_the_form_counts_the_trials_and_refuses_an_impossible_grid(fclab_home):
    at = open_app("pages/sweep.py")
    at.selectbox(key=f"{OWN}.method").select("kmeans").run()
    at.multiselect(key=f"{OWN}.kmeans.axes").select("n_clusters").select("n_init").run()
    at.text_input(key=f"{OWN}.kmeans.n_clusters.values").set_value("4, 6, 8").run()
    at.text_input(key=f"{OWN}.kmeans.n_init.values").set_value("1, 2").run()
    at.number_input(key=f"{OWN}.seeds").set_value(3).run()
    assert "**18 trials**" in _text(at)
    at.selectbox(key=f"{OWN}.kmeans.n_init.grid").select("log").run()
    at.number_input(key=f"{OWN}.kmeans.n_init.low").set_value(0.0).run()
    assert "n_init: a log grid needs low > 0 (got 0.0)" in _text(at)
    assert at.button(key="sweep.start").disabled
    at.number_input(key=f"{OWN}.kmeans.n_init.low").set_value(1.0).run()
    at.number_input(key=f"{OWN}.kmeans.n_init.high").set_value(200.0).run()
    assert "n_init" in _text(at) and "outside its range" in _text(at)


def test_a_finished_sweep_is_drawn_and_the_next_one_is_estimated_from_it(swept_home, monkeypatch):
    home, sweep_id = swept_home
    monkeypatch.setenv("FCLAB_HOME", str(home))
    at = open_app("pages/sweep.py", query={"sweep": sweep_id})
    assert not at.exception
    figures = charts(at)
    assert [f["layout"]["title"]["text"] for f in figures[:4]] == ["ACC", "NMI (arithmetic)", "Balance", "MNCE"]
    mean = next(t for t in figures[0]["data"] if t.get("name") == "mean over seeds")
    assert mean["x"] == [4, 6]
    store = RunStore(home / "store")
    runs = store.list_runs(sweep_id=sweep_id)
    for i, k in enumerate((4, 6)):
        values = [r.metrics["acc"] for r in runs if r.hparams["n_clusters"] == k]
        assert mean["y"][i] == pytest.approx(sum(values) / len(values))
    pareto = figures[-1]
    ids = {point[1] for trace in pareto["data"] if trace.get("customdata") for point in trace["customdata"]}
    assert ids == {r.id for r in runs}
    assert "4 finished" in _text(at)
    assert {b.label for b in at.get("download_button")} >= {"Download runs (CSV)", "Download report (HTML)"}

    # A new sweep of the same method and schedule now has an estimate from these runs.
    at.selectbox(key=f"{OWN}.method").select("kmeans").run()
    at.multiselect(key=f"{OWN}.kmeans.axes").select("n_clusters").run()
    at.text_input(key=f"{OWN}.kmeans.n_clusters.values").set_value("4, 6").run()
    at.number_input(key=f"{OWN}.kmeans.paper.fixed.n_init").set_value(1).run()
    at.number_input(key=f"{OWN}.data.mnist_optdigits.n").set_value(400).run()
    assert "s per trial, from the median time of 4 finished kmeans run(s)" in _text(at)


def test_an_unknown_sweep_link_says_so(swept_home, monkeypatch):
    home, _ = swept_home
    monkeypatch.setenv("FCLAB_HOME", str(home))
    at = open_app("pages/sweep.py", query={"sweep": "no-such-sweep"})
    assert "which is not in this run store" in _text(at)
