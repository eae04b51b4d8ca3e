"""The only module that imports streamlit: process-wide accessors for the run store, the job registry and the sweep
runner."""
from __future__ import annotations

import json
import os
import runpy
import secrets
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import streamlit as st

from . import security
from .data import DEFAULT_DATASET, default_data_dir, load_dataset
from .jobs import JobRegistry, training_threads
from .projection import warm_up_umap
from .settings import store_dir
from .store import RunStore
from .sweeps import SweepRunner
from .text import md

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"


@st.cache_resource
def _store_at(root: str) -> RunStore:
    return RunStore(root)


@st.cache_resource
def _registry_for(root: str) -> JobRegistry:
    return JobRegistry(_store_at(root), threads=training_threads())


@st.cache_resource
def _sweeps_for(root: str) -> SweepRunner:
    return SweepRunner(_registry_for(root))


def run_store() -> RunStore:
    """The process's run store (one per store folder, so a changed FCLAB_HOME gets its own)."""
    return _store_at(str(store_dir()))


def job_registry() -> JobRegistry:
    """One registry per server process and store; creating it marks runs left running by a dead process as interrupted."""
    return _registry_for(str(store_dir()))


def sweep_runner() -> SweepRunner:
    """This process's sweeps over the job registry's store (their trials train on Ray, imported only when one starts;
    their runs count as running in the registry); creating it marks sweeps of a dead driver as interrupted."""
    return _sweeps_for(str(store_dir()))


START_GUARD_SECONDS = 10.0


def start_run_once(config) -> str:
    """Start a run, unless this browser session started the very same config in the last START_GUARD_SECONDS (a double
    click on Train): then the id of that run. ValueError as JobRegistry.start."""
    fingerprint = json.dumps(asdict(config), sort_keys=True, default=str)
    last = st.session_state.get("_last_start")
    if last and last[0] == fingerprint and time.monotonic() - last[1] < START_GUARD_SECONDS:
        return last[2]
    run_id = job_registry().start(config)
    st.session_state["_last_start"] = (fingerprint, time.monotonic(), run_id)
    return run_id


_navigation = threading.local()  # per script-run thread: is app.py's page.run() under way?


@contextmanager
def app_navigation() -> Iterator[None]:
    """app.py runs the chosen page inside this block, so a page can tell it was reached through the navigation."""
    _navigation.active = True
    try:
        yield
    finally:
        _navigation.active = False


def ensure_navigation() -> None:
    """Run every page through app.py (sidebar, page list, set-up), even on a fresh server's first request.

    Because the repo has a pages/ folder, Streamlit serves a new server process (and every AppTest run) in its
    older "pages directory" mode until some run calls st.navigation: a request for a page such as
    /monitor?run=… would run the page alone. Then run app.py here, in this same run (so a pressed button's
    event is not lost), which draws this page through the navigation, and end the standalone run.
    """
    if getattr(_navigation, "active", False):
        return
    runpy.run_path(str(APP_SCRIPT), run_name="__main__")
    st.stop()


def _address() -> str:
    return str(st.get_option("server.address") or "")


def access_granted() -> bool:
    """Whether this browser session may see the app: no password is required here, or it gave the right one."""
    return not security.password_required(_address()) or bool(st.session_state.get("_fclab_authenticated"))


@st.cache_resource
def login_throttle() -> security.LoginThrottle:
    """One per server process: it counts wrong guesses across browser sessions."""
    return security.LoginThrottle()


STOP_AFTER_SECONDS = 1.0  # long enough for the page's message to reach the browser first
_stopping = threading.Lock()


def stop_unprotected_server(address: str) -> None:
    """A server open to the network without a password (started with `streamlit run`, not `make app`'s check): print
    the refusal to stderr once and end the server process. Under AppTest there is no server to end."""
    if not _stopping.acquire(blocking=False):
        return
    print(f"error: {security.refusal(address, None)}", file=sys.stderr, flush=True)
    from streamlit.runtime import Runtime

    # AppTest installs a stand-in Runtime (a MagicMock, which isinstance would accept): only a real one is a server.
    # Streamlit's own SIGTERM handler then stops the server and the process exits.
    if Runtime.exists() and type(Runtime.instance()) is Runtime:
        threading.Timer(STOP_AFTER_SECONDS, os.kill, (os.getpid(), signal.SIGTERM)).start()


def access_gate() -> None:
    """Serve nothing to a browser session that has not given the password, where one is required (security.py);
    a server open to the network without one stops. Wrong guesses are answered ever more slowly (LoginThrottle)."""
    if access_granted():
        return
    address = _address()
    expected = security.configured_password()
    if not expected:
        stop_unprotected_server(address)
        st.error(security.ERR_NO_PASSWORD.format(address=address or "every network interface"))
        st.stop()
    st.title("Fair Clustering Lab")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="login.password",
                              help="The password this server was started with (FCLAB_PASSWORD).")
        entered = st.form_submit_button("Enter", type="primary")
    if entered:
        throttle = login_throttle()
        session = st.session_state.setdefault("_fclab_login_session", secrets.token_hex(16))
        # The wait comes before the answer (and, when many sessions guess, before the check), so neither a burst of
        # guesses in one session nor guesses spread over many sessions are answered at once.
        time.sleep(throttle.before_guess())
        if security.password_matches(given, expected):
            throttle.succeeded(session)
            st.session_state["_fclab_authenticated"] = True
            st.rerun()
        time.sleep(throttle.failed(session))
        st.error(security.ERR_WRONG_PASSWORD)
    st.stop()


def data_folder_input() -> None:
    """The sidebar's data folder, kept in the URL so a reload keeps it; refused outside the allowed folders."""
    if "data_dir" not in st.session_state:
        st.session_state["data_dir"] = st.query_params.get("data_dir") or str(default_data_dir() or "")
    value = st.text_input("Data folder", key="data_dir",
                          help="Folder searched first for dataset files you downloaded yourself. Allowed: folders named "
                               "when the server started (FCLAB_DATA_DIR, FCLAB_DATA_ROOTS). Leave empty to use the "
                               "built-in data and the download cache.")
    try:
        security.check_data_folder(value)
    except ValueError as exc:
        st.error(md(exc))  # the folder may come from a link (?data_dir=…): its text is shown, not rendered
    if value and value != str(default_data_dir() or ""):
        st.query_params["data_dir"] = value
    else:
        st.query_params.pop("data_dir", None)


def data_dir() -> str | None:
    """The data folder pages may read: the sidebar's, when it is allowed; else none."""
    try:
        folder = security.check_data_folder(st.session_state.get("data_dir"))
    except ValueError:
        return None
    return None if folder is None else str(folder)


def selected_run_id() -> str | None:
    """The run named in the URL (?run=…), so a reload or a shared link shows the same run."""
    return st.query_params.get("run")


def select_run(run_id: str | None) -> None:
    if run_id:
        st.query_params["run"] = run_id
    else:
        st.query_params.pop("run", None)


UMAP_WARM_UP_IDLE_SECONDS = 10.0


def _warm_up_umap_when_idle(registry: JobRegistry) -> None:
    """Compile UMAP once no run has trained for a while: the compile holds the GIL for tens of seconds and would
    slow a run that has just started (and its first live points) on a small CPU."""
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < UMAP_WARM_UP_IDLE_SECONDS:
        time.sleep(1.0)
        if registry.running_ids():
            idle_since = time.monotonic()
    warm_up_umap(background=False)


@st.cache_resource
def warm_up() -> list[threading.Thread]:
    """Once per server process, in the background: build the default dataset so the first Train starts at once,
    then, when no run is training, compile umap-learn's numba code before anyone needs it (its cost:
    docs/RUNS_NOTES.md)."""
    threads = [threading.Thread(target=load_dataset, args=(DEFAULT_DATASET,), name="warm-up-data", daemon=True),
               threading.Thread(target=_warm_up_umap_when_idle, args=(job_registry(),), name="warm-up-umap", daemon=True)]
    for thread in threads:
        thread.start()
    return threads
