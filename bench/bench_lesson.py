"""The class lesson's time from the click on "Start the lesson" to its last step, in a real browser against a real
`streamlit run app.py` on a fresh store (nothing prepared), clicking Next as soon as each step's figures are drawn,
then on to the optional step (fairlets). The goal: the story's last step within the length the app states
(dashboard_lib.lesson.LENGTH_MINUTES) on 2 CPU cores.

    python -m bench.bench_lesson                 # 1280 × 720, as on a projector
    python -m bench.bench_lesson --umap          # also wait, at step 4, for the UMAP layouts (not the PCA stand-in)

From the repository root, as a module: it uses the end-to-end tests' server and browser helpers (tests/ is not
installed with the package).

Prints, per step, the seconds since the click when its figures were all drawn.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from dashboard_lib import lesson
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, AppServer
from tests.e2e.test_lesson import FIGURES

BUDGET_S = 60.0 * lesson.LENGTH_MINUTES
UMAP_PENDING = "UMAP is computing"  # step 4's caption while it shows PCA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--umap", action="store_true", help="at step 4, wait for both UMAP layouts")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench_lesson_")) / "home"
    home.mkdir()
    server = AppServer(home).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            page.goto(f"{server.url}/lesson")
            button = page.get_by_role("button", name="Start the lesson")
            expect(button).to_be_visible(timeout=60_000)
            start = time.perf_counter()
            button.click()
            print(f"{'step':<6}{'seconds since the click':>24}  title", flush=True)
            for step, story in enumerate(lesson.STEPS, start=1):
                where = "optional step" if story.optional else f"Step {step} of {lesson.STORY_STEPS}"
                expect(page.get_by_text(where)).to_be_visible(timeout=60_000)
                expect(page.locator(".js-plotly-plot")).to_have_count(FIGURES[step], timeout=600_000)
                if step == 4 and args.umap:
                    expect(page.get_by_text(UMAP_PENDING)).to_have_count(0, timeout=600_000)
                title = page.get_by_role("heading", level=3).first.inner_text()
                print(f"{step:<6}{time.perf_counter() - start:>24.1f}  {title}", flush=True)
                if step < lesson.STORY_STEPS:
                    page.get_by_role("button", name="Next").click()
                elif step == lesson.STORY_STEPS:
                    total = time.perf_counter() - start  # the story's end; the optional step comes after
                    page.get_by_role("button", name="Optional: the classic answer").click()
            browser.close()
    finally:
        server.stop()
    from dashboard_lib.store import RunStore

    for run in RunStore(home / "store").list_runs():
        print(f"{run.method}: {run.status}, {run.ended - run.created:.1f} s from its record to its end (threads {run.threads})")
    print(f"\nlesson: {total:.1f} s from the click to the story's last step (step {lesson.STORY_STEPS}) ({'within' if total <= BUDGET_S else 'OVER'} "
          f"the {BUDGET_S:.0f} s budget); its runs are in {home / 'store'}")


if __name__ == "__main__":
    main()
