"""Sweep: one or two hyperparameters on a grid × seeds, trained on Ray; curves, heatmaps and the Pareto front as runs finish."""
import datetime as dt
import os

import streamlit as st

from dashboard_lib import data as datasets
from dashboard_lib import methods
from dashboard_lib.metrics import METRIC_DEFINITIONS
from dashboard_lib.report import sweep_report
from dashboard_lib.state import data_dir, ensure_navigation, job_registry, run_store, sweep_runner
from dashboard_lib.sweeps import (BANDS, GRIDS, SWEEP_PRESETS, Axis, SweepSpec, estimate_time, slots, sweep_figures,
                                  sweep_frame, sweep_metrics)
from dashboard_lib.text import md, to_csv
from dashboard_lib.ui import param_form_values, param_input, status_badge

ensure_navigation()
REFRESH_SECONDS = 2.0
OWN = "Build your own"
GRID_LABELS = {"values": "list of values", "linear": "linear grid", "log": "log grid", "random": "random samples"}
FIGURES_PER_ROW = 3

store, registry, runner = run_store(), job_registry(), sweep_runner()
registry.reconcile()
runner.reconcile()
st.title("Sweep")
st.caption("Vary one or two of a method's hyperparameters over a grid, with several seeds, and read each metric against "
           "them. Every trial is a run of its own (Monitor shows it live), trained on Ray: a local Ray on this machine's "
           "cores by default, or a Ray cluster you name.")


def default_values(param) -> str:
    """A starting list around the declared default: ¼×, ½×, 1×, 2×, 4× (within the range), or 0…1 for a zero default."""
    d = param.default
    raw = [d / 4, d / 2, d, 2 * d, 4 * d] if d else [0, 0.5, 1]
    kept = []
    for v in raw:
        v = round(v) if param.kind == "int" else float(f"{v:.4g}")
        try:
            v = param.coerce(v)
        except ValueError:
            continue
        if v not in kept:
            kept.append(v)
    return ", ".join(f"{v:g}" for v in kept)


# --- a new sweep ------------------------------------------------------------------------------------------------------
with st.expander("New sweep", expanded=not store.list_sweeps()):
    preset_title = st.selectbox("Start from", [OWN, *SWEEP_PRESETS], key="sweep.preset",
                                help="The papers' parameter analyses, ready to run on the built-in data with the quick "
                                     "schedule; every field below can still be changed.")
    preset = SWEEP_PRESETS.get(preset_title)
    if preset:
        st.info(preset.description, icon=":material/menu_book:")
    base = preset.spec if preset else SweepSpec(dataset=datasets.DEFAULT_DATASET, method="fcmi", axes=[])
    k = f"sweep.{preset_title}"  # a new preset starts fresh widgets holding its values

    left, right = st.columns(2, gap="large")
    with left:
        dataset_ids = list(datasets.REGISTRY)
        dataset_id = st.selectbox("Dataset", dataset_ids, index=dataset_ids.index(base.dataset), key=f"{k}.dataset",
                                  format_func=lambda i: datasets.REGISTRY[i].name)
        spec_options = datasets.get_spec(dataset_id).options
        if spec_options:
            with st.expander("Dataset options"):
                dataset_options = param_form_values(spec_options, f"{k}.data.{dataset_id}",
                                                    base.dataset_options if dataset_id == base.dataset else None)
        else:
            dataset_options = {}
        if base.compare:
            # A comparison trains each method at its own settings (its schedule's, and its entry's): no axes to pick.
            method_id, cls, chosen, axes, variant = base.method, methods.get_method(base.method), [], [], None
            st.markdown("**Methods compared**, each at its own settings over the same seeds: "
                        + ", ".join(md(methods.REGISTRY[e.method].name) for e in base.compare))
            cols = st.columns(3)
            seeds = cols[0].number_input("Seeds per method", min_value=1, max_value=20, value=base.seeds,
                                         key=f"{k}.seeds", help="Each method is trained with this many seeds.")
            first_seed = cols[1].number_input("First seed", min_value=0, value=0, key=f"{k}.first_seed")
            schedule = cols[2].radio("Schedule", list(methods.PRESETS)[::-1], horizontal=True, key=f"{k}.schedule",
                                     help="Quick: each method's demo schedule (a method without one keeps its "
                                          "declared settings). Paper: the papers' schedules.")
        else:
            method_ids = list(methods.REGISTRY)
            method_id = st.selectbox("Method", method_ids, index=method_ids.index(base.method), key=f"{k}.method",
                                     format_func=lambda i: methods.REGISTRY[i].name)
            cls = methods.get_method(method_id)
            numeric = {p.name: p for p in cls.params if p.kind in ("int", "float")}
            preset_axes = [a for a in base.axes if a.name in numeric] if method_id == base.method else []
            chosen = st.multiselect("Swept hyperparameters (one or two)", list(numeric), max_selections=2,
                                    default=[a.name for a in preset_axes], key=f"{k}.{method_id}.axes",
                                    format_func=lambda n: numeric[n].label)
            axes = []
            for name in chosen:
                param = numeric[name]
                given = next((a for a in preset_axes if a.name == name), None)
                row = st.columns([2, 3])
                grid = row[0].selectbox(f"{param.label}: grid", GRIDS, format_func=GRID_LABELS.get, key=f"{k}.{method_id}.{name}.grid",
                                        help=f"{param.help} Declared range {param.range_text()}.")
                if grid == "values":
                    text = row[1].text_input(f"{param.label}: values", key=f"{k}.{method_id}.{name}.values",
                                             value=", ".join(f"{v:g}" for v in given.values) if given else default_values(param),
                                             help="Comma-separated.")
                    axes.append(Axis(name, values=[v.strip() for v in text.split(",") if v.strip()]))
                else:
                    cells = row[1].columns(4 if grid == "random" else 3)
                    low_default = param.default / 4 if param.default else (param.low or 0.0)
                    high_default = param.default * 4 if param.default else 1.0
                    low = cells[0].number_input("low", value=float(low_default), format="%g", key=f"{k}.{method_id}.{name}.low")
                    high = cells[1].number_input("high", value=float(high_default), format="%g", key=f"{k}.{method_id}.{name}.high")
                    count = cells[2].number_input("count", min_value=1, max_value=50, value=5, key=f"{k}.{method_id}.{name}.count")
                    seed = cells[3].number_input("seed", min_value=0, value=0, key=f"{k}.{method_id}.{name}.seed") if grid == "random" else 0
                    axes.append(Axis(name, grid=grid, low=low, high=high, count=int(count), seed=int(seed)))
            cols = st.columns(3)
            seeds = cols[0].number_input("Seeds per point", min_value=1, max_value=20, value=base.seeds, key=f"{k}.seeds",
                                         help="Each grid point is trained with this many seeds; the curves show their mean and band.")
            first_seed = cols[1].number_input("First seed", min_value=0, value=0, key=f"{k}.first_seed")
            schedule = cols[2].radio("Schedule", list(methods.PRESETS)[::-1] if cls.quick else ["paper"], horizontal=True,
                                     key=f"{k}.{method_id}.schedule",
                                     help="Quick: the method's demo schedule (minutes on a CPU). Paper: the paper's, for "
                                          "reproductions on a GPU or a cluster.")
            variant = None
            if cls.variants:
                names = list(cls.variants)
                start = names.index(base.variant) if method_id == base.method and base.variant in names else 0
                variant = st.radio("Variant", names, index=start, horizontal=True, key=f"{k}.{method_id}.variant",
                                   help="Where the paper's text and its public code differ, each is a variant: it sets the "
                                        "method's settings, the schedule the budget.")
                st.caption(md(f"Source: {cls.variants[variant].source}."))
    with right:
        preset_values = cls.settings(variant, schedule, dataset_id)
        fixed_defaults = {**preset_values, **(base.fixed if method_id == base.method else {})}
        # The quick schedule differs on a table (quick_tables), a variant sets its own values: their own keys, so
        # switching data or variant shows their values.
        schedule_key = f"{schedule}.table" if cls.preset(schedule, dataset_id) != cls.preset(schedule) else schedule
        if cls.variant(variant):
            schedule_key += f".variant.{variant}"
        fixed = {}
        if not base.compare:
            with st.expander("Fixed values of the other hyperparameters", expanded=False):
                fixed = {p.name: param_input(p, f"{k}.{method_id}.{schedule_key}.fixed.{p.name}",
                                             fixed_defaults.get(p.name)) for p in cls.params if p.name not in chosen}
        st.markdown("**Where the trials run**")
        address = st.text_input("Ray cluster address", key="sweep.address", placeholder="empty: a local Ray on this machine",
                                help="Leave empty to start a Ray on this machine (listening on 127.0.0.1 only). To use a "
                                     "cluster, give its address (HOST:PORT of its head, or ray://HOST:10001): every node "
                                     "needs this app's requirements installed; the code is sent by Ray, and each node "
                                     "reads datasets from its own data folder or download cache.").strip()
        res = st.columns(2)
        cpus = res[0].number_input("CPUs per trial", min_value=0.25, max_value=256.0, value=1.0, step=0.25, key="sweep.cpus",
                                   help="Cores each trial reserves (and its torch threads).")
        gpu_default = 0.5 if "cuda" in methods.available_devices() else 0.0
        gpus = res[1].number_input("GPUs per trial", min_value=0.0, max_value=8.0, value=gpu_default, step=0.25,
                                   key="sweep.gpus", help="A fraction shares one GPU: 0.5 trains two trials on it at once. "
                                                          "0 trains on the CPU.")

    spec = SweepSpec(dataset=dataset_id, method=method_id, axes=axes, seeds=int(seeds), first_seed=int(first_seed),
                     dataset_options=dataset_options,
                     preset=schedule, variant=variant, fixed=fixed, device="auto" if gpus else "cpu", data_dir=data_dir(),
                     cpus_per_trial=float(cpus), gpus_per_trial=float(gpus), title=preset_title if preset else "",
                     compare=list(base.compare))
    problem, configs = None, []
    if not axes and not base.compare:
        problem = "Pick one or two hyperparameters to sweep."
    else:
        try:
            configs = spec.trials()
        except ValueError as exc:
            problem = str(exc)
    if problem:
        st.warning(problem, icon=":material/tune:")
    else:
        parallel = slots({"CPU": os.cpu_count() or 1, "GPU": len([d for d in methods.available_devices() if d == "cuda"])},
                         spec) if not address else None
        guess = estimate_time(store, configs, parallel or 1)
        at_once = f"{parallel} at a time on this machine" if parallel else "as many at once as the cluster has room for"
        if guess:
            least = "at least " if guess.missing else "about "
            total = (f"{least}{guess.total_seconds / 60:.0f} min" if parallel else
                     f"{guess.seconds_per_trial * len(configs) / 60:.0f} min of trial time in all")
            unknown = (f"; {', '.join(guess.missing)} not counted: no finished run of theirs like these yet"
                       if guess.missing else "")
            st.markdown(f"**{len(configs)} trials**, {at_once}: {total} "
                        f"({guess.seconds_per_trial:.0f} s per trial, from the {md(guess.basis)}{md(unknown)}).")
        else:
            st.markdown(f"**{len(configs)} trials**, {at_once}. No estimate yet: this store has no finished "
                        f"{md(', '.join(spec.method_ids))} run on this dataset with this schedule. Train one on the "
                        "Train page first, or start: the progress bar below shows the time left once the first trials "
                        "finish.")

    def _start() -> None:
        try:
            sweep_id = runner.start(spec, address=address or None)
        except ValueError as exc:
            st.session_state["sweep.error"] = str(exc)
        else:
            st.query_params["sweep"] = sweep_id
            st.session_state.pop("sweep.error", None)

    st.button(f"Start {len(configs)} trials", type="primary", key="sweep.start", disabled=bool(problem), on_click=_start)
    if st.session_state.get("sweep.error"):
        st.error(f"Could not start: {md(st.session_state['sweep.error'])}")

# --- the sweeps ---------------------------------------------------------------------------------------------------------
sweeps_list = store.list_sweeps()
if not sweeps_list:
    st.info("No sweeps yet: choose one above (a paper's analysis, for instance) and start it.")
    st.stop()
ids = [s.id for s in sweeps_list]
by_id = {s.id: s for s in sweeps_list}
wanted = st.query_params.get("sweep")
if wanted and wanted not in by_id:
    st.warning(f"The link names sweep {md(wanted)}, which is not in this run store. Pick one from the list.")
current = wanted if wanted in by_id else ids[0]


def _label(sweep_id: str) -> str:
    s = by_id[sweep_id]
    spec = s.spec
    axes = " × ".join(a["name"] for a in spec["axes"]) or f"{len(spec.get('compare') or [])} methods"
    return f"{spec.get('title') or spec['method']} · {axes} · {s.status} · {s.id}"


# The status is part of the key: a label that changed (running → stopped) is then drawn anew, not kept by the browser.
sweep_id = st.selectbox("Sweep", ids, index=ids.index(current), format_func=_label,
                        key=f"sweep.pick.{current}.{by_id[current].status}")
if sweep_id != st.query_params.get("sweep"):
    st.query_params["sweep"] = sweep_id
sweep = store.get_sweep(sweep_id)
spec = SweepSpec.from_dict(sweep.spec)
metric_choices = sweep_metrics(*spec.method_ids)


@st.fragment(run_every=REFRESH_SECONDS if sweep.status == "running" else None)
def sweep_view(sweep_id: str, status_when_drawn: str) -> None:
    sweep = store.get_sweep(sweep_id)
    if sweep.status != status_when_drawn:
        st.rerun(scope="app")
    frame = sweep_frame(store, sweep_id)
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    done = sum(n for s, n in counts.items() if s != "running")
    head = st.columns([3, 1])
    with head[0]:
        status_badge(sweep.status)
        where = sweep.address or "local Ray"
        st.caption(f"{md(', '.join(spec.method_ids))} on {md(spec.dataset)} · schedule {md(spec.preset)} · {sweep.n_trials} trials on {md(where)} · "
                   + ", ".join(f"{n} {s}" for s, n in counts.items()))
    with head[1]:
        if sweep.status == "running" and runner.is_running(sweep_id):
            st.button("Stop sweep", key="sweep.stop", on_click=runner.stop, args=(sweep_id,), width="stretch",
                      help="Every running trial stops after its current step (its run is kept as stopped); trials not "
                           "started yet are not started.")
        elif sweep.status == "running":
            st.caption(f"Driven by another process (pid {sweep.owner_pid}, the CLI?): stop it there with Ctrl-C.")
    if sweep.status == "running":
        finished = frame[frame["status"] == "finished"]["seconds"].dropna() if not frame.empty else []
        elapsed = dt.timedelta(seconds=int(dt.datetime.now().timestamp() - sweep.created))
        eta = ""
        if len(finished) and done:
            left = (dt.datetime.now().timestamp() - sweep.created) / done * (sweep.n_trials - done)
            eta = f" · about {dt.timedelta(seconds=int(left))} left"
        st.progress(done / max(sweep.n_trials, 1), text=f"{done}/{sweep.n_trials} trials done · elapsed {elapsed}{eta}")
    if sweep.error:
        st.error(sweep.error)
    figures = sweep_figures(sweep, frame, st.session_state.get("sweep.metrics") or metric_choices[:4],
                            st.session_state.get("sweep.band", "minmax"))
    pareto = figures.pop("pareto", None)
    bars = figures.pop("methods", None)  # a comparison's: one grouped chart, full width
    if bars is not None:
        st.plotly_chart(bars, key="sweep.fig.methods")
    elif not figures:
        st.caption("The curves appear as the first trials finish.")
    items = list(figures.items())
    for start in range(0, len(items), FIGURES_PER_ROW):
        for column, (metric, fig) in zip(st.columns(FIGURES_PER_ROW), items[start:start + FIGURES_PER_ROW]):
            column.plotly_chart(fig, key=f"sweep.fig.{metric}")
            column.caption(METRIC_DEFINITIONS.get(metric, {}).get("definition", ""))
    if pareto is not None:
        event = st.plotly_chart(pareto, key="sweep.pareto", on_select="rerun", selection_mode="points")
        points = event.selection.points if event and event.selection else []
        if points and points[0].get("customdata"):
            st.switch_page("pages/monitor.py", query_params={"run": points[0]["customdata"][1]})
    if not frame.empty:
        with st.expander(f"Runs ({len(frame)})"):
            st.dataframe(frame, hide_index=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
        out = st.columns(2)
        out[0].download_button("Download runs (CSV)", data=to_csv(frame), file_name=f"fclab_{sweep_id}.csv",
                               mime="text/csv", on_click="ignore", icon=":material/table_view:", key="sweep.csv",
                               help="One row per run: status, seed, the swept values, final metrics, seconds.")
        out[1].download_button("Download report (HTML)", data=lambda: sweep_report(sweep, frame, {**figures, **({"methods": bars} if bars else {}),
                                                                                 **({"pareto": pareto} if pareto else {})}),
                               file_name=f"fclab_{sweep_id}.html", mime="text/html", on_click="ignore",
                               icon=":material/bar_chart:", key="sweep.html",
                               help="The settings, the runs' table and these figures in one page that opens offline.")


shown = st.columns([3, 1])
shown[0].multiselect("Metrics", metric_choices, default=metric_choices[:4], key="sweep.metrics",
                     format_func=lambda m: METRIC_DEFINITIONS.get(m, {}).get("label", m))
if not spec.compare:  # a comparison draws each method's mean, with no curve to band
    shown[1].radio("Band over seeds", list(BANDS), format_func=BANDS.get, key="sweep.band")
sweep_view(sweep_id, sweep.status)
