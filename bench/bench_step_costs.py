"""Per-step costs of the paper jobs of bench/gpu_check.py on this CPU: seconds and aten ops per training step, by stage.

    python bench/bench_step_costs.py [--jobs fcmi_mnist_usps,senet_ood] [--steps 12] [--threads 1] [--json PATH]

Each job runs with its paper settings (batch sizes, widths, dictionary) on a stratified subset, its schedule cut to a
few steps per stage; a timing context notes the time of every logged step (one per step) and stops the run when
every stage has been seen. A stage is the set of scalars a step logs (DFC: pretraining, per-group DEC, fair
training). Reported per stage: the median seconds between two steps, and the aten ops one step dispatches and its
FLOPs (counted over a few steps with torch's dispatch modes: forward, backward and optimiser), gpu_check's inputs.
Between-step gaps over 5× the median (k-means at an epoch start, target updates) are reported as their mean.
SENet uses PCA features here (the same 500 dimensions as the scattering features it would reduce: the step is the same).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import gpu_check  # beside this script: bench/ is the first folder on sys.path when it runs
from dashboard_lib.data import load_dataset
from dashboard_lib.jobs import seed_everything
from dashboard_lib.methods import get_method

# Per job: dataset subset size and the schedule cut (batch sizes and widths stay the paper's).
CUTS = {
    "fcmi": (6000, {"epochs": 2, "warmup_epochs": 1}),
    "dfc": (6000, {"pretrain_steps": 24, "group_pretrain_epochs": 1, "group_dec_epochs": 1}),
    "senet": (12000, {"epochs": 1, "features": "pca", "log_every": 1}),
    "inv_senet": (12000, {"epochs": 1, "features": "pca", "log_every": 1}),
    "statdec": (6000, {"pretrain_epochs": 1, "update_interval": 10}),
    "erm": (3000, {"ae_epochs": 1, "epochs": 2}),
    "clusterfix": (3000, {"ae_epochs": 1, "epochs": 2}),
}
OPS_WINDOW = 3  # steps whose ops are counted (dispatch counting slows them: they are not timed)


class Enough(Exception):
    """Raised by the timing context once every stage has its steps."""


class OpCounter(TorchDispatchMode):
    """Counts the aten ops dispatched (each one a kernel launch or at least a dispatcher pass on a GPU)."""

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


class StepCounter:
    """Ops and FLOPs (matrix products and convolutions, forward and backward) of the steps between enter and exit."""

    def __enter__(self):
        self.flop_mode, self.op_mode = FlopCounterMode(display=False), OpCounter()
        self.flop_mode.__enter__()
        self.op_mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.op_mode.__exit__(*exc)
        self.flop_mode.__exit__(*exc)
        self.ops, self.flops = self.op_mode.ops, self.flop_mode.get_total_flops()


class TimingContext:
    """A RunContext noting when each step logs, by stage; stops after `steps` steps of the last stage expected."""

    def __init__(self, device, seed, steps: int, n_stages: int):
        self.device, self.seed, self.steps, self.n_stages = device, seed, steps, n_stages
        self.times: dict[str, list[float]] = {}
        self.ops: dict[str, tuple[float, float]] = {}
        self._counter: tuple[str, int, StepCounter] | None = None
        self._last = time.perf_counter()
        self.gaps: list[tuple[str, float]] = []

    def log(self, step, **scalars):
        now = time.perf_counter()
        stage = "+".join(sorted(k for k in scalars if not k.startswith(("acc (", "w_spread", "changed", "target_"))))
        if not stage or stage in ("bias_chance", "disc_chance"):
            return
        times = self.times.setdefault(stage, [])
        if self._counter is not None:  # a counting window is open: close it after OPS_WINDOW steps
            name, left, counter = self._counter
            if left == 1:
                counter.__exit__(None, None, None)
                self.ops[name] = (counter.ops / OPS_WINDOW, counter.flops / OPS_WINDOW)
                self._counter = None
            else:
                self._counter = (name, left - 1, counter)
            self._last = time.perf_counter()
            return
        self.gaps.append((stage, now - self._last))
        times.append(now - self._last)
        if len(times) == self.steps // 2 and stage not in self.ops:  # mid-stage: count a few steps' ops
            counter = StepCounter()
            counter.__enter__()
            self._counter = (stage, OPS_WINDOW, counter)
        if len(self.times) >= self.n_stages and len(times) >= self.steps and stage in self.ops:
            raise Enough()
        self._last = time.perf_counter()

    def evaluate(self, epoch, embedding, assignment, extra=None, split=None):
        self._last = time.perf_counter()
        return {}

    def check_stop(self):
        pass

    def progress(self, fraction, stage=""):
        pass


STAGES = {"fcmi": 2, "dfc": 3, "senet": 1, "inv_senet": 1, "statdec": 2, "erm": 2, "clusterfix": 2}


def measure(job: gpu_check.Job, steps: int) -> dict:
    n, cut = CUTS[job.method]
    data = load_dataset(job.dataset, {**job.data, "n": n}, data_dir=str(gpu_check.REPO.parent / "shared" / "data"))
    hp = {**job.hparams, **cut}
    if job.method in ("senet", "inv_senet"):
        hp["eval_every"] = 0
    seed_everything(0)
    method = get_method(job.method)(**hp)
    ctx = TimingContext(torch.device("cpu"), 0, steps, STAGES[job.method])
    start = time.perf_counter()
    try:
        method.train(data, ctx)
    except Enough:
        pass
    stages = {}
    for stage, times in ctx.times.items():
        body = times[1:] or times  # the first step of a stage carries its set-up
        median = statistics.median(body)
        slow = [g for s, g in ctx.gaps if s == stage and g > 5 * median]
        ops, flops = ctx.ops.get(stage, (None, None))
        stages[stage] = {"steps": len(times), "s_per_step": median, "aten_ops_per_step": ops, "gflop_per_step":
                         flops / 1e9 if flops is not None else None, "slow_gaps": len(slow), "slow_gap_s": statistics.mean(slow) if slow else 0.0}
    return {"job": job.name, "n": len(data), "seconds": time.perf_counter() - start, "stages": stages}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="fcmi_mnist_usps,dfc_mnist_usps,senet_ood,inv_senet_ood,statdec_lt10,"
                                          "erm_cmnist99,clusterfix_cmnist99")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per stage")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    jobs = {j.name: j for j in gpu_check.JOBS}
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'job':<22}{'stage':<58}{'steps':>6}{'s/step':>9}{'ops/step':>10}{'GFLOP/step':>11}  slow gaps")
    for name in args.jobs.split(","):
        row = measure(jobs[name], args.steps)
        rows.append(row)
        for stage, s in row["stages"].items():
            ops = f"{s['aten_ops_per_step']:.0f}" if s["aten_ops_per_step"] else "–"
            gflop = f"{s['gflop_per_step']:.2f}" if s["gflop_per_step"] is not None else "–"
            print(f"{name:<22}{stage[:57]:<58}{s['steps']:>6}{s['s_per_step']:>9.4f}{ops:>10}{gflop:>11}  "
                  f"{s['slow_gaps']} × {s['slow_gap_s']:.2f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
