"""The main flow in a real browser: start a run on the default data, watch it grow live, stop it, reload."""
import re
import time

from playwright.sync_api import expect

from tests.e2e.helpers import choose, idle

POINTS = re.compile(r"(\d+) points logged")


def _points(page) -> int:
    text = page.get_by_text(POINTS).first.inner_text()
    return int(POINTS.search(text).group(1))


def _grows(page, first: int, seconds: float = 20.0) -> bool:
    """Whether the logged-point count passes `first` within `seconds` (a loaded CI machine can be slow)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        page.wait_for_timeout(500)
        if _points(page) > first:
            return True
    return False


def test_train_watch_stop_reload(app_server, page, tmp_path):
    page.goto(f"{app_server.url}/train")  # a fresh server answers the page's own path
    expect(page.get_by_role("heading", name="Train a method")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    idle(page)
    choose(page, "Method", "Autoencoder + k-means")
    epochs = page.get_by_label("epochs", exact=True)
    epochs.fill("500")  # long enough that it is still running when we stop it
    epochs.press("Tab")
    idle(page)
    page.screenshot(path=str(tmp_path / "train.png"), full_page=True)
    page.get_by_role("button", name="Train").click()

    # The Monitor page opens on the new run, and its live chart grows.
    expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]run="))
    expect(page.get_by_text(POINTS).first).to_be_visible(timeout=20_000)
    first = _points(page)
    assert _grows(page, first), "the live chart did not grow while the run trained"
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "monitor_running.png"), full_page=True)

    # A second tab on the same link shows the same live run.
    second = page.context.new_page()
    second.goto(page.url)
    expect(second.get_by_text("running", exact=True).first).to_be_visible()
    expect(second.get_by_text(POINTS).first).to_be_visible()
    assert _points(second) >= first
    second.close()

    page.get_by_role("button", name="Stop training").click()
    expect(page.get_by_text("stopped", exact=True).first).to_be_visible(timeout=10_000)
    run_url = page.url

    # A reload (the same link) shows the same run, still stopped, with its series kept.
    page.reload()
    expect(page.get_by_text("stopped", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Stop training")).to_have_count(0)
    assert _points(page) >= first
    assert page.url == run_url
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "monitor_stopped.png"), full_page=True)


def test_a_shared_link_is_the_first_request_of_a_fresh_server(app_server, page):
    """A deep link opened before anyone visited the app still gets the navigation, the sidebar and the run."""
    from dashboard_lib.jobs import JobRegistry, RunConfig
    from dashboard_lib.store import RunStore

    registry = JobRegistry(RunStore(app_server.home / "store"))
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options={"n": 300},
                                      hparams={"n_init": 1}))
    assert registry.wait(run_id, 60)
    page.goto(f"{app_server.url}/monitor?run={run_id}")
    expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
    expect(page.get_by_role("textbox", name="Data folder")).to_be_visible()  # the sidebar from app.py
    expect(page.get_by_text(run_id).first).to_be_visible()
    expect(page.get_by_text("finished", exact=True).first).to_be_visible()
