"""Trust in the pages: a damaged store gives one message and no traceback on every page; a server open to the network
serves nothing without its password; a link to an unknown run says so."""
import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from dashboard_lib.store import RunStore
from tests.app.helpers import TIMEOUT, open_app
from tests.conftest import REPO
from tests.unit.test_trust import _filled_store, _overwrite_tail, _truncate

PAGES = ["pages/start.py", "pages/data.py", "pages/train.py", "pages/monitor.py", "pages/compare.py", "pages/audit.py"]


def _texts(at) -> str:
    return " ".join(str(e.value) for kind in ("error", "markdown", "warning", "info", "caption", "title") for e in at.get(kind))


@pytest.mark.parametrize("damage", [_truncate, _overwrite_tail], ids=["truncated", "tail overwritten"])
def test_every_page_shows_one_message_for_a_damaged_store(fclab_home, damage):
    _filled_store(fclab_home / "store")
    damage(fclab_home / "store" / "runs.sqlite")
    for page in PAGES:
        at = _app(page)
        assert not at.exception, (page, at.exception)
        errors = [e.value for e in at.error]
        assert any("is damaged" in e and "store recover" in e for e in errors), (page, errors)
        assert "Traceback" not in _texts(at) and "sqlite3." not in _texts(at), page


def _app(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    return at.switch_page(page).run()


@pytest.fixture
def network_address():
    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", old)


def test_open_to_the_network_without_a_password_serves_nothing(fclab_home, network_address, monkeypatch):
    monkeypatch.delenv("FCLAB_PASSWORD", raising=False)
    at = _app("pages/train.py")
    assert any("no password is set" in e.value for e in at.error)
    assert not [t for t in at.title if t.value == "Train a method"] and not at.button


def test_the_password_is_asked_and_checked(fclab_home, network_address, monkeypatch):
    monkeypatch.setenv("FCLAB_PASSWORD", "correct horse")
    at = _app("pages/train.py")
    assert [t.label for t in at.text_input] == ["Password"] and not [t for t in at.title if t.value == "Train a method"]
    at.text_input(key="login.password").set_value("wrong horse")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error)
    assert not [t for t in at.title if t.value == "Train a method"]
    at.text_input(key="login.password").set_value("correct horse")
    at.button[0].click().run()
    assert [t for t in at.title if t.value == "Train a method"], [t.value for t in at.title]


def test_a_link_to_an_unknown_run_says_so(fclab_home):
    store = RunStore(fclab_home / "store")
    run_id = store.create_run(dataset="mnist_optdigits", method="kmeans", config={}, seed=0, device="cpu", environment={})
    store.finish(run_id, "finished", metrics={})
    at = open_app("pages/monitor.py", query={"run": "20990101-000000-kmeans-dead"})
    assert any("20990101-000000-kmeans-dead" in w.value and "not in this run store" in w.value for w in at.warning)


def test_a_data_folder_outside_the_allowed_ones_is_refused(fclab_home, tmp_path):
    at = open_app("pages/data.py")
    at.text_input(key="data_dir").set_value(str(tmp_path)).run()
    assert any("not one this server was started with" in e.value for e in at.error)
