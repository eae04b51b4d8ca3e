"""Soak: many runs started at once from the CLI and from the app against one run store, browser tabs watching some of
them, and the server killed (SIGKILL) and restarted in the middle. Prints runs started, runs recorded (finished,
stopped or interrupted), series rows lost (goal 0) and the store's integrity check.

    python -m bench.bench_soak [--runs 100] [--restarts 5]     # from the repository root: it uses tests/e2e/helpers.py

tests/e2e/test_soak.py runs the same soak() at a small size. Servers listen on 127.0.0.1 only and are stopped here.
"""
from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dashboard_lib.jobs import JobRegistry
from dashboard_lib.store import RunStore
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, AppServer, idle

REPO = Path(__file__).resolve().parents[1]

RECORDED = {"finished", "stopped", "interrupted"}
IDLE_MS = 120_000  # a rerun of a server sharing 2 cores with 20 training processes


def _start_cli_run(home: Path, i: int) -> subprocess.Popen:
    """A short CLI run (k-means, or a few autoencoder epochs), one torch thread so many fit on 2 cores."""
    args = ["--method", "kmeans", "--set", "n_init=2"] if i % 3 else ["--method", "ae_kmeans", "--epochs", "4"]
    return subprocess.Popen([sys.executable, "-m", "dashboard_lib", "train", *args, "--data", "n=500", "--seed", str(i),
                             "--threads", "1", "--json"], cwd=REPO, env={**os.environ, "FCLAB_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _start_app_run(page, url: str) -> None:
    """Press Train on the Train page for a long autoencoder run, as a user does; the Monitor opens on it."""
    page.goto(f"{url}/train")
    page.get_by_role("combobox", name="Method").click()
    page.get_by_role("option", name="Autoencoder + k-means").click()
    idle(page, IDLE_MS)  # the method's form is redrawn by that choice's rerun: type into the new one, not the old
    epochs = page.get_by_label("epochs", exact=True)
    epochs.fill("300")
    epochs.press("Tab")
    idle(page, IDLE_MS)
    page.get_by_role("button", name="Train").click()
    page.wait_for_url("**/monitor?run=*")


def _series_counts(store: RunStore) -> dict[str, int]:
    with sqlite3.connect(store.db_path, timeout=30) as db:
        return dict(db.execute("SELECT run_id, COUNT(*) FROM scalars GROUP BY run_id"))


def soak(home: Path, browser, *, runs: int = 20, restarts: int = 2, app_share: float = 0.3, timeout: float = 600,
         cli_at_once: int = 20) -> dict:
    """Run the soak with a Playwright browser; returns its figures. About app_share of the runs start from the app, the
    rest from the CLI, at most cli_at_once CLI processes alive together (each holds a few hundred MB). Every process it
    started is stopped before it returns, also when it fails."""
    home.mkdir(parents=True, exist_ok=True)
    store = RunStore(home / "store")
    n_app = max(restarts, round(runs * app_share))
    n_cli = runs - n_app
    per_phase = [n_app // restarts + (1 if i < n_app % restarts else 0) for i in range(restarts)]
    server = AppServer(home).start()
    port = server.port
    seen: dict[str, int] = {}
    lost = 0
    deadline = time.time() + timeout

    def sample() -> None:
        nonlocal lost
        now = _series_counts(store)
        lost += sum(max(0, count - now.get(run_id, 0)) for run_id, count in seen.items())
        seen.update({k: max(v, seen.get(k, 0)) for k, v in now.items()})

    cli: list[subprocess.Popen] = []

    def top_up() -> None:  # keep cli_at_once CLI runs going until all have started
        while len(cli) < n_cli and sum(proc.poll() is None for proc in cli) < cli_at_once:
            cli.append(_start_cli_run(home, len(cli)))

    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        starter = context.new_page()
        starter.set_default_timeout(120_000)  # pages of a server sharing 2 cores with 20 training processes
        # The server's first page imports torch and builds its data; done before the CLI flood, not under it (on 2 cores
        # it took over 60 s under 20 starting processes), since what is soaked is the store, not a cold import.
        starter.goto(f"{server.url}/train")
        starter.get_by_role("combobox", name="Method").wait_for()
        top_up()
        watchers = []
        for phase in range(restarts):
            for _ in range(per_phase[phase]):
                _start_app_run(starter, server.url)
            if not watchers:  # two tabs on each of two runs, left open across the restarts
                for run in store.list_runs()[:2]:
                    for _ in range(2):
                        tab = context.new_page()
                        tab.goto(f"{server.url}/monitor?run={run.id}")
                        watchers.append(tab)
            time.sleep(3)
            sample()
            top_up()
            os.kill(server.proc.pid, signal.SIGKILL)  # mid-run: the app's runs die with their process
            server.proc.wait()
            server.log.close()
            sample()
            server = AppServer(home, port=port).start()
            starter.goto(f"{server.url}/monitor")  # the first page of the new process marks the dead runs interrupted
            starter.get_by_role("heading", name="Monitor").wait_for()
            sample()
        while len(cli) < n_cli or any(proc.poll() is None for proc in cli):
            if time.time() > deadline:
                raise TimeoutError(f"the CLI runs did not end within {timeout:.0f} s")
            top_up()
            sample()
            time.sleep(1)
    finally:
        context.close()
        for proc in cli:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.stop()
    JobRegistry(store)  # what any next start does: a run whose process died is marked interrupted
    sample()
    statuses = [r.status for r in store.list_runs()]
    with sqlite3.connect(store.db_path) as db:
        integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
    return {"started": n_app + n_cli, "from_app": n_app, "from_cli": n_cli, "restarts": restarts,
            "in_store": len(statuses), "recorded": sum(s in RECORDED for s in statuses),
            "by_status": {s: statuses.count(s) for s in sorted(set(statuses))}, "series_rows_lost": lost,
            "series_rows": sum(seen.values()), "integrity": integrity,
            "cli_exit_codes": sorted({proc.returncode for proc in cli})}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    start = time.perf_counter()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        result = soak(Path(tmp) / "home", browser, runs=args.runs, restarts=args.restarts, timeout=3600)
        browser.close()
    print(f"runs started {result['started']} ({result['from_app']} from the app, {result['from_cli']} from the CLI), "
          f"server killed and restarted {result['restarts']} times, {time.perf_counter() - start:.0f} s")
    print(f"runs recorded {result['recorded']} of {result['in_store']} in the store: {result['by_status']}")
    print(f"series rows {result['series_rows']:,}, lost {result['series_rows_lost']} (goal 0)")
    print(f"integrity_check: {'; '.join(result['integrity'])}; CLI exit codes {result['cli_exit_codes']}")


if __name__ == "__main__":
    main()
