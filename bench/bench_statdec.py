"""StatDEC vs DEC and IDEC on imbalanced MNIST: ACC, NMI, ARI and, per class, the recall of the cluster matched to it
(Hungarian, as for ACC), with seconds and device. The small classes are the point.

    python bench/bench_statdec.py --schedule reduced               # CPU, minutes: long-tailed ratio 10 and 100, subsets
    python bench/bench_statdec.py --schedule medium --seeds 0,1,2  # CPU, ~1 h: the full long-tailed sets, 3 seeds
    python bench/bench_statdec.py --schedule paper --device cuda   # all four imbalanced sets, full size, paper schedule
    python bench/bench_statdec.py --family fashion                 # imbalanced Fashion-MNIST instead

Every method gets the same data, seed and budget (pretraining epochs, clustering iterations, batch size). DEC runs
with its MLP encoder (d-500-500-2000-10, SGD as in its paper); IDEC and StatDEC share StatDEC's d-500-500-1000-10,
and each clusters with its own paper's optimiser (IDEC Adam 1e-3, StatDEC SGD 0.01).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_lib.data import load_dataset  # noqa: E402
from dashboard_lib.jobs import JobRegistry, RunConfig  # noqa: E402
from dashboard_lib.methods.statdec import matched_class_recall  # noqa: E402
from dashboard_lib.store import RunStore  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEDULES = {
    "reduced": {"sets": [("long_tail", 10), ("long_tail", 100)], "n": 1500,
                "budget": {"pretrain_epochs": 25, "iterations": 150, "batch_size": 256, "eval_every": 0, "n_init": 5},
                "update_interval": 30},
    "medium": {"sets": [("long_tail", 10), ("long_tail", 100)], "n": 0,
               "budget": {"pretrain_epochs": 30, "iterations": 3000, "batch_size": 256, "eval_every": 0, "n_init": 10},
               "update_interval": None},
    "paper": {"sets": [("long_tail", 10), ("long_tail", 100), ("step", 10), ("step", 100)], "n": 0,
              "budget": {"pretrain_epochs": 200, "iterations": 20000, "batch_size": 256, "eval_every": 0, "n_init": 20},
              "update_interval": None},  # None: each method's own default (DEC 140, IDEC 140, StatDEC 80)
}
METHODS = {"dec": {"encoder": "mlp"}, "idec": {}, "statdec": {}}
NO_EARLY_STOP = {"dec": {"tol": 0.0}, "idec": {"tol": 0.0}, "statdec": {"delta": 0.0}}
# What the paper reports to compare with (bench/gpu_check.py prints it beside its runs too).
PAPER_NOTE = ("StatDEC reports no imbalanced-MNIST numbers (Table I: imbalanced CIFAR only); on balanced MNIST "
              "(Table II) ACC 93.4, NMI 89.3, ARI 87.6")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule", choices=list(SCHEDULES), default="reduced")
    parser.add_argument("--family", choices=("mnist", "fashion"), default="mnist")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared dev machine: 1)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: one row per seed, then the mean")
    parser.add_argument("--sets", help="e.g. long_tail:10,step:100 (default: the schedule's)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    parser.add_argument("--store", help="run store folder to keep the runs in (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schedule = SCHEDULES[args.schedule]
    dataset = "imbalanced_mnist" if args.family == "mnist" else "imbalanced_fashion_mnist"
    store = RunStore(args.store or tempfile.mkdtemp(prefix="bench_statdec_"))
    registry = JobRegistry(store)
    print(f"{dataset}, schedule {args.schedule}: budget {schedule['budget']}, update interval "
          f"{schedule['update_interval'] or 'each method default'}; torch threads {torch.get_num_threads()}\n{PAPER_NOTE}")
    seeds = [int(v) for v in args.seeds.split(",")]
    sets = ([(kind, int(ratio)) for kind, ratio in (item.split(":") for item in args.sets.split(","))] if args.sets
            else schedule["sets"])
    for imbalance, ratio in sets:
        options = {"imbalance": imbalance, "ratio": ratio, "n": schedule["n"]}
        data = load_dataset(dataset, options, args.data_dir)
        sizes = np.bincount(data.y, minlength=len(data.class_names))
        print(f"\n{imbalance.replace('_', '-')} ratio {ratio}: {len(data):,} images, per class {sizes.tolist()}")
        print(f"{'method':<9}{'seed':>5}{'ACC':>7}{'NMI':>7}{'ARI':>7}  recall of the matched cluster, class 0 … 9"
              f"{'':>12}{'seconds':>8}  device", flush=True)
        methods = args.methods.split(",")
        results: dict[str, list] = {m: [] for m in methods}
        for seed in seeds:  # methods alternate within a seed, so load drifts hit all of them alike
            for method in methods:
                hparams = {**schedule["budget"], **METHODS[method], **NO_EARLY_STOP[method]}  # the same budget for all
                if schedule["update_interval"]:
                    hparams["update_interval"] = schedule["update_interval"]
                start = time.perf_counter()
                run_id = registry.start(RunConfig(dataset=dataset, method=method, dataset_options=options,
                                                  hparams=hparams, seed=seed, device=args.device, data_dir=args.data_dir))
                registry.wait(run_id)
                seconds = time.perf_counter() - start
                run = store.get_run(run_id)
                if run.status != "finished":
                    print(f"{method:<9}{seed:>5} {run.status}: {run.error}")
                    continue
                last = store.evaluations(run_id)[-1]["epoch"]
                recall = matched_class_recall(data.y, store.load_arrays(run_id, last)["assignment"], len(data.class_names))
                m = run.metrics
                results[method].append((m["acc"], m["nmi"], m["ari"], recall))
                print(f"{method:<9}{seed:>5}{m['acc']:>7.3f}{m['nmi']:>7.3f}{m['ari']:>7.3f}  "
                      f"{' '.join(f'{r:.2f}' for r in recall)}{seconds:>10.1f}  {run.device}", flush=True)
        if len(seeds) > 1:
            for method, rows in results.items():
                if rows:
                    acc, nmi, ari = (np.array([r[i] for r in rows]) for i in range(3))
                    recall = np.mean([r[3] for r in rows], axis=0)
                    print(f"{method:<9}{'mean':>5}{acc.mean():>7.3f}{nmi.mean():>7.3f}{ari.mean():>7.3f}  "
                          f"{' '.join(f'{r:.2f}' for r in recall)}   ACC sd {acc.std(ddof=1):.3f} over {len(rows)} seeds")

if __name__ == "__main__":
    main()
