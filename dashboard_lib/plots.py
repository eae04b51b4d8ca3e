"""Pure figure functions: data in, plotly Figure out (no streamlit, no store access)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .metrics import METRIC_DEFINITIONS
from .text import html_text as _h

# Title on the first line, legend on the second, both above the plot area, so neither covers the other.
_LAYOUT = dict(margin=dict(l=10, r=10, t=95, b=10), height=360, title_y=0.97, title_yanchor="top",
               legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
MAX_POINTS_PER_SERIES = 2000  # a browser draws a few thousand points per line smoothly; longer series are thinned


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    """Every k-th point of a long series (keeping the last), so a 20,000-step run still draws at once."""
    if len(frame) <= MAX_POINTS_PER_SERIES:
        return frame
    stride = -(-len(frame) // MAX_POINTS_PER_SERIES)
    return pd.concat([frame.iloc[::stride], frame.iloc[[-1]]]).drop_duplicates("step")


RESTART_SERIES = "restart"  # a logged series numbering restarts (k-means): the other series break where it changes


def split_signals(names) -> dict[str, list[str]]:
    """Sort logged series for the Monitor: loss terms (L_…), accuracies (…acc…), their chance rates (…chance…), the rest."""
    groups = {"losses": [], "accuracies": [], "chance": [], "other": []}
    for name in sorted(n for n in names if n != RESTART_SERIES):  # restarts segment the other series (signals_figure)
        key = ("chance" if "chance" in name else "losses" if name.startswith("L_") else
               "accuracies" if "acc" in name else "other")
        groups[key].append(name)
    return groups


def _restart_segments(frame: pd.DataFrame, restarts: pd.DataFrame) -> pd.DataFrame:
    """frame (step, value) with a gap (None) before the first step of each new restart, so restarts are not joined."""
    if restarts.empty:
        return frame
    number = np.interp(frame["step"], restarts["step"], restarts["value"])
    starts = np.flatnonzero(np.diff(number) > 0) + 1
    if not len(starts):
        return frame
    gaps = pd.DataFrame({"step": frame["step"].iloc[starts].to_numpy() - 0.5, "value": np.nan})
    return pd.concat([frame[["step", "value"]], gaps]).sort_values("step", kind="stable")


def signals_figure(scalars: pd.DataFrame, names: list[str], *, log_y: bool = False, title: str = "Loss terms",
                   columns: int = 2) -> go.Figure:
    """Small multiples: one panel per series (long table with step, name, value), each on its own y scale, x = step.
    Where a `restart` series is logged, each series is drawn as one segment per restart and the panel says how many."""
    restarts = scalars[scalars["name"] == RESTART_SERIES].sort_values("step") if not scalars.empty else scalars
    names = [n for n in names if n in set(scalars["name"]) and n != RESTART_SERIES] if not scalars.empty else []
    n_restarts = int(restarts["value"].max()) if not restarts.empty else 0
    titles = [f"{n} ({n_restarts} restarts, one segment each)" if n_restarts > 1 else n for n in names]
    rows = max(1, -(-len(names) // columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles or None, horizontal_spacing=0.08,
                        vertical_spacing=min(0.12, 0.5 / rows))
    for i, name in enumerate(names):
        frame = _restart_segments(_thin(scalars[scalars["name"] == name].sort_values("step")), restarts)
        fig.add_trace(go.Scatter(x=frame["step"], y=frame["value"], mode="lines", name=name, showlegend=False,
                                 connectgaps=False),
                      row=i // columns + 1, col=i % columns + 1)
    fig.update_layout(title=title, height=110 + 200 * rows, margin=dict(l=10, r=10, t=70, b=10))
    fig.update_xaxes(title_text="step", row=rows)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


ACCURACY_TITLE = "Classifier accuracy during training"
# The series a classifier logs per (class y, group) cell (methods/clusterfix.py: "acc (y=1, green)"), and the line styles
# that tell its classes apart (none of them the chance lines' long dashes).
GROUP_ACCURACY = re.compile(r"acc \(y=([^,]+), (.+)\)")
CLASS_DASHES = ("solid", "dot", "dashdot", "longdashdot")
CHANCE_NOTE = " (dashed: chance)"  # in the title only where a chance line is drawn


def accuracy_figure(scalars: pd.DataFrame, accuracies: list[str], chance: list[str], *,
                    title: str = ACCURACY_TITLE) -> go.Figure:
    """Accuracy series on a 0–1 axis with the chance rates as dashed lines: the bias classifiers' decay, live. The
    title says "(dashed: chance)" when a chance series is drawn, and only then (ERM logs group accuracies, no chance)."""
    fig = go.Figure()
    logged = set(scalars["name"]) if not scalars.empty else set()
    drawn_chance = [n for n in chance if n in logged]
    drawn = [n for n in accuracies if n in logged]
    # A (class, group) accuracy is drawn in its group's colour (the one palette), each class in its own line style.
    cells = {n: m.groups() for n in drawn if (m := GROUP_ACCURACY.fullmatch(n))}
    colours = dict(zip(sorted({g for _, g in cells.values()}), group_colours(sorted({g for _, g in cells.values()}))))
    classes = sorted({y for y, _ in cells.values()})
    for name, dash in [(n, None) for n in drawn] + [(n, REFERENCE_DASH) for n in drawn_chance]:
        frame = _thin(scalars[scalars["name"] == name].sort_values("step"))
        line = dict(dash=dash, width=REFERENCE_WIDTH if dash else 2)
        if name in cells:
            y, group = cells[name]
            line.update(color=colours[group], dash=CLASS_DASHES[classes.index(y) % len(CLASS_DASHES)])
        fig.add_trace(go.Scatter(x=frame["step"], y=frame["value"], mode="lines", name=name, line=line))
    fig.update_layout(title=title + (CHANCE_NOTE if drawn_chance else ""), xaxis_title="step", yaxis_title="accuracy",
                      yaxis_range=[0, 1.02], showlegend=True, **_LAYOUT)
    return fig


def metrics_figure(evaluations: list[dict], keys: list[str], *, title: str = "Metrics at each evaluation",
                   unit: str = "epoch") -> go.Figure:
    """One line per metric across evaluations (indexed by epoch or iteration: unit), each named with its label."""
    fig = go.Figure()
    epochs = [e["epoch"] for e in evaluations]
    for key in keys:
        values = [e["metrics"].get(key) for e in evaluations]
        if any(isinstance(v, (int, float)) for v in values):
            label = METRIC_DEFINITIONS.get(key, {}).get("label", key)
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=label))
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title="value", yaxis_range=[0, 1.02], **_LAYOUT)
    return fig


# The probe chart's title by what it draws; short, as the Monitor draws it in half the page (about 600 px at 1280 px).
PROBE_TITLES = {(): "Bias probe", ("probe_acc",): "Bias probe: the group read from the embedding",
                ("same_group_share",): "Bias: same-group links against chance",
                ("probe_acc", "same_group_share"): "Bias: the group in the embedding and the links"}


def probe_figure(evaluations: list[dict], unit: str = "epoch") -> go.Figure:
    """The group probe's held-out accuracy over epochs with the majority-group rate (chance) as a dashed line; for
    self-expressive methods also the same-group share of the coefficient links beside its group-blind value."""
    fig, drawn = go.Figure(), []
    for key, chance_key, name, chance_name, colour in (
            ("probe_acc", "probe_majority", "probe accuracy (held out)", "chance (majority group)", qualitative.Plotly[0]),
            ("same_group_share", "same_group_chance", "same-group link share", "chance (group-blind links)",
             qualitative.Plotly[1])):
        points = [(e["epoch"], e["metrics"][key], e["metrics"].get(chance_key)) for e in evaluations if key in e["metrics"]]
        if points:
            epochs, value, chance = zip(*points)
            fig.add_trace(go.Scatter(x=epochs, y=value, mode="lines+markers", name=name, line=dict(color=colour)))
            fig.add_trace(go.Scatter(x=epochs, y=chance, mode="lines", name=chance_name,
                                     line=dict(dash=REFERENCE_DASH, width=REFERENCE_WIDTH, color=colour)))
            drawn.append(key)
    fig.update_layout(title=PROBE_TITLES[tuple(drawn)], xaxis_title=unit,
                      yaxis_title="share", yaxis_range=[0, 1.02], **_LAYOUT)
    return fig


# --- Colours
# One rule for a group's colour on every page, in the lesson and in the report: fixed by the group's *name*, so the
# same group has the same colour whatever its index, the order its figure lists the groups, or the run it comes from.
# Base: Okabe & Ito's colour-blind-safe set (told apart with the common colour-vision deficiencies; their black, lost
# on a dark page, replaced by Tol's wine), blue and orange first: the two groups of a two-group dataset. Past the
# eight, the same eight darker and lighter, then hues spaced by the golden angle.
GROUP_BASE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#56b4e9", "#cc79a7", "#f0e442", "#882255")
_LIGHTNESS_STEPS = (0.0, -0.16, 0.18, 0.1, 0.26)
# A group named after a colour (Colored MNIST's "red" and "green", Colored Fashion-MNIST's "blue" and "yellow") is drawn
# in that colour: a readable shade from the set above, and a red and a green that deuteranopes still tell apart.
NAMED_GROUP_COLOURS = {"red": "#cc3311", "green": "#009e73", "blue": "#0072b2", "yellow": "#f0e442", "orange": "#e69f00",
                       "purple": "#cc79a7", "pink": "#cc79a7", "cyan": "#56b4e9"}
# The built-in datasets' groups in the order each declares them: a name here takes its position's colour, so the
# first source of a two-source dataset (MNIST in MNIST/USPS, the MNIST sample in MNIST/optdigits) is always blue and
# the second always orange. tests/unit/test_plots_views.py checks this table against the datasets' declarations.
DECLARED_GROUPS = (
    ("MNIST", "USPS"), ("MNIST sample", "UCI optdigits"), ("original", "inverted"), ("without glasses", "with glasses"),
    ("Amazon", "Webcam"), ("head classes 0–4", "tail classes 5–9"),
)
_DECLARED_POSITION = {name: i for names in DECLARED_GROUPS for i, name in enumerate(names)}

# Marks that are not groups: never a group colour. INK is a placeholder that Streamlit's chart theme replaces by the
# theme's text colour (one of the temporary colours it swaps for theme colours, the one of table text), so INK is
# black on the light theme and white on the dark one; outside Streamlit (the HTML report, exported figures) it is
# black. Under a reference line a half-transparent grey halo sets its dashes apart from any bar colour on either
# theme (black dashes on light grey, white dashes on dark grey), and keeps it visible should the placeholder not be
# swapped on a dark page.
INK = "#000037"
HALO = "rgba(128,128,128,0.6)"  # drawn under a reference line, so it stands out over any bar colour
REFERENCE_WIDTH, HALO_WIDTH = 3, 7
REFERENCE_DASH = "10px,7px"  # in pixels, not plotly's "dash" (which scales with the width)
CLUSTER_FILL = "#a3a3a3"  # bars that are clusters or runs, not groups: a grey that no group is drawn in
LIMITING_MARK = INK  # the cluster that sets Balance: black or white by theme, never red (a group colour)


def palette_colour(i: int) -> str:
    """The i-th colour of the group palette (0 first) as #rrggbb: distinct for the first 40, a valid colour for any i."""
    import colorsys

    i = int(i)
    if i < len(GROUP_BASE) * len(_LIGHTNESS_STEPS):
        rgb = [int(GROUP_BASE[i % len(GROUP_BASE)][k:k + 2], 16) / 255 for k in (1, 3, 5)]
        hue, lightness, saturation = colorsys.rgb_to_hls(*rgb)
        lightness = min(0.9, max(0.12, lightness + _LIGHTNESS_STEPS[i // len(GROUP_BASE)]))
        rgb = colorsys.hls_to_rgb(hue, lightness, saturation)
    else:
        rgb = colorsys.hls_to_rgb((i * 0.618033988749895) % 1.0, (0.35, 0.55, 0.7)[i % 3], 0.65)
    return "#" + "".join(f"{round(v * 255):02x}" for v in rgb)


def group_palette(n: int) -> list[str]:
    """The first n colours of the group palette (palette_colour)."""
    return [palette_colour(i) for i in range(n)]


def _palette_positions(start: int):
    """Palette positions from `start`: first around the eight base colours, then the shades after them."""
    base = len(GROUP_BASE)
    yield from ((start + k) % base for k in range(base))
    i = base
    while True:
        yield i
        i += 1


def group_colours(names) -> list[str]:
    """The colour of each group, by its name (list aligned with names; pass every group of the data, present or not).

    A colour's name → that colour (NAMED_GROUP_COLOURS); a built-in dataset's group → its declared position in the
    palette (DECLARED_GROUPS); any other name → the palette position of a stable hash of the name (CRC-32, the same in
    every process), the base colours first. Two names that want one colour: the one first in (rule, name) order keeps
    it, the other takes the next free position, so the result depends on the set of names, never on their order.
    """
    import zlib

    names = [str(n) for n in names]
    colour: dict[str, str] = {}
    taken: set[str] = set()

    def claim(name: str, wanted: str | None, start: int) -> None:
        if wanted is None or wanted in taken:
            wanted = next(c for c in map(palette_colour, _palette_positions(start)) if c not in taken)
        colour[name] = wanted
        taken.add(wanted)

    unique = sorted(set(names))
    for name in unique:
        if name.strip().lower() in NAMED_GROUP_COLOURS:
            wanted = NAMED_GROUP_COLOURS[name.strip().lower()]
            claim(name, wanted, GROUP_BASE.index(wanted) if wanted in GROUP_BASE else 0)
    for name in unique:
        if name not in colour and name in _DECLARED_POSITION:
            claim(name, palette_colour(_DECLARED_POSITION[name]), _DECLARED_POSITION[name])
    hashed = sorted((zlib.crc32(n.encode("utf-8")) % len(GROUP_BASE), n) for n in unique if n not in colour)
    for start, name in hashed:
        claim(name, None, start)
    return [colour[n] for n in names]


def _reference_line(fig: go.Figure, *, x: float | None = None, y: float | None = None) -> None:
    """A dashed reference line across the plot (vertical at x or horizontal at y) in INK over a grey halo: thick
    enough for a projector, readable on the light and the dark theme and across any bar colour."""
    add = fig.add_vline if x is not None else fig.add_hline
    where = dict(x=x) if x is not None else dict(y=y)
    add(**where, line=dict(color=HALO, width=HALO_WIDTH), layer="above")
    add(**where, line=dict(color=INK, width=REFERENCE_WIDTH, dash=REFERENCE_DASH), layer="above")


def _reference_legend(fig: go.Figure, name: str) -> None:
    """A legend entry for the reference lines (a trace with no points), drawn as they are."""
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name,
                             line=dict(dash=REFERENCE_DASH, color=INK, width=REFERENCE_WIDTH)))


# --- Embeddings and Compare views
PALETTES = {  # clusters and classes: qualitative palettes, by index (their numbers mean nothing across runs)
    "cluster": qualitative.Dark24,
    "class": qualitative.Plotly,
}


def _colour(palette: str, i: int) -> str:
    """A cluster's or a class's colour: its qualitative palette, the group palette past its end (no repeat)."""
    colours = PALETTES[palette]
    return colours[i] if i < len(colours) else palette_colour(i)


def embedding_scatter(coords, labels, label_names=None, *, title: str = "", hover: dict | None = None, ids=None,
                      palette: str = "cluster", legend_title: str = "", uirevision=None, height: int = 420,
                      marker_size: float | None = None) -> go.Figure:
    """A 2-D layout coloured by one labelling: one WebGL trace per label value (legend = label names).

    coords: n × 2; labels: n ints; label_names: name per label value (else the value itself); palette: "group"
    (colours by name, group_colours, over all of label_names), "cluster" or "class" (by value);
    hover: {"cluster": n strings, …} shown on hover, in order; ids: n sample ids (customdata[0], returned by
    plotly selection events). Axes carry no units (a projection), so they are hidden.
    """
    coords = np.asarray(coords, dtype=float)
    labels = np.asarray(labels)
    n = len(labels)
    ids = np.arange(n) if ids is None else np.asarray(ids)
    hover = hover or {}
    # customdata[0] is the id a selection event returns (a sample's index, a number): kept as it is. Hover values
    # are user strings (group and class names): escaped where they are text.
    columns = [ids.astype(object)] + [np.array([v if isinstance(v, (int, float, np.number)) else _h(v) for v in values],
                                               dtype=object) for values in hover.values()]
    custom = np.column_stack(columns) if n else np.empty((0, len(columns)), dtype=object)
    template = "<b>sample %{customdata[0]}</b>" + "".join(
        f"<br>{_h(name)}: %{{customdata[{i + 1}]}}" for i, name in enumerate(hover)) + "<extra></extra>"
    size = marker_size or (6 if n <= 2000 else 4 if n <= 6000 else 3)
    values = np.unique(labels)

    def name_of(value) -> str:
        return str(label_names[int(value)]) if label_names is not None and 0 <= int(value) < len(label_names) else str(value)

    if palette == "group":  # by name, over every group of the data (the same colours whichever groups are drawn)
        every = [*map(str, label_names or []), *(name_of(v) for v in values)]
        by_name = dict(zip(every, group_colours(every)))
    fig = go.Figure()
    for value in values:
        mask = labels == value
        name = name_of(value)
        colour = by_name[name] if palette == "group" else _colour(palette, int(value))
        fig.add_trace(go.Scattergl(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=_h(name), customdata=custom[mask],
            hovertemplate=template, marker=dict(size=size, color=colour, opacity=0.75, line=dict(width=0)),
        ))
    fig.update_layout(title=_h(title), height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision=uirevision,
                      hoverlabel_namelength=-1, legend=dict(title=_h(legend_title), orientation="h", yanchor="top", y=-0.01, x=0, itemsizing="constant"),
                      dragmode="pan", clickmode="event+select")
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, title=None)
    # no equal-scale constraint: a 2-D projection's axes carry no units, and an elongated PCA would draw as a thin line
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, title=None)
    return fig


def count_heatmap(counts, row_labels, column_labels, *, title: str = "Cluster × group counts", row_title: str = "cluster",
                  column_title: str = "group", overall_row: bool = True, height: int | None = None) -> go.Figure:
    """Counts per (cluster, group): shade = the group's share of the cluster's points, text = the count; each group's
    name under its column beside a swatch of its colour (group_colours; the columns are the data's groups, in order).

    With overall_row, a last row "all data" shows the whole data's group shares: a fair cluster's row looks like it.
    The shares are in greys, so that no cell reads as a group's colour.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rows = [_h(r) for r in row_labels]
    if overall_row and counts.size:
        counts = np.vstack([counts, counts.sum(0, keepdims=True)])
        rows = rows + ["all data"]
    totals = counts.sum(1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    text = [[f"{c:,}" for c in row] for row in counts]
    columns = [_h(c) for c in column_labels]
    swatches = [f'<span style="color:{colour};font-size:20px">■</span> {name}'
                for name, colour in zip(columns, group_colours([str(c) for c in column_labels]))]
    fig = go.Figure(go.Heatmap(
        z=share, x=columns, y=rows, text=text, texttemplate="%{text}", customdata=counts,
        colorscale="Greys", zmin=0, zmax=1, colorbar=dict(title="share of<br>the row", tickformat=".0%", thickness=12),
        hovertemplate=f"{_h(row_title)} %{{y}} · {_h(column_title)} %{{x}}<br>%{{customdata:,}} samples = %{{z:.1%}} of the row<extra></extra>",
        xgap=1, ygap=1,
    ))
    fig.update_layout(title=dict(text=_h(title), font=dict(size=14)), height=height or max(260, 60 + 26 * len(rows)),
                      margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(title=_h(column_title), side="bottom", type="category", tickmode="array", tickvals=columns,
                     ticktext=swatches)
    fig.update_yaxes(title=_h(row_title), autorange="reversed", type="category")
    return fig


def profile_heatmap(d, feature_names, group_names, cluster_labels, *, top: int = 12,
                    title: str = "What sets each cluster apart, within each group") -> go.Figure:
    """Cluster profiles (metrics.cluster_profiles, shape groups × clusters × features) as one heatmap: a row per
    feature (the `top` with the largest |d| in any cell), a column per (cluster, group), colour = d in the group's
    standard deviations. Columns of one cluster that look alike: the cluster means the same thing in every group."""
    d = np.asarray(d, dtype=float)
    n_groups, n_clusters, _ = d.shape
    strength = np.nan_to_num(np.abs(d), nan=0.0).max(axis=(0, 1))
    rows = [int(j) for j in np.argsort(-strength, kind="stable")[:top]]
    columns = [(c, g) for c in range(n_clusters) for g in range(n_groups)]
    z = np.array([[d[g, c, j] for c, g in columns] for j in rows])
    x = [_h(f"{cluster_labels[c]} · {group_names[g]}") for c, g in columns]
    y = [_h(feature_names[j]) for j in rows]
    limit = max(1.0, float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0)
    text = [["" if not np.isfinite(v) else f"{v:+.1f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=y, text=text, texttemplate="%{text}", colorscale="RdBu_r", zmid=0, zmin=-limit, zmax=limit,
        colorbar=dict(title="d (sd)", thickness=12),
        hovertemplate="%{x}<br>%{y}: %{z:+.2f} sd from the group's other clusters<extra></extra>", xgap=1, ygap=1))
    fig.update_layout(title=dict(text=_h(title), font=dict(size=14)), height=max(300, 90 + 24 * len(rows)),
                      margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(title="cluster · group", side="bottom", type="category")
    fig.update_yaxes(title=None, autorange="reversed", type="category")
    return fig


def _metric_label(key: str) -> str:
    return METRIC_DEFINITIONS.get(key, {}).get("label", key)


def metric_bars(values: dict[str, dict[str, float]], metrics: list[str], *, title: str = "Metrics of the selected runs") -> go.Figure:
    """Grouped bars: one group per metric, one bar (colour) per run. values: {run label: {metric key: value}}."""
    fig = go.Figure()
    x = [_metric_label(m) for m in metrics]
    for i, (run_label, run_metrics) in enumerate(values.items()):
        y = [run_metrics.get(m) if isinstance(run_metrics.get(m), (int, float)) else None for m in metrics]
        fig.add_trace(go.Bar(x=x, y=y, name=_h(run_label), marker_color=_colour("class", i),
                             text=[None if v is None else f"{v:.2f}" for v in y], textposition="outside",
                             hovertemplate="%{x}: %{y:.3f}<extra>" + _h(run_label) + "</extra>"))
    fig.update_layout(title=_h(title), barmode="group", hoverlabel_namelength=-1, yaxis_title="value", height=400,
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", yanchor="top", y=-0.12, x=0))
    return fig


def _lines(value) -> str:
    """Hover text from a string or a list of lines: each escaped, joined by line breaks."""
    if isinstance(value, (list, tuple)):
        return "<br>".join(_h(line) for line in value)
    return _h(value)


def pareto_front(points, maximise=(True, True)) -> np.ndarray:
    """Indices of the points no other point dominates (as good on both axes, better on one), sorted by x.

    points: n × 2; maximise: per axis, True when higher is better. Points with a NaN are never on the front.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(p) == 0:
        return np.empty(0, dtype=np.int64)
    signed = p * np.where(np.asarray(maximise, dtype=bool), 1.0, -1.0)
    valid = ~np.isnan(signed).any(1)
    front = []
    for i in np.flatnonzero(valid):
        others = signed[valid]
        at_least = (others >= signed[i]).all(1)
        better = (others > signed[i]).any(1)
        if not (at_least & better).any():
            front.append(i)
    front = np.asarray(front, dtype=np.int64)
    return front[np.argsort(p[front, 0], kind="stable")]


def pareto_scatter(x, y, labels, *, x_key: str, y_key: str, hover=None, maximise=(True, True), groups=None,
                   ids=None, title: str = "Fairness versus quality") -> go.Figure:
    """Each run a point (x = a quality metric, y = a fairness metric), labelled; the Pareto front is joined and ringed.

    labels: short text drawn by each point; hover: longer text per point (a list of lines, or one string), shown as
    text (escaped), never as HTML; groups: a name per point (the method)
    that sets its colour and legend entry; ids: a run id per point, the second item of each point's customdata (a
    click on a point tells which run it is).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    labels = [_h(v) for v in labels]
    hover = [_lines(v) for v in hover] if hover is not None else labels
    groups = [str(v) for v in (groups if groups is not None else ["runs"] * len(x))]
    ids = [str(v) for v in (ids if ids is not None else [""] * len(x))]
    x_label, y_label = _metric_label(x_key), _metric_label(y_key)
    fig = go.Figure()
    for i, name in enumerate(dict.fromkeys(groups)):
        idx = [j for j, g in enumerate(groups) if g == name]
        fig.add_trace(go.Scatter(
            x=x[idx], y=y[idx], mode="markers+text", name=_h(name), text=[labels[j] for j in idx], textposition="top center",
            textfont=dict(size=10), marker=dict(size=11, color=_colour("class", i)),
            customdata=[[hover[j], ids[j]] for j in idx],
            hovertemplate=f"%{{customdata[0]}}<br>{x_label}: %{{x:.3f}}<br>{y_label}: %{{y:.3f}}<extra></extra>",
        ))
    front = pareto_front(np.column_stack([x, y]) if len(x) else np.empty((0, 2)), maximise)
    if len(front):  # a halo under the ring and the line, as under every reference line (_reference_line)
        fig.add_trace(go.Scatter(
            x=x[front], y=y[front], mode="lines+markers", name="halo under the Pareto front", showlegend=False,
            hoverinfo="skip", line=dict(color=HALO, width=HALO_WIDTH), marker=dict(size=19, symbol="circle-open", color=HALO,
                                                                 line=dict(width=HALO_WIDTH - 1))))
        fig.add_trace(go.Scatter(
            x=x[front], y=y[front], mode="lines+markers", name="Pareto front (no run is better on both)",
            line=dict(color=INK, dash=REFERENCE_DASH, width=REFERENCE_WIDTH, shape="linear"),
            marker=dict(size=19, symbol="circle-open", color=INK, line=dict(width=REFERENCE_WIDTH)), hoverinfo="skip",
        ))
    def axis_title(key: str, label: str, role: str) -> str:
        better = "higher" if METRIC_DEFINITIONS.get(key, {}).get("higher_is_better", True) else "lower"
        return f"{label} ({role}, {better} is better)"

    def padded(values) -> list[float] | None:  # quality: zoomed on the runs, with room for the labels at the edges
        finite = values[np.isfinite(values)]
        if not len(finite):
            return None
        low, high = float(finite.min()), float(finite.max())
        pad = max(0.05, 0.15 * (high - low))
        return [low - pad, high + pad]

    def from_zero(values) -> list[float]:  # fairness: from 0 (a cluster misses a group) to at least 1 (perfect)
        finite = values[np.isfinite(values)]
        top = max(1.0, float(finite.max()) if len(finite) else 1.0)
        return [-0.05 * top, 1.1 * top]

    fig.update_layout(title=_h(title), height=460, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis=dict(title=axis_title(x_key, x_label, "quality"), range=padded(x)),
                      yaxis=dict(title=axis_title(y_key, y_label, "fairness"), range=from_zero(y)),
                      legend=dict(orientation="h", yanchor="top", y=-0.15, x=0))
    return fig


def explain_summary_figure(models: dict[str, dict], stroke_area: float | None = None) -> go.Figure:
    """Per model (name → {"stroke_share", "colour_flip_rate"?}): the share of Grad-CAM mass on the strokes and, where
    measured, the share of predictions that change when the colour is swapped; the strokes' area share as a dashed line."""
    names = list(models)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=[_h(n) for n in names], y=[models[n].get("stroke_share") for n in names], name="Grad-CAM mass on the strokes",
                         text=[f"{models[n].get('stroke_share', float('nan')):.2f}" for n in names], textposition="outside"))
    flips = [models[n].get("colour_flip_rate") for n in names]
    if any(v is not None for v in flips):
        fig.add_trace(go.Bar(x=[_h(n) for n in names], y=flips, name="predictions changed by swapping the colour",
                             text=[f"{v:.2f}" if v is not None else "" for v in flips], textposition="outside"))
    if stroke_area is not None:
        _reference_line(fig, y=stroke_area)
        _reference_legend(fig, f"area of the strokes ({stroke_area:.2f}): a map spread evenly")
    fig.update_layout(title="What the models use", yaxis_title="share", yaxis_range=[0, 1.1], barmode="group", **_LAYOUT)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.12, x=0), height=380)
    return fig


# A legend at the bottom of the whole figure (container coordinates), in a bottom margin made for it under the x axis's
# title: it never reaches the title above the plot, however many lines it wraps to.
LEGEND_BELOW = dict(orientation="h", yanchor="bottom", y=0, yref="container", x=0)


def _legend_rows(names, width: int = 700) -> int:
    """At most how many lines a horizontal legend of these names takes in a figure `width` pixels wide (a page column):
    Plotly lines its entries up in columns as wide as the widest, about 7 pixels a character plus the swatch."""
    if not len(names):
        return 0
    item = 40 + 7 * max(len(str(n)) for n in names)
    return -(-len(names) // max(1, width // item))


MAX_SHARE_BARS = 60  # clusters drawn as bars, largest first; beyond this bars are unreadable (the tables have all)


def share_bar_rows(table, cluster_labels, max_clusters: int = MAX_SHARE_BARS) -> tuple[list[str], np.ndarray]:
    """The rows of a group-share bar chart: labels and group counts of the population, then of the largest clusters."""
    table = np.asarray(table, dtype=float)
    order = np.argsort(-table.sum(1), kind="stable")[:max_clusters]
    rows = ["population"] + [f"cluster {cluster_labels[i]} (n={int(table[i].sum()):,})" for i in order]
    return rows, np.vstack([table.sum(0), table[order]])


def group_share_bars(table, cluster_labels, group_names, *, title: str = "Group shares per cluster") -> go.Figure:
    """Per cluster, its group shares as one stacked horizontal bar (each group in its colour, group_colours), under the
    population's mix (dashed reference lines at the population's cumulative shares): a fair cluster's boundaries line
    up with them. Largest clusters first."""
    rows, counts = share_bar_rows(table, cluster_labels)
    rows = [_h(r) for r in rows]
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig = go.Figure()
    for j, (name, colour) in enumerate(zip(group_names, group_colours(group_names))):
        fig.add_trace(go.Bar(y=rows, x=shares[:, j], name=_h(name), orientation="h", marker_color=colour,
                             customdata=counts[:, j], hovertemplate="%{y}<br>" + _h(name) + ": %{customdata:,.0f} (%{x:.1%})<extra></extra>"))
    for c in np.cumsum(shares[0])[:-1]:
        _reference_line(fig, x=float(c))
    # The legend goes under the plot (with room made for it), whatever the number and length of the group names: a
    # legend above grows upwards over the title when it wraps.
    legend_rows = _legend_rows(group_names)
    fig.update_layout(**{**_LAYOUT, "height": 130 + 26 * len(rows) + 22 * legend_rows,
                         "margin": dict(l=10, r=10, t=50, b=60 + 22 * legend_rows),
                         "legend": {**LEGEND_BELOW, "traceorder": "normal"}}, barmode="stack", title=_h(title),
                      hoverlabel_namelength=-1,
                      xaxis=dict(title="share of the cluster (dashed: the population's mix)", range=[0, 1], tickformat=".0%"),
                      yaxis=dict(autorange="reversed"))
    return fig


def _axis_title(name: str, symbols: dict | None) -> str:
    symbol = (symbols or {}).get(name)
    return f"{symbol} ({name})" if symbol and symbol != name else name


def sweep_curve(agg: pd.DataFrame, axis: str, metric: str, *, band_label: str, symbols: dict | None = None,
                log_x: bool = False, reference: tuple[float, str] | None = None, height: int = 300) -> go.Figure:
    """One metric against one swept hyperparameter: the mean over seeds joined, its band shaded, n seeds in the hover;
    reference (value, label), e.g. the chance rate of a bias classifier, as a dashed line.

    agg: sweeps.aggregate's table (axis, mean, low, high, n), one row per value.
    """
    label = _metric_label(metric)
    agg = agg.sort_values(axis)
    x, mean, low, high = agg[axis].to_numpy(float), agg["mean"].to_numpy(float), agg["low"].to_numpy(float), agg["high"].to_numpy(float)
    fig = go.Figure()
    if len(agg) and (agg["n"] > 1).any():
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
                                 fillcolor="rgba(99,110,250,0.2)", line=dict(width=0), mode="lines", hoverinfo="skip",
                                 name=band_label))
    fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name="mean over seeds", line=dict(color="#636efa"),
                             customdata=np.column_stack([low, high, agg["n"].to_numpy()]) if len(agg) else None,
                             hovertemplate=f"{_axis_title(axis, symbols)} = %{{x:g}}<br>{label}: %{{y:.3f}} "
                                           "(band %{customdata[0]:.3f}–%{customdata[1]:.3f}, %{customdata[2]} seed(s))<extra></extra>"))
    if reference is not None:
        _reference_line(fig, y=reference[0])
        fig.add_annotation(text=_h(reference[1]), xref="paper", x=1, xanchor="right", y=reference[0], yanchor="top",
                           showarrow=False, font=dict(size=11))
    fig.update_layout(title=dict(text=label, font=dict(size=14)), height=height, showlegend=False,
                      margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title=_axis_title(axis, symbols), type="log" if log_x else "linear")
    # At least ±0.05 around the values: differences of a few thousandths (seed noise) must not fill the panel as a trend.
    finite = np.concatenate([low, high, mean])
    finite = finite[np.isfinite(finite)]
    if len(finite):
        bottom, top = float(finite.min()), float(finite.max())
        pad = max(0.05, 0.1 * (top - bottom))
        fig.update_yaxes(range=[max(bottom - pad, 0.0) if bottom >= 0 else bottom - pad, top + pad])
    fig.update_yaxes(title=label)
    return fig


def sweep_heatmap(agg: pd.DataFrame, axes: list[str], metric: str, *, symbols: dict | None = None,
                  height: int = 320) -> go.Figure:
    """One metric over a two-parameter grid: a cell per pair, its mean over seeds written in it (blank: no finished run)."""
    label = _metric_label(metric)
    rows, cols = sorted(agg[axes[0]].unique()), sorted(agg[axes[1]].unique())
    z = np.full((len(rows), len(cols)), np.nan)
    n = np.zeros_like(z)
    for _, r in agg.iterrows():
        i, j = rows.index(r[axes[0]]), cols.index(r[axes[1]])
        z[i, j], n[i, j] = r["mean"], r["n"]
    text = [["" if np.isnan(v) else f"{v:.3f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=[f"{c:g}" for c in cols], y=[f"{r:g}" for r in rows], text=text,
                               texttemplate="%{text}", customdata=n, colorscale="Viridis",
                               colorbar=dict(title=label, thickness=12),
                               hovertemplate=f"{_axis_title(axes[0], symbols)} = %{{y}} · {_axis_title(axes[1], symbols)} = "
                                             f"%{{x}}<br>{label}: %{{z:.3f}} (mean of %{{customdata}} seed(s))<extra></extra>"))
    fig.update_layout(title=dict(text=label, font=dict(size=14)), height=height, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title=_axis_title(axes[1], symbols), type="category")
    fig.update_yaxes(title=_axis_title(axes[0], symbols), type="category")
    return fig


def cluster_balance_bars(clusters, ratio, ceiling: float, *, title: str = "Balance of each cluster") -> go.Figure:
    """Per cluster, min_g n_cg / max_g n_cg as a grey bar, the one that sets Balance (the minimum) in LIMITING_MARK
    (black or white by theme: no group's colour) and pointed at by an arrow, and the dataset's ceiling
    (min_g n_g / max_g n_g) as a dashed reference line: no cluster can be more balanced than the whole set."""
    ratio = np.asarray(ratio, dtype=float)
    lowest = int(ratio.argmin()) if len(ratio) else -1
    colours = [LIMITING_MARK if i == lowest else CLUSTER_FILL for i in range(len(ratio))]
    fig = go.Figure(go.Bar(x=[_h(f"cluster {c}") for c in clusters], y=ratio, marker_color=colours, showlegend=False,
                           text=[f"{v:.2f}" for v in ratio], textposition="outside",
                           hovertemplate="%{x}: smallest group / largest group = %{y:.3f}<extra></extra>"))
    _reference_line(fig, y=ceiling)
    _reference_legend(fig, f"ceiling {ceiling:.3f}: the whole dataset's ratio")
    fig.add_trace(go.Bar(x=[None], y=[None], marker_color=LIMITING_MARK, name="the cluster that sets Balance (the lowest)"))
    if lowest >= 0:  # an arrow too: the lowest bar is often of no height at all (a cluster that misses a group); no
        # label, the legend says what it marks (a label would meet the ceiling line or the legend on a short chart)
        fig.add_annotation(x=_h(f"cluster {clusters[lowest]}"), y=float(ratio[lowest]), text="",
                           showarrow=True, arrowhead=2, arrowwidth=2.5, arrowcolor=INK, ax=0, ay=-38, yshift=16)
    fig.update_layout(**_LAYOUT, title=_h(title), yaxis=dict(title="smallest group / largest group", range=[0, max(ceiling, ratio.max(initial=0)) * 1.25 + 0.02]))
    return fig


def probe_bars(accuracies: dict[str, float], chance: float, *, title: str = "Bias probe: the group read from the embedding") -> go.Figure:
    """Per run (label → held-out probe accuracy) a bar, and the majority-group rate (what guessing the larger group
    gets) as a dashed line: a probe at chance means the embedding hides the group."""
    names = list(accuracies)
    fig = go.Figure(go.Bar(x=[_h(n) for n in names], y=[accuracies[n] for n in names], marker_color=CLUSTER_FILL, showlegend=False,
                           text=[f"{accuracies[n]:.3f}" for n in names], textposition="outside",
                           hovertemplate="%{x}: probe accuracy %{y:.3f}<extra></extra>"))
    _reference_line(fig, y=chance)
    _reference_legend(fig, f"chance {chance:.3f}: always guess the larger group")
    fig.update_layout(**_LAYOUT, title=_h(title), yaxis=dict(title="held-out accuracy", range=[0, 1.1]))
    return fig
