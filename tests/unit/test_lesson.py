"""The lesson's pieces: its per-cluster Balance by hand, its figures, and how it finds or starts its runs."""
import numpy as np
import pytest

from dashboard_lib import lesson, metrics
from dashboard_lib.metrics import balance_per_cluster
from dashboard_lib.jobs import RunConfig
from dashboard_lib.plots import INK, cluster_balance_bars, probe_bars
from tests.conftest import wait_for_run


def test_balance_per_cluster_by_hand():
    # cluster 0: 3 of group 0, 1 of group 1 → 1/3; cluster 2: 2 and 2 → 1; cluster 5: group 0 only → 0
    assignment = np.array([0, 0, 0, 0, 2, 2, 2, 2, 5])
    groups = np.array([0, 0, 0, 1, 0, 1, 0, 1, 0])
    clusters, counts, ratio = balance_per_cluster(assignment, groups, 2)
    assert clusters.tolist() == [0, 2, 5]
    assert counts.tolist() == [[3, 1], [2, 2], [1, 0]]
    assert ratio == pytest.approx([1 / 3, 1.0, 0.0])
    assert ratio.min() == metrics.balance(assignment, groups)  # the library's Balance is the minimum of these


def test_balance_bars_mark_the_lowest_cluster_and_draw_the_ceiling():
    fig = cluster_balance_bars(np.array([0, 1, 2]), np.array([0.3, 0.05, 0.2]), 0.36)
    bars = fig.data[0]
    assert list(bars.x) == ["cluster 0", "cluster 1", "cluster 2"]
    assert bars.marker.color[1] != bars.marker.color[0] == bars.marker.color[2]  # the one that sets Balance stands out
    halo, line = fig.layout.shapes  # the dashed line on a halo (plots._reference_line)
    assert halo.y0 == line.y0 == line.y1 == 0.36 and line.line.color == INK
    assert any("ceiling 0.360" in (t.name or "") for t in fig.data)


def test_probe_bars_draw_chance():
    fig = probe_bars({"k-means": 0.99, "FCMI": 0.75}, 0.736)
    assert list(fig.data[0].y) == [0.99, 0.75]
    assert fig.layout.shapes[0].y0 == 0.736 and any("chance 0.736" in (t.name or "") for t in fig.data)


def test_the_lesson_reuses_a_finished_run_of_its_configuration(registry, monkeypatch):
    """find_runs takes a finished run of the same configuration, never one with another setting or seed."""
    small = {lesson.UNFAIR: RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": 400}, seed=0),
             lesson.FAIR: RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": 400},
                                    hparams={"n_init": 2}, seed=0)}
    monkeypatch.setattr(lesson, "lesson_configs", lambda: small)
    other = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": 400}, seed=1))
    wait_for_run(registry, other)
    assert lesson.find_runs(registry.store, registry) == {}
    started = lesson.start_missing(registry.store, registry)
    assert set(started) == {lesson.UNFAIR, lesson.FAIR} and other not in started.values()
    for run_id in started.values():
        assert wait_for_run(registry, run_id).status == "finished"
    assert lesson.find_runs(registry.store, registry) == started
    assert lesson.start_missing(registry.store, registry) == started  # nothing new
    assert len(registry.store.list_runs()) == 3
