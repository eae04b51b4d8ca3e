"""Who may use the app and which folders it may read: the rules README.md's SECURITY section states.

- The server binds 127.0.0.1 (.streamlit/config.toml). Bound to any other address, it serves nothing until the user
  sets a password (FCLAB_PASSWORD), and then asks each browser session for it (compared in constant time).
  FCLAB_PASSWORD set on a loopback server turns the prompt on there too.
- A page reads data only from folders configured when the server started: FCLAB_DATA_DIR and FCLAB_DATA_ROOTS
  (os.pathsep-separated), and the app's own download cache; the sidebar's data folder must lie inside one of them.

Knows nothing of Streamlit.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from .settings import download_cache_dir

PASSWORD_ENV = "FCLAB_PASSWORD"
DATA_ROOTS_ENV = "FCLAB_DATA_ROOTS"
ERR_NO_PASSWORD = ("This server listens on {address}, so anyone who can reach it could use it, and no password is set. "
                   "Stop it and start it again with a password: FCLAB_PASSWORD='…' make app (or streamlit run app.py "
                   "--server.address 127.0.0.1 to keep it on this machine).")
ERR_FOLDER_NOT_ALLOWED = ("The data folder {folder} is not one this server was started with. Allowed: {allowed}. To read "
                          "another folder, restart the app with FCLAB_DATA_DIR or FCLAB_DATA_ROOTS naming it.")
ERR_FOLDER_MISSING = "The data folder {folder} does not exist: check the path, or leave the field empty."


def is_loopback(address: str) -> bool:
    """Whether a bind address is reachable from this machine only ('' and 0.0.0.0 mean every interface)."""
    if address in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def password_required(address: str) -> bool:
    return not is_loopback(address) or bool(configured_password())


def configured_password() -> str | None:
    return os.environ.get(PASSWORD_ENV) or None


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the time taken tells nothing about how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def allowed_data_roots() -> list[Path]:
    roots = [os.environ.get("FCLAB_DATA_DIR", ""), *os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep)]
    out = [Path(r).expanduser().resolve() for r in roots if r.strip()]
    return out + [download_cache_dir().resolve()]


def check_data_folder(value: str | None) -> Path | None:
    """The folder a page may read (None for an empty field); ValueError when it lies outside the allowed roots."""
    if not value or not str(value).strip():
        return None
    folder = Path(str(value).strip()).expanduser().resolve()
    roots = allowed_data_roots()
    if not any(folder == root or root in folder.parents for root in roots):
        raise ValueError(ERR_FOLDER_NOT_ALLOWED.format(folder=folder, allowed=", ".join(str(r) for r in roots)))
    if not folder.is_dir():
        raise ValueError(ERR_FOLDER_MISSING.format(folder=folder))
    return folder
