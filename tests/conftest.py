"""Shared fixtures: every test gets its own app home (run store, caches) so nothing leaks between tests or into ~."""
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_DATA = Path(os.environ.get("FCLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def fclab_home(tmp_path, monkeypatch):
    """A fresh FCLAB_HOME for this test."""
    home = tmp_path / "fclab_home"
    monkeypatch.setenv("FCLAB_HOME", str(home))
    return home
