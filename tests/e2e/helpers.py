"""What every end-to-end test (and the browser benchmarks) shares: the app's server, Debian's chromium, and the moves
a user makes on a Streamlit page (wait for a rerun to end, pick an option), each written once."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlparse

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.conftest import REPO

expect.set_options(timeout=30_000)  # the first page of a fresh server imports torch and builds data: seconds on 2 cores
CHROMIUM = os.environ.get("FCLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """One streamlit server process on a free port, with its own FCLAB_HOME."""

    def __init__(self, home, port: int | None = None):
        self.home = home
        self.port = port or free_port()  # a restart takes the same port, so open tabs reconnect
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        env = {**os.environ, "FCLAB_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        self.log = open(self.home.parent / f"streamlit-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=2).read() == b"ok":
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not start; log: {self.home.parent}/streamlit-{self.port}.log")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def idle(page, timeout: float | None = None) -> None:
    """Wait until the app finished its current script run (Streamlit shows a status widget while one runs); timeout
    in ms, the expect default when None."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=timeout)


def choose(page, label: str, option: str, attempts: int = 3) -> None:
    """Pick `option` (its exact text) in the selectbox or multiselect named `label`, then wait for the rerun.

    It types the option to filter the list (a long list is virtualised: an option far down is not in the page until
    scrolled to), and tries again if a rerun still under way from the previous input redrew the widget and closed
    its list."""
    for attempt in range(attempts):
        box = page.get_by_role("combobox", name=label)
        box.click()
        box.press_sequentially(option)
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            break
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            idle(page)
    idle(page)


def requests_leaving(page) -> list[str]:
    """A list that collects, from now on, the URL of every request the page makes to a host other than this machine."""
    outside: list[str] = []

    def record(request) -> None:
        url = urlparse(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            outside.append(request.url)

    page.on("request", record)
    return outside
