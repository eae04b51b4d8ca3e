"""Headless use of the same registries and run store: python -m dashboard_lib {datasets, methods, train, runs}."""
from __future__ import annotations

import argparse
import json
import sys
import time

from . import data as datasets
from . import methods
from .jobs import JobRegistry, RunConfig
from .params import parse_assignments
from .settings import store_dir
from .store import RunStore

FINAL_METRIC_KEYS = ("acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard_lib", description="Fair Clustering Lab, headless.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the datasets and their options")
    p.add_argument("--json", action="store_true")
    p.add_argument("--data-dir", help="folder searched first for downloaded dataset files")

    p = sub.add_parser("methods", help="list the methods and their hyperparameters")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("runs", help="list the runs in the store")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train", help="train a method on a dataset and record the run")
    p.add_argument("--dataset", default=datasets.DEFAULT_DATASET)
    p.add_argument("--data", action="append", metavar="NAME=VALUE", help="a dataset option (repeatable)")
    p.add_argument("--method", default=methods.DEFAULT_METHOD)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a hyperparameter (repeatable)")
    p.add_argument("--epochs", type=int, help="shorthand for --set epochs=N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--data-dir", help="folder searched first for downloaded dataset files")
    p.add_argument("--json", action="store_true", help="print one JSON object with the run's id, device, time and metrics")
    return parser


def _list_datasets(args) -> None:
    rows = []
    for spec in datasets.REGISTRY.values():
        try:
            available = bool(spec.available(args.data_dir or datasets.default_data_dir()))
        except Exception:  # an unreadable data folder means: not available now
            available = False
        rows.append({"id": spec.id, "name": spec.name, "size": spec.size, "summary": spec.summary,
                     "available_offline": available, "options": [p.describe() for p in spec.options]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "yes" if row["available_offline"] else "no (download or data folder)"
        print(f"{row['id']:<24} {row['name']}\n{'':<24} {row['size']}; available now: {mark}")


def _list_methods(args) -> None:
    rows = [cls.describe() for cls in methods.REGISTRY.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['id']:<12} {row['name']}: {row['summary']}")
        for p in row["params"]:
            symbol = f" ({p['symbol']})" if p["symbol"] else ""
            print(f"{'':<14}{p['name']}{symbol} = {p['default']}  range {p['range']}  {p['help']}")


def _list_runs(args) -> None:
    runs = RunStore(store_dir()).list_runs()
    if args.json:
        print(json.dumps([{"run_id": r.id, "dataset": r.dataset, "method": r.method, "status": r.status,
                           "device": r.device, "seconds": r.seconds, "metrics": r.metrics, "error": r.error} for r in runs], indent=2))
        return
    for r in runs:
        print(f"{r.id}  {r.status:<11} {r.method:<10} {r.dataset:<18} "
              + " ".join(f"{k}={r.metrics[k]:.3f}" for k in FINAL_METRIC_KEYS if isinstance(r.metrics.get(k), float)))


def _train(args) -> int:
    hparams = parse_assignments(args.set)
    if args.epochs is not None:
        cls = methods.get_method(args.method)
        if not any(p.name == "epochs" for p in cls.params):
            raise CLIError(f"method {args.method} does not train in epochs; its hyperparameters: "
                           + ", ".join(p.name for p in cls.params))
        hparams["epochs"] = args.epochs
    config = RunConfig(dataset=args.dataset, method=args.method, dataset_options=parse_assignments(args.data),
                       hparams=hparams, seed=args.seed, device=args.device, data_dir=args.data_dir)
    registry = JobRegistry(RunStore(store_dir()), threads=None)  # the CLI owns the machine: all of torch's threads
    run_id = registry.start(config)
    shown = ""
    try:
        while not registry.wait(run_id, timeout=1.0):
            run = registry.store.get_run(run_id)
            line = f"{run_id}: {run.stage} {run.progress:.0%}"
            if line != shown and not args.json:
                print(line, file=sys.stderr)
                shown = line
    except KeyboardInterrupt:
        registry.stop(run_id)
        registry.wait(run_id)
    run = registry.store.get_run(run_id)
    if args.json:
        print(json.dumps({"run_id": run.id, "dataset": run.dataset, "method": run.method, "device": run.device,
                          "seconds": run.seconds, "status": run.status, "error": run.error, "metrics": run.metrics}))
    else:
        print(f"{run.id}: {run.status} in {run.seconds:.1f} s on {run.device}")
        for key, value in run.metrics.items():
            if isinstance(value, float):
                print(f"  {key:<16} {value:.4f}")
    if run.status != "finished":
        print(f"run {run.id} {run.status}: {run.error or 'stopped by the user'}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "datasets":
            _list_datasets(args)
        elif args.command == "methods":
            _list_methods(args)
        elif args.command == "runs":
            _list_runs(args)
        elif args.command == "train":
            return _train(args)
    except (ValueError, CLIError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
