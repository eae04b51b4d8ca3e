"""Monitor: a run's status, live losses, metrics at evaluation epochs, and its record."""
import time

import streamlit as st

from dashboard_lib.data import REGISTRY as DATASETS
from dashboard_lib.methods import REGISTRY as METHODS, Method
from dashboard_lib.plots import MAX_POINTS_PER_SERIES, accuracy_figure, metrics_figure, probe_figure, signals_figure, split_signals
from dashboard_lib.state import ensure_navigation, job_registry, run_store
from dashboard_lib.text import md
from dashboard_lib.ui import METHOD_METRICS, group_models_frame, metric_row, progress_text, reference_notes, run_picker, status_badge

ensure_navigation()

REFRESH_SECONDS = 1.0

store, registry = run_store(), job_registry()
registry.reconcile()

st.title("Monitor")
runs = store.list_runs()
if not runs:
    st.info("No runs yet. Start one on the Train page; it appears here while it trains.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

run_id = run_picker(runs, key="run_picker", default=next((r.id for r in runs if r.status == "running"), None))
run = store.get_run(run_id)
head = st.columns([3, 1])
with head[0]:
    method_name = METHODS[run.method].name if run.method in METHODS else run.method
    dataset_name = run.dataset_label if run.dataset_label != run.dataset or run.dataset not in DATASETS else DATASETS[run.dataset].name
    st.subheader(f"{md(method_name)} on {md(dataset_name)}")  # an upload's or an audit's name is the user's
    status_badge(run.status)
    st.caption(f"Run {md(run.id)} · device {md(run.device)} · seed {run.seed}")
with head[1]:
    if run.status == "running":
        if registry.is_running(run.id):
            st.button("Stop training", key="stop", type="secondary", on_click=registry.stop, args=(run.id,), width="stretch",
                      help="Ask the run to stop after its current step; what it logged is kept.")
        else:
            st.caption(f"Running in another process (pid {run.owner_pid}); stop it there.")

if run.status == "failed":
    st.error(f"This run failed: {md(run.error)}")
    if run.error_detail:
        with st.expander("Technical details"):
            st.code(run.error_detail)
elif run.status == "interrupted":
    st.warning(md(run.error))
elif run.status == "stopped":
    st.info("Stopped by the user. The series and evaluations logged until then are kept.")


@st.fragment(run_every=REFRESH_SECONDS if run.status == "running" else None)
def live_view(run_id: str, status_when_drawn: str) -> None:
    """Everything that changes while the run trains; redrawn every second while it runs."""
    run = store.get_run(run_id)
    method = METHODS.get(run.method, Method)
    if run.status != status_when_drawn:  # it just ended: redraw the whole page (status, stop button, no more polling)
        st.rerun(scope="app")
    if run.status == "running":
        st.progress(min(max(run.progress, 0.0), 1.0), text=progress_text(run.progress, time.time() - run.created, run.stage))
    counts = store.scalar_counts(run_id)
    scalars = store.scalars(run_id, max_points=MAX_POINTS_PER_SERIES)
    evaluations = store.evaluations(run_id)
    if scalars.empty:
        st.caption("Waiting for the first logged step…")
    elif run.status != "running" and all(c == 1 for c, _ in counts.values()):
        # A one-pass method (the classic algorithms) logs each signal once: a row of numbers, not charts of one dot.
        st.markdown("**Objective and training signals** (one pass: one value each)")
        last = scalars.groupby("name", sort=False)["value"].last()
        st.dataframe(last.rename_axis("signal").reset_index(), hide_index=True, key="signals_table")
    else:
        st.caption(f"{sum(c for c, _ in counts.values())} points logged · last step {max(s for _, s in counts.values())}",
                   help="Every logged scalar counts as a point; long series are drawn thinned to "
                        f"{MAX_POINTS_PER_SERIES:,} points each.")
        signals = split_signals(scalars["name"].unique())
        log_y = st.session_state.get("log_y", False)
        main, others = (signals["losses"], signals["other"]) if signals["losses"] else (signals["other"], [])
        st.plotly_chart(signals_figure(scalars, main, log_y=log_y, title="Loss terms (each on its own scale)"
                                       if signals["losses"] else "Training signals"), key="loss_chart")
        if signals["accuracies"]:
            st.plotly_chart(accuracy_figure(scalars, signals["accuracies"], signals["chance"]), key="accuracy_chart")
            if method.accuracy_caption:
                st.caption(method.accuracy_caption)
        if others:
            with st.expander("Other training signals"):
                st.plotly_chart(signals_figure(scalars, others, title="Other training signals"), key="other_chart")
    unit = method.eval_unit
    if len(evaluations) > 1:  # one evaluation is a row of numbers (below), not a chart of one dot
        charts = st.columns(2)
        charts[0].plotly_chart(metrics_figure(evaluations, list(method.curve_metrics), unit=unit), key="metrics_chart")
        if any("probe_acc" in e["metrics"] or "same_group_share" in e["metrics"] for e in evaluations):
            charts[1].plotly_chart(probe_figure(evaluations, unit=unit), key="probe_chart")
    final = method.shown_metrics(run.metrics if run.status == "finished" else (evaluations[-1]["metrics"] if evaluations else {}))
    where = f"{unit} {evaluations[-1]['epoch']}" if evaluations else ""
    st.markdown(("**Final metrics**" + (f" ({where})" if len(evaluations) > 1 else "")) if run.status == "finished" else
                f"**Latest evaluation** ({where}; the run {'is still training' if run.status == 'running' else run.status + ': not final'})"
                if evaluations else "**Metrics**")
    metric_row(final, method.headline_metrics, notes=reference_notes(store, run, evaluations))
    metric_row(final, [k for k in METHOD_METRICS if k not in method.headline_metrics], empty=None)
    group_models = store.run_table(run_id, "group_models")
    if group_models:
        st.markdown("**Each group's own model** (DFC stage 2: the frozen clusterings L_s preserves)")
        st.dataframe(group_models_frame(group_models), hide_index=True, width="stretch", key="group_models_table")
        st.caption("ACC and NMI (arithmetic) on that group's samples alone: the shared encoder's k-means, where the "
                   "fair training starts, against the group's own model, trained on the group alone. A group model "
                   "that clusters its group no better than the shared start gives L_s little structure to keep.")


if run.status == "running" or any(c > 1 for c, _ in store.scalar_counts(run.id).values()):  # charts to scale
    st.toggle("Log scale for losses", key="log_y")
live_view(run.id, run.status)

with st.expander("Run record: configuration, data, environment"):
    st.json({"config": run.config, "dataset": run.dataset_info, "environment": run.environment}, expanded=False)
