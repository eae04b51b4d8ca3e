"""Audit: bring a clustering made elsewhere (or pick any run) and get every fairness metric with its interval and its
baseline, the per-cluster group shares, and a report to hand over."""
import pandas as pd
import streamlit as st

from dashboard_lib import external, repairing, report
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


def repair_section(result: AuditResult, prepared: external.AuditTable, run, *, key: str) -> None:
    """Under an audit: repair the clustering to the nearest fair one, save it as a run, and show it beside this one."""
    st.subheader("Repair to fair")
    st.caption("The nearest clustering in which every cluster holds each group's share within bounds: the fewest "
               "points moved to another cluster, or the least added distance to the clusters' centres. "
               + repairing.GUARANTEE + " It is audited as this one was and saved as a run of its own; this run is "
               "never changed.")
    names = repairing.attributes(prepared)
    attribute = st.selectbox("Repair for", names, key=f"{key}.repair_for", index=len(names) - 1 if len(names) > 2 else 0,
                             help="A sensitive attribute, or the intersection of all of them (every combination of "
                                  "their groups is one group, each bounded in every cluster).")
    groups = result.attribute(attribute).group_names
    labels = repairing.attribute_labels(prepared, attribute)
    delta = st.number_input("δ: how far each group's share of a cluster may stray from its share of the data",
                            0.0, 0.99, repairing.DEFAULT_DELTA, step=0.05, key=f"{key}.delta",
                            help="Bera et al. (2019): each group's share of every cluster within [(1 − δ) r, "
                                 "r / (1 − δ)], r its share of all the data. 0 asks for the data's exact mix in "
                                 "every cluster; larger is looser.")
    from_delta = repairing.repair_bounds(labels, attribute, groups, float(delta))
    with st.form(f"{key}.repair"):
        share = st.column_config.NumberColumn(min_value=0.0, max_value=1.0, format="%.3f")
        editor = st.data_editor(
            pd.DataFrame({"group": groups, "share of the data": from_delta.population, "lower (from δ)": from_delta.lower,
                          "upper (from δ)": from_delta.upper, "lower by hand": [None] * len(groups),
                          "upper by hand": [None] * len(groups)}),
            key=f"{key}.shares.{attribute}.{delta}", hide_index=True, width="stretch",
            disabled=["group", "share of the data", "lower (from δ)", "upper (from δ)"],
            column_config={c: share for c in ("share of the data", "lower (from δ)", "upper (from δ)", "lower by hand",
                                              "upper by hand")})
        st.caption("Each group's share of every cluster must lie between its lower and upper bound. To set a bound "
                   "yourself, type a share (0 to 1) in a *by hand* cell; an empty one keeps the bound from δ.")
        has_features = prepared.embedding is not None
        cost = st.radio("Cost", list(repairing.COSTS), format_func=repairing.COSTS.get, horizontal=True,
                        key=f"{key}.cost", disabled=not has_features)
        if not has_features:
            st.caption("Least added distance needs features or an embedding, and this clustering has none (choose "
                       "embedding or feature columns in the audit to have it, and the price of fairness).")
        go = st.form_submit_button("Repair", type="primary", key=f"{key}.repair_go")
    done = f"{key}.repaired"
    if go:
        shares = {row["group"]: (_cell(row["lower by hand"]), _cell(row["upper by hand"])) for _, row in editor.iterrows()
                  if _cell(row["lower by hand"]) is not None or _cell(row["upper by hand"]) is not None}
        try:
            with st.spinner("Repairing (exact LP), then auditing the repaired clustering…"):
                repair = repairing.repair_clustering(prepared, result, attribute=attribute, delta=float(delta),
                                                     shares=shares, cost=cost if has_features else "moves")
        except ValueError as exc:
            st.session_state.pop(done, None)
            st.error(f"Not repaired, nothing saved: {md(exc)}")
        else:
            name = (run.dataset_info or {}).get("name") or run.id
            repaired_id = repairing.record_repair(store, repair, name=name, original_run=run.id, dataset=run.dataset)
            st.session_state[done] = (repaired_id, repair)
    if done in st.session_state:
        show_repair(*st.session_state[done], run=run, key=key)


def _cell(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def show_repair(repaired_id: str, repair: repairing.Repair, *, run, key: str) -> None:
    """The repaired clustering beside the original: moves, price, quality, every metric, downloads."""
    st.success(f"Repaired for {md(repair.bounds.attribute)} and saved as run **{md(repaired_id)}**; the original run "
               f"{md(run.id)} is unchanged.")
    n = repair.original.n
    comparison = repair.comparison()
    cols = st.columns(5)
    cols[0].metric(f"Points moved (of {n:,})", f"{repair.n_moved:,}", help=f"{repair.n_moved / n:.1%} of the rows "
                   "changed cluster; every cluster kept its size.")
    balance = comparison[(comparison["part"] == repair.bounds.attribute) & (comparison["key"] == "balance")].iloc[0]
    cols[1].metric("Balance after repair", f"{repair.repaired.attribute(repair.bounds.attribute).metrics['balance'].value:.3f}",
                   delta=balance["change"], help=f"For {md(repair.bounds.attribute)}, the attribute repaired for: "
                   + METRIC_DEFINITIONS["balance"]["definition"])
    if repair.cost_before is not None:
        cols[2].metric("Cost after repair", f"{repair.cost_after:,.4g}", delta_color="inverse",
                       delta=f"{repair.cost_after - repair.cost_before:+,.4g} from {repair.cost_before:,.4g}",
                       help=repairing.DISTANCE + " (on the features or embedding).")
        cols[3].metric("Price of fairness", f"× {repair.cost_ratio:.3f}", help="Cost after the repair over cost "
                       "before: how much further the points sit from their clusters' centres.")
    else:
        cols[2].metric("Cost after repair", "n/a", help=repairing.NOTE_NO_FEATURES)
    acc = comparison[(comparison["part"] == "quality") & (comparison["key"] == "acc")]
    if len(acc):
        cols[4].metric("ACC after repair", f"{repair.repaired.quality['acc'].value:.3f}", delta=acc["change"].iloc[0],
                       help="Against the class column.")
    else:
        cols[4].metric("ACC after repair", "n/a", help=repairing.NOTE_NO_CLASS)
    if repair.cost_before is None:
        st.caption(md(repairing.NOTE_NO_FEATURES) + ".")
    if not len(acc):
        st.caption(md(repairing.NOTE_NO_CLASS) + ".")
    st.markdown("**Every metric, before and after** (each value with its interval; *change* is after − before; the "
                "attribute repaired for first)")
    shown = comparison.rename(columns={"part": "attribute", "before": "before [interval]", "after": "after [interval]"})
    st.dataframe(shown.drop(columns=["key"]), hide_index=True, width="stretch", height=35 * min(len(shown), 16) + 38,
                 column_config={"metric": st.column_config.TextColumn(width="medium")})
    with st.expander(f"Bounds used ({md(repair.bounds.attribute)})"):
        st.dataframe(repair.bounds.frame(), hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("share of the data", "lower", "upper")})
    moves = repair.moves()
    with st.expander(f"Points moved ({len(moves):,})"):
        st.dataframe(moves.head(1000), hide_index=True, width="stretch")
        if len(moves) > 1000:
            st.caption(f"The first 1,000 of {len(moves):,}; the CSV holds them all.")
    original, repaired = run, store.get_run(repaired_id)
    stem = run.id
    title = f"Repair of run {run.id}"
    cols = st.columns(4)
    cols[0].download_button("Repair report (HTML)", report.repair_report(
        repair, title=title, provenance=repair.prepared.provenance, original_run=original, epoch=0, repaired_run=repaired,
        versions=library_versions()), file_name=f"repair_{stem}.html", mime="text/html", key=f"{key}.repair_html",
        type="primary", help="Both clusterings' audits, the bounds, the moves and the price, in one offline file.")
    cols[1].download_button("Numbers (JSON)", report.repair_json(repair, provenance=repair.prepared.provenance,
                                                                 original_run=original, repaired_run=repaired),
                            file_name=f"repair_{stem}.json", mime="application/json", key=f"{key}.repair_json")
    cols[2].download_button("Both assignments (CSV)", report.repair_assignments_csv(repair),
                            file_name=f"assignments_repaired_{stem}.csv", mime="text/csv", key=f"{key}.repair_csv",
                            help="Each row's id, group, original and repaired cluster, and whether it moved.")
    cols[3].download_button("Moved points (CSV)", report.moves_csv(repair), file_name=f"moved_{stem}.csv",
                            mime="text/csv", key=f"{key}.moves_csv")
    links = st.columns(2)
    links[0].page_link("pages/compare.py", label="Compare the two runs", icon=":material/compare_arrows:")
    if repair.prepared.embedding is not None:
        links[1].page_link("pages/embeddings.py", label="See the repaired run's embedding", icon=":material/scatter_plot:",
                           query_params={"run": repaired_id})


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
            st.session_state["audit.last"] = (run_id, result, prepared)  # drawn below as it is, not audited again
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
        last, result, prepared = st.session_state["audit.last"]
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
        repair_section(result, prepared, run, key=f"audit.new.{last}")

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
            repair_section(result, external.stored_table(store, run_id), run, key=f"audit.{run_id}")
