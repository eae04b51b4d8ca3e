"""One number for one quantity: a classifier's run shows its own accuracies, not the clustering metrics of its predictions."""
import numpy as np

from dashboard_lib import methods
from dashboard_lib.methods.clusterfix import group_report
from dashboard_lib.metrics import evaluate


def _binary_classifier_right_on(n_right: int, n: int = 1000):
    """Binary labels (half 0, half 1) and predictions right on n_right of the n samples; two groups."""
    y = np.repeat([0, 1], n // 2)
    pred = y.copy()
    pred[: n - n_right] = 1 - pred[: n - n_right]
    return y, pred, np.tile([0, 1], n // 2)


def test_a_below_chance_binary_classifier_has_acc_0_502_and_accuracy_0_498():
    """The issue's two numbers for one run, by hand: 498 of 1,000 right is an average accuracy of 0.498; the clustering
    ACC matches predictions to classes by the best one-to-one map, swaps 0 and 1, and finds 502 right."""
    y, pred, g = _binary_classifier_right_on(498)
    assert group_report(y, pred, g)["avg_acc"] == 0.498
    assert evaluate(pred, y_true=y, groups=g)["acc"] == 0.502


def test_a_classifier_shows_its_own_metrics_and_a_clustering_all_of_them():
    y, pred, g = _binary_classifier_right_on(498)
    recorded = {**evaluate(pred, y_true=y, groups=g), "nmi_geometric": 0.0, "probe_acc": 0.9, "probe_majority": 0.5,
                **{k: v for k, v in group_report(y, pred, g).items() if k != "groups"}}
    for cls in (methods.ERM, methods.ClusterFix):
        shown = cls.shown_metrics(recorded)
        assert shown == {"avg_acc": 0.498, "unbiased_acc": recorded["unbiased_acc"],
                         "worst_group_acc": recorded["worst_group_acc"], "probe_acc": 0.9, "probe_majority": 0.5}
        assert set(cls.headline_metrics) <= set(shown)
    assert methods.KMeans.shown_metrics(recorded) == recorded and methods.Method.shown_metrics(recorded) == recorded


def test_a_sweep_of_a_classifier_holds_its_own_metrics_as_the_pages_show_them(tmp_path):
    from dashboard_lib.store import RunStore
    from dashboard_lib.sweeps import Axis, SweepSpec, sweep_frame

    store = RunStore(tmp_path)
    sweep_id = store.create_sweep(SweepSpec("colored_digits", "erm", [Axis("lr", values=[1e-3])]).to_dict(), 1, None)
    run_id = store.create_run(dataset="colored_digits", method="erm", config={"hparams": {"lr": 1e-3}}, seed=0,
                              device="cpu", environment={}, sweep_id=sweep_id)
    store.finish(run_id, "finished", metrics={"acc": 0.502, "nmi": 0.0, "avg_acc": 0.498, "worst_group_acc": 0.1})
    row = sweep_frame(store, sweep_id).iloc[0]
    assert row["avg_acc"] == 0.498 and row["worst_group_acc"] == 0.1 and "acc" not in row and "nmi" not in row
