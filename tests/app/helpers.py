"""Opening the whole app (navigation, sidebar) in AppTest on a given page; reading the figures it drew."""
import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

TIMEOUT = 120  # seconds for one script run: a page that imports torch on a loaded 2-core machine


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


def _decoded(value):
    """Plotly's JSON with its typed arrays ({"dtype", "bdata", "shape"}) turned back into lists."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")
            return array.reshape([int(n) for n in str(shape).split(",")] if shape else -1).tolist()
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def charts(at: AppTest) -> list[dict]:
    """Every plotly figure of the page as a plain dict (data, layout), arrays as lists."""
    return [_decoded(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]


def finished_sweep(home, spec) -> str:
    """Run `spec` to its end on a local Ray in the app home `home` (its store under home/store), the Ray connection
    closed after; the sweep's id, asserted finished."""
    from dashboard_lib import sweeps
    from dashboard_lib.jobs import JobRegistry
    from dashboard_lib.store import RunStore

    registry = JobRegistry(RunStore(home / "store"))
    runner = sweeps.SweepRunner(registry)
    try:
        sweep_id = runner.start(spec)
        assert runner.wait(sweep_id, 240), "the sweep did not end in time"
    finally:
        sweeps.disconnect()
    assert registry.store.get_sweep(sweep_id).status == "finished"
    return sweep_id
