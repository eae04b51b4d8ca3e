"""Ray's cost and gain for a sweep: N short trials on a local Ray against the same trials one after another in one process.

    python bench/bench_sweep.py [--trials 32] [--method kmeans] [--n 0]

Prints the wall time of both, the speed-up against the number of trial slots (cores / CPUs per trial), and Ray's
overhead per trial: the core-seconds Ray spent beyond the trials' own sequential time, divided by the number of trials
((slots × Ray wall − Σ sequential trial times) / trials; worker start-up, each worker's first dataset build, the
messages to the driver and its store writes; the sequential side builds the dataset once, untimed). Ray's start
(ray.init) is timed apart. Goal: overhead under 0.5 s per trial, speed-up near the slot count.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import torch

from dashboard_lib import sweeps
from dashboard_lib.data import load_dataset
from dashboard_lib.jobs import JobRegistry, create_run, execute_run
from dashboard_lib.store import RunStore
from dashboard_lib.sweeps import Axis, SweepSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--method", default="kmeans")
    parser.add_argument("--n", type=int, default=0, help="dataset subset size (0: all 6,797 built-in images)")
    args = parser.parse_args()
    seeds = 4
    values = list(range(6, 6 + args.trials // seeds))
    spec = SweepSpec("mnist_optdigits", args.method, [Axis("n_clusters", values=values)], seeds=seeds, preset="paper",
                     fixed={"n_init": 3} if args.method == "kmeans" else {}, dataset_options={"n": args.n}, device="cpu")
    configs = spec.trials()
    home = Path(tempfile.mkdtemp(prefix="bench-sweep-"))

    # One after another in this process, one torch thread each (what a trial gets on Ray with one CPU). The dataset is
    # built once beforehand, outside the timing; each Ray worker builds its own, inside it (part of Ray's overhead).
    torch.set_num_threads(1)
    load_dataset(configs[0].dataset, configs[0].dataset_options)
    store = RunStore(home / "sequential")
    own = []
    t0 = time.perf_counter()
    for config in configs:
        start = time.perf_counter()
        run_id, config = create_run(store, config)
        run = execute_run(store, run_id, config, threading.Event())
        assert run.status == "finished", run.error
        own.append(time.perf_counter() - start)
    sequential = time.perf_counter() - t0

    # The same trials on a local Ray, one CPU per trial.
    registry = JobRegistry(RunStore(home / "ray"))
    t0 = time.perf_counter()
    resources = sweeps.connect(None)
    connect = time.perf_counter() - t0
    slots = sweeps.slots(resources, spec)
    t0 = time.perf_counter()
    runner = sweeps.SweepRunner(registry)
    sweep_id = runner.start(spec)
    runner.wait(sweep_id)
    on_ray = time.perf_counter() - t0
    runs = registry.store.list_runs(sweep_id=sweep_id)
    assert registry.store.get_sweep(sweep_id).status == "finished" and len(runs) == len(configs)
    assert all(r.status == "finished" for r in runs), [r.error for r in runs if r.status != "finished"]
    sweeps.disconnect()

    overhead = (slots * on_ray - sum(own)) / len(configs)
    print(f"{len(configs)} trials of {args.method} on mnist_optdigits (n={args.n or 'all'}), {os.cpu_count()} cores, "
          f"{slots} trial slots (1 CPU each)")
    print(f"  one after another, one process : {sequential:7.1f} s  (trial median {sorted(own)[len(own) // 2]:.2f} s)")
    in_ray = sorted(r.seconds for r in runs)
    print(f"  local Ray                      : {on_ray:7.1f} s  (+ {connect:.1f} s to start Ray, once per process; "
          f"trial median {in_ray[len(in_ray) // 2]:.2f} s as the driver records it)")
    print(f"  speed-up                       : {sequential / on_ray:7.2f} ×  of {slots} slots "
          f"({sequential / (on_ray + connect):.2f} × with Ray's start)")
    print(f"  Ray overhead per trial         : {overhead:7.2f} s  (goal < 0.5 s)")


if __name__ == "__main__":
    main()
