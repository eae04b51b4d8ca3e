"""A real `streamlit run app.py` on 127.0.0.1 and Debian's chromium driven by Playwright (tests/e2e/helpers.py)."""
import os

import pytest

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, AppServer


@pytest.fixture
def app_server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = AppServer(home).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium), as `make test` does")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
