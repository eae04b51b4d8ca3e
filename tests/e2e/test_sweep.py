"""A sweep in a real browser: build it on the Sweep page, start it (local Ray inside the app's server), watch its
curves fill in, stop it, and open a run from the fairness-versus-quality scatter."""
import re

from playwright.sync_api import expect

from dashboard_lib.store import RunStore
from tests.e2e.helpers import choose, idle

DONE = re.compile(r"(\d+)/8 trials done")


CURVE_POINTS = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    const traces = plot ? plot.querySelectorAll('.scatterlayer .trace') : [];
    return traces.length ? traces[traces.length - 1].querySelectorAll('.points path').length : 0;
}"""  # the markers of the first curve (ACC's mean over seeds: the last trace, above its band)


def test_start_a_sweep_watch_its_curves_fill_in_and_stop_it(app_server, page, tmp_path):
    page.goto(f"{app_server.url}/sweep")
    expect(page.get_by_role("heading", name="Sweep", exact=True)).to_be_visible()
    expect(page.get_by_text("No sweeps yet")).to_be_visible()
    idle(page)
    choose(page, "Method", "Autoencoder + k-means")
    page.get_by_text("Dataset options").click()
    size = page.get_by_label("n", exact=True)
    size.fill("600")
    size.press("Tab")
    idle(page)
    choose(page, "Swept hyperparameters (one or two)", "epochs")
    values = page.get_by_label("epochs: values", exact=True)
    values.fill("20, 30, 40, 50")
    values.press("Tab")
    idle(page)
    seeds = page.get_by_role("spinbutton", name="Seeds per point")
    seeds.fill("2")
    seeds.press("Tab")
    idle(page)
    expect(page.get_by_text("8 trials", exact=True)).to_be_visible()
    page.screenshot(path=str(tmp_path / "sweep_form.png"), full_page=True)
    page.get_by_role("button", name="Start 8 trials").click()

    expect(page.get_by_text(DONE)).to_be_visible(timeout=60_000)
    expect(page).to_have_url(re.compile(r"[?&]sweep="))
    page.wait_for_function("() => document.querySelector('.js-plotly-plot') !== null", timeout=120_000)
    first = page.evaluate(CURVE_POINTS)
    assert first >= 1
    page.wait_for_function(f"() => ({CURVE_POINTS})() > {first}", timeout=120_000)  # it fills in as trials finish
    page.screenshot(path=str(tmp_path / "sweep_running.png"), full_page=True)

    page.get_by_role("button", name="Stop sweep").click()
    expect(page.get_by_text("stopped", exact=True).first).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name="Stop sweep")).to_have_count(0)
    expect(page.get_by_role("combobox", name="Sweep")).to_have_value(re.compile(r"ae_kmeans · epochs · stopped · "))  # the picker too
    store = RunStore(app_server.home / "store")
    sweep = store.list_sweeps()[0]
    assert sweep.status == "stopped"
    runs = store.list_runs(sweep_id=sweep.id)
    assert {r.status for r in runs} <= {"finished", "stopped"} and len(runs) < 8
    assert not store.list_runs(status="running")
    page.screenshot(path=str(tmp_path / "sweep_stopped.png"), full_page=True)

    # A click on a point of the scatter opens that run on the Monitor page.
    scatter = page.locator(".js-plotly-plot").last
    scatter.scroll_into_view_if_needed()
    point = scatter.locator(".scatterlayer .trace").first.locator(".points path").first
    point.click(force=True)
    expect(page.get_by_role("heading", name="Monitor")).to_be_visible(timeout=30_000)
    expect(page).to_have_url(re.compile(r"/monitor\?run="))
    run_id = re.search(r"run=([^&]+)", page.url).group(1)
    assert run_id in {r.id for r in runs if r.status == "finished"}
