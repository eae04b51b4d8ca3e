"""Data: what each dataset holds (sizes, class × group counts, samples, provenance), and uploading your own."""
import numpy as np
import pandas as pd
import streamlit as st

from dashboard_lib import data as datasets
from dashboard_lib.data import upload
from dashboard_lib.data.base import display_image
from dashboard_lib.data.download import reporting
from dashboard_lib.plots import count_heatmap
from dashboard_lib.state import data_dir as selected_data_dir, ensure_navigation, run_store
from dashboard_lib.ui import metric_help, param_form_values, table_uploader

ensure_navigation()

SAMPLES_PER_GROUP = 12
MANY_GROUPS = 30  # HAR has 30 subjects as groups; more than that in an upload is usually a continuous column
FEATURES_SHOWN = 20

st.title("Data")
st.caption("Each dataset pairs samples with a sensitive attribute (the group). A fair clustering mixes the groups "
           "inside every cluster in the proportions of the whole data.")

data_dir = selected_data_dir()
browse, own = st.tabs(["Datasets", "Upload your own"])

with browse:
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
        st.warning(f"Not on this machine yet: {entry['missing'] or 'its files are missing'}. Put the files in the data "
                   "folder (sidebar) or press the button to download them.")
        st.stop()

    bar = st.empty()
    try:
        with st.spinner("Building the dataset…"), reporting(
                lambda done, total: bar.progress(min(done / total, 1.0) if total else 0.0,
                                                 text=f"Downloading: {done / 2**20:,.1f} MB" + (f" of {total / 2**20:,.1f} MB" if total else ""))):
            data = datasets.load_dataset(dataset_id, options, data_dir)
    except (ValueError, datasets.DataUnavailable, datasets.DownloadError) as exc:
        st.error(f"Could not build {spec.name}: {exc}")
        st.stop()
    bar.empty()

    table = datasets.count_table(data)
    ceiling = datasets.max_balance(data)
    cols = st.columns(4)
    cols[0].metric("Samples", f"{len(data):,}")
    cols[1].metric("Classes", "none" if data.class_names is None else len(data.class_names))
    cols[2].metric("Groups", data.n_groups, help="Values of the sensitive attribute: " + ", ".join(data.group_names))
    cols[3].metric("Max Balance", f"{ceiling:.3f}", help=metric_help("balance_ceiling"))

    left, right = st.columns([3, 2], gap="large")
    with left:
        st.plotly_chart(count_heatmap(table.to_numpy(), table.index, table.columns, title="Class × group counts",
                                      row_title="class", column_title="group"), key="data_page.counts")
        st.caption("Colour: the group's share of the class. The last row is the whole data: a class whose row looks "
                   "like it has the same group mix as the data.")
    with right:
        st.markdown("**Provenance**")
        st.markdown(f"- **Source**: {data.info.source}\n- **Licence**: {data.info.licence or 'not stated'}\n"
                    f"- **Cite**: {data.info.citation or 'not stated'}\n- **How this copy was built**: {data.info.built}")
        if data.splits:
            st.markdown("**Splits**: " + ", ".join(f"{name} ({len(index):,})" for name, index in data.splits.items()))

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
        st.markdown(f"**Feature summary by group** (first {min(FEATURES_SHOWN, data.n_features)} of {data.n_features} features)")
        X = data.X.flatten(1)[:, :FEATURES_SHOWN].numpy()
        summary = {f"{name} mean ± sd": [f"{m:.3g} ± {s:.2g}" for m, s in zip(X[data.g == g].mean(0), X[data.g == g].std(0))]
                   for g, name in enumerate(data.group_names[:6]) if (data.g == g).any()}
        st.dataframe(pd.DataFrame(summary, index=[f"feature {j}" for j in range(X.shape[1])]), width="stretch")

with own:
    st.markdown("Upload a **CSV**, **Parquet** or **NPZ** table, choose the feature columns, the sensitive column "
                "(2 or more groups) and optionally a class column. It is saved so runs can use it "
                "(dataset *Your own data*, option *name*).")
    file = table_uploader("Table", key="upload.file")
    if file is not None:
        try:
            table = upload.read_table(file.getvalue(), file.name)
        except ValueError as exc:
            st.error(f"Could not read {file.name}: {exc}")
            st.stop()
        about = upload.inspect_table(table)
        st.caption(f"{about['n_rows']:,} rows × {about['n_columns']} columns")
        st.dataframe(table.head(20), width="stretch")
        columns = [c["name"] for c in about["columns"]]
        # Default to a categorical column with few values (a site, a sex, a source): what "sensitive" usually means.
        group_like = sorted((c for c in about["columns"] if c["can_be_group"]),
                            key=lambda c: (c["kind"] != "categorical", c["n_unique"] > MANY_GROUPS, c["n_unique"]))
        group_like = [c["name"] for c in group_like]
        unique = {c["name"]: c["n_unique"] for c in about["columns"]}
        with st.form("upload.form"):
            sensitive = st.selectbox("Sensitive column (the group)", columns,
                                     index=columns.index(group_like[0]) if group_like else 0, key="upload.sensitive")
            class_col = st.selectbox("Class column (optional, for ACC/NMI)", ["(none)", *columns], key="upload.class")
            numeric = [c["name"] for c in about["columns"] if c["can_be_feature"]]
            features = st.multiselect("Feature columns", columns, default=[c for c in numeric if c not in (sensitive, class_col)],
                                      key="upload.features")
            name = st.text_input("Save as", value=file.name.rsplit(".", 1)[0].replace(" ", "_")[:64], key="upload.name")
            overwrite = st.checkbox("Replace an upload of the same name", key="upload.overwrite")
            saved = st.form_submit_button("Save dataset", type="primary")
        if saved:
            if unique.get(sensitive, 0) > MANY_GROUPS:
                st.warning(f"The sensitive column {sensitive!r} has {unique[sensitive]} distinct values: it looks continuous. "
                           "Fairness metrics treat each value as its own group; pick a categorical column (a site, a sex, "
                           "a source) unless that is what you want.")
            try:
                meta = upload.build_upload(table, features, sensitive, None if class_col == "(none)" else class_col,
                                           name=name, filename=file.name, overwrite=overwrite)
            except ValueError as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.success(f"Saved **{meta['name']}**: {meta['n']:,} rows, groups {meta['group_counts']}. "
                           "Train on it with dataset *Your own data* and option name = " + meta["name"] + ".")
    saved_names = upload.list_uploads()
    if saved_names:
        with st.expander(f"Saved uploads ({len(saved_names)}): " + ", ".join(saved_names)):
            doomed = st.selectbox("Upload", saved_names, key="upload.delete_name")
            runs = upload.runs_of_upload(run_store(), doomed)
            with_runs = st.checkbox(f"Also delete its {len(runs)} run(s)", key="upload.delete_runs", disabled=not runs,
                                    help="Unticked, the runs stay in the run store (their numbers and saved arrays).")
            sure = st.checkbox(f"Yes, delete {doomed}", key="upload.delete_sure")
            if st.button("Delete", key="upload.delete", disabled=not sure):
                upload.delete_upload(doomed, run_store(), with_runs=with_runs)
                st.success(f"Deleted {doomed}" + (f" and its {len(runs)} run(s)." if with_runs else "; its runs are kept."))
    st.page_link("pages/audit.py", icon=":material/fact_check:",
                 label="Already clustered elsewhere? Audit a table with a cluster column, or a saved upload with its "
                       "assignments, on the Audit page")
