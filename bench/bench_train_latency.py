"""Time from pressing Train to the first live point, and ae_kmeans seconds per epoch on the built-in data.

    python -m bench.bench_train_latency [--epochs 5] [--browser]   # from the repository root: --browser uses tests/e2e

Store level: JobRegistry.start() → first scalar readable from the run store (what the Monitor polls).
Browser level (--browser): a real `streamlit run` and Debian's chromium; click Train → "N points logged" shown.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from dashboard_lib.data import load_dataset
from dashboard_lib.jobs import JobRegistry, RunConfig, training_threads
from dashboard_lib.store import RunStore


def first_point_latency(registry: JobRegistry, config: RunConfig) -> float:
    start = time.perf_counter()
    run_id = registry.start(config)
    while registry.store.scalars(run_id).empty:
        time.sleep(0.005)
    latency = time.perf_counter() - start
    registry.stop(run_id)
    registry.wait(run_id)
    return latency


def seconds_per_epoch(registry: JobRegistry, epochs: int) -> float:
    config = RunConfig(dataset="mnist_optdigits", method="ae_kmeans", hparams={"epochs": epochs, "eval_every": 0})
    run_id = registry.start(config)
    registry.wait(run_id)
    series = registry.store.scalars(run_id, ["L_rec"]).sort_values("step")
    steps_per_epoch = len(series) // epochs
    # Timestamps of the buffered points are taken when logged: epoch 2's first step to the last step spans epochs-1 epochs.
    return (series["time"].iloc[-1] - series["time"].iloc[steps_per_epoch]) / (epochs - 1)


def browser_latency(home: Path) -> tuple[float, float]:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, AppServer

    server = AppServer(home).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(server.url)
            page.get_by_role("combobox", name="Method").click()
            page.get_by_role("option", name="Autoencoder + k-means").click()
            page.get_by_label("epochs", exact=True).fill("200")
            page.get_by_label("epochs", exact=True).press("Tab")
            page.wait_for_timeout(5000)  # a user reading the form; the app's start-up warm-up builds the default data meanwhile
            start = time.perf_counter()
            page.get_by_role("button", name="Train").click()
            expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
            to_monitor = time.perf_counter() - start
            expect(page.get_by_text("points logged").first).to_be_visible(timeout=60_000)
            latency = time.perf_counter() - start
            page.get_by_role("button", name="Stop training").click()
            browser.close()
        return to_monitor, latency
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also measure in a real browser against streamlit run")
    args = parser.parse_args()
    load_dataset("mnist_optdigits")  # the app keeps built datasets in memory; time the warm path a user sees after the first run
    with tempfile.TemporaryDirectory() as tmp:
        for threads in sorted({training_threads(), torch.get_num_threads()}):
            torch.set_num_threads(threads)
            registry = JobRegistry(RunStore(Path(tmp) / f"store{threads}"))
            config = RunConfig(dataset="mnist_optdigits", method="ae_kmeans", hparams={"epochs": 100})
            latencies = sorted(first_point_latency(registry, config) for _ in range(3))
            print(f"torch threads {threads}: Train → first point in the store: median {latencies[1]*1000:.0f} ms "
                  f"(min {latencies[0]*1000:.0f}, max {latencies[2]*1000:.0f})")
            print(f"torch threads {threads}: ae_kmeans on mnist_optdigits (6,797 × 784, batch 256): "
                  f"{seconds_per_epoch(registry, args.epochs):.2f} s/epoch")
        if args.browser:
            home = Path(tmp) / "browser_home"
            home.mkdir()
            to_monitor, latency = browser_latency(home)
            print(f"browser: click Train → Monitor page shown {to_monitor:.2f} s → first live point visible {latency:.2f} s "
                  f"(includes up to one 1 s Monitor poll)")


if __name__ == "__main__":
    main()
