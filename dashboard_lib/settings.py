"""Where the app keeps its files; each location can be moved with an environment variable."""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "FCLAB_HOME"  # run store, download cache, saved uploads
REPRODUCTIONS_ENV = "FCLAB_REPRODUCTIONS"  # the folder of reproduction records the Train page reads
REPO = Path(__file__).resolve().parents[1]


def home_dir() -> Path:
    """The app's folder: $FCLAB_HOME, else ~/.fair_clustering_lab."""
    value = os.environ.get(HOME_ENV, "").strip()
    path = Path(value).expanduser() if value else Path.home() / ".fair_clustering_lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_dir() -> Path:
    return home_dir() / "store"


def download_cache_dir() -> Path:
    path = home_dir() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def uploads_dir() -> Path:
    """Saved uploads: owner-only, as they hold every row's sensitive attribute."""
    path = home_dir() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def reproductions_dir() -> Path:
    """The reproduction records (one JSON file per run of bench/reproduce.py): $FCLAB_REPRODUCTIONS, else the
    checkout's docs/reproductions. Never created here: a folder that does not exist simply holds no records."""
    value = os.environ.get(REPRODUCTIONS_ENV, "").strip()
    return Path(value).expanduser() if value else REPO / "docs" / "reproductions"
