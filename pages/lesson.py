"""Lesson "See the bias": k-means against a fair method on the built-in digits, in five steps a class can follow."""
import time

import streamlit as st

from dashboard_lib import lesson
from dashboard_lib.metrics import balance_ceiling, balance_per_cluster
from dashboard_lib.methods import REGISTRY as METHODS
from dashboard_lib.plots import cluster_balance_bars, embedding_scatter, group_share_bars, probe_bars
from dashboard_lib.projection import label_names, load_epoch_points, projector_for
from dashboard_lib.state import ensure_navigation, job_registry, run_store
from dashboard_lib.text import md
from dashboard_lib.ui import progress_text

ensure_navigation()
POLL_SECONDS = 1.0
RUNS_KEY = "lesson_runs"
store, registry = run_store(), job_registry()
registry.reconcile()
projector = projector_for(store)
names = {lesson.UNFAIR: "k-means", lesson.FAIR: METHODS[lesson.FAIR_METHOD].name}

INTRO = ("Ten digit classes, written in two places: 5,000 digits from **MNIST** and 1,797 from **UCI optdigits**, "
         "which look different (thicker, blockier strokes). The source is the *sensitive group*. A clustering is "
         "fair when every cluster holds both sources in about the population's proportions (74 % / 26 %).")
try:
    step = min(max(int(st.query_params.get("step", 0)), 0), len(lesson.STEPS))
except ValueError:
    step = 0
if step == 0:
    st.title("Lesson: see the bias")
    st.markdown(INTRO)


def go_to(number: int) -> None:
    st.query_params["step"] = str(number)


runs = lesson.find_runs(store, registry)
if step == 0:
    ready = len(runs) == len(lesson.lesson_configs())
    st.markdown("The lesson trains two runs, or reuses them when this store already has them: **k-means** (seconds) "
                f"and **{names[lesson.FAIR]}** on its quick demo (about two minutes on a laptop CPU); you can read "
                "the first two steps while the second trains.")
    if st.button("Open the lesson" if ready else "Start the lesson", type="primary", icon=":material/school:"):
        st.session_state[RUNS_KEY] = lesson.start_missing(store, registry)
        go_to(1)
        st.rerun()
    st.stop()


def lesson_runs() -> dict[str, str]:
    """The runs this visit shows, chosen once (so a run that fails is shown as failed, not silently retried); a
    shared link to a step, or a run deleted since, chooses again, starting what is missing."""
    runs = st.session_state.get(RUNS_KEY)
    try:
        for run_id in (runs or {}).values():
            store.get_run(run_id)
    except KeyError:
        runs = None
    if not runs:
        runs = st.session_state[RUNS_KEY] = lesson.start_missing(store, registry)
    return runs


runs = lesson_runs()
current = lesson.STEPS[step - 1]
# One row for where we are and the way on, so each step's figure fits a 1280 × 720 projector without scrolling.
nav = st.columns([5, 1, 1], vertical_alignment="center")
nav[0].subheader(current.title, help=INTRO)
nav[0].caption(f"Lesson: see the bias · step {step} of {len(lesson.STEPS)}")
nav[1].button("Back", icon=":material/arrow_back:", on_click=go_to, args=(step - 1,), width="stretch")
if step < len(lesson.STEPS):
    nav[2].button("Next", icon=":material/arrow_forward:", on_click=go_to, args=(step + 1,), type="primary", width="stretch")
else:
    nav[2].button("Again", icon=":material/replay:", on_click=go_to, args=(1,), width="stretch")


def final_points(role: str):
    """(run, its last evaluation's metrics, its saved points) once the role's run finished, else None."""
    run = store.get_run(runs[role])
    if run.status != "finished":
        return None
    evaluation = [e for e in store.evaluations(run.id) if e["has_arrays"]][-1]
    return run, evaluation, load_epoch_points(store, run, evaluation["epoch"], with_features=False)


finished = {role: final_points(role) for role in runs}


@st.fragment(run_every=POLL_SECONDS)
def wait_for(role: str) -> None:
    run = store.get_run(runs[role])
    if run.status != "running":
        st.rerun(scope="app")
    st.progress(min(max(run.progress, 0.0), 1.0),
                text=f"{names[role]} is training · " + progress_text(run.progress, time.time() - run.created, run.stage))


for role in current.needs:
    if finished[role] is None:
        run = store.get_run(runs[role])
        if run.status == "running":
            st.info(f"This step shows {names[role]}'s clusters once it has finished; it trains now and the page "
                    "continues by itself.", icon=":material/hourglass_top:")
            wait_for(role)
        else:
            st.error(f"The lesson's {names[role]} run {run.status}: {md(run.error or 'no result')}. Open Monitor for its "
                     "details; *Start again* trains a new one.")
            if st.button("Start again", icon=":material/replay:"):
                st.session_state.pop(RUNS_KEY, None)
                st.rerun()
        st.stop()

if all(found is not None for found in finished.values()):  # ask for the UMAP layouts early: step 4 then has them
    for found in finished.values():  # (not while a run trains: UMAP holds the GIL and would slow it several-fold)
        projector.request_umap(found[0].id, found[1]["epoch"], prefetch=False)

group_names, _ = label_names(finished[lesson.UNFAIR][0])


def shares(role: str, title: str):
    _, _, points = finished[role]
    clusters, counts, _ = balance_per_cluster(points.assignment, points.g, len(group_names))
    return group_share_bars(counts, clusters, group_names, title=title)


def balance(role: str):
    run, evaluation, points = finished[role]
    clusters, counts, ratio = balance_per_cluster(points.assignment, points.g, len(group_names))
    metrics, ceiling = evaluation["metrics"], balance_ceiling(points.g)
    worst = int(ratio.argmin())
    fig = cluster_balance_bars(clusters, ratio, ceiling,
                               title=f"{names[role]}: Balance {metrics['balance']:.3f} (ceiling {ceiling:.3f})")
    counts_text = ", ".join(f"{int(n):,} {g}" for n, g in zip(counts[worst], group_names))
    return fig, f"Set by cluster {clusters[worst]}: {counts_text}."


if step == 1:
    _, evaluation, points = finished[lesson.UNFAIR]
    clusters, counts, ratio = balance_per_cluster(points.assignment, points.g, len(group_names))
    lopsided = int((counts.max(1) >= 0.9 * counts.sum(1)).sum())
    pure = int((counts.min(1) == 0).sum())
    st.markdown("k-means puts digits that look alike together, and the two sources draw digits differently: "
                f"**{lopsided} of its {len(clusters)} clusters are at least 90 % one source**"
                + (f" ({pure} entirely)" if pure else "") + ". Each bar is one cluster; the top bar is the whole "
                "dataset. A fair cluster's colours would break at the dashed line, like the top bar.")
    st.plotly_chart(shares(lesson.UNFAIR, "k-means: group shares per cluster"), key="lesson.shares.unfair")
elif step == 2:
    st.markdown("**Balance** (DFC, FCMI) takes each cluster's *smallest group count ÷ largest group count* and keeps "
                "the **minimum** over clusters: one single-source cluster makes it 0. It cannot exceed the dataset's "
                "own ratio (1,797 ÷ 5,000 = 0.36), the *ceiling*, because some cluster always has at most the "
                "population's share of the smaller group.")
    fig, caption = balance(lesson.UNFAIR)
    st.plotly_chart(fig, key="lesson.balance.unfair")
    st.caption(caption)
elif step == 3:
    metrics = finished[lesson.FAIR][1]["metrics"]
    mixed = "Every cluster now holds both sources" if metrics["balance"] > 0 else "Most clusters now hold both sources"
    st.markdown(f"**{names[lesson.FAIR]}** (Zeng et al., CVPR 2023) learns an embedding whose clusters carry as "
                "much information as possible about the data and as little as possible about the source. "
                f"{mixed}: Balance **{metrics['balance']:.3f}** of a possible "
                f"{balance_ceiling(finished[lesson.FAIR][2].g):.3f}, and MNCE **{metrics['mnce']:.3f}** (1 = every cluster mirrors "
                f"the 74/26 mix), at ACC {metrics['acc']:.3f} (k-means {finished[lesson.UNFAIR][1]['metrics']['acc']:.3f}).")
    left, right = st.columns(2)
    left.plotly_chart(shares(lesson.FAIR, f"{names[lesson.FAIR]}: group shares per cluster"), key="lesson.shares.fair")
    fig, caption = balance(lesson.FAIR)
    right.plotly_chart(fig, key="lesson.balance.fair")
    right.caption(caption)
elif step == 4:
    st.markdown("Each dot is one digit, placed by UMAP so that similar digits sit together, and coloured by its "
                "source. k-means clusters the pixels, where the sources form separate islands; the fair method's "
                "embedding interleaves them, so its clusters cannot follow the source.")
    columns, pending = st.columns(2), False
    for column, role in zip(columns, (lesson.UNFAIR, lesson.FAIR)):
        run, evaluation, points = finished[role]
        layout = projector.request_umap(run.id, evaluation["epoch"], prefetch=False)
        if layout is None:
            layout, pending = projector.pca(run.id, evaluation["epoch"]), True
        shown = "UMAP" if layout.method == "umap" else "PCA (UMAP still computing)"
        column.plotly_chart(embedding_scatter(layout.coords, points.g[layout.index], group_names, palette="group",
                                              legend_title="source", title=f"{names[role]}: {shown} of the {points.source}",
                                              height=400), key=f"lesson.umap.{role}")
    if pending:
        @st.fragment(run_every=POLL_SECONDS)
        def wait_for_umap() -> None:
            if all(projector.umap_status(finished[r][0].id, finished[r][1]["epoch"]) != "computing"
                   and projector.umap_status(finished[r][0].id, finished[r][1]["epoch"]) != "queued" for r in finished):
                st.rerun(scope="app")
            st.caption("The UMAP layouts are computing in the background; the PCA layout is shown meanwhile.")
        wait_for_umap()
elif step == 5:
    metrics = {role: finished[role][1]["metrics"] for role in finished}
    chance = metrics[lesson.UNFAIR]["probe_majority"]
    st.markdown("A *bias probe* is a fresh logistic regression trained to read the source from each embedding, and "
                "scored on digits it did not see. Guessing *MNIST* every time already scores the chance rate. "
                "The closer a run's probe is to chance, the less of the source its embedding keeps.")
    st.plotly_chart(probe_bars({names[r]: metrics[r]["probe_acc"] for r in (lesson.UNFAIR, lesson.FAIR)}, chance),
                    key="lesson.probe")
    gap = {r: metrics[r]["probe_acc"] - chance for r in metrics}
    st.caption(f"k-means' features give the source away ({metrics[lesson.UNFAIR]['probe_acc']:.3f}, "
               f"{gap[lesson.UNFAIR]:+.3f} above chance); {names[lesson.FAIR]}'s keep "
               f"{'almost none' if gap[lesson.FAIR] < 0.02 else 'little' if gap[lesson.FAIR] < 0.1 else 'less'} of it ({metrics[lesson.FAIR]['probe_acc']:.3f}). "
               "Fair clusters do not need a blind embedding, but a blind embedding makes them easy.")
    st.success("That is the story: an unconstrained clustering follows the sensitive attribute when the groups look "
               "different; a fair method trades a little accuracy for clusters that mix the groups. Next: try DFC or "
               "another method on Train, or compare all runs on Compare.", icon=":material/task_alt:")
    links = st.columns(3)
    links[0].page_link("pages/train.py", label="Train another method", icon=":material/model_training:")
    links[1].page_link("pages/compare.py", label="Compare the runs", icon=":material/compare_arrows:")
    links[2].page_link("pages/embeddings.py", label="Explore the embeddings", icon=":material/scatter_plot:")
