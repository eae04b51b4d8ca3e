"""Audit: bring a clustering made elsewhere (or pick any run) and get every fairness metric with its interval and its
baseline, the per-cluster group shares, and a report to hand over."""
import pandas as pd
import streamlit as st

from dashboard_lib import external, report
from dashboard_lib.auditing import DEFAULT_RESAMPLES, AuditResult
from dashboard_lib.data import tables, upload
from dashboard_lib.jobs import library_versions
from dashboard_lib.metrics import METRIC_DEFINITIONS
from dashboard_lib.plots import group_share_bars
from dashboard_lib.state import ensure_navigation, run_store, select_run, selected_run_id
from dashboard_lib.text import md
from dashboard_lib.ui import run_picker, table_uploader

ensure_navigation()

NONE = "(none)"
CLUSTER_NAMES = ("cluster", "clusters", "segment", "label", "labels", "assignment", "group_id")

st.title("Audit a clustering")
st.caption("Every fairness metric of a clustering, for each sensitive attribute and their intersection, each with a "
           "bootstrap interval and the value a group-blind random assignment with the same cluster sizes would get, "
           "so you can tell a real disparity from chance. Hover a metric for its exact definition.")
store = run_store()


@st.cache_data(show_spinner="Auditing: bootstrap intervals and random baselines…", max_entries=16)
def _audit_stored_run(root: str, run_id: str, resamples: int, seed: int, _ended: float | None) -> AuditResult:
    return external.audit_stored_run(store, run_id, resamples=resamples, seed=seed)


def _metric_table(estimates) -> pd.DataFrame:
    rows = []
    for key, e in estimates.items():
        d = METRIC_DEFINITIONS.get(key, {})
        rows.append({"metric": d.get("label", key), "value [interval]": e.text(), "compare with": e.baseline_text(),
                     "rows used": "all" if e.n_used is None else f"{e.n_used:,} (a subsample)",
                     "better": {True: "higher", False: "lower"}.get(d.get("higher_is_better"), ""),
                     "definition": d.get("definition", "")})
    return pd.DataFrame(rows)


def show_audit(result: AuditResult, *, title: str, provenance: dict, run=None, epoch=None, arrays=None, key: str) -> None:
    """The audit on the page, then the report downloads."""
    for warning in result.warnings:
        st.warning(md(warning))
    for caveat in report.run_caveats(run, epoch) + result.caveats:
        st.info(md(caveat))
    s = result.settings
    st.caption(f"{result.n:,} samples, {len(result.clusters)} clusters. Intervals: {s['confidence']:.0%} "
               f"{s['interval']}, {s['resamples']:,} resamples (seed {s['seed']}); baselines: mean of {s['random_draws']} "
               "random assignments with the same cluster sizes, blind to the groups and the classes.")
    if result.quality:
        st.subheader("Cluster quality against the class column")
        st.table(_metric_table(result.quality).set_index("metric"))  # our labels and numbers only: no user string
    tabs = st.tabs([md(a.name) for a in result.attributes])
    for tab, attribute in zip(tabs, result.attributes):
        with tab:
            st.markdown(f"**Groups**: " + ", ".join(f"{md(g)} ({c:,})" for g, c in zip(attribute.group_names, attribute.group_counts))
                        + f" · **Balance ceiling** (best this mix allows): {attribute.ceiling:.3f}"
                        + f" · **cluster that sets Balance**: {md(attribute.balance_cluster)}")
            st.plotly_chart(group_share_bars(attribute.table, result.clusters, attribute.group_names,
                                             title=f"{attribute.name}: group shares per cluster against the population"),
                            key=f"{key}.bars.{attribute.name}")
            st.caption("Each bar is one cluster; a fair cluster has the population's mix (its colour boundaries on the "
                       "dashed lines).")
            st.table(_metric_table(attribute.metrics).set_index("metric"))  # a static table: definitions wrap
            counts = pd.DataFrame(attribute.table, index=[f"cluster {c}" for c in result.clusters], columns=attribute.group_names)
            with st.expander("Cluster × group counts and per-group values"):
                st.dataframe(counts, width="stretch")
                st.dataframe(pd.DataFrame(attribute.per_group, index=attribute.group_names).T, width="stretch")
    st.subheader("Hand it over")
    html = report.build_report(result, title=title, provenance=provenance, run=run, epoch=epoch, versions=library_versions())
    stem = (run.id if run is not None else provenance.get("file", "audit")).rsplit(".", 1)[0]
    cols = st.columns(3)
    cols[0].download_button("Report (HTML)", html, file_name=f"audit_{stem}.html", mime="text/html", key=f"{key}.html",
                            type="primary", help="One self-contained file: opens offline, figures included.")
    cols[1].download_button("Numbers (JSON)", report.report_json(result, provenance=provenance, run=run, epoch=epoch),
                            file_name=f"audit_{stem}.json", mime="application/json", key=f"{key}.json")
    if arrays is not None:
        cols[2].download_button("Assignments by row id (CSV)", report.assignments_csv(arrays, result),
                                file_name=f"assignments_{stem}.csv", mime="text/csv", key=f"{key}.csv")


MODES = ("Bring a clustering", "Audit a run")
# One of the two at a time (tabs would draw, and audit, both on every rerun); a run link opens the second.
mode = st.radio("What to audit", MODES, horizontal=True, key="audit.mode",
                index=1 if selected_run_id() and "audit.last" not in st.session_state else 0, label_visibility="collapsed")

def audit_form(table: pd.DataFrame, provenance: dict, *, default_name: str, defaults: dict | None = None) -> None:
    """Choose the columns of `table`, audit it, and record it as an external run."""
    defaults = defaults or {}
    about = tables.inspect_table(table)
    st.caption(f"{about['n_rows']:,} rows × {about['n_columns']} columns"
               + (f" · SHA-256 {provenance['sha256'][:16]}…" if provenance.get("sha256") else ""))
    st.dataframe(table.head(10), width="stretch")
    columns = [c["name"] for c in about["columns"]]
    guess = defaults.get("clusters") or next((c for c in columns if c.lower() in CLUSTER_NAMES), columns[0])
    group_like = [c["name"] for c in sorted((c for c in about["columns"] if c["can_be_group"] and c["name"] != guess),
                                             key=lambda c: (c["kind"] != "categorical", c["n_unique"]))]
    numeric = [c["name"] for c in about["columns"] if c["can_be_feature"]]
    choice = lambda name: [NONE, *columns].index(defaults[name]) if defaults.get(name) in columns else 0  # noqa: E731
    with st.form("audit.form"):
        clusters = st.selectbox("Cluster column", columns, index=columns.index(guess), key="audit.clusters",
                                help="Each row's cluster id: a label, read exactly (text, or whole numbers).")
        sensitive = st.multiselect("Sensitive column(s)", columns, default=defaults.get("sensitive", group_like[:1]),
                                   key="audit.sensitive", help="With two or more, each is audited alone and their intersection too.")
        class_col = st.selectbox("Class column (optional: ACC, NMI, ARI)", [NONE, *columns], index=choice("class"), key="audit.class")
        embedding_cols = st.multiselect("Embedding or feature columns (optional: social fairness, silhouette, probe)",
                                        numeric, default=defaults.get("embedding", []), key="audit.embedding")
        embedding_file = table_uploader("…or the embedding as a separate file, same rows in the same order",
                                        key="audit.embedding_file")
        id_col = st.selectbox("Row-id column (optional, unique)", [NONE, *columns], index=choice("id"), key="audit.id")
        name = st.text_input("Name of the run", value=default_name[:64], key="audit.name")
        resamples = st.number_input("Bootstrap resamples", 0, 100_000, DEFAULT_RESAMPLES, step=100, key="audit.resamples")
        go = st.form_submit_button("Audit", type="primary")
    merge = st.session_state.pop("audit.merge_now", False)  # the Merge near-duplicate values button: same choices
    if go or merge:
        try:
            embedding = None
            if embedding_file is not None:
                embedding, _ = external.read_audit_file(embedding_file.getvalue(), embedding_file.name)
            prepared = external.prepare(
                table, clusters=clusters, sensitive=sensitive, class_column=None if class_col == NONE else class_col,
                embedding_columns=embedding_cols, embedding=embedding, id_column=None if id_col == NONE else id_col,
                provenance=provenance, merge_near_duplicates=merge)
            with st.spinner("Auditing: bootstrap intervals and random baselines…"):
                result = external.audit_table(prepared, resamples=int(resamples))
        except ValueError as exc:
            st.error(f"Not audited, nothing saved: {md(exc)}")
        else:
            run_id = external.record_external(store, prepared, result, name)
            st.session_state["audit.last"] = (run_id, result)  # drawn below as it is, not audited a second time
            select_run(run_id)
            st.success(f"Audited and saved as run **{md(run_id)}**.")


def read_or_stop(file, what: str):
    try:
        return external.read_audit_file(file.getvalue(), file.name)
    except ValueError as exc:
        st.error(f"Could not read {what} {md(file.name)}: {md(exc)}")
        st.stop()


SOURCES = ("A table with a cluster column", "A saved upload and its assignments")

if mode == MODES[0]:
    saved_uploads = upload.list_uploads()
    source = st.radio("Source", SOURCES, horizontal=True, key="audit.source") if saved_uploads else SOURCES[0]
    if source == SOURCES[0]:
        st.markdown("Upload one table (**CSV**, **Parquet** or **NPZ**), one row per clustered sample, with a cluster "
                    "column and one or more sensitive columns. It becomes a run (method *external*) that Monitor, "
                    "Embeddings and Compare show beside trained runs.")
        file = table_uploader("Table with a cluster column", key="audit.file")
        if file is not None:
            table, provenance = read_or_stop(file, "the table")
            audit_form(table, provenance, default_name=file.name.rsplit(".", 1)[0])
    else:
        st.markdown("Pick a table you saved on the Data page and upload the clusters found for its rows: a table with "
                    "a cluster column, one row per row of the upload in the same order, or with a column giving each "
                    "row's number (0 first).")
        chosen = st.selectbox("Saved upload", saved_uploads, key="audit.upload")
        file = table_uploader("Its assignments", key="audit.assignments")
        if file is not None:
            assignments, provenance = read_or_stop(file, "the assignments")
            base, meta = external.upload_table(chosen)
            cols = list(assignments.columns)
            c1, c2 = st.columns(2)
            cluster_col = c1.selectbox("Cluster column of the assignments", cols, key="audit.assign_cluster",
                                       index=next((i for i, c in enumerate(cols) if c.lower() in CLUSTER_NAMES), 0))
            row_col = c2.selectbox("Row column (optional)", [NONE, *cols], key="audit.assign_row")
            try:
                table = external.with_assignments(base, assignments, cluster_col, None if row_col == NONE else row_col)
            except ValueError as exc:
                st.error(f"Cannot join the assignments to {md(chosen)}: {md(exc)}")
                st.stop()
            provenance = {**provenance, "upload": chosen, "upload_file": meta.get("source_file")}
            audit_form(table, provenance, default_name=f"{chosen}_{file.name.rsplit('.', 1)[0]}",
                       defaults={"clusters": external.CLUSTER_COLUMN, "sensitive": [meta["sensitive_column"]],
                                 "class": meta["class_column"], "embedding": meta["feature_columns"], "id": external.ROW_COLUMN})
    if "audit.last" in st.session_state:
        last, result = st.session_state["audit.last"]
        run, arrays = store.get_run(last), store.load_arrays(last, 0)
        if run.config["provenance"].get("near_duplicates"):  # the audit warns of them just below
            st.button("Merge near-duplicate values", key="audit.merge", icon=":material/merge:",
                      on_click=lambda: st.session_state.update({"audit.merge_now": True}),
                      help="Audit again with each set of values that differ only in spaces, letter case or Unicode "
                           "form counted as one group (its most frequent spelling); the new run records what was merged.")
        show_audit(result, title=f"Audit of {run.config['provenance'].get('file')}", provenance=run.config["provenance"],
                   run=run, epoch=0, arrays=arrays, key="audit.new")
        if "embedding" in arrays:
            st.page_link("pages/embeddings.py", label="See its embedding (Embeddings page)", icon=":material/scatter_plot:",
                         query_params={"run": last})

else:
    runs = [r for r in store.list_runs() if r.status != "running" and external.evaluation_epoch(store, r.id) is not None]
    if not runs:
        st.info("No run with saved assignments yet: train one on the Train page, or bring a clustering in the other tab.")
    else:
        run_id = run_picker(runs, key="audit.run", default=selected_run_id())
        run = store.get_run(run_id)
        epoch = external.evaluation_epoch(store, run_id)
        resamples = st.number_input("Bootstrap resamples", 0, 100_000, DEFAULT_RESAMPLES, step=100, key="audit.run_resamples")
        try:
            result = _audit_stored_run(str(store.root), run_id, int(resamples), 0, run.ended)
        except ValueError as exc:
            st.error(f"Cannot audit run {md(run_id)}: {md(exc)}")
        else:
            provenance = {"run": run.id, "dataset": run.dataset, **{k: v for k, v in (run.dataset_info or {}).items()
                                                                    if k in ("name", "source", "sha256", "built")}}
            show_audit(result, title=f"Audit of run {run.id}", provenance=provenance, run=run, epoch=epoch,
                       arrays=store.load_arrays(run_id, epoch), key=f"audit.{run_id}")
