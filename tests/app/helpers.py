"""Opening the whole app (navigation, sidebar) in AppTest on a given page."""
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 90


def open_app(page: str | None = None, *, query: dict | None = None, data_dir: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if data_dir is not None:
        at.text_input(key="data_dir").set_value(str(data_dir)).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
