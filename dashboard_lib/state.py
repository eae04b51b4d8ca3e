"""The only module that imports streamlit: process-wide accessors for the run store and the job registry."""
from __future__ import annotations

import threading

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from .data import DEFAULT_DATASET, load_dataset
from .jobs import JobRegistry, training_threads
from .settings import store_dir
from .store import RunStore


@st.cache_resource
def _store_at(root: str) -> RunStore:
    return RunStore(root)


@st.cache_resource
def _registry_for(root: str) -> JobRegistry:
    return JobRegistry(_store_at(root), threads=training_threads())


def run_store() -> RunStore:
    """The process's run store (one per store folder, so a changed FCLAB_HOME gets its own)."""
    return _store_at(str(store_dir()))


def job_registry() -> JobRegistry:
    """One registry per server process and store; creating it marks runs left running by a dead process as interrupted."""
    return _registry_for(str(store_dir()))


def ensure_navigation() -> None:
    """Run every page through app.py's st.navigation (sidebar, page list), even on a fresh server's first request.

    Because the repo has a pages/ folder, Streamlit serves the first request of a new server process in its
    older "pages directory" mode until some run calls st.navigation; a first request for a deep link such as
    /monitor?run=… would then run the page alone. Leaving that mode (as st.navigation itself does) and rerunning
    sends the request through app.py, keeping the URL.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def selected_run_id() -> str | None:
    """The run named in the URL (?run=…), so a reload or a shared link shows the same run."""
    return st.query_params.get("run")


def select_run(run_id: str | None) -> None:
    if run_id:
        st.query_params["run"] = run_id
    else:
        st.query_params.pop("run", None)


@st.cache_resource
def warm_up() -> threading.Thread:
    """Once per server process, in the background: build the default dataset so the first Train starts at once."""
    thread = threading.Thread(target=load_dataset, args=(DEFAULT_DATASET,), name="warm-up", daemon=True)
    thread.start()
    return thread
