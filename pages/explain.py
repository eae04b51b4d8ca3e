"""Explain: Grad-CAM maps of a finished ERM run and a finished ClusterFix run on the same test images, side by side."""
import json

import numpy as np
import streamlit as st

from dashboard_lib import explain, methods
from dashboard_lib.data import load_dataset
from dashboard_lib.plots import explain_summary_figure
from dashboard_lib.state import ensure_navigation, run_store
from dashboard_lib.text import md

BLOCKS = {"last convolution (7×7 maps, standard Grad-CAM)": -1, "second-to-last convolution": -2,
          "third-to-last convolution (14×14 maps on 28×28 inputs)": -3}
STROKE_SAMPLE = 300  # test images the flip rate and the stroke share are measured on

ensure_navigation()
store = run_store()
st.title("Explain")
st.caption("Does a classifier read the digit, or the colour its training images tied to the label? Two looks at an ERM "
           "and a ClusterFix classifier on the same test images: repaint each digit in the other colour and count the "
           "predictions that change (the headline), then Grad-CAM maps of where each model looks.")


def _data_key(run) -> str:
    return json.dumps([run.dataset, run.config.get("dataset_options", {}), run.config.get("data_dir")], sort_keys=True)


runs = [r for r in store.list_runs(status="finished")
        if explain.explainable(r.method) and explain.weights_path(store, r.id).exists()]
# A plain classifier (ERM) set against one that debiases with clusters (ClusterFix), as each method declares.
erm_runs = [r for r in runs if not methods.get_method(r.method).debiases_with_clusters]
cf_runs = [r for r in runs if methods.get_method(r.method).debiases_with_clusters]
pairs = {r.id for r in cf_runs if any(_data_key(e) == _data_key(r) for e in erm_runs)}
if not pairs:
    missing = ("an ERM run and a ClusterFix run" if not erm_runs and not cf_runs
               else "an ERM run" if not erm_runs else "a ClusterFix run" if not cf_runs
               else "an ERM run and a ClusterFix run on the same data (same dataset and options)")
    erm = next(cls for cls in methods.REGISTRY.values() if cls.explainable and not cls.debiases_with_clusters)
    st.info(f"Nothing to explain yet: this page needs {missing} that finished. On the Train page choose the method "
            "ERM with its quick demo and press *Use that data* (the built-in digits coloured red/green, 95% of "
            f"the training images coloured as their label), train it (about {erm.quick_minutes:g} min on a laptop CPU), then "
            "ClusterFix the same way: both must use the same data options.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

by_id = {r.id: r for r in runs}
left, right = st.columns(2)
cf_ids = [r.id for r in cf_runs if r.id in pairs]
cf_id = left.selectbox("ClusterFix run", cf_ids, format_func=lambda i: by_id[i].label(), key="explain_cf")
erm_ids = [r.id for r in erm_runs if _data_key(r) == _data_key(by_id[cf_id])]
erm_id = right.selectbox("ERM run (same data)", erm_ids, format_func=lambda i: by_id[i].label(), key="explain_erm")


def _load(erm_id: str, cf_id: str):
    """The runs' data and both models, or an error message per failure (data gone, weights missing)."""
    erm_run, cf_run = store.get_run(erm_id), store.get_run(cf_id)
    try:
        data = load_dataset(cf_run.dataset, cf_run.config.get("dataset_options"), cf_run.config.get("data_dir"))
    except (ValueError, OSError, RuntimeError) as exc:  # the data folder moved or a file is gone since the runs trained
        return None, {}, f"Could not load the runs' data ({cf_run.dataset}): {exc}"
    models, errors = {}, []
    for name, run in (("ERM", erm_run), ("ClusterFix", cf_run)):
        try:
            models[name] = (run, explain.load_run_model(store, run))
        except explain.ExplainError as exc:
            errors.append(f"{name}: {exc}")
    return data, models, "\n\n".join(errors)


@st.cache_data(show_spinner="Swapping the colours of the test images…", max_entries=8)
def headline(root: str, erm_id: str, cf_id: str) -> dict:
    """Per model, the share of predictions that flip when the colour is swapped, on one fixed draw of test images (so
    the headline does not move while the images below are redrawn), and its accuracies as the run measured them."""
    data, models, error = _load(erm_id, cf_id)
    if error:
        return {"error": error}
    sample = explain.stroke_sample(data, STROKE_SAMPLE, 0)
    return {"n_sample": int(len(sample)), "dataset": data.id, "models": {
        name: {"flip": explain.colour_flip_rate(model, data, sample),
               "worst_group_acc": run.metrics.get("worst_group_acc"), "unbiased_acc": run.metrics.get("unbiased_acc")}
        for name, (run, model) in models.items()}}


top = headline(str(store.root), erm_id, cf_id)
if "error" in top:
    st.error(md(top["error"]))
    st.stop()
flips = {name: m["flip"] for name, m in top["models"].items()}
st.subheader("Does the model read the colour instead of the digit?")
if all(v is not None for v in flips.values()):
    # The headline: in coloured digits the colour sits on the strokes, so where a Grad-CAM map lies cannot tell a model
    # reading the colour from one reading the shape; repainting the digit can.
    columns = st.columns([1, 1, 1.3])
    for column, (name, model) in zip(columns, top["models"].items()):
        column.metric(f"{name}: flips when recoloured", explain.format_share(model["flip"]),
                      help=f"Each of {top['n_sample']} test images (half bias-aligned, half bias-conflicting) repainted "
                           "in the other group's colour, digit unchanged: the share whose predicted class changes.")
    columns[-1].markdown(
        f"**{explain.format_share(explain.FLIP_BLIND)}** = a colour-blind model (it reads only the digit's shape)  \n"
        f"**{explain.format_share(explain.FLIP_COLOUR_ONLY)}** = a model that reads only the colour  \n"
        f"Share of {top['n_sample']} test images whose prediction changes when only their colour is swapped.")
    st.markdown(f"**{md(explain.colour_reliance_sentence(flips))}**")
else:
    st.info(f"Flips when recoloured needs images in two colours (the coloured datasets); {md(top['dataset'])} has no "
            "colour to swap. "
            "The Grad-CAM maps below still show where each model looks.")
accuracies = (" · ".join(f"{name}: worst-group accuracy {m['worst_group_acc']:.3f}, unbiased accuracy {m['unbiased_acc']:.3f}"
                      for name, m in top["models"].items()
                      if isinstance(m["worst_group_acc"], float) and isinstance(m["unbiased_acc"], float)))
if accuracies:
    st.caption(accuracies)

st.subheader("Where the models look (Grad-CAM)")
st.caption("Grad-CAM (captum's LayerGradCam): the feature maps of a convolution weighted by the gradient of the true "
           "class, upsampled to the input and overlaid. A debiased model should look at the digit, not at what carries "
           "the bias.")
controls = st.columns(3)
per_group = controls[0].slider("Images per group", 1, 12, 8, key="explain_n",
                               help="Test images shown from each group, balanced over the classes.")
seed = controls[1].number_input("Image draw seed", min_value=0, value=0, step=1, key="explain_seed")
block_label = controls[2].selectbox("Feature maps explained", list(BLOCKS), key="explain_block",
                                    help="Grad-CAM reads one convolution's maps: the last one is standard; earlier ones "
                                         "are finer (14×14) and show stroke detail.")


@st.cache_data(show_spinner="Computing Grad-CAM…", max_entries=8)
def explanations(root: str, erm_id: str, cf_id: str, per_group: int, seed: int, block: int) -> dict:
    """Everything drawn below the headline, for one pair of runs and one draw (cached: the page redraws without
    recomputing)."""
    data, models, error = _load(erm_id, cf_id)
    if error:
        return {"error": error}
    groups = explain.pick_images(data, per_group, seed)
    chosen = np.concatenate(list(groups.values()))
    sample = explain.stroke_sample(data, STROKE_SAMPLE, seed)
    out = {"groups": {name: len(ix) for name, ix in groups.items()}, "images": [explain.upscale(explain.to_rgb(data.X[i]))
                                                                              for i in chosen],
           "y": data.y[chosen].tolist(), "class_names": data.class_names, "n_sample": int(len(sample)),
           "stroke_area": explain.stroke_area_share(data.X[sample]), "models": {}}
    for name, (run, model) in models.items():
        e = explain.explain_model(model, data, chosen, sample, block=block)
        out["models"][name] = {
            "overlays": [explain.overlay(data.X[i], cam) for i, cam in zip(chosen, e.cams)],
            "pred": e.pred.tolist(), "confidence": e.confidence.tolist(), "stroke_share": e.stroke_share,
            "colour_flip_rate": e.colour_flip_rate,
        }
    return out


result = explanations(str(store.root), erm_id, cf_id, per_group, int(seed), BLOCKS[block_label])
if "error" in result:
    st.error(md(result["error"]))
    st.stop()

area = result["stroke_area"]
lines = [explain.stroke_share_sentence(name, m["stroke_share"], area) for name, m in result["models"].items()]
left, right = st.columns([1, 1.3])
left.markdown("**Grad-CAM mass on the digit's strokes** (secondary: it says whether a model looks at the digit, not "
              "whether it reads the digit's shape or its colour, which sits on the same pixels)")
left.markdown("\n".join(f"- {md(line)}" for line in lines))
left.caption(f"Averaged over {result['n_sample']} test images; a pixel is stroke when its brightest channel exceeds "
             f"{explain.STROKE_THRESHOLD}. The strokes cover {explain.format_share(area)} of the image: a map spread "
             f"evenly would put that share on them. Between the models: "
             + explain.format_difference(result["models"]["ClusterFix"]["stroke_share"]
                                         - result["models"]["ERM"]["stroke_share"], explain.STROKE_TOLERANCE)
             + " (ClusterFix − ERM).")
right.plotly_chart(explain_summary_figure(result["models"], area), key="explain_summary")


def image_row(images, captions: list[str], slots: int) -> None:
    """One row of images, one column each, so a row never wraps and the rows of one group line up."""
    for column, image, caption in zip(st.columns(max(slots, 1)), images, captions):
        column.image(image, caption=caption, width="stretch", output_format="PNG")


names = result["class_names"] or []
st.caption("Each group: the test images (true class), then each model's Grad-CAM of the true class over the image, "
           "captioned with its predicted class and softmax confidence. " + explain.OVERLAY_LEGEND + " Classes: "
           + "; ".join(f"{i} = {n}" for i, n in enumerate(names)))
start = 0
for group, count in result["groups"].items():
    st.subheader(group.capitalize())
    if count == 0:
        st.caption("No test image in this group.")
        continue
    part = slice(start, start + count)
    image_row(result["images"][part], [f"true {y}" for y in result["y"][part]], per_group)
    for name, model in result["models"].items():
        captions = [f"{name}: {p} ({c:.2f})" for p, c in zip(model["pred"][part], model["confidence"][part])]
        image_row(model["overlays"][part], captions, per_group)
    start += count
