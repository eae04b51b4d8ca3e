"""Wrong passwords are slowed down on the page: each wrong guess of a browser session is answered later than the one
before (security.LoginThrottle), and the right one still lets the session in."""
import time

from dashboard_lib.security import ERR_WRONG_PASSWORD, LoginThrottle
from tests.app.test_trust_pages import _app, network_address  # noqa: F401 (a fixture)


def test_wrong_guesses_are_answered_ever_later_and_the_right_one_still_opens(fclab_home, network_address, monkeypatch):
    monkeypatch.setenv("FCLAB_PASSWORD", "correct horse")
    at = _app("pages/train.py")
    delays = LoginThrottle().session_delay
    took = []
    for guess in ("wrong horse", "battery staple"):
        at.text_input(key="login.password").set_value(guess)
        start = time.monotonic()
        at.button[0].click().run()
        took.append(time.monotonic() - start)
        assert [e.value for e in at.error] == [ERR_WRONG_PASSWORD]
        assert not [t for t in at.title if t.value == "Train a method"]
    assert took[0] >= delays(1) and took[1] >= delays(2) and sum(took) >= delays(1) + delays(2), took
    at.text_input(key="login.password").set_value("correct horse")
    at.button[0].click().run()
    assert [t for t in at.title if t.value == "Train a method"], [t.value for t in at.title]
