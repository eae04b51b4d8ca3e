"""The classifiers' quick demo as a teacher runs it on a fresh install: no run store, no data folder. ERM and then
ClusterFix, each with its quick demo's data ("Use that data": the built-in coloured digits) and its quick schedule, each
watched to the end on the Monitor; then the Explain page shows its headline, both models' flip rates and the sentence
that ERM relies on the colour more."""
import re
import time

import pytest
from playwright.sync_api import expect

from dashboard_lib.explain import FLIP_TOLERANCE
from tests.e2e.helpers import AppServer, choose, idle

RUN_MINUTES = 6  # one quick demo under load (2 cores shared); it takes 1 to 2 minutes on a quiet 2-core machine
FLIP = re.compile(r"^(0|1)\.\d\d$")
STORY = "ERM relies on the colour more than ClusterFix"


@pytest.fixture
def fresh_server(tmp_path, monkeypatch):
    """A server as a fresh install starts it: an empty FCLAB_HOME and no data folder named anywhere."""
    for name in ("FCLAB_DATA_DIR", "FCLAB_DATA_ROOTS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    server = AppServer(home).start()
    yield server
    server.stop()


def _train_quick_demo(page, url: str, method: str) -> None:
    """On the Train page: the method, its quick demo's data, Train; then wait on the Monitor until the run finished."""
    page.goto(f"{url}/train")
    expect(page.get_by_role("heading", name="Train a method")).to_be_visible()
    idle(page)
    choose(page, "Method", method)
    page.get_by_role("button", name="Use that data").click()
    idle(page)
    expect(page.get_by_role("button", name="Use that data")).to_have_count(0)  # the data now is the demo's
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]run="))
    expect(page.get_by_text("failed", exact=True)).to_have_count(0)
    expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=RUN_MINUTES * 60_000)


def test_quick_demo_from_a_fresh_install_to_the_explain_headline(fresh_server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.set_default_timeout(30_000)
    started = time.time()
    try:
        for method in ("ERM (classifier)", "ClusterFix"):
            _train_quick_demo(page, fresh_server.url, method)
            print(f"{method} finished at {time.time() - started:.0f} s")

        page.goto(f"{fresh_server.url}/explain")
        expect(page.get_by_role("heading", name="Does the model read the colour instead of the digit?")).to_be_visible(
            timeout=120_000)
        metrics = page.get_by_test_id("stMetric")
        expect(metrics).to_have_count(2, timeout=120_000)
        labels = metrics.get_by_test_id("stMetricLabel").all_inner_texts()
        values = metrics.get_by_test_id("stMetricValue").all_inner_texts()
        assert labels == ["ERM: flips when recoloured", "ClusterFix: flips when recoloured"], labels
        assert all(FLIP.match(v) for v in values), values
        expect(page.get_by_text("= a colour-blind model").first).to_be_visible()
        expect(page.get_by_text("= a model that reads only the colour").first).to_be_visible()
        # The story, which holds with a wide margin (ERM 1.00 against ClusterFix 0.41 to 0.64 over training seeds 0 to 2
        # of the quick demo): the plain classifier reads the colour more.
        erm, clusterfix = (float(v) for v in values)
        assert erm - clusterfix > FLIP_TOLERANCE, values
        expect(page.get_by_text(STORY).first).to_be_visible()
        expect(page.get_by_text("Bias-conflicting", exact=True)).to_be_visible(timeout=120_000)  # the maps drew
        idle(page, timeout=120_000)
        page.screenshot(path=str(tmp_path / "explain_1280x720.png"))
        page.screenshot(path=str(tmp_path / "explain_full.png"), full_page=True)
        print(f"flip rates {dict(zip(labels, values))}; Explain drawn at {time.time() - started:.0f} s; "
              f"screenshots in {tmp_path}")
    finally:
        context.close()
