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


# --- The sentences: each follows its numbers (issue 37: "a fair method trades a little accuracy" after a step that
# showed the fair method more accurate).

def test_step_1_counts_the_clusters_that_are_one_source():
    counts = np.array([[95, 5], [100, 0], [50, 50], [10, 90]])  # 95 %, 100 %, 50 %, 90 %
    assert "**3 of its 4 clusters are at least 90\u00a0% one source** (1 entirely)" in lesson.one_source_sentence(counts)
    mostly_mixed = np.array([[95, 5], [60, 40], [50, 50], [70, 30]])
    text = lesson.one_source_sentence(mostly_mixed)
    assert "**1 of its 4 clusters are at least 90\u00a0% one source**;" in text and "the others hold both" in text
    assert lesson.one_source_sentence(np.array([[60, 40], [50, 50]])).startswith("None of k-means' 2 clusters")


def test_step_2_says_the_ceiling_bounds_the_least_balanced_cluster_and_counts_the_bars_above_it():
    text = lesson.ceiling_sentence(np.array([0.0, 0.75, 0.93, 0.2]), np.array([5000, 1797]), ["MNIST", "UCI"])
    assert "(1,797 ÷ 5,000 = 0.359)" in text and "bounds the **least** balanced cluster" in text
    assert "2 of these 4 bars do (up to 0.93)" in text
    assert "None of these 2 clusters reaches it." in lesson.ceiling_sentence(np.array([0.1, 0.3]), [50, 100], ["a", "b"])
    assert "\\*a" in lesson.ceiling_sentence(np.array([0.1]), [50, 100], ["*a*", "b"])  # a group name is data


def test_step_3_says_which_method_is_fairer_and_more_accurate_from_the_numbers():
    unfair = dict(acc=0.437, balance=0.0, mnce=0.0)
    fair = dict(acc=0.618, balance=0.25, mnce=0.8)
    text = lesson.mixed_sentence("FCMI", np.array([[3, 1], [2, 2]]), fair, unfair, 0.359)
    assert "**All 2 of its clusters hold both sources**" in text and "fairer than k-means" in text
    assert "more accurate than k-means (ACC 0.618 against 0.437)" in text
    text = lesson.mixed_sentence("FCMI", np.array([[3, 0], [2, 2]]), {**fair, "acc": 0.3, "balance": 0.0}, unfair, 0.359)
    assert "**1 of its 2 clusters hold both sources**" in text and "about as fair as k-means" in text
    assert "less accurate than k-means (ACC 0.300 against 0.437)" in text
    assert "about as accurate as k-means" in lesson.mixed_sentence("FCMI", np.ones((2, 2)), {**fair, "acc": 0.44},
                                                                   unfair, 0.359)


def test_step_4_says_which_layout_is_on_screen():
    assert "placed by **UMAP**" in lesson.layout_sentence(["umap", "umap"])
    assert "placed by **PCA**" in lesson.layout_sentence(["pca", "pca"]) and "while UMAP computes" in \
        lesson.layout_sentence(["pca", "pca"])
    assert "where the title says so, by PCA" in lesson.layout_sentence(["umap", "pca"])
    assert "the same islands" in lesson.separation_sentence("FCMI", 0.99, 0.75, 0.735)
    assert "brings them closer" in lesson.separation_sentence("FCMI", 0.99, 0.90, 0.735)
    assert "keeps them as far apart" in lesson.separation_sentence("FCMI", 0.99, 0.99, 0.735)
    assert "the two sources overlap" in lesson.separation_sentence("FCMI", 0.76, 0.74, 0.735)


def test_step_5_probe_and_conclusion_follow_the_numbers():
    assert "FCMI's keep almost none of it (0.750)" in lesson.probe_sentence("FCMI", 0.994, 0.750, 0.735)
    assert "FCMI's keep more of it" in lesson.probe_sentence("FCMI", 0.90, 0.95, 0.735)
    more = lesson.conclusion("FCMI", dict(acc=0.618, balance=0.25), dict(acc=0.437, balance=0.0))
    assert "also more accurate (ACC 0.618 against 0.437)" in more and "cost" in more and "trade" not in more
    less = lesson.conclusion("FCMI", dict(acc=0.40, balance=0.25), dict(acc=0.437, balance=0.0))
    assert "at a cost in accuracy (ACC 0.400 against 0.437)" in less and "mixes them" in less
    unfairer = lesson.conclusion("FCMI", dict(acc=0.437, balance=0.0), dict(acc=0.437, balance=0.0))
    assert "did not mix them better" in unfairer and "about the same accuracy" in unfairer


def test_the_classic_step_compares_fairlets_with_the_ceiling_the_fair_method_and_k_means():
    assert lesson.fairlet_bound([5000, 1797]) == (3, 1 / 3)  # ⌈5000 / 1797⌉ = ⌈2.78⌉
    assert lesson.fairlet_bound([6, 3]) == (2, 0.5) and lesson.fairlet_bound([6, 3], t=4) == (4, 0.25)
    unfair, fair = dict(acc=0.437, balance=0.0), dict(acc=0.618, balance=0.25)
    text = lesson.classic_sentence("FCMI", dict(acc=0.196, balance=0.351), fair, unfair, 0.3594, 3)
    assert "Balance **0.351**, 98\u00a0% of the ceiling 0.359 and above FCMI's 0.250" in text
    assert "1/3 = 0.333" in text and "below FCMI's 0.618 and k-means' 0.437" in text
    text = lesson.classic_sentence("FCMI", dict(acc=0.5, balance=0.2), fair, unfair, 0.3594, 3)
    assert "below FCMI's 0.250" in text and "below FCMI's 0.618." in text and "k-means' 0.437" not in text
    text = lesson.classic_sentence("FCMI", dict(acc=0.7, balance=0.25), fair, unfair, 0.3594, 3)
    assert "about FCMI's 0.250" in text and "costs no accuracy" in text
