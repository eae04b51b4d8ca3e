"""Compare: every run in one table; the selected runs' metrics side by side, fairness against quality, cluster × group counts."""
import dataclasses
import datetime as dt
import html
import json

import pandas as pd
import streamlit as st

from dashboard_lib import methods
from dashboard_lib.auditing import saved_cluster_names
from dashboard_lib.metrics import METRIC_DEFINITIONS
from dashboard_lib.plots import count_heatmap, metric_bars, pareto_scatter
from dashboard_lib.projection import cluster_group_counts, label_names, projector_for
from dashboard_lib.report import figures_page
from dashboard_lib.state import ensure_navigation, job_registry, run_store, select_run, selected_run_id
from dashboard_lib.text import md, to_csv
from dashboard_lib.ui import METHOD_METRICS, metric_help

BAR_DEFAULT = ["acc", "nmi", "ari", "balance", "mnce", "f_beta"]  # a clustering's bars; a classifier's: its headline
HEADLINE_METRICS = methods.Method.headline_metrics  # a clustering's; a classifier declares its own
# The Pareto chart's quality (x) and fairness (y) choices for each kind of task (a sweep's first pair, sweeps.PARETO_AXES).
PARETO_CHOICES = {"clustering": (("acc", "nmi"), ("balance", "mnce", "entropy")),
                  "classifier": (("avg_acc", "unbiased_acc"), ("worst_group_acc",))}
DEFAULT_SELECTION = 5
HEATMAPS_PER_ROW = 3
SELECTION_KEY = "compare_runs"

ensure_navigation()
store, registry = run_store(), job_registry()

st.title("Compare runs")
st.caption("Every run in the store with its settings and final metrics (hover a column's name for its definition). "
           "Choose runs to put their metrics side by side, see which runs trade quality for fairness best (the "
           "Pareto front), and compare how their clusters split the groups.")

flash = st.session_state.pop("compare_flash", None)
if flash:
    st.success(flash)

runs = store.list_runs()
if not runs:
    st.info("No runs yet. Train a few on the Train page (for example k-means and a fair method on the same data), "
            "then compare them here.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()


def _with_metrics(run):
    """The run as the table shows it: a run that recorded no metrics (running, interrupted) with its last evaluation's,
    kept from that evaluation, as a stopped run keeps them."""
    if run.metrics:
        return run
    evaluations = store.evaluations(run.id)
    if not evaluations:
        return run
    return dataclasses.replace(run, metrics=evaluations[-1]["metrics"], kept_from_epoch=evaluations[-1]["epoch"])


def method_of(run) -> type[methods.Method]:
    """The run's method class; a clustering made elsewhere (the Audit page's runs) reads as the base clustering one."""
    return methods.REGISTRY.get(run.method, methods.Method)


def bar_defaults(classes) -> list[str]:
    """The metrics the bars start on: a clustering's BAR_DEFAULT, a classifier's declared headline metrics (a mixed
    selection: both, in the selection's order)."""
    return list(dict.fromkeys(k for cls in classes for k in (BAR_DEFAULT if cls.kind == "clustering" else cls.headline_metrics)))


def metrics_from(run) -> str:
    """Where a row's metrics come from: the end of training, or an earlier evaluation of a run that did not finish."""
    cls = methods.REGISTRY.get(run.method)  # None: a clustering made elsewhere (the Audit page's runs)
    return run.metrics_origin(cls.eval_unit if cls else "epoch")


def _param_help() -> dict[str, str]:
    helps = {}
    for cls in methods.REGISTRY.values():
        for p in cls.params:
            helps.setdefault(p.name, f"{p.label}: {p.help} ({cls.name})")
    return helps


def runs_frame(runs, finals: dict[str, dict]) -> pd.DataFrame:
    """One row per run: identity, settings, final metrics (runs as _with_metrics gives them, finals: run id → their
    metrics; nothing computed here)."""
    rows = []
    # the method-specific metrics some run reports (Inv-SENnet's same-group link share, ClusterFix's group accuracies…)
    # and the headline metrics of each kind of task among the runs, clustering first
    by_kind = {method_of(run).kind: method_of(run) for run in runs}
    headline = [*(HEADLINE_METRICS if "clustering" in by_kind or not by_kind else ()),
                *(by_kind["classifier"].headline_metrics if "classifier" in by_kind else ())]
    reported = (k for k in METHOD_METRICS if any(isinstance(f.get(k), (int, float)) for f in finals.values()))
    metrics = list(dict.fromkeys([*headline, *reported]))
    for run in runs:
        final = finals[run.id]
        row = {"run": run.id, "method": run.method, "dataset": run.dataset_label, "status": run.status,
               "metrics from": metrics_from(run),
               "created": dt.datetime.fromtimestamp(run.created), "seconds": run.seconds, "seed": run.seed,
               "device": run.device, "threads": run.threads,
               "data options": ", ".join(f"{k}={v}" for k, v in (run.config.get("dataset_options") or {}).items())}
        row.update({f"hp.{k}": v for k, v in run.hparams.items()})
        row.update({key: final.get(key) if isinstance(final.get(key), (int, float)) else None for key in metrics})
        rows.append(row)
    frame = pd.DataFrame(rows)
    hp_columns = sorted(c for c in frame.columns if c.startswith("hp."))
    fixed = ["run", "method", "dataset", "status", "metrics from", *metrics, "created", "seconds", "seed", "device", "threads", "data options"]
    return frame[fixed + hp_columns]


def column_config(frame: pd.DataFrame) -> dict:
    helps = _param_help()
    config = {
        "run": st.column_config.TextColumn("run", help="The run's id: start time, method, and a random suffix.", pinned=True),
        "status": st.column_config.TextColumn("status", help="running, finished, stopped (by you), failed (see Monitor) "
                                                             "or interrupted (the app stopped while it trained)."),
        "created": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
        "seconds": st.column_config.NumberColumn("time (s)", format="%.0f", help="Wall-clock training time."),
        "metrics from": st.column_config.TextColumn("metrics from", help="final: the evaluation at the end of training. "
                                                    "For a run that stopped or failed: the last evaluation before it "
                                                    "ended (its epoch or iteration), not a final result."),
        "data options": st.column_config.TextColumn("data options", help="The dataset options the run used (n = subset size)."),
    }
    for key in (*HEADLINE_METRICS, *METHOD_METRICS):  # a classifier's headline is among these
        config[key] = st.column_config.NumberColumn(METRIC_DEFINITIONS.get(key, {}).get("label", key), format="%.3f",
                                                    help=metric_help(key))
    for column in frame.columns:
        if column.startswith("hp."):
            name = column[3:]
            config[column] = st.column_config.Column(name, help=helps.get(name, "A hyperparameter of the method."))
    return config


def run_settings(run) -> dict:
    """What can tell two runs of one method apart: dataset, its options, hyperparameters, seed. A dataset option whose
    name a hyperparameter also has (or "seed", the subset's draw) is prefixed "data."."""
    options = run.config.get("dataset_options") or {}
    clash = set(run.hparams) | {"seed", "dataset"}
    return {"dataset": run.dataset_label, **{(f"data.{k}" if k in clash else k): v for k, v in options.items()},
            **run.hparams, "seed": run.seed}


def short_label(run, settings: dict, differing: list[str]) -> str:
    """method · the settings (run_settings) that differ among the compared runs of that method."""
    text = ", ".join(f"{k}={settings[k]:g}" if isinstance(settings[k], float) else f"{k}={settings[k]}"
                     for k in differing if k in settings)
    return f"{run.method} · {text}" if text else run.method


@st.cache_data(show_spinner=False, max_entries=256)
def names_for(run_id: str, dataset: str, options_json: str) -> tuple[list[str], list[str] | None]:
    return label_names(store.get_run(run_id))


# --- filters and table ----------------------------------------------------------------------------------------
filters = st.columns(3)
chosen = {}
for column, (field, title) in zip(filters, (("dataset_label", "Dataset"), ("method", "Method"), ("status", "Status"))):
    values = sorted({getattr(r, field) for r in runs})
    chosen[field] = column.multiselect(title, values, key=f"filter.{field.split('_')[0]}", placeholder="all")
shown = [r for r in runs if all(not chosen[f] or getattr(r, f) in chosen[f] for f in chosen)]
if not shown:
    st.info("No run matches these filters: clear one of them.")
    st.stop()

by_id = {r.id: r for r in shown}
table_runs = [_with_metrics(r) for r in shown]  # once: a running run's come from its evaluations on disk
finals = {r.id: method_of(r).shown_metrics(r.metrics or {}) for r in table_runs}  # the numbers every page shows
frame = runs_frame(table_runs, finals)
shown_ids = list(frame["run"])


def _table_selected() -> None:
    rows = st.session_state["runs_table"].selection.rows
    st.session_state[SELECTION_KEY] = [shown_ids[i] for i in rows if i < len(shown_ids)]


st.dataframe(frame, column_config=column_config(frame), hide_index=True, width="stretch", key="runs_table",
             on_select=_table_selected, selection_mode="multi-row", height=min(400, 38 + 35 * len(frame)))
st.caption(f"{len(shown)} of {len(runs)} runs. Tick rows (left edge) or use the box below to choose the runs to compare. "
           "Metrics are the final ones (a stopped or failed run shows its last evaluation's).")

def task(run) -> str:
    return "classification" if method_of(run).kind == "classifier" else "clustering"


if SELECTION_KEY not in st.session_state:  # the newest finished run's dataset and kind of task: one comparable chart
    done = [r for r in shown if r.metrics] or shown
    first = done[0]
    st.session_state[SELECTION_KEY] = [r.id for r in done if r.dataset_label == first.dataset_label and task(r) == task(first)][:DEFAULT_SELECTION]
st.session_state[SELECTION_KEY] = [i for i in st.session_state[SELECTION_KEY] if i in by_id]
labels = {r.id: r.label() for r in shown}
selected_ids = st.multiselect("Runs to compare", shown_ids, key=SELECTION_KEY, format_func=labels.get,
                              placeholder="choose runs to compare")
if not selected_ids:
    st.info("Choose at least one run above (tick its row in the table, or pick it in the box) to compare.")
    st.stop()
selected = [by_id[i] for i in selected_ids]
selected_frame = frame[frame["run"].isin(selected_ids)]
mixed_data = sorted({r.dataset_label for r in selected})
mixed_tasks = sorted({task(r) for r in selected})
if len(mixed_data) > 1 or len(mixed_tasks) > 1:
    what = (f"{len(mixed_data)} datasets ({', '.join(md(d) for d in mixed_data)})" if len(mixed_data) > 1 else "") + \
        (" and " if len(mixed_data) > 1 and len(mixed_tasks) > 1 else "") + \
        ("both classifier and clustering runs" if len(mixed_tasks) > 1 else "")
    st.warning(f"The selection mixes {what}: their numbers share the charts below but do not measure the same thing. "
               "Compare runs of one dataset and one kind of task (the Dataset filter above helps).",
               icon=":material/warning:")

settings = {r.id: run_settings(r) for r in selected}
differing = {}  # per method, the settings that differ among its selected runs: what tells them apart
for method in {r.method for r in selected}:
    same = [settings[r.id] for r in selected if r.method == method]
    names = list(dict.fromkeys(k for one in same for k in one))  # dataset, its options, hyperparameters, seed
    differing[method] = [k for k in names if len({json.dumps(one.get(k)) for one in same}) > 1]
run_labels = {}
for r in selected:  # unique labels: a suffix when two runs share method and settings
    label = short_label(r, settings[r.id], differing[r.method])
    run_labels[r.id] = label if label not in run_labels.values() else f"{label} ({r.id[-4:]})"
figures = {}

# --- metrics side by side -------------------------------------------------------------------------------------
st.subheader("Metrics side by side")
numeric = [k for k in METRIC_DEFINITIONS if any(isinstance(finals[r].get(k), (int, float)) for r in selected_ids)]
kinds = tuple(sorted({method_of(r).kind for r in selected}))
if st.session_state.get("bar_metrics_kinds") != kinds or "bar_metrics" not in st.session_state:
    # a new kind of selection starts on its kind's metrics: a classifier's accuracies, not ACC/NMI/Balance
    st.session_state["bar_metrics_kinds"] = kinds
    st.session_state["bar_metrics"] = [k for k in bar_defaults(method_of(r) for r in selected) if k in numeric]
st.session_state["bar_metrics"] = [k for k in st.session_state["bar_metrics"] if k in numeric]
if len(kinds) > 1:
    st.caption("The selection holds classifiers and clusterings: the bars start on each kind's metrics. A classifier's "
               "predictions are not clusters (no ACC, NMI or Balance); a clustering has no group accuracies.")
bar_keys = st.multiselect("Metrics", numeric, key="bar_metrics",
                          format_func=lambda k: METRIC_DEFINITIONS[k]["label"],
                          help="Each metric's definition is in the table's column header. Entropy ranges up to ln K, "
                               "the others up to 1.")
if bar_keys:
    figures["metrics"] = metric_bars({run_labels[i]: finals[i] for i in selected_ids}, bar_keys)
    st.plotly_chart(figures["metrics"], key="bars")
    st.caption("Higher is better for all of them except the bias-probe accuracy (lower = the group is harder to read "
               "from the embedding; chance is the majority-group rate) and the same-group link share (lower = the "
               "self-expression links mix the groups more; chance is the sum of the squared group shares).")

# --- fairness versus quality ----------------------------------------------------------------------------------
st.subheader("Fairness versus quality")
axes = st.columns([1, 1, 2])
QUALITY, FAIRNESS = PARETO_CHOICES["classifier" if kinds == ("classifier",) else "clustering"]
for key, choices in (("pareto_x", QUALITY), ("pareto_y", FAIRNESS)):
    if st.session_state.get(key) not in choices:  # the selection changed kind: start on that kind's first pair
        st.session_state.pop(key, None)
x_key = axes[0].selectbox("Quality (x)", QUALITY, format_func=lambda k: METRIC_DEFINITIONS[k]["label"], key="pareto_x",
                          help=" ".join(metric_help(k) for k in QUALITY))
y_key = axes[1].selectbox("Fairness (y)", FAIRNESS, format_func=lambda k: METRIC_DEFINITIONS[k]["label"], key="pareto_y",
                          help=" ".join(metric_help(k) for k in FAIRNESS))
axes[2].caption("Up and to the right is better. Runs on the dotted **Pareto front** are the ones no other selected run "
                "beats on both axes at once: the best trade-offs. Hover a point for its full settings.")
plotted = [r for r in selected if isinstance(finals[r.id].get(x_key), (int, float)) and isinstance(finals[r.id].get(y_key), (int, float))]
if plotted:
    figures["pareto"] = pareto_scatter(
        [finals[r.id][x_key] for r in plotted], [finals[r.id][y_key] for r in plotted], [run_labels[r.id] for r in plotted],
        x_key=x_key, y_key=y_key, groups=[r.method for r in plotted],
        hover=[[r.id, *(f"{k} = {v}" for k, v in r.hparams.items())] for r in plotted])  # lines, escaped by the figure
    st.plotly_chart(figures["pareto"], key="pareto")
missing = [run_labels[r.id] for r in selected if r not in plotted]
if missing:
    st.caption(f"Not plotted (no {METRIC_DEFINITIONS[x_key]['label']} or {METRIC_DEFINITIONS[y_key]['label']}): "
               + ", ".join(md(m) for m in missing) + ". Data without classes has no ACC or NMI; one group has no fairness metric"
               + ("; a classifier's predictions are not clusters (compare classifiers alone for their accuracies)."
                  if len(kinds) > 1 else "."))

# --- cluster × group counts -----------------------------------------------------------------------------------
st.subheader("Cluster × group counts")
st.caption("At each run's last saved epoch. Colour = each group's share of the cluster: a fair run's rows all look "
           "like its *all data* row; a 0 cell is a cluster that misses a group (Balance and MNCE are then 0).")
for start in range(0, len(selected), HEATMAPS_PER_ROW):
    row = st.columns(HEATMAPS_PER_ROW)
    for column, run in zip(row, selected[start:start + HEATMAPS_PER_ROW]):
        with column:
            saved = [e["epoch"] for e in store.evaluations(run.id) if e["has_arrays"]]
            if not saved:
                st.caption(f"**{md(run_labels[run.id])}**: no saved arrays.")
                continue
            arrays = store.load_arrays(run.id, saved[-1])
            groups, _ = names_for(run.id, run.dataset, json.dumps(run.config.get("dataset_options"), sort_keys=True))
            clusters, counts = cluster_group_counts(arrays["assignment"], arrays["g"], len(groups))
            fig = count_heatmap(counts, saved_cluster_names(arrays, clusters), groups or range(counts.shape[1]),
                                title=f"{run_labels[run.id]} · epoch {saved[-1]}")
            figures[f"counts {run.id}"] = fig
            st.plotly_chart(fig, key=f"heatmap.{run.id}")

# --- export and delete ----------------------------------------------------------------------------------------
st.subheader("Export or delete the selection")
stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")


def _html() -> str:
    runs = "<p>" + "<br>".join(html.escape(f"{run_labels[r.id]}: {r.id}") for r in selected) + "</p>"
    return figures_page(f"Fair Clustering Lab: {len(selected)} runs compared", runs, figures)


actions = st.columns(3)
actions[0].download_button("Download table (CSV)", data=lambda: to_csv(selected_frame), file_name=f"fclab_runs_{stamp}.csv",
                           mime="text/csv", on_click="ignore", icon=":material/table_view:", width="stretch",
                           help="The selected runs' rows: settings and final metrics.")
actions[1].download_button("Download figures (HTML)", data=_html, file_name=f"fclab_compare_{stamp}.html", mime="text/html",
                           on_click="ignore", icon=":material/bar_chart:", width="stretch",
                           help="All the figures above in one interactive page that opens offline. For a PNG of one "
                                "figure, use the camera icon at its top right.")


def _ask_delete() -> None:
    st.session_state["confirm_delete"] = list(st.session_state.get(SELECTION_KEY, []))


def _cancel_delete() -> None:
    st.session_state.pop("confirm_delete", None)


def _delete(run_ids: list[str]) -> None:
    projector = projector_for(store)
    for run_id in run_ids:
        projector.forget_run(run_id)
        store.delete_run(run_id)
    st.session_state.pop("confirm_delete", None)
    st.session_state[SELECTION_KEY] = [i for i in st.session_state.get(SELECTION_KEY, []) if i not in run_ids]
    if selected_run_id() in run_ids:
        select_run(None)
    st.session_state["compare_flash"] = f"Deleted {len(run_ids)} run(s) and their files."


actions[2].button(f"Delete {len(selected)} selected run(s)…", key="delete", on_click=_ask_delete, icon=":material/delete:",
                  width="stretch", help="Removes the runs, their series, evaluations and files. You confirm first.")
pending = [i for i in st.session_state.get("confirm_delete", []) if i in by_id]
if pending:
    busy = [i for i in pending if by_id[i].status == "running"]
    with st.container(border=True):
        if busy:
            st.warning(f"{len(busy)} of these runs are still training ({md(', '.join(busy))}): stop them on the Monitor page "
                       "first, then delete.")
            st.button("Cancel", key="delete_cancel", on_click=_cancel_delete)
        else:
            st.warning(f"Delete {len(pending)} run(s) for good? Their records, series, evaluations and files "
                       "(embeddings, weights, cached layouts) are removed; this cannot be undone.\n\n"
                       + "\n".join(f"- {md(labels[i])}" for i in pending))
            confirm = st.columns([1, 1, 3])
            confirm[0].button(f"Yes, delete {len(pending)}", key="delete_confirm", type="primary", on_click=_delete, args=(pending,))
            confirm[1].button("Cancel", key="delete_cancel", on_click=_cancel_delete)
