"""Data: what each dataset holds (sizes, class × group counts, samples, provenance), and uploading your own."""
import numpy as np
import pandas as pd
import streamlit as st

from dashboard_lib import data as datasets
from dashboard_lib.data import tables, upload
from dashboard_lib.data.base import display_image
from dashboard_lib.data.download import reporting
from dashboard_lib.plots import count_heatmap
from dashboard_lib.state import data_dir as selected_data_dir, ensure_navigation, run_store
from dashboard_lib.text import md
from dashboard_lib.ui import metric_help, param_form_values, table_uploader

ensure_navigation()

SAMPLES_PER_GROUP = 12
MANY_GROUPS = 30  # HAR has 30 subjects as groups; more than that in an upload is usually a continuous column
FEATURES_SHOWN = 20


def feature_summary(data) -> pd.DataFrame:
    """Mean ± sd of each feature per group, in the source's units where the features were standardised."""
    X = data.X.flatten(1)[:, :FEATURES_SHOWN].numpy().astype(np.float64)
    if data.unscale is not None:
        mean, sd = data.unscale
        X = X * sd[:FEATURES_SHOWN] + mean[:FEATURES_SHOWN]
    names = (data.feature_names or [f"feature {j}" for j in range(data.n_features)])[:FEATURES_SHOWN]
    summary = {f"{name} mean ± sd": [f"{m:.3g} ± {s:.2g}" for m, s in zip(X[data.g == g].mean(0), X[data.g == g].std(0))]
               for g, name in enumerate(data.group_names[:6]) if (data.g == g).any()}
    return pd.DataFrame(summary, index=names)


@st.cache_data(max_entries=4, show_spinner=False)
def column_notes(file_id: str, sensitive: str, class_column: str | None, _table: pd.DataFrame) -> dict[str, str]:
    return tables.column_notes(_table, sensitive, class_column)


MISSING_LABELS = {"refuse": "Refuse (fix the file first)", "drop": "Drop the rows with a missing value",
                  "impute": "Impute: median of a numeric column, most frequent value of a categorical one"}
ENCODING_HELP = ("numeric: the values as they are (z-scored when training with standardize on); one-hot: one 0/1 "
                 f"column per value (at most {tables.MAX_LEVELS}); ordinal: the position of the value in the order "
                 "given (lowest first, values separated by ' | '), for categories with a natural order.")


def upload_form() -> None:
    file = table_uploader("Table", key="upload.file")
    if file is None:
        return
    if st.session_state.get("upload.read", (None,))[0] != file.file_id:  # read each file once, not on every rerun
        try:
            st.session_state["upload.read"] = (file.file_id, tables.read_table(file.getvalue(), file.name))
        except ValueError as exc:
            st.session_state.pop("upload.read", None)
            st.error(f"Could not read {md(file.name)}: {md(exc)}")
            return
        for key in ("upload.sensitive", "upload.class", "upload.features", "upload.encodings", "upload.edited"):
            st.session_state.pop(key, None)
    table = st.session_state["upload.read"][1]
    about = tables.inspect_table(table)
    st.caption(f"{about['n_rows']:,} rows × {about['n_columns']} columns · read as {md(table.attrs.get('read_as', 'a table'))}")
    st.dataframe(table.head(20), width="stretch")
    columns = [c["name"] for c in about["columns"]]
    # Default to a categorical column with few values (a site, a sex, a source): what "sensitive" usually means.
    group_like = sorted((c for c in about["columns"] if c["can_be_group"]),
                        key=lambda c: (c["kind"] != "categorical", c["n_unique"] > MANY_GROUPS, c["n_unique"]))
    group_like = [c["name"] for c in group_like]
    unique = {c["name"]: c["n_unique"] for c in about["columns"]}

    def chosen_labels() -> tuple[str, str | None]:
        class_col = st.session_state.get("upload.class", "(none)")
        return st.session_state.get("upload.sensitive", group_like[0] if group_like else columns[0]), \
            None if class_col == "(none)" else class_col

    def refresh_features() -> None:
        """The features follow the sensitive and class columns: never one of them, and until the user edits the
        list, exactly the recommended columns for these labels (leaks depend on the labels)."""
        sensitive, class_col = chosen_labels()
        if st.session_state.get("upload.edited"):
            st.session_state["upload.features"] = [c for c in st.session_state.get("upload.features", [])
                                                   if c not in (sensitive, class_col)]
        else:
            notes = column_notes(file.file_id, sensitive, class_col, table)
            st.session_state["upload.features"] = [c for c in columns if c not in notes]

    left, right = st.columns(2)
    sensitive = left.selectbox("Sensitive column (the group)", columns, key="upload.sensitive", on_change=refresh_features,
                               index=columns.index(group_like[0]) if group_like else 0)
    right.selectbox("Class column (optional, for ACC/NMI)", ["(none)", *columns], key="upload.class",
                    on_change=refresh_features)
    sensitive, class_col = chosen_labels()
    if "upload.features" not in st.session_state:
        refresh_features()
    notes = column_notes(file.file_id, sensitive, class_col, table)
    kinds = {c["name"]: c for c in about["columns"]}
    st.dataframe(pd.DataFrame([{"column": c, "kind": kinds[c]["kind"], "distinct": kinds[c]["n_unique"],
                                "missing": kinds[c]["n_missing"], "left out of the defaults because": notes.get(c, "")}
                               for c in columns]),
                 hide_index=True, width="stretch", key="upload.columns",
                 column_config={"left out of the defaults because": st.column_config.TextColumn(width="large")})
    features = st.multiselect("Feature columns", [c for c in columns if c not in (sensitive, class_col)],
                              key="upload.features", on_change=lambda: st.session_state.update({"upload.edited": True}),
                              help="Recommended: every column but the labels and those the table above leaves out.")
    encodings = st.session_state.setdefault("upload.encodings", {})
    orders = {}
    if features:
        rows = [{"column": c, "encode as": encodings.get(c, tables.default_encoding(table[c])),
                 "order (ordinal, lowest first)": " | ".join(tables.level_order(table[c]))
                 if encodings.get(c) == "ordinal" or kinds[c]["kind"] != "numeric" else ""} for c in features]
        edited = st.data_editor(
            pd.DataFrame(rows), hide_index=True, width="stretch", key="upload.encoding_table", disabled=["column"],
            column_config={"encode as": st.column_config.SelectboxColumn(options=list(tables.ENCODINGS), required=True,
                                                                         help=ENCODING_HELP),
                           "order (ordinal, lowest first)": st.column_config.TextColumn(help=ENCODING_HELP, width="large")})
        for row in edited.to_dict("records"):
            encodings[row["column"]] = row["encode as"]
            if row["encode as"] == "ordinal" and row["order (ordinal, lowest first)"]:
                orders[row["column"]] = [v.strip() for v in str(row["order (ordinal, lowest first)"]).split("|")]
    counts = tables.missing_counts(table, features + [sensitive] + ([class_col] if class_col else []))
    missing = "refuse"
    if counts["rows"]:
        labels_missing = int(table[[c for c in (sensitive, class_col) if c]].isna().any(axis=1).sum())
        cells = sum(n for c, n in counts["per_column"].items() if c in features)
        st.warning(f"{counts['rows']:,} of {counts['n_rows']:,} rows ({counts['rows'] / counts['n_rows']:.1%}) have a missing "
                   "value in the chosen columns: " + ", ".join(f"{md(c)} {n:,}" for c, n in counts["per_column"].items())
                   + f". Drop: {counts['rows']:,} rows go, {counts['n_rows'] - counts['rows']:,} stay. Impute: {cells:,} "
                   f"cells filled" + (f" and the {labels_missing:,} rows missing the group or class dropped" if labels_missing else "")
                   + ".", icon=":material/help:")
        missing = st.radio("Missing values", list(MISSING_LABELS), format_func=MISSING_LABELS.get, index=1,
                           key="upload.missing", horizontal=True)
    name_col, replace_col = st.columns([3, 1], vertical_alignment="bottom")
    name = name_col.text_input("Save as", value=file.name.rsplit(".", 1)[0].replace(" ", "_")[:64], key="upload.name")
    overwrite = replace_col.checkbox("Replace an upload of the same name", key="upload.overwrite")
    if not st.button("Save dataset", type="primary", key="upload.save"):
        return
    if unique.get(sensitive, 0) > MANY_GROUPS:
        st.warning(f"The sensitive column {md(repr(sensitive))} has {unique[sensitive]} distinct values: it looks continuous. "
                   "Fairness metrics treat each value as its own group; pick a categorical column (a site, a sex, "
                   "a source) unless that is what you want.")
    try:
        meta = upload.build_upload(table, features, sensitive, class_col, name=name, filename=file.name,
                                   overwrite=overwrite, encodings={c: encodings[c] for c in features if c in encodings},
                                   orders=orders, missing=missing)
    except ValueError as exc:
        st.error(f"Not saved: {md(exc)}")
    else:
        st.success(f"Saved **{md(meta['name'])}**: {md(upload.saved_text(meta))}. Train on it: dataset *Your own data*, "
                   f"name = {md(meta['name'])} (runs list it as {md(upload.label(meta['name']))}).")


def saved_uploads() -> None:
    names = upload.list_uploads()
    if not names:
        return
    with st.expander(f"Saved uploads ({len(names)}): " + ", ".join(md(n) for n in names)):
        metas = [upload.upload_meta(n) for n in names]
        st.dataframe(pd.DataFrame([{"name": m["name"], "file": m.get("source_file"), "rows": m["n"],
                                    "features": len(m.get("feature_names") or m["feature_columns"]),
                                    "group": m["sensitive_column"], "class": m["class_column"], "saved": m["created"],
                                    "runs": len(upload.runs_of_upload(run_store(), m["name"]))} for m in metas]),
                     hide_index=True, width="stretch")
        doomed = st.selectbox("Upload", names, key="upload.delete_name")
        runs = upload.runs_of_upload(run_store(), doomed)
        with_runs = st.checkbox(f"Also delete its {len(runs)} run(s)", key="upload.delete_runs", disabled=not runs,
                                help="Unticked, the runs stay in the run store (their numbers and saved arrays).")
        sure = st.checkbox(f"Yes, delete {md(doomed)}", key="upload.delete_sure")
        if st.button("Delete", key="upload.delete", disabled=not sure):
            upload.delete_upload(doomed, run_store(), with_runs=with_runs)
            st.success(f"Deleted {md(doomed)}" + (f" and its {len(runs)} run(s)." if with_runs else "; its runs are kept."))


def browse_datasets(data_dir) -> None:
    """The datasets tab: the catalogue, then the chosen dataset's facts, provenance and samples."""
    catalog = datasets.dataset_catalog(data_dir)
    st.dataframe(
        pd.DataFrame([{"id": c["id"], "name": c["name"], "size": c["size"], "available now": c["available"]} for c in catalog]),
        hide_index=True, width="stretch",
        column_config={"available now": st.column_config.CheckboxColumn(
            help="Whether it can be built now without the network: bundled, in the data folder, or already downloaded.")},
    )
    ids = [c["id"] for c in catalog]
    wanted = st.query_params.get("dataset", datasets.DEFAULT_DATASET)
    dataset_id = st.selectbox("Dataset", ids, index=ids.index(wanted) if wanted in ids else 0,
                              format_func=lambda i: datasets.REGISTRY[i].name, key="data_page.dataset")
    st.query_params["dataset"] = dataset_id
    spec = datasets.get_spec(dataset_id)
    entry = next(c for c in catalog if c["id"] == dataset_id)
    st.caption(spec.summary)
    with st.expander("Dataset options"):
        options = param_form_values(spec.options, f"data_page.{dataset_id}")

    if not entry["available"] and not st.button("Download and build it", key="data_page.download",
                                                help="Fetches the official files (checksummed, cached) and builds the dataset."):
        st.warning(f"Not on this machine yet: {md(entry['missing'] or 'its files are missing')}. Put the files in the data "
                   "folder (sidebar) or press the button to download them.")
        return

    bar = st.empty()
    try:
        with st.spinner("Building the dataset…"), reporting(
                lambda done, total: bar.progress(min(done / total, 1.0) if total else 0.0,
                                                 text=f"Downloading: {done / 2**20:,.1f} MB" + (f" of {total / 2**20:,.1f} MB" if total else ""))):
            data = datasets.load_dataset(dataset_id, options, data_dir)
    except (ValueError, datasets.DataUnavailable, datasets.DownloadError) as exc:
        st.error(f"Could not build {md(spec.name)}: {md(exc)}")
        return
    bar.empty()

    table = datasets.count_table(data)
    ceiling = datasets.max_balance(data)
    cols = st.columns(4)
    cols[0].metric("Samples", f"{len(data):,}")
    cols[1].metric("Classes", "none" if data.class_names is None else len(data.class_names))
    cols[2].metric("Groups", data.n_groups, help="Values of the sensitive attribute: " + ", ".join(md(g) for g in data.group_names))
    cols[3].metric("Max Balance", f"{ceiling:.3f}", help=metric_help("balance_ceiling"))

    left, right = st.columns([3, 2], gap="large")
    with left:
        st.plotly_chart(count_heatmap(table.to_numpy(), table.index, table.columns, title="Class × group counts",
                                      row_title="class", column_title="group"), key="data_page.counts")
        st.caption("Colour: the group's share of the class. The last row is the whole data: a class whose row looks "
                   "like it has the same group mix as the data.")
    with right:
        st.markdown("**Provenance**")
        st.markdown(f"- **Source**: {md(data.info.source)}\n- **Licence**: {md(data.info.licence or 'not stated')}\n"
                    f"- **Cite**: {md(data.info.citation or 'not stated')}\n- **How this copy was built**: {md(data.info.built)}")
        if data.splits:
            st.markdown("**Splits**: " + ", ".join(f"{md(name)} ({len(index):,})" for name, index in data.splits.items()))

    rng = np.random.default_rng(0)
    if data.is_image:
        st.markdown("**Samples per group**")
        for g, name in enumerate(data.group_names):
            members = np.flatnonzero(data.g == g)
            if not len(members):
                continue
            picked = np.sort(rng.choice(members, size=min(SAMPLES_PER_GROUP, len(members)), replace=False))
            st.image([display_image(data.X[i].numpy()) for i in picked], width=64,
                     caption=[f"{name} · {data.class_names[data.y[i]] if data.y is not None else ''}" for i in picked])
    else:
        st.markdown(f"**Feature summary by group** (first {min(FEATURES_SHOWN, data.n_features)} of {data.n_features} features"
                    + (", in the table's units" if data.unscale is not None else "") + ")")
        st.dataframe(feature_summary(data), width="stretch")


st.title("Data")
st.caption("Each dataset pairs samples with a sensitive attribute (the group). A fair clustering mixes the groups "
           "inside every cluster in the proportions of the whole data.")

data_dir = selected_data_dir()
browse, own = st.tabs(["Datasets", "Upload your own"])

with browse:
    browse_datasets(data_dir)

with own:
    st.markdown("Upload a **CSV**, **Parquet** or **NPZ** table as it comes: text columns are encoded (one-hot or "
                "ordinal), missing values handled as you choose, ids and columns that give the answer away left out "
                "of the defaults. Choose the sensitive column (2 or more groups) and optionally a class column; the "
                "saved dataset is *Your own data* on the Train page.")
    upload_form()
    saved_uploads()
    st.page_link("pages/audit.py", icon=":material/fact_check:",
                 label="Already clustered elsewhere? Audit a table with a cluster column, or a saved upload with its "
                       "assignments, on the Audit page")
