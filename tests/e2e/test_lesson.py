"""The class lesson in a real browser at a projector's 1280 × 720 and a browser window's 1280 × 630: from the Start
page's link through the five steps and the optional sixth, every step's title, text and figures drawn, nothing below
the fold or wider than the screen (the page does not scroll), and no request leaving the machine (page icon, fonts
and scripts all served by the app).

The lesson's runs are trained once per test session (tests/conftest.py: lesson_store), and the app reuses them
(bench/bench_lesson.py times the lesson from the click, training included)."""
import pytest
from playwright.sync_api import expect

from dashboard_lib import lesson
from dashboard_lib.store import RunStore
from tests.e2e.helpers import AppServer, idle, requests_leaving

FIGURES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 1, 6: 2}  # plotly charts each step draws
TEXT = {1: "one source", 2: "bounds the least balanced cluster", 3: "hold both sources", 4: "Each dot is one digit",
        5: "That is the story", 6: "Fairlets reach Balance"}  # a sentence of each step's text
SIZES = ((1280, 630), (1280, 720))

# Whether anything is out of sight: the window and Streamlit's main container scroll neither way, and the bottom of
# the lowest element is within the window.
_FOLD = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const boxes = [document.scrollingElement, main].filter(Boolean);
    let bottom = 0;
    for (const e of main.querySelectorAll('[data-testid="stElementContainer"]')) {
        const r = e.getBoundingClientRect();
        if (r.height > 0) bottom = Math.max(bottom, r.bottom);
    }
    return {sideways: boxes.some(b => b.scrollWidth > b.clientWidth + 1),
            scrolls: boxes.some(b => b.scrollHeight > b.clientHeight + 1),
            bottom: Math.round(bottom), height: window.innerHeight};
}"""


def _check_fits(page, step: int, size: tuple[int, int]) -> None:
    fold = page.evaluate(_FOLD)
    where = f"step {step} at {size[0]} × {size[1]}"
    assert not fold["sideways"], f"{where} scrolls sideways"
    assert fold["bottom"] <= fold["height"] and not fold["scrolls"], f"{where} reaches below the fold: {fold}"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_step_of_the_lesson_fits_the_screen(lesson_home, browser, size):
    before = {r.id for r in RunStore(lesson_home / "store").list_runs()}
    server = AppServer(lesson_home).start()
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.set_default_timeout(60_000)
    outside = requests_leaving(page)
    try:
        page.goto(server.url)
        expect(page.get_by_role("heading", name="See the bias")).to_be_visible()
        page.get_by_role("button", name="Start the lesson").click()
        expect(page.get_by_role("heading", name="Lesson: see the bias")).to_be_visible()
        idle(page)
        page.get_by_role("button", name="Open the lesson").click()  # the runs are in the store: nothing trains
        for step, story in enumerate(lesson.STEPS, start=1):
            expect(page.get_by_role("heading", name=story.title)).to_be_visible()
            where = "optional step" if story.optional else f"Step {step} of {lesson.STORY_STEPS}"
            expect(page.get_by_text(where)).to_be_visible()
            expect(page.locator(".js-plotly-plot")).to_have_count(FIGURES[step])
            expect(page.get_by_text(TEXT[step]).first).to_be_visible()
            idle(page)
            _check_fits(page, step, size)
            if step < lesson.STORY_STEPS:
                page.get_by_role("button", name="Next").click()
            elif step == lesson.STORY_STEPS:
                page.get_by_role("button", name="Optional: the classic answer").click()
    finally:
        context.close()
        server.stop()
    assert not outside, f"requests left the machine: {outside[:5]}"
    assert {r.id for r in RunStore(lesson_home / "store").list_runs()} == before  # the lesson's runs reused, none added
