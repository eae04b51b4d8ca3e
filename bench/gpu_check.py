"""One command for a GPU: a CUDA smoke test of every method, then every paper's full schedule, beside the papers' numbers.

    bash bench/gpu_check.sh OUT                       # on a GPU: (a) smoke, (b) the paper runs, (c) the table
    bash bench/gpu_check.sh OUT --only fcmi_reverse_mnist,senet_ood   # what a first call could not fit
    bash bench/gpu_check.sh OUT --dry-run             # the same code path on the CPU with tiny schedules

(a) Smoke: every method's quick preset (schedule lengths cut by SMOKE_CUT) on the built-in data, once on the device
    and once on the CPU, in two worker processes side by side; the final metrics must agree within SMOKE_TOLERANCE.
(b) The papers' full schedules, each job its own worker process, all at once on the one GPU (memory allows: the
    largest needs about 2 GiB). A planner estimates each job from the per-step costs in STEP_COSTS and keeps what
    fits in --budget-s; the rest is reported as not run with the command that runs it. A job that fails or passes
    the hard deadline is reported, never fatal.
(c) OUT/gpu_check.json (everything) and OUT/gpu_check.md (ours beside each paper's numbers, time, device, schedule).

Every run goes through the app's own path (RunConfig → create_run → execute_run: run store, Recorder, metrics), so
the numbers are those the dashboard would show; each worker keeps its runs in OUT/home/<job>/store.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dashboard_lib.data.imbalanced import imbalance_counts
from reproduction import recipes  # beside this script: bench/ is the first folder on sys.path when it runs

REPO = Path(__file__).resolve().parents[1]

DEFAULT_BUDGET_S = 480  # of the 600 s one device command may take: the rest for start-up, the smoke and the table
SMOKE_S = 60  # phase (a) on a GPU machine; a call without it gives the paper runs this much more
DEADLINE_MARGIN_S = 45  # a job still running this long after the budget is stopped and reported as timed out
SMOKE_DATA = {"n": 1000}  # the built-in digits (mnist_optdigits), a stratified subset: seconds per method on a CPU
# The quick preset's settings (widths, batch sizes, every weight), with schedule lengths cut so the CPU reference
# of every method ends in about a minute; the point is that every method runs on the device, not its score.
SMOKE_CUT = {
    "kmeans": {},
    "ae_kmeans": {"epochs": 3, "eval_every": 0},
    "dec": {"pretrain_epochs": 2, "iterations": 60, "eval_every": 0},
    "idec": {"pretrain_epochs": 2, "iterations": 60, "eval_every": 0},
    "statdec": {"pretrain_epochs": 2, "iterations": 60, "eval_every": 0},
    "dfc": {"pretrain_steps": 40, "group_pretrain_epochs": 1, "group_dec_epochs": 1, "iterations": 60, "eval_every": 0},
    "fcmi": {"epochs": 4, "warmup_epochs": 2, "eval_every": 0},
    "erm": {"ae_epochs": 1, "epochs": 2, "eval_every": 0},
    "clusterfix": {"ae_epochs": 1, "epochs": 2, "eval_every": 0},
    "senet": {"epochs": 4, "eval_every": 0},
    "inv_senet": {"epochs": 4, "eval_every": 0},
    # The classic fair-clustering methods compute with numpy on the CPU whatever the device: run to show they do.
    "fairlets": {},
    "fair_assignment": {},
    "variational_fair": {"max_iter": 10},
    "socially_fair_kmeans": {"max_iter": 20},
}
# Device vs CPU: the same seed and data, but other kernels sum in another order (round-off ~1e-7 per product), and a
# few dozen steps of training can amplify that: k-means on raw features lands on the same partition (ties aside),
# the deep methods may settle a few of the 1,000 samples differently. A bound, not yet a measurement: 0.06 ACC / NMI
# (60 samples) for the deep methods, 0.01 for k-means. A real device bug (a wrong kernel, a bad transfer) costs tens
# of points or a crash; the first GPU run's deltas, in gpu_check.json, are the measurement to tighten it with.
SMOKE_TOLERANCE = {"kmeans": 0.01, "default": 0.06}
SMOKE_METRICS = ("acc", "nmi")

# --- The planner's costs -------------------------------------------------------------------------------------
# Per step of each training stage, at the papers' batch sizes and widths: seconds on one CPU thread, aten ops
# dispatched and GFLOP (matrix products and convolutions; forward, backward, optimiser), measured by
# bench/bench_step_costs.py on the 2-core dev machine (Xeon with AVX-512, torch 2.13 CPU, fp32, shared with other
# work: the seconds are upper bounds). Per-epoch work (k-means, embedding all samples, target updates, spectral
# clustering) is given per 1,000 samples it touches, in CPU seconds (estimates: see PER_EPOCH_GPU_SPEEDUP).
STEP_COSTS = {
    # unit: (cpu_s, aten_ops, gflop)
    "fcmi.warmup": (0.81, 489, 19.86), "fcmi.fair": (0.62, 631, 19.86), "fcmi.epoch_per_1k": (0.06, 0, 0.0),
    "dfc.pretrain": (0.49, 592, 13.92), "dfc.group_dec": (0.63, 327, 13.82), "dfc.fair": (3.24, 641, 37.2),
    "dfc.eval_per_1k": (0.03, 0, 0.0),
    "senet.step": (3.33, 688, 220.0), "inv_senet.step": (3.64, 815, 220.8), "senet.cluster_per_1k": (4.0, 0, 0.0),
    "statdec.pretrain": (0.071, 276, 4.11), "statdec.cluster": (0.071, 275, 4.13), "statdec.update_per_1k": (0.004, 0, 0.0),
    "erm.ae": (0.33, 357, 14.43), "erm.train": (0.23, 268, 8.67), "clusterfix.train": (0.27, 337, 8.67),
    "erm.epoch_per_1k": (1.2, 0, 0.0),
}
# The H200 estimate of a step: max(ops × LAUNCH_S, GFLOP / GPU_GFLOPS). Eager PyTorch spends about 8 µs of host time
# per dispatched op (Python, dispatcher, kernel launch), so small networks are bound by their op count; large matrix
# products by arithmetic: fp32 (no TF32, the default) peaks at 67 TFLOP/s on an H200, say 30 TFLOP/s on these
# shapes (SENet's 10,000 × 1,024 products run near peak, the small convolutions far below). The op counts are
# CPU's: its Adam loops over parameters where CUDA's default (foreach) batches them, so they err on the slow side. The GPU is busy for the arithmetic part only, plus ~2 µs per kernel:
# that is what concurrent jobs share. Per-epoch work runs PER_EPOCH_GPU_SPEEDUP times faster than on one CPU
# thread (spectral clustering and metrics stay on the CPU). Estimates, not measurements.
LAUNCH_S = 8e-6
KERNEL_S = 2e-6
GPU_GFLOPS = 30_000.0
PER_EPOCH_GPU_SPEEDUP = {"fcmi.epoch_per_1k": 20.0, "dfc.eval_per_1k": 20.0, "statdec.update_per_1k": 50.0,
                         "erm.epoch_per_1k": 20.0, "senet.cluster_per_1k": 1.5}
START_S = 20.0  # a worker's start: imports, CUDA context, loading and preparing the data


@dataclass(frozen=True)
class Job:
    """One paper run of phase (b): a method on a dataset with the paper's schedule."""

    name: str
    method: str
    dataset: str
    data: dict
    hparams: dict
    n: int  # samples at full size, for the planner
    metrics: tuple[str, ...]
    tiny: dict = field(default_factory=dict)  # the dry run's schedule overlay


REPRO = ("acc", "nmi", "balance", "mnce")
# The paper schedules are bench/reproduce.py's (bench/reproduction/recipes.py): one place for each recipe.
SENET_PAPER = recipes.plan("senet", "colored_mnist", "paper").hparams  # protocol ood, eval_every 0
SENET_TINY = {"width": 32, "pca_dim": 20, "epochs": 1, "batch_size": 50, "dict_size": 100, "top_k": 20, "log_every": 1}
STATDEC_PAPER = recipes.plan("statdec", "mnist_lt10", "paper").hparams  # the shared budget, no early stop
STATDEC_TINY = {"pretrain_epochs": 1, "iterations": 6, "n_init": 1, "batch_size": 64}
_CLUSTERFIX = recipes.plan("clusterfix", "cmnist_binary99", "paper")
CLUSTERFIX_PAPER = {"data": _CLUSTERFIX.options, "hparams": _CLUSTERFIX.hparams}
CLUSTERFIX_TINY = {"ae_epochs": 1, "epochs": 1, "batch_size": 64}
FCMI_TINY = {"epochs": 2, "warmup_epochs": 1, "batch_size": 64, "kmeans_n_init": 1}
DFC_TINY = {"pretrain_steps": 4, "group_pretrain_epochs": 0, "group_dec_epochs": 1, "iterations": 4, "batch_per_group": 32,
            "pretrain_batch_size": 64, "n_init": 1}
LT_SIZES = {ratio: int(imbalance_counts(5421, 10, "long_tail", ratio).sum()) for ratio in (10, 100)}  # 5,421: MNIST's digit 5

# Evaluations between the first and the last are skipped (eval_every 0): the papers report the final metrics, and
# an evaluation (metrics, probe, arrays to disk) keeps the GPU idle while the CPU works.
JOBS = (
    Job("fcmi_mnist_usps", "fcmi", "mnist_usps", {}, {"eval_every": 0}, 67291, REPRO, FCMI_TINY),
    Job("fcmi_reverse_mnist", "fcmi", "reverse_mnist", {}, {"eval_every": 0}, 120000, REPRO, FCMI_TINY),
    Job("dfc_mnist_usps", "dfc", "mnist_usps", {}, {"eval_every": 0}, 67291, REPRO, DFC_TINY),
    Job("dfc_reverse_mnist", "dfc", "reverse_mnist", {}, {"eval_every": 0}, 120000, REPRO, DFC_TINY),
    Job("senet_ood", "senet", "colored_mnist", {"n": 0}, SENET_PAPER, 60000, ("acc", "nmi_geometric", "ari"), SENET_TINY),
    Job("inv_senet_ood", "inv_senet", "colored_mnist", {"n": 0}, SENET_PAPER, 60000, ("acc", "nmi_geometric", "ari"),
        SENET_TINY),
    Job("statdec_lt10", "statdec", "imbalanced_mnist", {"imbalance": "long_tail", "ratio": 10, "n": 0}, STATDEC_PAPER,
        LT_SIZES[10], ("acc", "nmi", "ari", "min_class_recall", "tail_recall"), STATDEC_TINY),
    Job("statdec_lt100", "statdec", "imbalanced_mnist", {"imbalance": "long_tail", "ratio": 100, "n": 0}, STATDEC_PAPER,
        LT_SIZES[100], ("acc", "nmi", "ari", "min_class_recall", "tail_recall"), STATDEC_TINY),
    Job("clusterfix_cmnist99", "clusterfix", "colored_mnist", CLUSTERFIX_PAPER["data"], CLUSTERFIX_PAPER["hparams"],
        60000, ("avg_acc", "unbiased_acc", "worst_group_acc"), CLUSTERFIX_TINY),
    Job("erm_cmnist99", "erm", "colored_mnist", CLUSTERFIX_PAPER["data"], CLUSTERFIX_PAPER["hparams"], 60000,
        ("avg_acc", "unbiased_acc", "worst_group_acc"), CLUSTERFIX_TINY),
)
DRY_RUN_N = 400  # samples per paper dataset in the dry run (stratified subset)
PAPER_DATASETS = {"mnist_usps", "reverse_mnist", "colored_mnist", "imbalanced_mnist"}  # need mnist_usps.npz


# The benchmark dataset (bench/reproduction/recipes.py) whose paper numbers a job is compared with.
BENCH_DATASET = {"statdec_lt10": "mnist_lt10", "statdec_lt100": "mnist_lt100", "clusterfix_cmnist99": "cmnist_binary99",
                 "erm_cmnist99": "cmnist_binary99"}


def paper_reference(job: Job) -> dict:
    """The paper's numbers for a job, from bench/reproduction/recipes.py: {"metrics": {key: fraction}, "source"}
    (where the paper has no number, the source says why)."""
    ref = recipes.paper_reference(job.method, BENCH_DATASET.get(job.name, job.dataset), job.n)
    metrics = {k: v for k, v in ref["metrics"].items() if v is not None}
    source = ref["source"] if metrics or not ref["note"] else ref["note"]
    return {"metrics": metrics, "source": source}


# --- Schedules and the planner ---------------------------------------------------------------------------------
def resolved_hparams(job: Job, dry_run: bool) -> dict:
    """The job's hyperparameters: the method's declared (paper) defaults, the job's settings, the dry run's overlay."""
    from dashboard_lib.methods import get_method

    cls = get_method(job.method)
    hp = {**job.hparams, **(job.tiny if dry_run else {})}
    return cls(**hp).hparams


def job_data(job: Job, dry_run: bool) -> dict:
    return {**job.data, "n": DRY_RUN_N} if dry_run else dict(job.data)


def stage_counts(job: Job, hp: dict, n: int) -> dict[str, float]:
    """How many of each STEP_COSTS unit a job runs: steps per stage, thousands of samples per per-epoch pass."""
    k = n / 1000
    m = job.method
    if m == "fcmi":
        steps = n // hp["batch_size"]
        return {"fcmi.warmup": hp["warmup_epochs"] * steps, "fcmi.fair": (hp["epochs"] - hp["warmup_epochs"]) * steps,
                "fcmi.epoch_per_1k": (hp["epochs"] - hp["warmup_epochs"] + 2) * k}
    if m == "dfc":
        # Stage 2's group pretraining costs about a pretraining step per step (same network), its DEC a group_dec step;
        # both pass over every group's samples once per epoch in batches of batch_per_group.
        group_steps = math.ceil(n / hp["batch_per_group"])
        return {"dfc.pretrain": hp["pretrain_steps"] + hp["group_pretrain_epochs"] * group_steps,
                "dfc.group_dec": hp["group_dec_epochs"] * group_steps, "dfc.fair": hp["iterations"],
                "dfc.eval_per_1k": 2 * k * (1 + hp["group_dec_epochs"])}
    if m in ("senet", "inv_senet"):
        n_train, n_cluster = (n * 5 // 6, n // 6)  # colored_mnist: 50,000 biased train + 10,000 unbiased test
        return {f"{m}.step": hp["epochs"] * (n_train // hp["batch_size"]), "senet.cluster_per_1k": n_cluster / 1000}
    if m == "statdec":
        return {"statdec.pretrain": hp["pretrain_epochs"] * math.ceil(n / hp["batch_size"]),
                "statdec.cluster": hp["iterations"], "statdec.update_per_1k": hp["iterations"] / hp["update_interval"] * k}
    n_train = n * 5 // 6
    steps = math.ceil(n_train / hp["batch_size"])
    return {"erm.ae": hp["ae_epochs"] * steps, f"{'clusterfix' if m == 'clusterfix' else 'erm'}.train": hp["epochs"] * steps,
            "erm.epoch_per_1k": hp["epochs"] * (n - n_train) / 1000}  # evaluated on the unbiased test split


def unit_seconds(unit: str, on_gpu: bool) -> tuple[float, float]:
    """(seconds, GPU-busy seconds) of one unit of work: a step of a stage, or 1,000 samples of per-epoch work."""
    cpu_s, ops, gflop = STEP_COSTS[unit]
    if not on_gpu:
        return cpu_s, cpu_s
    if unit in PER_EPOCH_GPU_SPEEDUP:
        seconds = cpu_s / PER_EPOCH_GPU_SPEEDUP[unit]
        return seconds, 0.5 * seconds
    busy = gflop / GPU_GFLOPS + ops * KERNEL_S
    return max(ops * LAUNCH_S, busy), busy


def estimate_seconds(job: Job, hp: dict, n: int, on_gpu: bool) -> tuple[float, float]:
    """(the job's time alone on the device, the time it keeps the device busy): estimates from STEP_COSTS."""
    seconds, busy = START_S, 0.0
    for unit, count in stage_counts(job, hp, n).items():
        unit_s, unit_busy = unit_seconds(unit, on_gpu)
        seconds, busy = seconds + count * unit_s, busy + count * unit_busy
    return seconds, busy


def predicted_wall(estimates: dict[str, tuple[float, float]]) -> float:
    """Wall time of jobs run at once on one GPU: none ends before its own time, nor before the GPU has served
    every job's busy time (the jobs take turns on it)."""
    if not estimates:
        return 0.0
    return max(max(s for s, _ in estimates.values()), sum(b for _, b in estimates.values()))


def plan(jobs: list[Job], estimates: dict[str, tuple[float, float]], budget_s: float) -> tuple[list[Job], list[Job]]:
    """(jobs to run now, jobs left for a second call): in JOBS order, each kept if the predicted wall stays in budget.
    The first job always runs, even if predicted over the budget alone, so that every call makes progress."""
    chosen: list[Job] = []
    left: list[Job] = []
    for job in jobs:
        trial = {j.name: estimates[j.name] for j in chosen + [job]}
        (chosen if not chosen or predicted_wall(trial) <= budget_s else left).append(job)
    return chosen, left


# --- Workers -----------------------------------------------------------------------------------------------------
def run_specs(specs: list[dict], threads: int) -> None:
    """Worker: train each spec through the app's path, one after the other; one JSON line per run on stdout."""
    import torch

    from dashboard_lib.jobs import RunConfig, create_run, execute_run
    from dashboard_lib.settings import store_dir
    from dashboard_lib.store import RunStore

    torch.set_num_threads(threads)
    store = RunStore(store_dir())
    for spec in specs:
        start = time.perf_counter()
        try:
            run_id, config = create_run(store, RunConfig(dataset=spec["dataset"], method=spec["method"],
                                                         dataset_options=spec["data"], hparams=spec["hparams"],
                                                         seed=spec.get("seed", 0), device=spec["device"],
                                                         data_dir=spec["data_dir"]))
            run = execute_run(store, run_id, config, threading.Event())
            row = {"status": run.status, "error": run.error, "device": run.device, "seconds": run.seconds,
                   "metrics": run.metrics, "hparams": config.hparams, "run_id": run_id}
        except ValueError as exc:  # a setting the method or data refuses: reported like a failed run
            row = {"status": "failed", "error": str(exc), "device": spec["device"], "seconds": 0.0, "metrics": {}}
        row.update(name=spec["name"], wall_s=time.perf_counter() - start,
                   gpu=torch.cuda.get_device_name() if spec["device"] == "cuda" else None)
        print("RESULT " + json.dumps(row, default=str), flush=True)


@dataclass
class Worker:
    """A worker process running some specs; its RESULT lines are collected as it goes."""

    name: str
    process: subprocess.Popen
    home: Path
    started: float
    say: Callable[[str], None]
    results: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def pump(self) -> None:
        """Read the worker's output as it comes: say each result at once, keep the rest for a crash report."""
        for line in self.process.stdout:
            if line.startswith("RESULT "):
                row = json.loads(line[7:])
                self.results.append(row)
                self.say(f"  done {row['name']} ({self.name}): {row['status']} in {row['wall_s']:.0f} s on {row['device']} "
                         + " ".join(f"{k}={v:.3f}" for k, v in row["metrics"].items()
                                    if k in REPORTED and isinstance(v, float))
                         + (f" — {row['error']}" if row.get("error") else ""))
            else:
                self.log.append(line.rstrip())

    def progress(self) -> str:
        """What the worker's current run is doing, from its run store."""
        from dashboard_lib.store import RunStore

        try:
            runs = RunStore(self.home / "store").list_runs(status="running")
        except Exception:  # the store may not exist yet, or be mid-write: no progress to show
            return "starting"
        return f"{runs[0].stage} {runs[0].progress:.0%}" if runs else "starting"


def start_worker(name: str, specs: list[dict], out: Path, threads: int, say: Callable[[str], None]) -> Worker:
    home = out / "home" / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "specs.json").write_text(json.dumps(specs, indent=1))
    env = {**os.environ, "FCLAB_HOME": str(home), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads)}
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(home / "specs.json"),
                                "--threads", str(threads)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, cwd=str(REPO))
    worker = Worker(name, process, home, time.perf_counter(), say)
    worker.reader = threading.Thread(target=worker.pump, daemon=True)
    worker.reader.start()
    return worker


def wait_all(workers: list[Worker], deadline: float, say, heartbeat_s: float = 30.0) -> None:
    """Wait for the workers, saying when each ends and what the others do every heartbeat; stop those past deadline."""
    running = list(workers)
    last_beat = time.perf_counter()
    while running:
        time.sleep(0.5)
        now = time.perf_counter()
        for worker in [w for w in running if w.process.poll() is not None]:
            running.remove(worker)
            worker.reader.join(5)  # the last lines
            if worker.process.returncode:
                say(f"  {worker.name}: worker exited with status {worker.process.returncode}: "
                    + " | ".join(worker.log[-3:]))
        if now > deadline:
            for worker in running:
                worker.process.kill()
                worker.process.wait()
                say(f"  {worker.name}: stopped at the deadline after {now - worker.started:.0f} s")
            break
        if running and now - last_beat >= heartbeat_s:
            last_beat = now
            say("  running: " + "; ".join(f"{w.name} {w.progress()}" for w in running))


REPORTED = {"acc", "nmi", "nmi_geometric", "ari", "balance", "mnce", "worst_group_acc", "unbiased_acc", "tail_recall"}


# --- The phases --------------------------------------------------------------------------------------------------
def smoke_specs(device: str, data_dir: str | None, dry_run: bool) -> list[dict]:
    from dashboard_lib.methods import REGISTRY

    specs = []
    for method_id, cls in REGISTRY.items():
        hparams = {**cls.preset("quick"), **SMOKE_CUT[method_id]}
        if dry_run:  # one pass of each stage is enough to prove the path
            hparams = {**hparams, **SMOKE_TINY.get(method_id, {})}
        specs.append({"name": f"smoke_{method_id}", "method": method_id, "dataset": "mnist_optdigits",
                      "data": {"n": 300} if dry_run else SMOKE_DATA, "hparams": hparams, "device": device,
                      "data_dir": data_dir})
    return specs


SMOKE_TINY = {
    "ae_kmeans": {"epochs": 1}, "dec": {"pretrain_epochs": 1, "iterations": 5}, "idec": {"pretrain_epochs": 1, "iterations": 5},
    "statdec": {"pretrain_epochs": 1, "iterations": 5},
    "dfc": {"pretrain_steps": 10, "group_pretrain_epochs": 1, "group_dec_epochs": 1, "iterations": 5, "batch_per_group": 64},
    "fcmi": {"epochs": 2, "warmup_epochs": 1}, "senet": {"epochs": 1}, "inv_senet": {"epochs": 1},
    "erm": {"epochs": 1}, "clusterfix": {"epochs": 1},
}


def compare_smoke(device_rows: list[dict], cpu_rows: list[dict]) -> list[dict]:
    """Each method's final metrics on the device beside the CPU's, and whether they agree within SMOKE_TOLERANCE."""
    cpu = {r["name"]: r for r in cpu_rows}
    out = []
    for row in device_rows:
        ref = cpu.get(row["name"], {"status": "missing", "metrics": {}})
        method = row["name"].removeprefix("smoke_")
        tol = SMOKE_TOLERANCE.get(method, SMOKE_TOLERANCE["default"])
        deltas = {k: abs(row["metrics"][k] - ref["metrics"][k]) for k in SMOKE_METRICS
                  if isinstance(row["metrics"].get(k), float) and isinstance(ref["metrics"].get(k), float)}
        ok = row["status"] == ref["status"] == "finished" and len(deltas) == len(SMOKE_METRICS) \
            and all(d <= tol for d in deltas.values())
        out.append({"method": method, "status": row["status"], "cpu_status": ref["status"], "error": row.get("error"),
                    "device": row["device"], "seconds": row["seconds"], "cpu_seconds": ref.get("seconds"),
                    "metrics": {k: row["metrics"].get(k) for k in SMOKE_METRICS},
                    "cpu_metrics": {k: ref["metrics"].get(k) for k in SMOKE_METRICS},
                    "delta": deltas, "tolerance": tol, "ok": ok})
    return out


def worker_groups(jobs: list[Job], n_workers: int) -> list[list[Job]]:
    """Jobs split over n_workers processes: one job each on a GPU (they run at once); in the dry run two workers,
    each running its share one after the other, jobs on the same dataset together (one load per process)."""
    if n_workers >= len(jobs):
        return [[job] for job in jobs]
    ordered = sorted(jobs, key=lambda j: j.dataset)
    size = math.ceil(len(ordered) / n_workers)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def job_spec(job: Job, device: str, data_dir: str | None, dry_run: bool) -> dict:
    return {"name": job.name, "method": job.method, "dataset": job.dataset, "data": job_data(job, dry_run),
            "hparams": {**job.hparams, **(job.tiny if dry_run else {})}, "device": device, "data_dir": data_dir}


def job_row(job: Job, hp: dict, estimate: tuple[float, float], result: dict | None, status: str, dry_run: bool) -> dict:
    row = {"name": job.name, "method": job.method, "dataset": job.dataset, "data": job_data(job, dry_run),
           "schedule": {k: v for k, v in hp.items() if k in SCHEDULE_KEYS}, "estimate_s": round(estimate[0], 1),
           "estimate_device_busy_s": round(estimate[1], 1),
           "paper": paper_reference(job), "metrics_shown": list(job.metrics), "status": status}
    if result is not None:
        row.update(status=result["status"], error=result.get("error"), device=result["device"], gpu=result.get("gpu"),
                   seconds=result["seconds"], wall_s=result["wall_s"],
                   metrics={k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))})
    return row


SCHEDULE_KEYS = {"epochs", "warmup_epochs", "batch_size", "pretrain_epochs", "pretrain_steps", "iterations",
                 "group_pretrain_epochs", "group_dec_epochs",
                 "batch_per_group", "width", "dict_size", "top_k", "ae_epochs", "update_interval", "protocol", "pca_dim"}


def markdown(report: dict) -> str:
    """The table: ours beside each paper's numbers (%), with time, device and schedule; then the smoke test."""
    lines = [f"# GPU check: {report['device_name']}{' (dry run: tiny schedules, not the papers)' if report['dry_run'] else ''}",
             "", f"Budget {report['budget_s']:.0f} s, wall {report['wall_s']:.0f} s. Numbers in %.", "",
             "| job | dataset | metric | ours | paper | seconds (estimate) | device | schedule | status |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in report["jobs"]:
        paper = row["paper"]["metrics"]
        ours = row.get("metrics", {})
        schedule = ", ".join(f"{k} {v}" for k, v in row["schedule"].items())
        status = row["status"] + (f": {row['error']}" if row.get("error") else "")
        seconds = f"{row['seconds']:.0f} ({row['estimate_s']:.0f})" if row.get("seconds") is not None else f"– ({row['estimate_s']:.0f})"
        for i, metric in enumerate(row["metrics_shown"]):
            first = i == 0
            lines.append(f"| {row['name'] if first else ''} | {row['dataset'] if first else ''} | {metric} | "
                         f"{pct(ours.get(metric))} | {pct(paper.get(metric))} | {seconds if first else ''} | "
                         f"{row.get('device', '–') if first else ''} | {schedule if first else ''} | {status if first else ''} |")
    lines += ["", "Paper sources: " + "; ".join(f"{r['name']}: {r['paper']['source']}" for r in report["jobs"]), ""]
    if report["not_run"]:
        lines += [f"Not run (over the budget): {', '.join(report['not_run'])}. Run them with: `{report['rerun']}`", ""]
    if report["smoke"]:
        lines += [f"## Smoke test: quick presets on mnist_optdigits, {report['device_name']} vs CPU", "",
                  "| method | ACC device / CPU | NMI device / CPU | tolerance | seconds device / CPU | ok |",
                  "|---|---|---|---|---|---|"]
        for s in report["smoke"]:
            m, c = s["metrics"], s["cpu_metrics"]
            lines.append(f"| {s['method']} | {pct(m.get('acc'))} / {pct(c.get('acc'))} | {pct(m.get('nmi'))} / "
                         f"{pct(c.get('nmi'))} | {s['tolerance']:.2f} | {s['seconds'] or 0:.1f} / {s['cpu_seconds'] or 0:.1f} | "
                         f"{'yes' if s['ok'] else 'NO: ' + (s['error'] or s['status'])} |")
    return "\n".join(lines) + "\n"


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, help="folder for gpu_check.json, gpu_check.md and the runs")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"),
                        help="folder holding mnist_usps.npz (default: ../shared/data beside the checkout)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=None, help=f"phase (b)'s time budget (default {DEFAULT_BUDGET_S})")
    parser.add_argument("--only", help="comma-separated job names (default: all of " + ", ".join(j.name for j in JOBS) + ")")
    parser.add_argument("--skip-smoke", action="store_true", help="skip phase (a) (a second call)")
    parser.add_argument("--dry-run", action="store_true", help="tiny schedules on the CPU, the smoke test CPU vs CPU")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_specs(json.loads(args.worker.read_text()), args.threads)
        return 0
    if args.out is None:
        parser.error("the output folder is required")
    return check(args)


def check(args) -> int:
    t0 = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f} s] {text}", flush=True)

    device = "cpu" if args.dry_run else args.device
    budget = args.budget_s if args.budget_s is not None else (
        600.0 if args.dry_run else DEFAULT_BUDGET_S + (SMOKE_S if args.skip_smoke else 0))
    device_name = device_description(device)
    data_dir = args.data_dir
    have_npz = (Path(data_dir) / "mnist_usps.npz").is_file()
    cores = os.cpu_count() or 2
    say(f"gpu_check on {device_name}, {cores} CPU cores, data {data_dir} ({'found' if have_npz else 'no mnist_usps.npz'}), "
        f"budget {budget:.0f} s{', dry run' if args.dry_run else ''}")

    smoke = []
    if not args.skip_smoke:
        say("(a) smoke test: every method's quick preset on mnist_optdigits, on " + device + " and on cpu")
        workers = [start_worker("smoke_" + device, smoke_specs(device, data_dir, args.dry_run), out, 1, say),
                   start_worker("smoke_cpu_reference", smoke_specs("cpu", data_dir, args.dry_run), out,
                                max(1, min(4, cores // 2)), say)]
        wait_all(workers, time.perf_counter() + 240, say)
        smoke = compare_smoke(workers[0].results, workers[1].results)
        say(f"  smoke: {sum(s['ok'] for s in smoke)}/{len(smoke)} methods agree within tolerance")

    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - {j.name for j in JOBS}
    if unknown:
        raise SystemExit(f"unknown job(s) {', '.join(sorted(unknown))}; valid: {', '.join(j.name for j in JOBS)}")
    jobs = [j for j in JOBS if only is None or j.name in only]
    hps = {j.name: resolved_hparams(j, args.dry_run) for j in jobs}
    estimates = {j.name: estimate_seconds(j, hps[j.name], DRY_RUN_N if args.dry_run else j.n, device == "cuda")
                 for j in jobs}
    runnable = [j for j in jobs if have_npz or j.dataset not in PAPER_DATASETS]
    missing = [j for j in jobs if j not in runnable]
    chosen, left = plan(runnable, estimates, budget)
    say(f"(b) paper schedules: {len(chosen)} job(s) now, predicted {predicted_wall({j.name: estimates[j.name] for j in chosen}):.0f} s"
        + (f"; over the budget: {', '.join(j.name for j in left)}" if left else "")
        + (f"; no data for: {', '.join(j.name for j in missing)}" if missing else ""))
    for job in chosen:
        say(f"  start {job.name}: {job.method} on {job.dataset}, estimate {estimates[job.name][0]:.0f} s "
            f"({estimates[job.name][1]:.0f} s of device time)")
    groups = worker_groups(chosen, 2 if args.dry_run else len(chosen))
    threads = max(1, cores // max(len(groups), 1))
    deadline = time.perf_counter() + budget + DEADLINE_MARGIN_S
    workers = [start_worker(group[0].name, [job_spec(j, device, data_dir, args.dry_run) for j in group], out, threads, say)
               for group in groups]
    wait_all(workers, deadline, say)
    results = {row["name"]: row for worker in workers for row in worker.results}
    rows = []
    for job in jobs:
        status = ("not run: over the budget" if job in left else "skipped: no mnist_usps.npz" if job in missing
                  else "timed out or crashed")
        rows.append(job_row(job, hps[job.name], estimates[job.name], results.get(job.name), status, args.dry_run))
    rerun = (f"bash bench/gpu_check.sh {out}_2 --skip-smoke --data-dir {data_dir} --only {','.join(j.name for j in left)}"
             if left else None)
    report = {"device": device, "device_name": device_name, "dry_run": args.dry_run, "budget_s": budget,
              "wall_s": time.perf_counter() - t0, "data_dir": data_dir, "smoke": smoke,
              "smoke_tolerance": SMOKE_TOLERANCE, "jobs": rows, "not_run": [j.name for j in left], "rerun": rerun,
              "planner": {"step_costs": STEP_COSTS, "launch_s": LAUNCH_S, "kernel_s": KERNEL_S,
                          "gpu_gflops": GPU_GFLOPS, "predicted_wall_s": predicted_wall(
                              {j.name: estimates[j.name] for j in chosen})}}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "gpu_check.md").write_text(markdown(report))
    say(f"(c) wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    print(markdown(report), flush=True)
    if left:
        say(f"not run, over the budget: {', '.join(j.name for j in left)}; run them with: {rerun}")
    return 0


def device_description(device: str) -> str:
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device here; use --dry-run on a CPU")
        props = torch.cuda.get_device_properties(0)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return f"cpu ({os.cpu_count()} cores)"


if __name__ == "__main__":
    sys.exit(main())
