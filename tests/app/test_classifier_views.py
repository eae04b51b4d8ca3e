"""Classifier runs (ERM, ClusterFix) through Streamlit's AppTest: their own metrics on Compare and the Monitor, one value
for one quantity on both, and a Monitor chart that promises no chance line it does not draw."""
import math
import time

import pytest

from dashboard_lib.store import RunStore
from tests.app.helpers import charts, open_app

# What a binary ERM run right on 49.8 % of its test split records (tests/unit/test_shown_metrics.py computes the pair):
# the clustering ACC of its predictions matches classes the other way round.
ERM_FINAL = {"acc": 0.502, "nmi": 0.0001, "nmi_geometric": 0.0001, "ari": -0.001, "balance": 0.9, "mnce": 0.99,
             "entropy": 0.69, "f_beta": 0.0002, "avg_acc": 0.498, "unbiased_acc": 0.47, "worst_group_acc": 0.05,
             "probe_acc": 0.97, "probe_majority": 0.5}
CLASSIFIER_BARS = ["avg_acc", "unbiased_acc", "worst_group_acc", "probe_acc"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A run store holding a k-means run and, newer, a finished ERM run with two evaluations and its group accuracies."""
    store = RunStore(tmp_path / "store")
    kmeans = store.create_run(dataset="colored_digits", method="kmeans", config={}, seed=0, device="cpu", environment={})
    store.add_evaluation(kmeans, 1, {"acc": 0.6, "nmi": 0.5, "balance": 0.3, "mnce": 0.8, "probe_acc": 0.9, "probe_majority": 0.5})
    store.finish(kmeans, "finished", metrics={"acc": 0.6, "nmi": 0.5, "balance": 0.3, "mnce": 0.8, "probe_acc": 0.9,
                                              "probe_majority": 0.5})
    time.sleep(0.01)  # the ERM run is the newer one
    erm = store.create_run(dataset="colored_digits", method="erm", config={}, seed=0, device="cpu", environment={})
    store.add_scalars(erm, [(s, name, v, 0.0) for s in (1, 2) for name, v in (("L_task", 0.7 / s), ("acc (y=0, red)", 0.99),
                                                                                 ("acc (y=0, green)", 0.05))])
    store.add_evaluation(erm, 1, {**ERM_FINAL, "avg_acc": 0.45, "acc": 0.55})
    store.add_evaluation(erm, 2, ERM_FINAL)
    store.finish(erm, "finished", metrics=ERM_FINAL)
    monkeypatch.setenv("FCLAB_HOME", str(tmp_path))
    return {"kmeans": kmeans, "erm": erm}


def test_compare_starts_a_classifier_on_its_accuracies_and_shows_no_clustering_acc_for_it(home):
    at = open_app("pages/compare.py")
    assert at.multiselect(key="compare_runs").value == [home["erm"]]
    assert at.multiselect(key="bar_metrics").value == CLASSIFIER_BARS
    bars = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Metrics of the selected runs")
    assert bars["data"][0]["y"][0] == 0.498  # average accuracy, the Monitor's number
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[home["erm"], "avg_acc"] == 0.498 and math.isnan(table.loc[home["erm"], "acc"])
    assert table.loc[home["kmeans"], "acc"] == 0.6
    assert at.selectbox(key="pareto_x").value == "avg_acc" and at.selectbox(key="pareto_y").value == "worst_group_acc"


def test_compare_of_classifiers_and_clusterings_says_what_the_bars_show(home):
    at = open_app("pages/compare.py")
    at.multiselect(key="compare_runs").set_value([home["erm"], home["kmeans"]]).run()
    assert "both classifier and clustering runs" in " ".join(w.value for w in at.warning)
    assert any("classifiers and clusterings" in c.value for c in at.caption)
    assert at.multiselect(key="bar_metrics").value == [*CLASSIFIER_BARS, "acc", "nmi", "balance", "mnce"]
    assert any("a classifier's predictions are not clusters" in c.value for c in at.caption)  # why ERM is not plotted
    at.multiselect(key="compare_runs").set_value([home["kmeans"]]).run()  # a clustering alone: its metrics
    assert at.multiselect(key="bar_metrics").value == ["acc", "nmi", "balance", "mnce"]
    assert at.selectbox(key="pareto_x").value == "acc"


def test_monitor_shows_the_classifiers_number_that_compare_shows_and_no_chance_it_does_not_draw(home):
    at = open_app("pages/monitor.py", query={"run": home["erm"]})
    values = {m.label: m.value for m in at.metric}
    assert values["Average accuracy"] == "0.498"
    assert not {"ACC", "NMI", "NMI (geo.)", "Balance"} & set(values)  # the clustering metrics of its predictions
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert "Classifier accuracy during training" in titles  # ERM logs no chance series: no promise of one
    assert not any("dashed: chance" in t for t in titles)
