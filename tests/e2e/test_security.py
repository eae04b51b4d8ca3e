"""A password-protected server in a real browser: nothing but the prompt without the password (not even the page
list), refused with a wrong one, the app with the right one."""
from playwright.sync_api import expect

from tests.e2e.helpers import AppServer


def test_without_the_password_nothing_is_served(tmp_path, page, monkeypatch):
    monkeypatch.setenv("FCLAB_PASSWORD", "correct horse")
    home = tmp_path / "home"
    home.mkdir()
    server = AppServer(home).start()
    try:
        page.goto(f"{server.url}/monitor")
        expect(page.get_by_label("Password", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Monitor")).to_have_count(0)
        expect(page.get_by_text("Audit", exact=True)).to_have_count(0)  # no page list either
        page.get_by_label("Password", exact=True).fill("wrong horse")
        page.get_by_role("button", name="Enter").click()
        expect(page.get_by_text("Wrong password")).to_be_visible()
        expect(page.get_by_role("heading", name="Monitor")).to_have_count(0)
        page.get_by_label("Password", exact=True).fill("correct horse")
        page.get_by_role("button", name="Enter").click()
        expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
    finally:
        server.stop()
