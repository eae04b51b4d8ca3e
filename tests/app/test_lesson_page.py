"""The Start page and the lesson through AppTest, on the lesson's real runs (trained once per test session: lesson_store)."""
import time

import pytest

from dashboard_lib import lesson
from dashboard_lib.jobs import JobRegistry
from dashboard_lib.store import RunStore
from tests.app.helpers import charts, open_app


def test_start_page_offers_three_paths(fclab_home):
    at = open_app()
    assert [s.value for s in at.subheader] == ["See the bias", "Audit a clustering", "Reproduce a paper"]
    start = next(b for b in at.button if b.label == "Start the lesson")  # a button, not a small link
    start.click().run()
    assert at.title[0].value == "Lesson: see the bias" and not at.exception


def test_the_lesson_walks_through_its_steps_on_runs_already_in_the_store(lesson_home, monkeypatch):
    monkeypatch.setenv("FCLAB_HOME", str(lesson_home))
    before = {r.id for r in RunStore(lesson_home / "store").list_runs()}
    at = open_app("pages/lesson.py")
    at.button[0].click().run()  # "Open the lesson": its runs are there, nothing starts
    assert at.button[0].label == "Back" and not at.exception
    assert {r.id for r in RunStore(lesson_home / "store").list_runs()} == before

    texts = lambda: " ".join(m.value for m in [*at.markdown, *at.caption])  # noqa: E731
    assert "clusters are at least 90\u00a0% one source" in texts()
    (shares,) = charts(at)
    assert shares["data"][0]["y"][0] == "population"
    next_button = lambda: next(b for b in at.button if b.label == "Next")  # noqa: E731

    next_button().click().run()  # 2: Balance against its ceiling, with the cluster that sets it named
    (bars,) = charts(at)
    assert bars["layout"]["shapes"][0]["y0"] == pytest.approx(1797 / 5000, abs=1e-3)
    assert "Balance is set by cluster" in texts() and "k-means: Balance 0.000" in bars["layout"]["title"]["text"]
    assert "bounds the **least** balanced cluster" in texts()

    next_button().click().run()  # 3: the fair method's shares and Balance
    store = RunStore(lesson_home / "store")
    shown = {role: [e for e in store.evaluations(run_id) if e["has_arrays"]][-1]["metrics"]  # the final evaluation's
             for role, run_id in lesson.find_runs(store, JobRegistry(store)).items()}
    fair, unfair = shown[lesson.FAIR], shown[lesson.UNFAIR]
    assert len(charts(at)) == 2 and f"MNCE **{fair['mnce']:.3f}**" in texts()
    assert f"ACC {fair['acc']:.3f} against {unfair['acc']:.3f}" in texts()  # whichever way it goes, it is said

    next_button().click().run()  # 4: both embeddings coloured by source (UMAP, or PCA while it computes)
    scatters = charts(at)
    assert len(scatters) == 2 and all({t["name"] for t in s["data"]} == {"MNIST sample", "UCI optdigits"} for s in scatters)

    next_button().click().run()  # 5: the probe against chance, and the end
    (probe,) = charts(at)
    assert probe["layout"]["shapes"][0]["y0"] == pytest.approx(5000 / 6797, abs=0.02)  # the held-out majority rate
    assert [b.label for b in at.button] == ["Back", "Again", "Optional: the classic answer"] and at.success
    assert at.success[0].value == lesson.conclusion("FCMI", fair, unfair)

    at.button[2].click().run()  # 6 (optional): fairlets' Balance per cluster, and the three runs side by side
    classic = shown[lesson.CLASSIC]
    balance, compared = charts(at)
    assert "Fairlets: Balance" in balance["layout"]["title"]["text"]
    assert [t["name"] for t in compared["data"]] == ["k-means", "FCMI", "Fairlets"]
    assert f"Fairlets reach Balance **{classic['balance']:.3f}**" in texts()
    assert [b.label for b in at.button] == ["Back", "Again"] and not at.exception


def test_starting_the_lesson_on_an_empty_store_trains_its_runs(fclab_home):
    at = open_app("pages/lesson.py")
    assert at.button[0].label == "Start the lesson"
    at.button[0].click().run()
    store = RunStore(fclab_home / "store")
    runs = {r.method: r for r in store.list_runs()}
    assert set(runs) == {config.method for config in lesson.lesson_configs().values()}
    wanted = lesson.lesson_configs()[lesson.FAIR].resolved().hparams
    assert runs[lesson.FAIR_METHOD].config["hparams"] == wanted
    from dashboard_lib.state import job_registry

    registry = job_registry()
    for run in runs.values():
        registry.stop(run.id)
    deadline = time.time() + 60
    while any(store.get_run(r.id).status == "running" for r in runs.values()) and time.time() < deadline:
        time.sleep(0.2)
    assert all(store.get_run(r.id).status in ("stopped", "finished") for r in runs.values())
