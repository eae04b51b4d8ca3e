"""Every method against its paper: run a reproduction, keep one JSON record per run, render docs/REPRODUCTIONS.md.

    python bench/reproduce.py --method dfc --schedule reduced                 # DFC on MNIST-USPS, n = 10,000, CPU
    python bench/reproduce.py --method fcmi --dataset reverse_mnist --schedule paper --device cuda
    python bench/reproduce.py --method dec,idec,statdec --dataset mnist_lt10 --seeds 0,1,2
    python bench/reproduce.py --method inv_senet --schedule medium --set lambda_adv=30
    python bench/reproduce.py --list                                          # methods, datasets, schedules
    python bench/reproduce.py --render                                        # docs/REPRODUCTIONS.md from the records

Each run goes through the app's own path (RunConfig → create_run → execute_run: run store, Recorder,
evaluation_metrics), so the numbers are those the dashboard would show. Each run writes
<out>/<method>__<dataset>__<schedule>__seed<S>.json (atomically; a rerun of the same key replaces its record and says
so; a file there that is not that key's record is never replaced) with the paper's numbers and source, our final
metrics, the budget, device, wall time, git commit, date and the curve (every evaluation); then the document is
rendered again from every record in <out>: docs/REPRODUCTIONS.md for the default --out, <out>/REPRODUCTIONS.md for any
other (a smoke run into a temporary folder leaves docs/ alone). The datasets, schedules, papers' numbers and the notes
on why a paper cannot be matched are in bench/reproduction/recipes.py.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from dashboard_lib.data import load_dataset
from dashboard_lib.jobs import RunConfig, create_run, execute_run
from dashboard_lib.methods import REGISTRY, get_method, resolve_device
from dashboard_lib.params import parse_assignments
from dashboard_lib.reproductions import (SCHEMA, RecordError, load_records, percent, summarize,
                                         write_record)
from dashboard_lib.store import RunStore
from reproduction import recipes  # beside this script: bench/ is the first folder on sys.path when it runs
from reproduction.render import render

REPO = Path(__file__).resolve().parents[1]

DEFAULT_OUT = REPO / "docs" / "reproductions"
DEFAULT_DOC = REPO / "docs" / "REPRODUCTIONS.md"
DATA_DIR = REPO.parent / "shared" / "data"
# What the curve keeps of each evaluation (those the method has): accuracy, fairness, probe, robustness.
CURVE_KEYS = ("acc", "nmi", "nmi_geometric", "ari", "balance", "mnce", "f_beta", "probe_acc", "disc_acc",
              "same_group_share", "min_class_recall", "tail_recall", "avg_acc", "unbiased_acc", "worst_group_acc")


class RunFailed(RuntimeError):
    """A reproduction run that did not finish: no record is written."""


# --- provenance ---------------------------------------------------------------------------------------------------
def git_state() -> dict:
    """HEAD and whether the code differs from it (the records and the document themselves do not count: writing one
    record must not mark the next run dirty)."""
    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--", ".", ":(exclude)docs/reproductions", ":(exclude)docs/REPRODUCTIONS.md")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": True}
    return {"commit": commit, "dirty": bool(changes)}


def device_info(device: torch.device) -> dict:
    threads = torch.get_num_threads()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        model = platform.processor() or "cpu"
        try:
            model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        name = f"{device.type}: {model}, {threads} thread{'s' if threads > 1 else ''}"
    return {"type": device.type, "name": name, "threads": threads}


# --- what some suites add to the record (the old benchmarks' extra columns) -----------------------------------------
def class_recall(store: RunStore, run_id: str, data, last_epoch: int, hparams: dict) -> dict:
    """Imbalance: per class, the recall of the cluster matched to it (Hungarian, as for ACC), and the worst and
    tail-class recall of the final assignment (DEC and k-means do not compute them themselves)."""
    from dashboard_lib.methods.statdec import class_recall_metrics, matched_class_recall

    arrays = store.load_arrays(run_id, last_epoch)
    k = len(data.class_names)
    recall = matched_class_recall(arrays["y"], arrays["assignment"], k)
    return {"class_sizes": np.bincount(arrays["y"], minlength=k).tolist(),
            "class_recall": [round(float(r), 4) for r in recall],
            **class_recall_metrics(arrays["y"], arrays["assignment"], k)}


def bias_monitors(store: RunStore, run_id: str, data, last_epoch: int, hparams: dict) -> dict:
    """Invariance: the bias classifiers' accuracy, mean of the first and of the last tenth of the run (Inv-SENnet
    §3.3: high early, decaying as the embeddings become invariant), beside chance."""
    ood = hparams.get("protocol") == "ood" and data.splits
    out = {"n_train": len(data.splits["train"]) if ood else len(data),
           "n_clustered": len(data.splits["test"]) if ood else len(data)}
    scalars = store.scalars(run_id, ["acc_bias_key", "acc_bias_query", "bias_chance"])
    for name, rows in scalars.groupby("name"):
        values = rows.sort_values("step")["value"].to_numpy()
        tenth = max(1, len(values) // 10)
        out[name] = [round(float(values[:tenth].mean()), 4), round(float(values[-tenth:].mean()), 4)]
    return out


def what_it_looks_at(store: RunStore, run_id: str, data, last_epoch: int, hparams: dict) -> dict:
    """Debias: Grad-CAM mass on the strokes (last and an early conv block) and the predictions a colour swap
    changes, on 300 unbiased test images, half bias-conflicting."""
    from dashboard_lib import explain

    model = explain.load_run_model(store, store.get_run(run_id))
    sample = explain.stroke_sample(data, 300, 0)
    last = explain.explain_model(model, data, np.zeros(0, dtype=np.int64), sample, block=-1)
    early = explain.explain_model(model, data, np.zeros(0, dtype=np.int64), sample, block=-3)
    return {"stroke_area": round(float(explain.stroke_area_share(data.X[sample])), 4),
            "stroke_share_last_conv": round(float(last.stroke_share), 4),
            "stroke_share_early_conv": round(float(early.stroke_share), 4),
            "colour_swap_flips": None if last.colour_flip_rate is None else round(float(last.colour_flip_rate), 4)}


ANALYSES = {"imbalance": class_recall, "invariance": bias_monitors, "debias": what_it_looks_at}


# --- one run -------------------------------------------------------------------------------------------------------
def run_one(plan: recipes.Plan, seed: int, args, store: RunStore, overrides: dict) -> dict:
    """Train one run through the app's path and return its record (RunFailed if it does not finish)."""
    config = RunConfig(dataset=plan.dataset.dataset, method=plan.method, dataset_options=plan.options,
                       hparams=plan.hparams, seed=seed, device=args.device, data_dir=str(args.data_dir))
    run_id, config = create_run(store, config)
    code = git_state()  # the code that trains, read before it does: a commit made while it runs is not this run's
    device = resolve_device(config.device)
    data = recipes.prepare(plan, load_dataset(config.dataset, config.dataset_options, config.data_dir), seed)
    start = time.perf_counter()
    run = execute_run(store, run_id, config, threading.Event(), data=data)
    wall = time.perf_counter() - start
    if run.status != "finished":
        raise RunFailed(f"{plan.method} on {plan.dataset.name} ended {run.status}: {run.error}")
    evaluations = store.evaluations(run_id)
    curve = [{"step": int(e["epoch"]), **{k: float(e["metrics"][k]) for k in CURVE_KEYS
                                          if isinstance(e["metrics"].get(k), (int, float))}} for e in evaluations]
    analysis = {}
    analyse = ANALYSES.get(plan.dataset.suite)
    if analyse is not None and evaluations:
        try:
            analysis = analyse(store, run_id, data, evaluations[-1]["epoch"], config.hparams)
        except Exception as exc:  # an extra column must never cost the run's record
            analysis = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  (analysis failed: {analysis['error']})", flush=True)
    group_models = store.run_table(run_id, "group_models")  # DFC's stage 2: each group's own model vs the shared start
    if group_models:
        analysis["group_models"] = group_models
    final = {k: float(v) for k, v in (run.metrics or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}
    for k in plan.suite.metrics:  # a shown metric the method does not compute, where the analysis computed it
        if k not in final and isinstance(analysis.get(k), float):
            final[k] = analysis[k]
    # Inv-SENnet's N_i: the training rows (ood trains on the biased split only, mixed on every row)
    n_train = len(data.splits["train"]) if config.hparams.get("protocol") == "ood" and data.splits else None
    return {
        "schema": SCHEMA, "method": plan.method, "method_name": get_method(plan.method).name,
        "dataset": plan.dataset.name, "data": {"id": config.dataset, "options": config.dataset_options},
        "schedule": plan.record_schedule, "seed": seed,
        "paper": recipes.paper_reference(plan.method, plan.dataset.name, n_train or len(data)),
        "metrics": final,
        "columns": {"metrics": list(plan.suite.metrics), "curve": list(plan.suite.curve)},
        "budget": {"n": plan.options.get("n", 0), "n_samples": len(data), "n_train": n_train,
                   "seeds": args.seed_list, "precision": config.hparams.get("precision", "fp32"),
                   "dtype": str(data.X.dtype).replace("torch.", ""),
                   "schedule": recipes.budget_settings(config.hparams), "hparams": config.hparams,
                   "overrides": {k: config.hparams[k] for k in overrides}, "unit": get_method(plan.method).eval_unit,
                   "variant": plan.variant},
        "device": device_info(device), "wall_s": round(wall, 2), "git": code,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "curve": curve, "curve_unit": get_method(plan.method).eval_unit, "analysis": analysis,
    }


def split_overrides(assignments: dict, methods: list[str]) -> dict[str, dict]:
    """--set values per method: METHOD.NAME=VALUE for that method, NAME=VALUE for every method named that declares
    NAME. ValueError for a method not named or a NAME none of them declares."""
    per = {m: {} for m in methods}
    for name, value in assignments.items():
        target, dot, param = name.rpartition(".")
        if dot:
            if target not in per:
                raise ValueError(f"--set {name}: {target} is not one of the methods named ({', '.join(methods)})")
            per[target][param] = value
            continue
        takers = [m for m in methods if name in {p.name for p in get_method(m).params}]
        if not takers:
            raise ValueError(f"--set {name}: no method named ({', '.join(methods)}) has a setting '{name}'")
        for m in takers:
            per[m][name] = value
    return per


def doc_path(out: Path) -> Path:
    """docs/REPRODUCTIONS.md for the default records folder; <out>/REPRODUCTIONS.md for any other."""
    return DEFAULT_DOC if out.resolve() == DEFAULT_OUT.resolve() else out / "REPRODUCTIONS.md"


def render_doc(out: Path) -> Path:
    """Regenerate the document from every record in out; RecordError (naming the files) if any is malformed."""
    from dashboard_lib.outputs import write_atomic

    records, problems = load_records(out)
    if problems:
        raise RecordError("not rendered, fix these first:\n  " + "\n  ".join(problems))
    folder = os.path.relpath(out.resolve(), REPO) if out.resolve().is_relative_to(REPO) else str(out)
    return write_atomic(doc_path(out), render(records, folder), flag="--render", replace=True)


def print_list() -> None:
    print("method      datasets (default first)")
    for method in REGISTRY:
        names = recipes.datasets_for(method)
        default = recipes.DEFAULT_DATASET[method]
        variants = list(get_method(method).variants)[1:]
        print(f"{method:<12}{', '.join([default] + [n for n in names if n != default])}"
              + (f"   variants: {', '.join(variants)}" if variants else ""))
    print("\ndataset                       suite       schedules")
    for name, d in recipes.DATASETS.items():
        print(f"{name:<30}{d.suite:<12}{', '.join(recipes.schedules_for(name))}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", help="method id(s), comma-separated: " + ", ".join(REGISTRY))
    parser.add_argument("--dataset", help="benchmark dataset (default: the method's; --list shows them)")
    parser.add_argument("--schedule", default="reduced", help="quick, reduced, medium or paper (default reduced; "
                                                              "--list shows which a dataset has)")
    parser.add_argument("--n", type=int, default=None, help="stratified subset size (default: the schedule's; 0 = all)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: one run and one record each")
    parser.add_argument("--set", action="append", default=[], metavar="[METHOD.]NAME=VALUE",
                        help="override a hyperparameter of every method named that declares it, or of one method "
                             "(dec.iterations=500); repeatable")
    parser.add_argument("--variant", help="a named reading of the method(s) (e.g. 'public code'; --list shows them), "
                                           "over the schedule's budget and under --set; the record's schedule says it")
    parser.add_argument("--tag", help="a word added to the record's schedule name, to keep a run with other --set "
                                      "values beside the plain one (e.g. knn)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared 2-core machine: 1)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"folder with mnist_usps.npz (default {DATA_DIR})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="records folder (default docs/reproductions)")
    parser.add_argument("--store", type=Path, help="run store to keep the runs in (default: a temporary one)")
    parser.add_argument("--render", action="store_true", help="only regenerate the document from the records")
    parser.add_argument("--list", action="store_true", help="list methods, datasets and schedules")
    args = parser.parse_args(argv)
    if args.list:
        print_list()
        return 0
    if args.render:
        try:
            print(f"wrote {render_doc(args.out)}")
        except (RecordError, OSError) as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0
    if not args.method:
        parser.error("--method is required (or --render, --list)")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",")]
        methods = args.method.split(",")
        overrides = split_overrides(parse_assignments(args.set), methods)
        plans = [recipes.plan(m, args.dataset or recipes.DEFAULT_DATASET.get(m, ""), args.schedule, args.n, overrides[m],
                              variant=args.variant, tag=args.tag) for m in methods]
        for p in plans:  # refuse a bad setting before anything trains
            RunConfig(dataset=p.dataset.dataset, method=p.method, dataset_options=p.options, hparams=p.hparams,
                      device=args.device).resolved()
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="reproduce_") as tmp:
        store = RunStore(args.store or tmp)
        for seed in args.seed_list:  # methods alternate within a seed, so load drifts hit all of them alike
            for p in plans:
                print(f"{p.method} on {p.dataset.name}, {p.schedule} schedule, seed {seed}, n = {p.options['n'] or 'all'}, "
                      f"{p.hparams}", flush=True)
                try:
                    record = run_one(p, seed, args, store, overrides[p.method])
                except RunFailed as exc:
                    print(f"  FAILED: {exc}", flush=True)
                    failed += 1
                    continue
                path, previous = write_record(record, args.out)
                print(f"  {record['wall_s']:.0f} s: " + ", ".join(
                    f"{k} {percent(record['metrics'].get(k))} (paper {percent(record['paper']['metrics'].get(k))})"
                    for k in record["columns"]["metrics"]), flush=True)
                print(f"  {'replaced' if previous else 'wrote'} {path}"
                      + (f" (was {previous['date']}, commit {previous['git']['commit'][:10]})" if previous else ""),
                      flush=True)
                print(f"  rendered {render_doc(args.out)}", flush=True)
    for s in summarize(load_records(args.out)[0]):
        if s.method in {p.method for p in plans} and s.schedule in {p.record_schedule for p in plans}:
            print(f"{s.method} / {s.dataset}: " + "; ".join(f"{r['metric']} {r['ours']} (paper {r['paper']})"
                                                           for r in s.rows()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
