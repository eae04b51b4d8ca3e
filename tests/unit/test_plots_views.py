"""The Embeddings and Compare figures, checked through fig.data; the one group palette and the reference marks."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard_lib import explain, plots, report
from dashboard_lib.auditing import audit
from dashboard_lib.data import load_dataset
from dashboard_lib.plots import count_heatmap, embedding_scatter, group_colours, metric_bars, pareto_scatter, profile_heatmap


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
    assert [t.marker.color for t in fig.data] == group_colours(["MNIST", "USPS"])
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
    assert names[:2] == ["kmeans", "dfc"] and names[3].startswith("Pareto front")
    kmeans, dfc, halo, front = fig.data
    assert halo.showlegend is False and list(halo.x) == list(front.x)
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


def _luminance(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_pareto_ring_is_visible_on_the_dark_theme_too():
    fig = pareto_scatter([0.5, 0.6], [0.2, 0.1], ["a", "b"], x_key="acc", y_key="mnce")
    halo, front = fig.data[-2:]
    # INK is the theme's text colour in the app, black elsewhere; the grey halo under it carries it over any colour.
    assert front.line.color == front.marker.color == plots.INK and halo.line.color == plots.HALO
    assert halo.line.width > front.line.width >= 3 and halo.marker.line.width > front.marker.line.width


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


# --- One palette for groups ----------------------------------------------------------------------------------------
def _figure_colours(names, order) -> list[dict[str, str]]:
    """{group name: colour} as each figure that colours by group draws it, with the groups listed in `order`."""
    listed = [names[i] for i in order]
    n = len(listed)
    table = np.arange(1, 3 * n + 1).reshape(3, n)
    bars = plots.group_share_bars(table, ["0", "1", "2"], listed)
    scatter = embedding_scatter(np.zeros((n, 2)), np.arange(n), listed, palette="group")
    heat = count_heatmap(table, [0, 1, 2], listed)
    swatches = {re.sub(r"^<span[^>]*>■</span> ", "", t): re.search(r"color:(#[0-9a-f]{6})", t).group(1)
                for t in heat.layout.xaxis.ticktext}
    result = audit(np.repeat([0, 1, 2], n), {"g": np.tile(np.array(listed, dtype=object), 3)}, resamples=0, probe=False)
    svg = report.stacked_bars_svg(result.attribute("g"), result.clusters)
    legend = re.findall(r'<title>([^<]*)</title><rect x="\d+" y="-?\d+" width="12" height="12" fill="(#[0-9a-f]{6})"', svg)
    return [{t.name: t.marker.color for t in bars.data}, {t.name: t.marker.color for t in scatter.data}, swatches,
            dict(legend)]


@pytest.mark.parametrize("names", [["MNIST sample", "UCI optdigits"], ["red", "green"], ["female", "male", "non-binary"],
                                   [f"subject {i}" for i in range(12)]])
def test_the_same_group_name_gets_the_same_colour_in_every_figure_whatever_the_order(names):
    expected = dict(zip(names, group_colours(names)))
    assert len(set(expected.values())) == len(names)
    rng = np.random.default_rng(0)
    for order in (range(len(names)), range(len(names))[::-1], rng.permutation(len(names))):
        for drawn in _figure_colours(names, list(order)):
            assert drawn == expected


def test_group_colours_are_fixed_by_name_not_by_position():
    assert group_colours(["MNIST", "USPS"]) == group_colours(["MNIST sample", "UCI optdigits"]) == ["#0072b2", "#e69f00"]
    assert group_colours(["USPS", "MNIST"]) == ["#e69f00", "#0072b2"]
    # A stable hash (the same in every process and run), and the same colour when other groups come and go, unless
    # two names want one colour: then the name first in order keeps it.
    alone = group_colours(["women"])[0]
    assert group_colours(["men", "women"])[1] == alone == "#e69f00"  # crc32("women") % 8 == 1, a fixed number
    many = group_colours([f"g{i}" for i in range(30)])
    assert len(set(many)) == 30 and set(many[:8]) <= set(many)


@pytest.mark.parametrize("names, wanted", [(["red", "green"], ["#cc3311", "#009e73"]),
                                           (["blue", "yellow"], ["#0072b2", "#f0e442"]),
                                           (["Green", " red "], ["#009e73", "#cc3311"])])
def test_groups_named_after_a_colour_are_drawn_in_that_colour(names, wanted):
    assert group_colours(names) == wanted
    r, g, b = (int(wanted[0][i:i + 2], 16) for i in (1, 3, 5))
    assert max(r, g, b) == {"red": r, "green": g, "blue": b, "yellow": r}[names[0].strip().lower()]


def test_colored_mnist_groups_are_named_after_their_colours():
    from dashboard_lib.data.colored import PALETTES as COLOURED

    for palette in COLOURED.values():
        names = [name for name, _ in palette]
        assert group_colours(names) == [plots.NAMED_GROUP_COLOURS[n] for n in names]


def test_the_declared_groups_are_the_datasets_own_names():
    """Every literal list of group names a dataset module declares is in DECLARED_GROUPS, in the same order (so a
    renamed group cannot silently lose its colour); the built-in digits' groups are read from the dataset itself."""
    source = "\n".join(p.read_text() for p in Path(plots.__file__).parent.joinpath("data").glob("*.py"))
    declared = [tuple(re.findall(r'"([^"]+)"', m)) for m in re.findall(r"group_names=\[([^\]]*)\]", source)]
    declared = [names for names in declared if len(names) > 1 and not any("{" in n for n in names)]  # not f-strings
    assert len(declared) >= 5 and all(names in plots.DECLARED_GROUPS for names in declared), declared
    assert tuple(load_dataset("mnist_optdigits", {"n": 200}).group_names) in plots.DECLARED_GROUPS


def test_the_limiting_cluster_mark_and_reference_marks_are_no_group_colour():
    fig = plots.cluster_balance_bars(np.array([0, 1, 2]), np.array([0.3, 0.05, 0.2]), 0.36)
    colours = list(fig.data[0].marker.color)
    group_like = set(plots.group_palette(200)) | set(plots.NAMED_GROUP_COLOURS.values())
    assert colours[1] == plots.LIMITING_MARK and colours[0] == colours[2] == plots.CLUSTER_FILL
    assert plots.LIMITING_MARK == plots.INK and plots.INK not in group_like and plots.CLUSTER_FILL not in group_like
    assert _luminance(plots.INK) < 0.02  # black outside the app; in it, the theme's text colour (black or white)
    r, g, b = (int(plots.CLUSTER_FILL[i:i + 2], 16) for i in (1, 3, 5))
    assert r == g == b  # a grey: nothing a reader takes for a group
    assert "#d62728" not in colours  # red (a group's colour on Colored MNIST) marks no cluster
    (arrow,) = fig.layout.annotations  # also pointed at: a cluster that misses a group has a bar of no height
    assert arrow.x == "cluster 1" and arrow.y == 0.05 and arrow.showarrow and arrow.arrowcolor == plots.INK


@pytest.mark.parametrize("figure", ["shares", "balance", "probe", "sweep", "explain"])
def test_reference_lines_are_thick_dashes_on_a_halo(figure):
    import pandas as pd

    fig = {"shares": lambda: plots.group_share_bars(np.array([[3, 1], [1, 3]]), ["0", "1"], ["a", "b"]),
           "balance": lambda: plots.cluster_balance_bars(np.array([0, 1]), np.array([0.3, 0.1]), 0.36),
           "probe": lambda: plots.probe_bars({"k-means": 0.9, "FCMI": 0.75}, 0.736),
           "sweep": lambda: plots.sweep_curve(pd.DataFrame({"a": [1.0, 2.0], "mean": [0.5, 0.6], "low": [0.4, 0.5],
                                                            "high": [0.6, 0.7], "n": [2, 2]}), "a", "acc",
                                              band_label="range", reference=(0.5, "chance")),
           "explain": lambda: plots.explain_summary_figure({"ERM": {"stroke_share": 0.2}}, 0.16)}[figure]()
    halo, line = fig.layout.shapes[:2]
    assert halo.line.color == plots.HALO and line.line.color == plots.INK
    assert line.line.width >= 3 and halo.line.width >= line.line.width + 3 and line.line.dash
    assert (halo.x0, halo.y0) == (line.x0, line.y0)


def test_the_gradcam_overlay_adds_no_hue():
    """The map is grey to white: on a grey image the overlay stays grey, and on a red digit it adds no green or blue
    that the image lacks beyond the map's own grey (no jet colours that read as a group's)."""
    grey = torch.full((3, 8, 8), 0.4)
    cam = np.linspace(0, 1, 64).reshape(8, 8)
    out = explain.overlay(grey, cam, scale=1).astype(int)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    red = torch.zeros(3, 8, 8)
    red[0] = 1.0
    out = explain.overlay(red, cam, scale=1).astype(int)
    assert (out[..., 1] == out[..., 2]).all() and (out[..., 0] >= out[..., 1]).all()
    assert out[0, 0].tolist() == [128, 0, 0] and out[-1, -1].tolist() == [255, 128, 128]
    assert "grey" in explain.OVERLAY_LEGEND
