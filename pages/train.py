"""Train: pick a dataset and a method, set its hyperparameters, start a background run."""
import pandas as pd
import streamlit as st

from dashboard_lib import data as datasets
from dashboard_lib import methods, reproductions
from dashboard_lib.jobs import RunConfig
from dashboard_lib.methods.base import TABLE_DATASET
from dashboard_lib.settings import reproductions_dir
from dashboard_lib.state import data_dir, ensure_navigation, run_store, start_run_once
from dashboard_lib.text import md
from dashboard_lib.ui import param_form_values

ensure_navigation()
PRESET_LABELS = {"quick": "Quick demo (minutes on a CPU)", "paper": "Paper schedule"}


K_NOTE = "K = 0: the dataset's number of classes"


def k_note(dataset_id: str, options: dict) -> str:
    """What K = 0 means, with the number where this process has the dataset built already (nothing is built here)."""
    try:
        built = datasets.built_dataset(dataset_id, options, data_dir())
    except ValueError:  # options the page refuses elsewhere
        built = None
    return K_NOTE + (f" ({built.n_clusters} here)." if built is not None and built.n_clusters else ".")


def use_demo_data(dataset_id: str, options: dict) -> None:
    """Point the Data picker and its options at the data a method's quick demo tells its story on."""
    st.session_state["dataset"] = dataset_id
    for name, value in options.items():
        st.session_state[f"data.{dataset_id}.{name}"] = value


def paper_gap(method_id: str) -> None:
    """The method's reproduction records (bench/reproduce.py): the paper's numbers beside ours, with the budget."""
    folder = reproductions_dir()
    records, problems = reproductions.load_records(folder)
    summaries = reproductions.summarize(records, method_id)
    name = methods.REGISTRY[method_id].name
    with st.expander("How close is this to the paper?", icon=":material/science:"):
        if not summaries:
            st.info(md(f"No reproduction of {name} is recorded yet (records folder: {folder}). From a checkout of the "
                       "lab, this command trains one and records it:"), icon=":material/info:")
            st.code(reproductions.make_command(method_id), language="bash")  # a code block shows its text as is
        for s in summaries:
            st.markdown(f"**{md(s.dataset)}, {md(s.schedule)} schedule**")
            table = pd.DataFrame([{md("metric"): md(r["metric"]), md("paper (%)"): md(r["paper"]),
                                   md("ours (%)"): md(r["ours"])} for r in s.rows()])
            st.table(table.set_index(md("metric")))
            st.caption(md(f"Paper: {s.paper['source']}. Budget: {s.budget_text()}. Device: {s.device_text()}; "
                          f"{s.wall_text()} per run; commit {s.commit_text()}; {s.date_text()}."))
        note = next((s.paper.get("note") for s in summaries if s.paper.get("note")), None)
        if note:
            st.caption(md(f"Why it cannot be matched: {note}"))
        st.caption(md(f"Every method, with the curves: {reproductions.anchor(method_id)}"))
        for problem in problems:
            st.warning(md(problem), icon=":material/warning:")


st.title("Train a method")
st.caption("Choose data and a method, tune the hyperparameters each paper defines, and press Train. "
           "Training runs in the background; the Monitor page shows its losses and metrics live.")

left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Data")
    specs = list(datasets.REGISTRY.values())
    folder = datasets.resolve_data_dir(data_dir())
    absent = {s.id for s in specs if not s.available(folder)}
    upload_id, embedding_id = datasets.upload.SPEC.id, datasets.run_embedding.DATASET_ID
    absent_marks = {upload_id: " (no upload saved yet)", embedding_id: " (no run with an embedding yet)"}

    def dataset_label(i: str) -> str:
        mark = "" if i not in absent else absent_marks.get(i, " (files not on this machine)")
        return datasets.REGISTRY[i].name + mark

    dataset_id = st.selectbox("Dataset", [s.id for s in specs], key="dataset", format_func=dataset_label)
    spec = datasets.get_spec(dataset_id)
    st.caption(f"{spec.summary} ({spec.size})")
    options = spec.options
    picked = {}
    if dataset_id == upload_id and dataset_id not in absent:
        # Which upload is the one choice this dataset cannot do without: a picker in sight, not a name to type in
        # the collapsed options below.
        names = datasets.upload.list_uploads()
        if st.session_state.get(f"data.{upload_id}.name") not in names:  # deleted since, or typed before
            st.session_state.pop(f"data.{upload_id}.name", None)
        picked["name"] = st.selectbox("Upload", names, key=f"data.{upload_id}.name",
                                      help="A table saved on the Data page (or with the CLI's upload command).")
        options = tuple(p for p in spec.options if p.name != "name")
    if dataset_id == embedding_id and dataset_id not in absent:
        # The run is the one choice: a picker of the runs whose embedding can be trained on, newest first.
        sources = {r.id: r for r in datasets.run_embedding.embedding_runs(run_store())}
        if st.session_state.get(f"data.{embedding_id}.run") not in sources:  # deleted since
            st.session_state.pop(f"data.{embedding_id}.run", None)
        picked["run"] = st.selectbox("Run", list(sources), key=f"data.{embedding_id}.run",
                                     format_func=lambda i: sources[i].label(),
                                     help="A finished or stopped run whose method learns an embedding.")
        st.caption("Trains on the embedding this run saved at its last evaluation instead of the raw features: the "
                   "same rows, classes, groups and splits, so the two runs compare on the same data.")
        options = tuple(p for p in spec.options if p.name != "run")
    dataset_options = dict(picked)
    if options:
        with st.expander("Dataset options", expanded=False):
            dataset_options.update(param_form_values(options, f"data.{dataset_id}"))
    # A dataset that cannot be built here is not started: a run would only fail at once.
    blocked = dataset_id in absent and not (spec.downloads(dataset_options) and datasets.download.downloads_allowed())
    if dataset_id in absent and not blocked:
        st.info("Its files are not on this machine yet: the run downloads them from their official source first "
                "(each checked against its checksum, then kept in the download cache).", icon=":material/download:")
    elif blocked and dataset_id in (upload_id, embedding_id):
        st.warning("Save a table on the Data page first." if dataset_id == upload_id else
                   f"{spec.needs(folder).capitalize()}.", icon=":material/folder_off:")
    elif blocked:
        st.warning(f"Its files are not on this machine, so it cannot be trained here. To get them, "
                   f"{datasets.download.HOW_TO_GET_FILES}.", icon=":material/folder_off:")
        with st.expander("Which files, and where they come from"):
            st.code(spec.needs(folder), language=None)

    st.subheader("Method")
    method_id = st.selectbox("Method", list(methods.REGISTRY), key="method",
                             format_func=lambda i: methods.REGISTRY[i].name)
    method_cls = methods.get_method(method_id)
    st.caption(method_cls.summary)
    if method_cls.paper:
        st.caption(f"Reference: {method_cls.paper}")
    if method_cls.guarantee:
        st.caption(f"Guarantee: {method_cls.guarantee}")
    paper_gap(method_id)

def shown_value(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


with right:
    st.subheader("Hyperparameters")
    variant, variant_values = None, {}
    if method_cls.variants:
        # Where a method's paper text and its public code differ, each reading is a named variant: it sets settings,
        # the schedule below sets the budget.
        names = list(method_cls.variants)
        variant = st.radio("Variant", names, key=f"variant.{method_id}", horizontal=True,
                           help="Where the paper's text and its authors' public code differ, each is a variant: it sets "
                                "the method's settings (its source below); the schedule sets the budget (epochs, sizes); "
                                "every field of the form can still be changed.")
        variant_values = method_cls.variant(variant)
        sets = ", ".join(f"{name} {shown_value(value)}" for name, value in variant_values.items())
        st.caption(md(f"Source: {method_cls.variants[variant].source}. "
                      + (f"Sets {sets}." if sets else "The declared defaults.")))
    preset, on_table = "paper", False
    # quick_minutes is measured on the built-in data; a table's epochs are far cheaper (bench/bench_tabular.py --all)
    table_time = (" On an uploaded table of 4,000 rows every method's quick demo ended within about a minute on a 2-core "
                  "CPU (measured); the time grows with rows × features." if dataset_id == TABLE_DATASET else "")
    if method_cls.quick:
        preset = st.radio("Schedule", ["quick", "paper"], key=f"preset.{method_id}", horizontal=True,
                          format_func=PRESET_LABELS.get,
                          help="Quick demo shortens only the schedule (epochs, iterations, restarts, sizes) so a run on "
                               "the built-in dataset ends in minutes on a laptop CPU; its numbers stay below the "
                               "paper's. Paper schedule: the paper's (or its public code's) settings, for reproductions: "
                               "hours on a CPU, minutes on a GPU.")
        defaults = {p.name: p.default for p in method_cls.params}
        preset_values = method_cls.preset("quick", dataset_id)
        # A setting the variant names stays the variant's (Method.settings): not the schedule's to list.
        changed = ", ".join(f"{name} {value:g} (paper {defaults[name]:g})" for name, value in preset_values.items()
                            if name not in variant_values)
        took = table_time or (f" About {method_cls.quick_minutes:g} min on a 2-core laptop CPU (measured)."
                              if method_cls.quick_minutes else "")
        if variant_values and took:  # the minutes were measured with the declared defaults
            took += (f" That is the {next(iter(method_cls.variants))} variant's time: this variant's settings change it"
                     + (" (its whole-set dictionary makes each step several times dearer)."
                        if variant_values.get("dict_size") == 0 else "."))
        on_table = preset_values != method_cls.quick
        st.caption(f"Quick demo sets {changed}.{took}" if preset == "quick"
                   else "The paper's schedule: expect hours on a CPU.")
        demo = method_cls.quick_data
        if preset == "quick" and demo and (dataset_id != demo[0] or any(dataset_options.get(k) != v for k, v in demo[1].items())):
            settings = ", ".join(f"{k} {v}" for k, v in demo[1].items())
            st.info(f"This demo tells its story on **{datasets.get_spec(demo[0]).name}** ({settings}).",
                    icon=":material/lightbulb:")
            st.button("Use that data", key=f"demo_data.{method_id}", on_click=use_demo_data, args=demo,
                      icon=":material/dataset:")
    elif table_time or method_cls.quick_minutes:
        st.caption(table_time.strip() or f"About {method_cls.quick_minutes:g} min on the built-in data on a 2-core laptop "
                                         "CPU (measured).")
    # Each variant and schedule its own widget keys, so that switching shows their values (the first variant: the
    # keys the page always used).
    variant_key = f".variant.{variant}" if variant_values else ""
    with st.form(f"hparams.{method_id}.{preset}{variant_key}", border=True):
        prefix = (f"hp.{method_id}" if preset == "paper" else f"hp.{method_id}.{preset}" + (".table" if on_table else "")
                  ) + variant_key
        hparams = param_form_values(method_cls.params, prefix, method_cls.settings(variant, preset, dataset_id),
                                    notes={"n_clusters": k_note(dataset_id, dataset_options)})
        seed = st.number_input("Seed", min_value=0, value=0, step=1, key="seed",
                               help="The same seed, data, settings, device and CPU thread count give bit-identical "
                                    "numbers on the CPU (the app and the CLI train with the same thread count, shown in "
                                    "the sidebar and recorded with each run). On a GPU some kernels are not "
                                    "deterministic: the last digits may differ.")
        device_choices = ["auto", *methods.available_devices()]
        device = st.selectbox("Device", device_choices, key="device",
                              help="auto = the GPU if there is one (CUDA, then Apple MPS), else the CPU. Pick cpu to force it.")
        submitted = st.form_submit_button("Train", type="primary", width="stretch", disabled=blocked,
                                          help="The dataset's files are not on this machine (see Data)." if blocked else None)

if submitted:
    config = RunConfig(dataset=dataset_id, method=method_id, dataset_options=dataset_options, hparams=hparams,
                       seed=int(seed), device=device, data_dir=data_dir())
    try:
        run_id = start_run_once(config)
    except ValueError as exc:
        st.error(f"Could not start: {md(exc)}")
    else:
        st.switch_page("pages/monitor.py", query_params={"run": run_id})
