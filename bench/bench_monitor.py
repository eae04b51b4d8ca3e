"""What one Monitor refresh costs while a long run trains: store read, figure building, and the whole page (AppTest).

    python bench/bench_monitor.py [--steps 20000] [--signals 8]

A DFC run of the paper's 20,000 iterations logs about 8 series per step: 160,000 rows. The Monitor redraws once a
second while a run trains, so a refresh must stay well under a second.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from dashboard_lib.plots import MAX_POINTS_PER_SERIES, accuracy_figure, signals_figure, split_signals
from dashboard_lib.store import RunStore


def timed(fn, repeat=5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--signals", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["FCLAB_HOME"] = home
        store = RunStore(Path(home) / "store")
        run_id = store.create_run(dataset="mnist_optdigits", method="dfc", config={"hparams": {}}, seed=0, device="cpu",
                                  environment={})
        names = [f"L_{i}" for i in range(args.signals - 2)] + ["disc_acc", "disc_chance"]
        store.add_scalars(run_id, [(s, n, 1.0 / s, float(s)) for s in range(1, args.steps + 1) for n in names])
        rows = args.steps * len(names)

        full, _ = timed(lambda: store.scalars(run_id))
        read, scalars = timed(lambda: (store.scalar_counts(run_id), store.scalars(run_id, max_points=MAX_POINTS_PER_SERIES))[1])
        groups = split_signals(scalars["name"].unique())
        build, _ = timed(lambda: (signals_figure(scalars, groups["losses"]),
                                  accuracy_figure(scalars, groups["accuracies"], groups["chance"])))
        print(f"{rows:,} logged rows: every row read {full * 1000:.0f} ms; thinned to {MAX_POINTS_PER_SERIES:,} per series "
              f"(what the Monitor reads) {read * 1000:.0f} ms; figures {build * 1000:.0f} ms (medians of 5)")

        from streamlit.testing.v1 import AppTest

        def page():
            at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
            at.query_params["run"] = run_id
            at.run()
            at.switch_page("pages/monitor.py").run()
            assert not at.exception, at.exception
        page()  # first run imports the pages
        whole, _ = timed(page, repeat=3)
        print(f"whole app run on the Monitor page (server side, AppTest, includes app.py and the sidebar): "
              f"{whole * 1000:.0f} ms (median of 3); goal: a refresh well under the 1 s polling interval")


if __name__ == "__main__":
    main()
