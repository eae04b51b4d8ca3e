"""Who may use the app and which folders it may read: the rules README.md's SECURITY section states.

- The server binds 127.0.0.1 (.streamlit/config.toml). Bound to any other address without a password
  (FCLAB_PASSWORD), it does not start: `python -m dashboard_lib serve` (what `make app` runs) refuses before
  Streamlit binds anything, and a direct `streamlit run app.py` stops its server at the first page request. With a
  password, each browser session is asked for it (compared in constant time), and wrong guesses are answered ever more
  slowly (LoginThrottle). FCLAB_PASSWORD set on a loopback server turns the prompt on there too.
- A page reads data only from folders configured when the server started: FCLAB_DATA_DIR and FCLAB_DATA_ROOTS
  (os.pathsep-separated), and the app's own download cache; the sidebar's data folder must lie inside one of them.

Knows nothing of Streamlit.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import time
import tomllib
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .settings import download_cache_dir

PASSWORD_ENV = "FCLAB_PASSWORD"
DATA_ROOTS_ENV = "FCLAB_DATA_ROOTS"
ERR_NO_PASSWORD = ("This server listens on {address}, so anyone who can reach it could use it, and no password is set: "
                   "it has stopped. Start it again with a password: FCLAB_PASSWORD='…' make app (or make app "
                   "ARGS='--server.address 127.0.0.1' to keep it on this machine).")
ERR_REFUSED = ("refusing to serve on {address} without a password: anyone who can reach it could use the app. Set one "
               "(FCLAB_PASSWORD='…' make app) or keep it on this machine (--server.address 127.0.0.1).")
ERR_WRONG_PASSWORD = "Wrong password."
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


def refusal(address: str, password: str | None) -> str | None:
    """The one line that refuses to serve on `address` ('' is every interface), or None where serving is allowed:
    anything but loopback needs a password."""
    if is_loopback(address) or password:
        return None
    return ERR_REFUSED.format(address=address or "every network interface")


ADDRESS_OPTION = "server.address"
ADDRESS_ENV = "STREAMLIT_SERVER_ADDRESS"


def _option_in_args(args: Sequence[str], option: str) -> str | None:
    """The last `--option VALUE` or `--option=VALUE` in a streamlit command line (the last wins, as in click)."""
    found = None
    for i, arg in enumerate(args):
        if arg == f"--{option}" and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(f"--{option}="):
            found = arg.split("=", 1)[1]
    return found


def _option_in_toml(path: Path, option: str) -> str | None:
    section, key = option.split(".")
    try:
        with open(path, "rb") as f:
            value = tomllib.load(f).get(section, {}).get(key)
    except (OSError, tomllib.TOMLDecodeError):  # Streamlit reports a broken file itself
        return None
    return None if value is None else str(value)


def streamlit_address(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                      home: Path | None = None, script_dir: Path | None = None) -> str:
    """The address `streamlit run <script> <args>` would bind, found as Streamlit finds it (later wins): the default
    (every interface, ''), ~/.streamlit/config.toml, ./.streamlit/config.toml, the script's folder's
    .streamlit/config.toml, STREAMLIT_SERVER_ADDRESS, then --server.address; an 'env:NAME' value names a variable."""
    env = os.environ if env is None else env
    files = [(home or Path.home()) / ".streamlit" / "config.toml", (cwd or Path.cwd()) / ".streamlit" / "config.toml"]
    if script_dir is not None:
        files.append(script_dir / ".streamlit" / "config.toml")
    address = None
    # A value given empty ('--server.address ""') is kept: it means every interface, not "look further".
    for found in (*(_option_in_toml(path, ADDRESS_OPTION) for path in files), env.get(ADDRESS_ENV),
                  _option_in_args(args, ADDRESS_OPTION)):
        address = address if found is None else found
    if address and address.startswith("env:"):
        address = env.get(address[4:], "")
    return address or ""


class LoginThrottle:
    """How long to hold back a password guess, so guessing is slow: per browser session, each wrong guess is answered
    after base × 2^(wrong guesses so far − 1) seconds, at most cap (a right one resets the session); overall, once
    more than `free` wrong guesses from all sessions fell in the last `window` seconds, every guess (right or wrong, so
    parallel sessions gain nothing) waits for a turn, turns `step` × (wrong guesses beyond free) seconds apart, at most
    cap. Thread-safe; knows nothing of Streamlit; the clock is injected for tests."""

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, window: float = 60.0, free: int = 10,
                 step: float = 1.0, clock: Callable[[], float] = time.monotonic, max_sessions: int = 10_000):
        self.base, self.cap, self.window, self.free, self.step = base, cap, window, free, step
        self.clock, self.max_sessions = clock, max_sessions
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # session -> (wrong guesses, time of the last)
        self._recent: deque[float] = deque()  # times of wrong guesses from every session within the window
        self._next_turn = 0.0

    def session_delay(self, failures: int) -> float:
        """Seconds before answering a session's `failures`-th wrong guess in a row."""
        return 0.0 if failures <= 0 else min(self.cap, self.base * 2 ** (failures - 1))

    def before_guess(self) -> float:
        """Seconds this guess waits before it is checked (0 unless many wrong guesses came in lately)."""
        now = self.clock()
        with self._lock:
            self._forget(now)
            excess = len(self._recent) - self.free
            if excess <= 0:
                return 0.0
            turn = max(now, self._next_turn)
            self._next_turn = turn + min(self.cap, self.step * excess)
            return turn - now

    def failed(self, session: str) -> float:
        """Record a wrong guess of `session`; seconds to wait before answering it."""
        now = self.clock()
        with self._lock:
            self._forget(now)
            failures = self._failures.get(session, (0, now))[0] + 1
            self._failures[session] = (failures, now)
            self._recent.append(now)
            if len(self._failures) > self.max_sessions:  # many sessions (one per reload): drop the oldest
                for stale in sorted(self._failures, key=lambda k: self._failures[k][1])[: len(self._failures) // 2]:
                    del self._failures[stale]
                self._failures[session] = (failures, now)
            return self.session_delay(failures)

    def succeeded(self, session: str) -> None:
        with self._lock:
            self._failures.pop(session, None)

    def failures(self, session: str) -> int:
        with self._lock:
            return self._failures.get(session, (0, 0.0))[0]

    def _forget(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()


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
