"""Shared fixtures: every test gets its own app home (run store, caches) so nothing leaks between tests or into ~."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FCLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    """No test reads or writes the user's own app home (~/.fair_clustering_lab): a test that takes no fclab_home (a
    Hypothesis test, a subprocess) still gets a home of the session's own, removed when the session ends."""
    import tempfile

    config.fclab_session_home = tempfile.mkdtemp(prefix="fclab-test-home-")
    os.environ["FCLAB_HOME"] = config.fclab_session_home


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(getattr(config, "fclab_session_home", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def shared_data_is_an_allowed_folder(monkeypatch):
    """The real data folder, allowed as a user allows one at start-up (FCLAB_DATA_ROOTS), for the sidebar's field."""
    monkeypatch.setenv("FCLAB_DATA_ROOTS", str(SHARED_DATA))


@pytest.fixture
def fclab_home(tmp_path, monkeypatch):
    """A fresh FCLAB_HOME for this test."""
    home = tmp_path / "fclab_home"
    monkeypatch.setenv("FCLAB_HOME", str(home))
    return home


@pytest.fixture
def registry(tmp_path):
    """A real job registry over a fresh run store: runs train in background threads, as in the app."""
    from dashboard_lib.jobs import JobRegistry
    from dashboard_lib.store import RunStore

    return JobRegistry(RunStore(tmp_path / "store"))


def train_finished(store, method: str, **hparams) -> str:
    """A run of `method` trained to its end on 600 of the built-in digits (CPU), recorded in `store` as the app records
    it; its id."""
    import threading

    from dashboard_lib.jobs import RunConfig, create_run, execute_run

    config = RunConfig(dataset="mnist_optdigits", method=method, dataset_options={"n": 600}, hparams=hparams, device="cpu")
    run_id, config = create_run(store, config)
    run = execute_run(store, run_id, config, threading.Event())
    assert run.status == "finished", run.error
    return run_id


def wait_for_run(registry, run_id, timeout=120):
    """Block until the run ends and return its record (fails the test if it does not end in time)."""
    assert registry.wait(run_id, timeout), "run did not end in time"
    return registry.store.get_run(run_id)


@pytest.fixture(scope="session")
def lesson_store(tmp_path_factory):
    """A run store holding the lesson's runs (dashboard_lib.lesson), trained once per test session with the lesson's
    very configurations: the lesson's AppTest and end-to-end test each copy it (lesson_home). FCLAB_LESSON_STORE may
    name a store (no server using it) whose runs are copied first: the runs of the lesson's configurations found
    there are reused, the others trained, as the lesson itself does."""
    import shutil

    from dashboard_lib import lesson
    from dashboard_lib.jobs import JobRegistry
    from dashboard_lib.store import RunStore

    path = tmp_path_factory.mktemp("lesson-runs") / "store"
    if os.environ.get("FCLAB_LESSON_STORE"):
        shutil.copytree(os.environ["FCLAB_LESSON_STORE"], path)
    store = RunStore(path)
    registry = JobRegistry(store)
    for run_id in lesson.start_missing(store, registry).values():
        assert registry.wait(run_id, 1800), "a lesson run did not end in 30 minutes"
        assert store.get_run(run_id).status == "finished", store.get_run(run_id).error
    return path


@pytest.fixture
def lesson_home(lesson_store, tmp_path):
    """An app home of this test's own whose store is a copy of lesson_store (nothing trains)."""
    import shutil

    home = tmp_path / "lesson_home"
    shutil.copytree(lesson_store, home / "store")
    return home
