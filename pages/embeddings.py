"""Embeddings: a run's samples in 2-D at a saved epoch, coloured by cluster, by group and by class, beside the cluster × group counts."""
import numpy as np
import streamlit as st

from dashboard_lib.data.base import display_image
from dashboard_lib.plots import count_heatmap, embedding_scatter, profile_heatmap
from dashboard_lib.projection import (cluster_group_counts, dataset_for_arrays, input_profiles, label_names,
                                      load_epoch_points, projector_for, umap_is_warm)
from dashboard_lib.state import ensure_navigation, run_store, selected_run_id
from dashboard_lib.text import md
from dashboard_lib.methods import REGISTRY as METHODS, Method
from dashboard_lib.ui import metric_row, run_picker

POLL_SECONDS = 1.0  # while a UMAP computes (or the run trains), check this often whether there is something new
EPOCH_METRICS = ("acc", "nmi", "balance", "mnce", "entropy", "probe_acc")
MAX_THUMBNAILS = 12
MAX_PROFILE_COLUMNS = 24  # (cluster, group) columns of the profile heatmap that still read at a glance
HEATMAP_KEY = ("Shade: each group's share of the cluster (darker: more). The swatch by a group's name is its colour "
               "in every plot.")
LAYOUTS = {"UMAP": "UMAP keeps each point's neighbours together: clusters and islands show clearly. Computed in the "
                   "background and cached; the PCA view is shown until it is ready.",
           "PCA": "The two directions of largest variance: linear, instant, faithful to global distances but crowded."}

ensure_navigation()
store = run_store()
projector = projector_for(store)

st.title("Embeddings")
st.caption("Each dot is one sample, placed by a 2-D projection of the run's embedding at a saved epoch (or of the input "
           "features, for methods that cluster them directly). The same dots are drawn three times: coloured by the "
           "cluster the run assigned, by the sensitive group, and by the true class. **What fair looks like:** in the "
           "*by group* plot the colours interleave everywhere, and in the heatmap every cluster's row has the same "
           "group shares as the *all data* row. Islands of a single colour in the *by group* plot mean the embedding "
           "separates the groups, so its clusters will too.")

runs = store.list_runs()
if not runs:
    st.info("No runs yet. Train one on the Train page (any method); its embeddings appear here at each evaluation epoch.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

previous = selected_run_id()
run_id = run_picker(runs, key="emb_run_picker",
                    default=next((r.id for r in runs if any(e["has_arrays"] for e in store.evaluations(r.id))), None))
if run_id != previous:
    st.query_params.pop("epoch", None)
run = store.get_run(run_id)

evaluations = [e for e in store.evaluations(run_id) if e["has_arrays"]]
epochs = [e["epoch"] for e in evaluations]


@st.fragment(run_every=POLL_SECONDS)
def watch(run_id: str, n_epochs: int, umap_epoch: int | None) -> None:
    """Redraw the page once something it waits for arrives: a new saved epoch, the run's end, or the UMAP."""
    now = store.get_run(run_id)
    saved = sum(1 for e in store.evaluations(run_id) if e["has_arrays"])
    if saved != n_epochs or (umap_epoch is None and now.status != "running"):
        st.rerun(scope="app")
    if umap_epoch is not None:
        status = projector.umap_status(run_id, umap_epoch)
        if status == "ready" or status.startswith("failed"):
            st.rerun(scope="app")
        waiting = "waits for another epoch's layout" if status == "queued" else "is being computed"
        warming = "" if umap_is_warm() else (" The first UMAP after the app starts also compiles its code once "
                                             "(half a minute to a couple of minutes on a small CPU).")
        st.info(f"The UMAP layout {waiting} in the background. Meanwhile the PCA layout is shown below; the page "
                f"switches to the UMAP by itself when it is ready.{warming}", icon=":material/hourglass_top:")


if not epochs:
    if run.status == "running":
        st.info("This run has not saved an evaluation yet. Its embedding appears here at its first evaluation epoch "
                "(the method's *eval_every* setting); this page updates by itself.")
        watch(run_id, 0, None)
    else:
        st.info(f"This run ({run.status}) saved no arrays to draw. Train a new run with evaluations turned on "
                "(for example *eval_every* > 0), or pick another run above.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

controls = st.columns([3, 1])
with controls[0]:
    try:
        default_epoch = int(st.query_params.get("epoch", epochs[-1]))
    except ValueError:
        default_epoch = epochs[-1]
    if default_epoch not in epochs:
        default_epoch = epochs[-1]
    if len(epochs) > 1:
        epoch = st.select_slider("Epoch", options=epochs, value=default_epoch, key=f"epoch.{run_id}.{len(epochs)}",
                                 help="The saved evaluation epochs of this run. Layouts are aligned from epoch to epoch, "
                                      "so the same sample stays roughly in place and you can watch the groups mix (or not).")
    else:
        epoch = epochs[0]
        st.caption(f"One saved evaluation: epoch {epoch}.")
    if str(epoch) != st.query_params.get("epoch"):
        st.query_params["epoch"] = str(epoch)
with controls[1]:
    layout_name = st.segmented_control("Layout", list(LAYOUTS), default="UMAP", key="emb_layout",
                                       help=" ".join(f"{k}: {v}" for k, v in LAYOUTS.items())) or "UMAP"

try:
    points = load_epoch_points(store, run, epoch, with_features=False)
    with st.spinner("Computing the PCA layout…"):
        pca = projector.pca(run_id, epoch)
except ValueError as exc:
    st.error(f"Cannot draw this epoch: {md(exc)}")
    st.stop()

layout, umap_pending = pca, None
if layout_name == "UMAP":
    umap = projector.request_umap(run_id, epoch)
    status = projector.umap_status(run_id, epoch)
    if umap is not None:
        layout = umap
    elif status.startswith("failed"):
        st.warning(f"UMAP could not be computed ({md(status[len('failed: '):])}); the PCA layout is shown.")
    else:
        umap_pending = epoch
if umap_pending is not None or run.status == "running":
    watch(run_id, len(epochs), umap_pending)

group_names, class_names = label_names(run)
metrics = next(e["metrics"] for e in evaluations if e["epoch"] == epoch)
n_total = len(points.assignment)
shown = "UMAP" if layout.method == "umap" else "PCA"
st.markdown(f"**Epoch {epoch}** · {n_total:,} samples · {shown} of the {points.source}"
            + (f" · aligned to epoch {layout.aligned_to}" if layout.aligned_to is not None else ""))
if layout.note:
    st.caption(layout.note)
method = METHODS.get(run.method, Method)  # a classifier shows its own metrics, as on every page (Method.shown_metrics)
metric_row(method.shown_metrics(metrics), EPOCH_METRICS if method.kind == "clustering" else method.headline_metrics)

index = layout.index
a, g = points.assignment[index], points.g[index]
y = None if points.y is None else points.y[index]


def _names(values, names):
    return np.array([names[v] if names is not None and 0 <= v < len(names) else str(v) for v in range(int(values.max()) + 1)],
                    dtype=object)[values] if len(values) else np.array([], dtype=object)


hover = {"cluster": _names(a, points.cluster_names), "group": _names(g, group_names)}
if y is not None:
    hover["class"] = _names(y, class_names)
common = dict(hover=hover, ids=index, uirevision=f"{run_id}.{layout.method}")
views = [("cluster", a, points.cluster_names, "By cluster (the run's assignment)"),
         ("group", g, group_names, "By sensitive group")]
if y is not None:
    views.append(("class", y, class_names, "By true class"))

selected: set[int] = set()
columns = st.columns(len(views) if y is not None else len(views) + 1)
for column, (kind, values, names, title) in zip(columns, views):
    with column:
        fig = embedding_scatter(layout.coords, values, names, title=title, palette=kind, legend_title=kind, **common)
        event = st.plotly_chart(fig, key=f"scatter.{kind}", on_select="rerun", selection_mode=("points", "box", "lasso"),
                                config={"scrollZoom": True, "displaylogo": False})
        for point in (event.selection.points if event else []):
            custom = point.get("customdata")
            if custom:
                selected.add(int(custom[0]))

clusters, counts = cluster_group_counts(points.assignment, points.g, len(group_names))
heatmap = count_heatmap(counts, _names(clusters, points.cluster_names).tolist(), group_names or range(counts.shape[1]), title=f"Cluster × group counts (all {n_total:,} samples)")
if y is None:
    with columns[-1]:
        st.plotly_chart(heatmap, key="heatmap")
        st.caption(f"{HEATMAP_KEY} A fair cluster's row matches the *all data* row.")
    inspector = st.container()
else:
    below = st.columns([1, 1])
    with below[0]:
        st.plotly_chart(heatmap, key="heatmap")
        st.caption(f"{HEATMAP_KEY} A fair cluster's row matches the *all data* row; "
                   "an empty cell (0) is a cluster that misses a group, which sets Balance and MNCE to 0.")
    inspector = below[1]

with inspector:
    st.markdown("**Selected samples**")
    if not selected:
        st.caption("Click a point (or drag a box or lasso; double-click empty space to clear) in any plot above to "
                   "see its labels" + (" and its image" if len((run.dataset_info or {}).get("shape", [])) == 3 else "") + " here.")
    else:
        chosen = sorted(selected)[:MAX_THUMBNAILS]
        if len(selected) > MAX_THUMBNAILS:
            st.caption(f"{len(selected):,} selected; the first {MAX_THUMBNAILS} are shown.")
        data = dataset_for_arrays(run, n_total) if len((run.dataset_info or {}).get("shape", [])) == 3 else None
        cells = st.columns(4)
        for k, i in enumerate(chosen):
            caption = (f"#{i} · cluster {_names(points.assignment[i:i + 1], points.cluster_names)[0]} · {_names(points.g[i:i + 1], group_names)[0]}"
                       + ("" if points.y is None else f" · class {_names(points.y[i:i + 1], class_names)[0]}"))
            with cells[k % 4]:
                if data is not None:
                    st.image(display_image(data.X[i].numpy()), caption=caption, width=96)
                else:
                    st.caption(md(caption))  # group and class names from the user's data


profiles = input_profiles(run, points)
if profiles is not None:
    st.subheader("What the clusters mean in each group")
    st.caption("Balance and MNCE count each group's share of a cluster; they cannot see what a cluster *is*. A "
               "clustering can be fair by counts and still split one group by one feature and another group by "
               "another (men by marriage, women by age). Here each cluster's members of a group are compared with "
               "that group's other members, feature by feature, in the group's standard deviations (d).")
    metric_row({"profile_agreement": profiles.agreement} if np.isfinite(profiles.agreement) else {},
               ("profile_agreement",),
               empty="Profile agreement needs a cluster with members in at least two groups.")
    clusters_text = ", ".join(f"cluster {c}: {v:+.2f}" for c, v in zip(profiles.clusters, profiles.per_cluster)
                              if np.isfinite(v))  # NaN: the cluster is in fewer than two groups
    if clusters_text:
        st.caption(f"Per cluster (mean cosine between its groups' profiles): {md(clusters_text)}.")
    names = [group_names[g] if g < len(group_names) else str(g) for g in profiles.groups]
    if len(profiles.clusters) * len(names) <= MAX_PROFILE_COLUMNS:
        st.plotly_chart(profile_heatmap(profiles.d, profiles.feature_names, names,
                                        [f"cluster {c}" for c in profiles.clusters]), key="profiles")
        st.caption("Rows: the features that set some cluster apart most. Red: the cluster's members of that group "
                   "lie above the group's other members; blue: below. Columns of one cluster that look alike: it "
                   "means the same thing in every group.")
    else:
        st.caption(f"{len(profiles.clusters)} clusters × {len(names)} groups are too many columns for a heatmap; "
                   "the agreement above sums them up.")
