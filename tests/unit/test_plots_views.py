"""The Embeddings and Compare figures, checked through fig.data."""
import numpy as np
import pytest

from dashboard_lib.plots import PALETTES, count_heatmap, embedding_scatter, metric_bars, pareto_scatter, profile_heatmap


def test_embedding_scatter_one_trace_per_label_with_names_ids_and_hover():
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], float)
    fig = embedding_scatter(coords, [1, 0, 1, 1], ["MNIST", "USPS"], ids=[10, 11, 12, 13], palette="group",
                            hover={"cluster": [3, 3, 4, 4], "group": ["USPS", "MNIST", "USPS", "USPS"]}, title="By group")
    assert [t.name for t in fig.data] == ["MNIST", "USPS"]
    usps = fig.data[1]
    assert list(usps.x) == [0, 2, 3] and list(usps.y) == [0, 2, 3]
    assert [row[0] for row in usps.customdata] == [10, 12, 13]  # the sample id a click returns
    assert [row[1] for row in usps.customdata] == [3, 4, 4]
    assert "cluster: %{customdata[1]}" in usps.hovertemplate and "group: %{customdata[2]}" in usps.hovertemplate
    assert fig.data[0].marker.color == PALETTES["group"][0] and usps.marker.color == PALETTES["group"][1]
    assert fig.data[0].type == "scattergl"
    assert fig.layout.xaxis.showticklabels is False  # a projection's axes have no units
    assert fig.layout.title.text == "By group"


def test_embedding_scatter_without_names_uses_the_values_and_handles_no_points():
    fig = embedding_scatter(np.zeros((3, 2)), [2, 7, 2])
    assert [t.name for t in fig.data] == ["2", "7"]
    assert len(embedding_scatter(np.zeros((0, 2)), []).data) == 0


def test_count_heatmap_colours_shares_and_writes_counts_with_an_all_data_row():
    fig = count_heatmap(np.array([[3, 1], [0, 4]]), [0, 5], ["a", "b"])
    (heat,) = fig.data
    assert list(heat.y) == ["0", "5", "all data"] and list(heat.x) == ["a", "b"]
    assert np.allclose(heat.z, [[0.75, 0.25], [0, 1], [3 / 8, 5 / 8]])
    assert [list(r) for r in heat.text] == [["3", "1"], ["0", "4"], ["3", "5"]]
    assert heat.zmin == 0 and heat.zmax == 1
    no_total = count_heatmap(np.array([[1, 1]]), [0], ["a", "b"], overall_row=False)
    assert list(no_total.data[0].y) == ["0"]


def test_metric_bars_group_one_bar_per_run_per_metric():
    fig = metric_bars({"k-means": {"acc": 0.5, "balance": 0.0}, "DFC": {"acc": 0.4, "balance": 0.6, "nmi": 0.3}},
                      ["acc", "nmi", "balance"])
    assert [t.name for t in fig.data] == ["k-means", "DFC"]
    assert list(fig.data[0].x) == ["ACC", "NMI (arithmetic)", "Balance"]
    assert list(fig.data[0].y) == [0.5, None, 0.0] and list(fig.data[1].y) == [0.4, 0.3, 0.6]
    assert fig.layout.barmode == "group"


def test_pareto_scatter_marks_the_front_and_labels_points():
    fig = pareto_scatter([0.5, 0.4, 0.3, 0.6], [0.1, 0.3, 0.2, 0.0], ["a", "b", "c", "d"], x_key="acc", y_key="mnce",
                         groups=["kmeans", "dfc", "dfc", "kmeans"], hover=["A", "B", "C", "D"])
    names = [t.name for t in fig.data]
    assert names[:2] == ["kmeans", "dfc"] and names[2].startswith("Pareto front")
    kmeans, dfc, front = fig.data
    assert list(kmeans.text) == ["a", "d"] and list(dfc.text) == ["b", "c"]
    assert [c[0] for c in dfc.customdata] == ["B", "C"]  # hover text first, run id (none given here) second
    assert list(front.x) == [0.4, 0.5, 0.6] and list(front.y) == [0.3, 0.1, 0.0]  # sorted by x
    assert fig.layout.xaxis.title.text.startswith("ACC (quality") and "MNCE (fairness" in fig.layout.yaxis.title.text
    lo, hi = fig.layout.yaxis.range
    assert -0.1 < lo < 0 and hi > 1  # fairness from 0 to its best, 1, whatever the runs reach


@pytest.mark.parametrize("n", [0, 1])
def test_pareto_scatter_with_few_points(n):
    fig = pareto_scatter([0.5] * n, [0.2] * n, ["x"] * n, x_key="nmi", y_key="balance")
    assert sum(t.name.startswith("Pareto") for t in fig.data) == n


def test_the_pareto_ring_is_visible_on_the_dark_theme_too():
    fig = pareto_scatter([0.5, 0.6], [0.2, 0.1], ["a", "b"], x_key="acc", y_key="mnce")
    front = fig.data[-1]
    for colour in (front.marker.color, front.line.color):
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
        assert 0.35 < luminance < 0.75, colour  # neither black (lost on a dark page) nor white (lost on a light one)


def test_profile_heatmap_rows_are_the_strongest_features_and_columns_cluster_by_group():
    d = np.zeros((2, 2, 4))  # groups × clusters × features
    d[0, 0] = [0.1, -2.0, 0.0, 0.5]  # group 0's cluster 0 stands apart on feature b
    d[1, 0] = [1.5, 0.0, 0.2, np.nan]  # group 1's on feature a (feature d undefined there)
    d[:, 1] = -d[:, 0]
    fig = profile_heatmap(d, ["a", "b", "c", "d"], ["women", "men"], ["c0", "c1"], top=3)
    heat = fig.data[0]
    assert list(heat.y) == ["b", "a", "d"]  # by max |d| over every cell: 2.0, 1.5, 0.5; "c" (0.2) left out
    assert list(heat.x) == ["c0 · women", "c0 · men", "c1 · women", "c1 · men"]
    assert heat.z[0].tolist() == [-2.0, 0.0, 2.0, 0.0]
    assert heat.text[2][1] == "" and heat.text[0][0] == "-2.0"  # an undefined cell shows no number
    assert heat.zmid == 0 and heat.zmax == -heat.zmin == 2.0
