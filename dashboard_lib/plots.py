"""Pure figure functions: data in, plotly Figure out (no streamlit, no store access)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .metrics import METRIC_DEFINITIONS

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
MAX_POINTS_PER_SERIES = 2000  # a browser draws a few thousand points per line smoothly; longer series are thinned


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    """Every k-th point of a long series (keeping the last), so a 20,000-step run still draws at once."""
    if len(frame) <= MAX_POINTS_PER_SERIES:
        return frame
    stride = -(-len(frame) // MAX_POINTS_PER_SERIES)
    return pd.concat([frame.iloc[::stride], frame.iloc[[-1]]]).drop_duplicates("step")


def loss_figure(scalars: pd.DataFrame, names: list[str] | None = None, *, log_y: bool = False, title: str = "Training losses") -> go.Figure:
    """One line per logged series (long table with step, name, value), x = step."""
    fig = go.Figure()
    if not scalars.empty:
        for name, frame in scalars.groupby("name", sort=True):
            if names is not None and name not in names:
                continue
            frame = _thin(frame.sort_values("step"))
            fig.add_trace(go.Scatter(x=frame["step"], y=frame["value"], mode="lines", name=str(name)))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="value", **_LAYOUT)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def metrics_figure(evaluations: list[dict], keys: list[str], *, title: str = "Metrics at evaluation epochs") -> go.Figure:
    """One line per metric across evaluation epochs, each named with its label."""
    fig = go.Figure()
    epochs = [e["epoch"] for e in evaluations]
    for key in keys:
        values = [e["metrics"].get(key) for e in evaluations]
        if any(isinstance(v, (int, float)) for v in values):
            label = METRIC_DEFINITIONS.get(key, {}).get("label", key)
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=label))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="value", yaxis_range=[0, 1.02], **_LAYOUT)
    return fig


def probe_figure(evaluations: list[dict]) -> go.Figure:
    """The group probe's held-out accuracy over epochs with the majority-group rate (chance) as a dashed line."""
    fig = go.Figure()
    points = [(e["epoch"], e["metrics"]["probe_acc"], e["metrics"].get("probe_majority")) for e in evaluations
              if "probe_acc" in e["metrics"]]
    if points:
        epochs, acc, chance = zip(*points)
        fig.add_trace(go.Scatter(x=epochs, y=acc, mode="lines+markers", name="probe accuracy (predict group from embedding)"))
        fig.add_trace(go.Scatter(x=epochs, y=chance, mode="lines", name="chance (majority group rate)", line=dict(dash="dash")))
    fig.update_layout(title="Bias probe: can the group be read from the embedding?", xaxis_title="epoch",
                      yaxis_title="held-out accuracy", yaxis_range=[0, 1.02], **_LAYOUT)
    return fig
