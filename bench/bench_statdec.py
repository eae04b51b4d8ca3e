"""StatDEC vs DEC and IDEC on imbalanced MNIST: ACC, NMI, ARI and, per class, the recall of the cluster matched to it
(Hungarian, as for ACC), with seconds and device. The small classes are the point.

    python bench/bench_statdec.py --schedule reduced               # CPU, minutes: long-tailed ratio 10 and 100, subsets
    python bench/bench_statdec.py --schedule paper --device cuda   # all four imbalanced sets, full size, paper schedule
    python bench/bench_statdec.py --family fashion                 # imbalanced Fashion-MNIST instead

Every method gets the same data, seed and budget (pretraining epochs, clustering iterations, batch size). DEC runs
with its MLP encoder (d-500-500-2000-10, SGD as in its paper); IDEC and StatDEC share StatDEC's d-500-500-1000-10.
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
    "paper": {"sets": [("long_tail", 10), ("long_tail", 100), ("step", 10), ("step", 100)], "n": 0,
              "budget": {"pretrain_epochs": 200, "iterations": 20000, "batch_size": 256, "eval_every": 0, "n_init": 20},
              "update_interval": None},  # None: each method's own default (DEC 140, IDEC 140, StatDEC 80)
}
METHODS = {"dec": {"encoder": "mlp"}, "idec": {}, "statdec": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule", choices=list(SCHEDULES), default="reduced")
    parser.add_argument("--family", choices=("mnist", "fashion"), default="mnist")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared dev machine: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", help="run store folder to keep the runs in (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schedule = SCHEDULES[args.schedule]
    dataset = "imbalanced_mnist" if args.family == "mnist" else "imbalanced_fashion_mnist"
    store = RunStore(args.store or tempfile.mkdtemp(prefix="bench_statdec_"))
    registry = JobRegistry(store)
    print(f"{dataset}, schedule {args.schedule}: budget {schedule['budget']}, update interval "
          f"{schedule['update_interval'] or 'each method default'}; torch threads {torch.get_num_threads()}")
    for imbalance, ratio in schedule["sets"]:
        options = {"imbalance": imbalance, "ratio": ratio, "n": schedule["n"]}
        data = load_dataset(dataset, options, args.data_dir)
        sizes = np.bincount(data.y, minlength=len(data.class_names))
        print(f"\n{imbalance.replace('_', '-')} ratio {ratio}: {len(data):,} images, per class {sizes.tolist()}")
        header = f"{'method':<9}{'ACC':>7}{'NMI':>7}{'ARI':>7}  recall of the matched cluster, class 0 … 9{'':>12}{'seconds':>8}  device"
        print(header)
        for method, extra in METHODS.items():
            hparams = {**schedule["budget"], **extra}
            if schedule["update_interval"]:
                hparams["update_interval"] = schedule["update_interval"]
            if method in ("dec", "idec"):
                hparams["tol"] = 0.0  # same budget for all: no early stop
            start = time.perf_counter()
            run_id = registry.start(RunConfig(dataset=dataset, method=method, dataset_options=options, hparams=hparams,
                                              seed=args.seed, device=args.device, data_dir=args.data_dir))
            registry.wait(run_id)
            seconds = time.perf_counter() - start
            run = store.get_run(run_id)
            if run.status != "finished":
                print(f"{method:<9} {run.status}: {run.error}")
                continue
            last = store.evaluations(run_id)[-1]["epoch"]
            labels = store.load_arrays(run_id, last)["assignment"]
            recall = matched_class_recall(data.y, labels, len(data.class_names))
            m = run.metrics
            print(f"{method:<9}{m['acc']:>7.3f}{m['nmi']:>7.3f}{m['ari']:>7.3f}  "
                  f"{' '.join(f'{r:.2f}' for r in recall)}{seconds:>10.1f}  {run.device}")


if __name__ == "__main__":
    main()
