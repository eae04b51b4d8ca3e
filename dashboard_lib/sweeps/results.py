"""A sweep's results: one row per trial, aggregates over seeds, the metrics it is read by, and its figures (shared by
the Sweep page and the CLI's report)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import methods
from .spec import SweepSpec

BANDS = {"minmax": "min–max over seeds", "std": "mean ± one standard deviation over seeds"}


def sweep_frame(store, sweep_id: str) -> pd.DataFrame:
    """One row per run of the sweep: run id, method, status, seed, each swept value, the final (or, for a run that did not
    finish, last kept) numeric metrics with the epoch of the evaluation they come from, the method's signal series at
    their last step, and seconds."""
    sweep = store.get_sweep(sweep_id)
    names = [a["name"] for a in sweep.spec["axes"]]
    compared = [e["method"] for e in sweep.spec.get("compare") or []]
    rows = []
    last_epochs = store.last_epochs(sweep_id)
    for run in store.list_runs(sweep_id=sweep_id):
        row = {"run_id": run.id, "method": run.method, "status": run.status, "seed": run.seed, "seconds": run.seconds}
        row.update({name: run.hparams.get(name) for name in names})
        row["metrics_epoch"] = last_epochs.get(run.id)
        shown = methods.get_method(run.method).shown_metrics(run.metrics or {})  # as every page shows the run
        row.update({k: v for k, v in shown.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        row.update(store.last_scalars(run.id, methods.get_method(run.method).signal_series))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["run_id", "method", "status", "seed", "seconds", *names] if not rows else None)
    if not rows:
        return frame
    if compared:  # in the comparison's order of methods
        frame["method"] = pd.Categorical(frame["method"], categories=list(dict.fromkeys([*compared, *frame["method"]])))
    return frame.sort_values(["method", *names, "seed"], kind="stable").reset_index(drop=True).astype({"method": str})


def aggregate(frame: pd.DataFrame, axes: list[str], metric: str, band: str = "minmax") -> pd.DataFrame:
    """Over the finished runs: per grid point, the metric's mean over seeds and its band (BANDS), and n seeds."""
    if band not in BANDS:
        raise ValueError(f"band must be one of {', '.join(BANDS)}")
    columns = [*axes, "mean", "low", "high", "n"]
    if frame.empty or metric not in frame:
        return pd.DataFrame(columns=columns)
    done = frame[(frame["status"] == "finished") & frame[metric].notna()]
    if done.empty:
        return pd.DataFrame(columns=columns)
    grouped = done.groupby(axes, sort=True)[metric]
    out = grouped.agg(mean="mean", n="count", lo="min", hi="max", sd=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
    if band == "minmax":
        out["low"], out["high"] = out["lo"], out["hi"]
    else:
        out["low"], out["high"] = out["mean"] - out["sd"], out["mean"] + out["sd"]
    return out.reset_index()[columns]


# What a sweep of each kind of method is read by: quality, then fairness (the method's own signal metrics and the
# group probe follow), and the quality (x) and fairness (y) axes of its Pareto scatter.
KIND_METRICS = {"classifier": ("worst_group_acc", "unbiased_acc", "avg_acc"),
                "clustering": ("acc", "nmi", "balance", "mnce", "entropy", "f_beta")}
PARETO_AXES = {"classifier": ("avg_acc", "worst_group_acc"), "clustering": ("acc", "balance")}
# What a metric is read against, where the runs record it: the chance rate of a group predictor, the group-blind value.
REFERENCES = {"probe_acc": ("probe_majority", "chance (majority group)"), "disc_acc": ("disc_chance", "chance (1/M)"),
              "same_group_share": ("same_group_chance", "group-blind value")}


def sweep_metrics(*method_ids: str) -> list[str]:
    """The metrics a sweep of these methods (of one kind) is read by: their kind's quality and fairness, each one's
    own signal, the group probe."""
    classes = [methods.get_method(m) for m in method_ids]
    signals = [k for cls in classes for k in cls.signal_metrics]
    return list(dict.fromkeys([*KIND_METRICS[classes[0].kind], *signals, "probe_acc"]))


def pareto_axes(method: str) -> tuple[str, str]:
    """Quality (x) and fairness (y) of the sweep's scatter: classifiers by accuracy and worst-group accuracy."""
    return PARETO_AXES[methods.get_method(method).kind]


def method_means(frame: pd.DataFrame, metrics_shown: list[str]) -> dict[str, dict[str, float]]:
    """Per method, each metric's mean over its finished runs (a comparison's bars), in the frame's order of methods."""
    done = frame[frame["status"] == "finished"] if not frame.empty else frame
    shown = [m for m in metrics_shown if m in done]
    return {method: {m: float(v) for m, v in group[shown].mean(numeric_only=True).items() if pd.notna(v)}
            for method, group in done.groupby("method", sort=False)} if not done.empty else {}


def sweep_figures(sweep, frame: pd.DataFrame, metrics_shown: list[str] | None = None, band: str = "minmax",
                  pareto: tuple[str, str] | None = None) -> dict:
    """The sweep's figures: per metric, a curve against the parameter (one axis) or a heatmap (two), then the
    fairness-versus-quality scatter of all its finished runs with their Pareto front (each point's customdata[1]
    is its run id)."""
    from .. import plots

    spec = SweepSpec.from_dict(sweep.spec)
    names = [a.name for a in spec.axes]
    params = {p.name: p for p in methods.get_method(spec.method).params}
    symbols = {n: params[n].symbol for n in names if n in params}
    figures = {}
    shown = metrics_shown or sweep_metrics(*spec.method_ids)
    if spec.compare:
        means = method_means(frame, shown)
        if means:
            figures["methods"] = plots.metric_bars(means, shown, title="Each method's mean over its finished seeds")
        shown = []  # no parameter to draw a curve against
    for metric in shown:
        agg = aggregate(frame, names, metric, band)
        if agg.empty:
            continue
        if len(names) == 1:
            values = agg[names[0]].to_numpy(float)
            log_x = bool(len(values) > 2 and (values > 0).all() and values.max() / values.min() >= 20)
            column, text = REFERENCES.get(metric, (None, ""))
            reference = None
            if column in frame and frame[column].notna().any():
                reference = (float(frame[column].mean()), f"{text}: {frame[column].mean():.3f}")
            figures[metric] = plots.sweep_curve(agg, names[0], metric, band_label=BANDS[band], symbols=symbols, log_x=log_x,
                                                reference=reference)
        else:
            figures[metric] = plots.sweep_heatmap(agg, names, metric, symbols=symbols)
    x_key, y_key = pareto or pareto_axes(spec.method)
    done = frame[(frame["status"] == "finished")] if not frame.empty else frame
    if not done.empty and x_key in done and y_key in done:
        done = done[done[x_key].notna() & done[y_key].notna()]
        # A comparison's points are told apart by colour (one legend entry per method); a sweep's by their values.
        labels = [", ".join(f"{symbols.get(n) or n}={r[n]:g}" for n in names) for _, r in done.iterrows()]
        figures["pareto"] = plots.pareto_scatter(
            done[x_key], done[y_key], labels, x_key=x_key, y_key=y_key, ids=done["run_id"].tolist(),
            groups=done["method"].tolist() if spec.compare else None,
            hover=[f"{r.method} · {r.run_id} · seed {r.seed}" for r in done.itertuples()],
            title="Fairness versus quality: every finished run of the sweep (click a point to open its run)")
    return figures
