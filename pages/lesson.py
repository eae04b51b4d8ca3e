"""Lesson "See the bias": k-means against a fair method on the built-in digits, in five steps a class can follow, and an
optional sixth: the classic answer, fairlets."""
import time

import numpy as np
import streamlit as st

from dashboard_lib import lesson
from dashboard_lib.metrics import balance_ceiling, balance_per_cluster
from dashboard_lib.methods import REGISTRY as METHODS
from dashboard_lib.plots import cluster_balance_bars, embedding_scatter, group_share_bars, metric_bars, probe_bars
from dashboard_lib.projection import label_names, load_epoch_points, projector_for
from dashboard_lib.state import ensure_navigation, job_registry, run_store
from dashboard_lib.text import md
from dashboard_lib.ui import progress_text

ensure_navigation()
POLL_SECONDS = 1.0
RUNS_KEY = "lesson_runs"
# Figure heights (px) with which every step, its text and its way on fit a 1280 × 630 browser window without scrolling
# (tests/e2e/test_lesson.py checks it at 1280 × 630 and 1280 × 720).
SHARES_HEIGHT, FULL_HEIGHT, PAIR_HEIGHT, SCATTER_HEIGHT, PROBE_HEIGHT = 340, 300, 300, 300, 330
# Less of Streamlit's blank padding above and below the page (6rem and 10rem): the room the figures need, and no
# scrolling over empty space (a style-only st.html takes no room on the page).
FIT_THE_SCREEN = "<style>[data-testid='stMainBlockContainer'] {padding-top: 3.5rem; padding-bottom: 0.5rem}</style>"
store, registry = run_store(), job_registry()
registry.reconcile()
projector = projector_for(store)
names = {lesson.UNFAIR: "k-means", lesson.FAIR: METHODS[lesson.FAIR_METHOD].name,
         lesson.CLASSIC: METHODS[lesson.CLASSIC_METHOD].name}

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
    st.markdown(f"About {lesson.LENGTH_MINUTES} minutes from the click to the story's end on a laptop, its runs "
                f"included: the lesson trains **k-means** (seconds), then **{names[lesson.FAIR]}** on its quick demo "
                "(you can read the first two steps meanwhile), then, for an optional last step, "
                f"**{names[lesson.CLASSIC]}** (seconds). It reuses these runs when this store already has them.")
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
    if not runs or set(runs) != set(lesson.lesson_configs()):
        runs = st.session_state[RUNS_KEY] = lesson.start_missing(store, registry)
    return runs


runs = lesson_runs()
current = lesson.STEPS[step - 1]
st.html(FIT_THE_SCREEN)
# One row for where we are and the way on, so each step's figure fits the screen without scrolling.
nav = st.columns([5, 1, 1], vertical_alignment="center")
nav[0].subheader(current.title, help=INTRO)
nav[0].caption("Lesson: see the bias · " + ("optional step, after the story's end" if current.optional
                                            else f"step {step} of {lesson.STORY_STEPS}"))
nav[1].button("Back", icon=":material/arrow_back:", on_click=go_to, args=(step - 1,), width="stretch")
if step < lesson.STORY_STEPS:
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
            st.info(f"This step shows {lesson.possessive(names[role])} clusters once it has finished; it trains now and the page "
                    "continues by itself.", icon=":material/hourglass_top:")
            wait_for(role)
        else:
            st.error(f"The lesson's {names[role]} run {run.status}: {md(run.error or 'no result')}. Open Monitor for its "
                     "details; *Start again* trains a new one.")
            if st.button("Start again", icon=":material/replay:"):
                st.session_state.pop(RUNS_KEY, None)
                st.rerun()
        st.stop()

embedded = (lesson.UNFAIR, lesson.FAIR)  # the runs whose embeddings steps 4 and 5 show
if all(found is not None for found in finished.values()):  # ask for the UMAP layouts early: step 4 then has them
    for role in embedded:  # (not while a run trains: UMAP holds the GIL and would slow it several-fold)
        projector.request_umap(finished[role][0].id, finished[role][1]["epoch"], prefetch=False)

group_names, _ = label_names(finished[lesson.UNFAIR][0])
metrics = {role: found[1]["metrics"] for role, found in finished.items() if found is not None}
points = {role: found[2] for role, found in finished.items() if found is not None}
ceiling = balance_ceiling(points[lesson.UNFAIR].g)


def per_cluster(role: str):
    """(cluster ids, cluster × group counts, smallest / largest group count per cluster) of the role's run."""
    return balance_per_cluster(points[role].assignment, points[role].g, len(group_names))


def shares(role: str, title: str, height: int):
    clusters, counts, _ = per_cluster(role)
    return group_share_bars(counts, clusters, group_names, title=title).update_layout(height=height)


def balance(role: str, height: int):
    """The role's per-cluster Balance bars under the ceiling, and the caption naming the cluster that sets Balance."""
    clusters, counts, ratio = per_cluster(role)
    worst = int(ratio.argmin())
    title = f"{names[role]}: Balance {metrics[role]['balance']:.3f}, its lowest bar (ceiling {ceiling:.3f})"
    fig = cluster_balance_bars(clusters, ratio, ceiling, title=title).update_layout(height=height)
    return fig, lesson.balance_caption(clusters[worst], counts[worst], group_names)


if step == 1:
    st.markdown(lesson.one_source_sentence(per_cluster(lesson.UNFAIR)[1]) + " Each bar is one cluster; the top bar is "
                "the whole dataset. A fair cluster's colours would break at the dashed line, like the top bar.")
    st.plotly_chart(shares(lesson.UNFAIR, "k-means: group shares per cluster", SHARES_HEIGHT), key="lesson.shares.unfair")
elif step == 2:
    st.markdown("**Balance** (DFC, FCMI) takes each cluster's *smallest group count ÷ largest group count* and keeps "
                "the **minimum** over clusters: one single-source cluster makes it 0. "
                + lesson.ceiling_sentence(per_cluster(lesson.UNFAIR)[2], np.bincount(points[lesson.UNFAIR].g),
                                          group_names))
    fig, caption = balance(lesson.UNFAIR, FULL_HEIGHT)
    st.plotly_chart(fig, key="lesson.balance.unfair")
    st.caption(caption)
elif step == 3:
    st.markdown(f"**{names[lesson.FAIR]}** (Zeng et al., CVPR 2023) learns an embedding that keeps as much about the "
                "digits and as little about the source as it can. "
                + lesson.mixed_sentence(names[lesson.FAIR], per_cluster(lesson.FAIR)[1], metrics[lesson.FAIR],
                                        metrics[lesson.UNFAIR], ceiling))
    left, right = st.columns(2)
    left.plotly_chart(shares(lesson.FAIR, f"{names[lesson.FAIR]}: group shares per cluster", PAIR_HEIGHT),
                      key="lesson.shares.fair")
    fig, caption = balance(lesson.FAIR, PAIR_HEIGHT)
    right.plotly_chart(fig, key="lesson.balance.fair")
    right.caption(caption)
elif step == 4:
    layouts = {}
    for role in embedded:
        run, evaluation = finished[role][0], finished[role][1]
        layouts[role] = (projector.request_umap(run.id, evaluation["epoch"], prefetch=False)
                         or projector.pca(run.id, evaluation["epoch"]))
    chance = metrics[lesson.UNFAIR]["probe_majority"]
    st.markdown(lesson.layout_sentence(layout.method for layout in layouts.values()) + " "
                + lesson.separation_sentence(names[lesson.FAIR], metrics[lesson.UNFAIR]["probe_acc"],
                                             metrics[lesson.FAIR]["probe_acc"], chance))
    for column, role in zip(st.columns(2), embedded):
        layout = layouts[role]
        shown = "UMAP" if layout.method == "umap" else "PCA"
        column.plotly_chart(embedding_scatter(layout.coords, points[role].g[layout.index], group_names, palette="group",
                                              legend_title="source", title=f"{names[role]}: {shown} of its {points[role].source}",
                                              height=SCATTER_HEIGHT), key=f"lesson.umap.{role}")
    if any(layout.method != "umap" for layout in layouts.values()):
        @st.fragment(run_every=POLL_SECONDS)
        def wait_for_umap() -> None:
            if all(projector.umap_status(finished[r][0].id, finished[r][1]["epoch"]) not in ("computing", "queued")
                   for r in embedded):
                st.rerun(scope="app")
            st.caption("UMAP is computing in the background; PCA is shown until it is ready.")
        wait_for_umap()
elif step == 5:
    chance = metrics[lesson.UNFAIR]["probe_majority"]
    st.markdown("A *bias probe*, a fresh logistic regression, reads the source from each embedding, scored on digits "
                "it did not see; always guessing *MNIST* scores the chance rate. "
                + lesson.probe_sentence(names[lesson.FAIR], metrics[lesson.UNFAIR]["probe_acc"],
                                        metrics[lesson.FAIR]["probe_acc"], chance)
                + " Fair clusters do not need a blind embedding, but a blind embedding makes them easy.")
    chart, end = st.columns(2)
    chart.plotly_chart(probe_bars({names[r]: metrics[r]["probe_acc"] for r in embedded}, chance).update_layout(
        height=PROBE_HEIGHT), key="lesson.probe")
    end.success(lesson.conclusion(names[lesson.FAIR], metrics[lesson.FAIR], metrics[lesson.UNFAIR]),
                icon=":material/task_alt:")
    end.button("Optional: the classic answer", icon=":material/arrow_forward:", on_click=go_to, args=(step + 1,))
    links = end.columns(3)
    links[0].page_link("pages/train.py", label="Train", icon=":material/model_training:")
    links[1].page_link("pages/compare.py", label="Compare", icon=":material/compare_arrows:")
    links[2].page_link("pages/embeddings.py", label="Embeddings", icon=":material/scatter_plot:")
elif step == 6:
    sizes = np.bincount(points[lesson.CLASSIC].g)
    t, _ = lesson.fairlet_bound(sizes)
    st.markdown("Chierichetti et al. (NeurIPS 2017), who defined Balance, cluster *fairlets*: small sets of one "
                f"{md(group_names[int(sizes.argmin())])} digit and at most {t} of the other source, so every cluster is "
                "mixed by construction. "
                + lesson.classic_sentence(names[lesson.FAIR], metrics[lesson.CLASSIC], metrics[lesson.FAIR],
                                          metrics[lesson.UNFAIR], ceiling, t))
    left, right = st.columns(2)
    fig, caption = balance(lesson.CLASSIC, PAIR_HEIGHT)
    left.plotly_chart(fig, key="lesson.balance.classic")
    left.caption(caption)
    right.plotly_chart(metric_bars({names[r]: metrics[r] for r in (lesson.UNFAIR, lesson.FAIR, lesson.CLASSIC)},
                                   ["acc", "balance"], title="Accuracy and Balance of the three runs").update_layout(
        height=PAIR_HEIGHT), key="lesson.classic.compare")
