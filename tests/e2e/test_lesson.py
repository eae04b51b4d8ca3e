"""The class lesson in a real browser at a projector's 1280 × 720: from the Start page's link through all five steps,
the runs trained for real by the app's server, every step's figure drawn, nothing wider than the screen, and no
request leaving the machine (page icon, fonts and scripts all served by the app)."""
from playwright.sync_api import expect

from dashboard_lib.store import RunStore
from tests.e2e.helpers import idle, requests_leaving

FIGURES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 1}  # plotly charts each step draws


def _fits_the_screen(page) -> bool:
    """Nothing scrolls sideways: neither the window nor Streamlit's main container."""
    return page.evaluate("""() => {
        const boxes = [document.scrollingElement, document.querySelector('[data-testid="stMain"]')].filter(Boolean);
        return boxes.every(b => b.scrollWidth <= b.clientWidth + 1);
    }""")


def test_the_lesson_runs_to_its_last_step_at_1280x720(app_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(30_000)
    outside = requests_leaving(page)
    try:
        page.goto(app_server.url)
        expect(page.get_by_role("heading", name="See the bias")).to_be_visible()
        page.get_by_role("link", name="Start the lesson").click()
        expect(page.get_by_role("heading", name="Lesson: see the bias")).to_be_visible()
        idle(page)
        page.get_by_role("button", name="Start the lesson").click()
        for step in range(1, 6):
            expect(page.get_by_text(f"Step {step} of 5")).to_be_visible()
            # the fair run trains for about two minutes: step 3 waits for it and continues by itself
            expect(page.locator(".js-plotly-plot")).to_have_count(FIGURES[step], timeout=300_000)
            idle(page)
            assert _fits_the_screen(page), f"step {step} scrolls sideways at 1280 × 720"
            if step < 5:
                page.get_by_role("button", name="Next").click()
        expect(page.get_by_text("That is the story")).to_be_visible()
        expect(page.get_by_text("bias probe", exact=False).first).to_be_visible()
    finally:
        context.close()
    assert not outside, f"requests left the machine: {outside[:5]}"
    runs = RunStore(app_server.home / "store").list_runs()
    assert sorted(r.method for r in runs) == ["fcmi", "kmeans"] and all(r.status == "finished" for r in runs)
