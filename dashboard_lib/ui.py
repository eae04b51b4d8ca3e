"""Streamlit building blocks the pages share: forms built from Param declarations, status badges, metric rows."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from .auditing import saved_cluster_names
from .metrics import METRIC_DEFINITIONS, balance_ceiling, balance_per_cluster
from .params import Param
from .state import select_run, selected_run_id
from .text import md

STATUS_COLOURS = {"running": "blue", "finished": "green", "stopped": "orange", "failed": "red", "interrupted": "gray"}
# Metrics only some methods report (shown where a run has them).
METHOD_METRICS = ("nmi_geometric", "same_group_share", "min_class_recall", "tail_recall", "avg_acc", "unbiased_acc",
                  "worst_group_acc")
ERR_UNKNOWN_LINK = ("The link names run {run_id}, which is not in this run store (deleted, or from another "
                    "store). Pick a run from the list below.")
SHORT_LABELS = {"nmi": "NMI", "nmi_geometric": "NMI (geo.)", "entropy": "Entropy", "probe_acc": "Probe acc."}  # full label on hover


def param_input(param: Param, key: str, value=None):
    """One input for a declared parameter: its symbol and name as label, its help, range and source on hover.

    value: the starting value when it differs from the declared default (a schedule preset); the hover says so."""
    help_text = f"{param.help} Range {param.range_text()}." + (f" Default from {param.source}." if param.source else "")
    if value is None:
        value = param.default
    else:
        shown = f"{param.default:g}" if param.kind in ("int", "float") else param.default
        help_text += f" Quick-demo value; the paper's default is {shown}."
    if param.kind == "bool":
        return st.checkbox(param.label, value=bool(value), key=key, help=help_text)
    if param.kind == "text":
        return st.text_input(param.label, value=str(value), key=key, help=help_text)
    if param.kind == "choice":
        return st.selectbox(param.label, list(param.choices), index=list(param.choices).index(value), key=key, help=help_text)
    low = None if param.low is None or param.low_open else param.low
    high = None if param.high is None or param.high_open else param.high
    if param.kind == "int":
        return st.number_input(param.label, min_value=None if low is None else int(low), max_value=None if high is None else int(high),
                               value=int(value), step=1, key=key, help=help_text)
    value = float(value)
    step = 10 ** math.floor(math.log10(abs(value))) if value else 0.01
    return st.number_input(param.label, min_value=None if low is None else float(low), max_value=None if high is None else float(high),
                           value=value, step=float(step), format="%g", key=key, help=help_text)


def param_form_values(params, key_prefix: str, overrides: dict | None = None, notes: dict[str, str] | None = None) -> dict:
    """Inputs for every declared parameter, in declaration order, starting at overrides where given, each with its note
    (notes: name → a line shown under the field, e.g. what K = 0 means here); returns {name: value}."""
    overrides, notes, values = overrides or {}, notes or {}, {}
    for p in params:
        values[p.name] = param_input(p, f"{key_prefix}.{p.name}", overrides.get(p.name))
        if notes.get(p.name):
            st.caption(notes[p.name])
    return values


def status_badge(status: str) -> None:
    st.badge(status, color=STATUS_COLOURS.get(status, "gray"))


def metric_help(key: str, metrics: dict | None = None) -> str:
    """The metric's exact definition (and, for Balance, this data's ceiling) for its hover text."""
    definition = METRIC_DEFINITIONS.get(key, {})
    text = f"{definition.get('label', key)}: {definition.get('definition', '')}. Range {definition.get('range', '?')}."
    if key == "balance" and metrics and "balance_ceiling" in metrics:
        text += f" Its ceiling on this dataset is {metrics['balance_ceiling']:.3f}."
    if key == "probe_acc" and metrics and "probe_majority" in metrics:
        text += f" Chance (majority group) here: {metrics['probe_majority']:.3f}."
    if key == "same_group_share" and metrics and "same_group_chance" in metrics:
        text += f" Chance (links blind to the group) here: {metrics['same_group_chance']:.3f}."
    return text


def metric_row(metrics: dict, keys, empty: str | None = "No metrics yet: they appear at the first evaluation.",
               notes: dict[str, str] | None = None) -> None:
    """The metrics among keys that metrics holds, side by side, each with its definition on hover and its note
    (its best value, the cluster that sets it: reference_notes) under it (empty: the caption when there are none;
    None = show nothing)."""
    shown = [k for k in keys if isinstance(metrics.get(k), (int, float))]
    if not shown:
        if empty:
            st.caption(empty)
        return
    for column, key in zip(st.columns(len(shown)), shown):
        label = SHORT_LABELS.get(key) or METRIC_DEFINITIONS.get(key, {}).get("label", key)
        column.metric(label, f"{metrics[key]:.3f}", help=metric_help(key, metrics))
        if notes and notes.get(key):
            column.caption(md(notes[key]))  # notes name clusters and groups from the user's data


def reference_notes(store, run, evaluations: list[dict]) -> dict[str, str]:
    """What each headline number is measured against, from the run's last saved evaluation: Balance's ceiling and
    the cluster that sets it (Balance is a minimum over clusters), Entropy's maximum ln K, the probe's chance."""
    from .projection import label_names

    saved = [e for e in evaluations if e.get("has_arrays")]
    if not saved:
        return {}
    metrics, notes = saved[-1]["metrics"], {}
    try:
        arrays = store.load_arrays(run.id, saved[-1]["epoch"])
    except (FileNotFoundError, OSError, ValueError):
        return notes
    groups, _ = label_names(run)
    if "balance" in metrics and "g" in arrays:
        clusters, counts, ratio = balance_per_cluster(arrays["assignment"], arrays["g"], max(len(groups), int(arrays["g"].max()) + 1))
        worst = int(ratio.argmin())
        mix = " / ".join(f"{int(n):,} {groups[j] if j < len(groups) else j}" for j, n in enumerate(counts[worst]))
        worst_name = saved_cluster_names(arrays, clusters[worst:worst + 1])[0]
        notes["balance"] = f"ceiling {balance_ceiling(arrays['g']):.3f} · set by cluster {worst_name} ({mix})"
    if "entropy" in metrics:
        k = len(np.unique(arrays["assignment"]))
        notes["entropy"] = f"maximum ln K = {math.log(k):.3f} (K = {k} clusters)" if k > 1 else "one cluster: maximum 0"
    if "probe_majority" in metrics:
        notes["probe_acc"] = f"chance (majority group) {metrics['probe_majority']:.3f}"
    return notes


def run_picker(runs, *, key: str, default: str | None = None) -> str:
    """A run selectbox kept in the URL (?run=…): the URL's run when it exists, else `default`, else the newest."""
    ids = [r.id for r in runs]
    labels = {r.id: r.label() for r in runs}
    wanted = selected_run_id()
    if wanted and wanted not in labels:  # a stale or mistyped link: say so rather than show another run as if it were it
        st.warning(ERR_UNKNOWN_LINK.format(run_id=md(wanted)), icon=":material/link_off:")  # the URL is anyone's text
    if wanted not in labels:
        wanted = default if default in labels else ids[0]
    # The status is part of the key: when a run ends, its label (… · running · …) is drawn anew, not kept by the browser.
    status = next(r.status for r in runs if r.id == wanted)
    run_id = st.selectbox("Run", ids, index=ids.index(wanted), format_func=labels.get, key=f"{key}.{wanted}.{status}")
    if run_id != selected_run_id():
        select_run(run_id)
    return run_id


def table_uploader(label: str, key: str):
    """A CSV / Parquet / NPZ file input with the upload limits on hover (the Data and Audit pages)."""
    from .data import tables

    return st.file_uploader(label, type=list(tables.FORMATS), key=key,
                            help=f"At most {tables.MAX_BYTES // 2**20} MB and {tables.MAX_ROWS:,} rows.")


def progress_text(fraction: float, elapsed_s: float, stage: str = "") -> str:
    """What a progress bar says: the stage, the share done, the time elapsed and, once it can be told (5 % done), the
    time left at the pace so far."""
    def clock(seconds: float) -> str:
        seconds = int(max(seconds, 0))
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"

    parts = [stage] if stage else []
    parts += [f"{fraction:.0%}", f"elapsed {clock(elapsed_s)}"]
    if 0.05 <= fraction < 1:
        parts.append(f"about {clock(elapsed_s / fraction * (1 - fraction))} left")
    return " · ".join(parts)


GROUP_MODEL_COLUMNS = {"group": "Group", "samples": "Samples", "start_acc": "Shared k-means ACC", "model_acc": "Own model ACC",
                       "start_nmi": "Shared k-means NMI", "model_nmi": "Own model NMI",
                       "pretrain_epochs": "Pretraining epochs", "dec_epochs": "DEC epochs", "dec_stopped": "DEC stopped",
                       "source": "Source"}


def group_models_frame(rows: list[dict]):
    """DFC's per-group model table (Recorder.save_table rows) with readable column names, in a fixed order; the group
    names are the user's strings, shown as data (st.dataframe renders no Markdown)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    columns = [c for c in GROUP_MODEL_COLUMNS if c in frame.columns]
    return frame[columns].rename(columns=GROUP_MODEL_COLUMNS)
