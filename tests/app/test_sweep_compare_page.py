"""The Sweep page on a sweep that compares methods (AppTest): the preset's form, and a real comparison (trained on a
local Ray by the page's runner) drawn as one Pareto chart with a legend entry per method and a bar chart of means."""
import pytest

from dashboard_lib.store import RunStore
from dashboard_lib.sweeps import MethodEntry, SweepSpec
from tests.app.helpers import charts, finished_sweep, open_app

PRESET = "Deep and classic fair clustering on the built-in digits"
COMPARED = ["kmeans", "fair_assignment", "fairlets"]


@pytest.fixture(scope="module")
def compared_home(tmp_path_factory):
    """An app home with one finished comparison: k-means, fair assignment and fairlets, 2 seeds, 300 samples."""
    home = tmp_path_factory.mktemp("compare") / "home"
    spec = SweepSpec("mnist_optdigits", COMPARED[0], [], seeds=2, preset="paper", dataset_options={"n": 300},
                     compare=[MethodEntry(m) for m in COMPARED], title="three methods")
    return home, finished_sweep(home, spec)


def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
                     + [i.value for i in at.info])


def test_the_comparison_preset_lists_its_methods_and_counts_its_trials(fclab_home):
    at = open_app("pages/sweep.py")
    at.selectbox(key="sweep.preset").select(PRESET).run()
    text = _text(at)
    assert "**Methods compared**" in text and "FCMI" in text and "Fairlets" in text
    assert "**18 trials**" in text and "No estimate yet" in text  # 6 methods × 3 seeds
    assert not at.button(key="sweep.start").disabled
    at.number_input(key=f"sweep.{PRESET}.seeds").set_value(1).run()
    assert "**6 trials**" in _text(at)


def test_a_finished_comparison_puts_every_method_on_one_pareto_chart(compared_home, monkeypatch):
    home, sweep_id = compared_home
    monkeypatch.setenv("FCLAB_HOME", str(home))
    at = open_app("pages/sweep.py", query={"sweep": sweep_id})
    assert not at.exception
    figures = charts(at)
    pareto = next(f for f in figures if "Fairness versus quality" in str(f["layout"]["title"]))
    traces = {t["name"]: t for t in pareto["data"] if t["name"] in COMPARED}
    assert set(traces) == set(COMPARED) and all(len(t["x"]) == 2 for t in traces.values())  # 2 seeds each
    store = RunStore(home / "store")
    for run in store.list_runs(sweep_id=sweep_id):
        trace = traces[run.method]
        assert run.id in [c[1] for c in trace["customdata"]]  # a click opens its run
    bars = next(f for f in figures if "mean over its finished seeds" in str(f["layout"]["title"]))
    assert [t["name"] for t in bars["data"]] == COMPARED
    assert "kmeans, fair_assignment, fairlets on mnist_optdigits" in _text(at).replace("\\", "")  # md-escaped
