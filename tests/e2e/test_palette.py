"""One palette in a real browser: a group has the same colour on the Lesson, Embeddings, Compare and Audit pages, read
from the plotly figures the pages drew (their traces, and the swatches by the group names under a count heatmap)."""
import re
import threading

from playwright.sync_api import expect

from dashboard_lib import lesson
from dashboard_lib.jobs import create_run, execute_run
from dashboard_lib.plots import group_colours
from dashboard_lib.store import RunStore
from tests.e2e.helpers import idle

GROUPS = ["MNIST sample", "UCI optdigits"]  # the built-in digits' two sources, in the order the dataset declares them
WAIT_MS = 180_000  # generous: a fresh server's first page imports torch, and the machine may be shared
SWATCH = re.compile(r'^<span style="color:(#[0-9a-f]{6})[^"]*">■</span> (.*)$')
# Every chart on the page as {trace name: marker colour} (bars and scatters) plus the swatches of its x tick labels.
READ_CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
    traces: (gd.data || []).filter(t => t.marker && typeof t.marker.color === 'string').map(t => [t.name, t.marker.color]),
    ticks: (gd.layout && gd.layout.xaxis && gd.layout.xaxis.ticktext) || [],
}))"""


def _group_colours_shown(page, charts: int) -> dict[str, set[str]]:
    """{group name: the colours it is drawn in} over the page's charts, once `charts` of them are drawn."""
    expect(page.locator(".js-plotly-plot")).to_have_count(charts, timeout=WAIT_MS)
    idle(page, timeout=WAIT_MS)
    shown: dict[str, set[str]] = {}
    for chart in page.evaluate(READ_CHARTS):
        pairs = [(name, colour) for name, colour in chart["traces"]]
        pairs += [(m.group(2), m.group(1)) for m in map(SWATCH.match, chart["ticks"]) if m]
        for name, colour in pairs:
            if name in GROUPS:
                shown.setdefault(name, set()).add(colour.lower())
    return shown


def test_the_same_group_has_the_same_colour_on_every_page(app_server, browser):
    # The lesson's own k-means run (the built-in digits, seconds): every page below shows it.
    store = RunStore(app_server.home / "store")
    run_id, config = create_run(store, lesson.lesson_configs()[lesson.UNFAIR])
    assert execute_run(store, run_id, config, threading.Event()).status == "finished"
    expected = {name: {colour} for name, colour in zip(GROUPS, group_colours(GROUPS))}
    assert expected == {"MNIST sample": {"#0072b2"}, "UCI optdigits": {"#e69f00"}}  # blue and orange: the declared order

    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(f"{app_server.url}/compare")
        expect(page.get_by_role("heading", name="Cluster × group counts")).to_be_visible(timeout=WAIT_MS)
        assert _group_colours_shown(page, 3) == expected, "Compare"  # metric bars, trade-off plot, count heatmap

        page.goto(f"{app_server.url}/audit?run={run_id}")
        expect(page.get_by_text("group shares per cluster against the population")).to_be_visible(timeout=WAIT_MS)
        assert _group_colours_shown(page, 1) == expected, "Audit"

        # The last two start background work this test does not wait for: the UMAP layout, the lesson's fair run.
        page.goto(f"{app_server.url}/embeddings?run={run_id}")
        expect(page.get_by_text("By sensitive group")).to_be_visible(timeout=WAIT_MS)
        assert _group_colours_shown(page, 4) == expected, "Embeddings"  # three scatters and the count heatmap

        page.goto(f"{app_server.url}/lesson?step=1")
        expect(page.get_by_text("Step 1 of 5")).to_be_visible(timeout=WAIT_MS)
        assert _group_colours_shown(page, 1) == expected, "Lesson"
    finally:
        context.close()
