"""ERM vs ClusterFix on Colored MNIST with a strong colour bias: average, unbiased and worst-group accuracy on the
unbiased test split, per epoch and at the end, with seconds and device; then what each model looks at (Grad-CAM mass
on the strokes, predictions changed by swapping the colour).

    python bench/bench_clusterfix.py --schedule reduced            # CPU, minutes: 95% bias-aligned, 10,000 images
    python bench/bench_clusterfix.py --schedule paper --device cuda  # 99% bias-aligned, all 60,000 images, 20 epochs
    python bench/bench_clusterfix.py --store ~/.fair_clustering_lab/store   # keep the runs (the Explain page reads them)

Both methods get the same data, seed, network, stage-1 autoencoder and epochs; only the objective differs.
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

from dashboard_lib import explain  # noqa: E402
from dashboard_lib.data import load_dataset  # noqa: E402
from dashboard_lib.jobs import JobRegistry, RunConfig  # noqa: E402
from dashboard_lib.store import RunStore  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEDULES = {
    # color_flip e: share of training images whose colour disagrees with the label (0.05 → 95% bias-aligned).
    "reduced": {"data": {"target": "binary", "label_flip": 0.0, "color_flip": 0.05, "n": 10000},
                "hparams": {"ae_epochs": 2, "epochs": 6}},
    "paper": {"data": {"target": "binary", "label_flip": 0.0, "color_flip": 0.01, "n": 0},
              "hparams": {"ae_epochs": 5, "epochs": 20}},
}
# What the paper reports to compare with (bench/gpu_check.py prints it beside its runs too).
PAPER_NOTE = ("ClusterFix reports no Colored MNIST numbers (CelebA worst-group 76.8 vs ERM 41.1; Waterbirds 74.0 / "
              "86.6): compare ClusterFix with ERM here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule", choices=list(SCHEDULES), default="reduced")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared dev machine: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", help="run store folder to keep the runs in (default: a temporary one)")
    parser.add_argument("--color-flip", type=float, help="override the schedule's bias (e = 1 − aligned share)")
    parser.add_argument("--n", type=int, help="override the schedule's dataset size (0 = all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schedule = SCHEDULES[args.schedule]
    options = dict(schedule["data"])
    if args.color_flip is not None:
        options["color_flip"] = args.color_flip
    if args.n is not None:
        options["n"] = args.n
    store = RunStore(args.store or tempfile.mkdtemp(prefix="bench_clusterfix_"))
    registry = JobRegistry(store)
    data = load_dataset("colored_mnist", options, args.data_dir)
    train, test = data.splits["train"], data.splits["test"]
    conflicting = int((data.attributes["bias_aligned"][train] == 0).sum())
    print(f"Colored MNIST, target = binary y' = [digit ≥ 5], colour flip e = {options['color_flip']} "
          f"({1 - options['color_flip']:.0%} of training images bias-aligned): {len(train):,} training images "
          f"({conflicting} bias-conflicting), {len(test):,} unbiased test images; schedule {args.schedule}: "
          f"{schedule['hparams']}; torch threads {torch.get_num_threads()}\n{PAPER_NOTE}")
    rows, runs = [], {}
    for method in ("erm", "clusterfix"):
        start = time.perf_counter()
        run_id = registry.start(RunConfig(dataset="colored_mnist", method=method, dataset_options=options,
                                          hparams=schedule["hparams"], seed=args.seed, device=args.device,
                                          data_dir=args.data_dir))
        registry.wait(run_id)
        seconds = time.perf_counter() - start
        run = store.get_run(run_id)
        if run.status != "finished":
            print(f"{method}: {run.status}: {run.error}")
            continue
        runs[method] = run
        curve = [f"{e['metrics']['worst_group_acc']:.3f}" for e in store.evaluations(run_id)]
        print(f"  {method:<10} worst-group accuracy per epoch: {' '.join(curve)}")
        rows.append((method, run.metrics["avg_acc"], run.metrics["unbiased_acc"], run.metrics["worst_group_acc"],
                     seconds, run.device, run_id))
    print()
    print(f"{'method':<11}{'avg acc':>9}{'unbiased':>10}{'worst-group':>13}{'seconds':>9}  device  run")
    for method, avg, unbiased, worst, seconds, device, run_id in rows:
        print(f"{method:<11}{avg:>9.3f}{unbiased:>10.3f}{worst:>13.3f}{seconds:>9.1f}  {device:<6}  {run_id}")
    if len(rows) == 2:
        print(f"\nClusterFix − ERM worst-group accuracy: {100 * (rows[1][3] - rows[0][3]):+.1f} points")
    if runs:
        sample = explain.stroke_sample(data, 300, args.seed)
        print(f"\nWhat the models look at ({len(sample)} unbiased test images, half bias-conflicting; the strokes cover "
              f"{explain.stroke_area_share(data.X[sample]):.2f} of the image):")
        print(f"{'method':<11}{'stroke share (last conv)':>26}{'stroke share (14×14 conv)':>27}{'colour-swap flips':>19}")
        for method, run in runs.items():
            model = explain.load_run_model(store, run)
            last = explain.explain_model(model, data, np.zeros(0, dtype=np.int64), sample, block=-1)
            early = explain.explain_model(model, data, np.zeros(0, dtype=np.int64), sample, block=-3)
            print(f"{method:<11}{last.stroke_share:>26.3f}{early.stroke_share:>27.3f}{last.colour_flip_rate:>19.3f}")
    print(f"\nruns kept in {store.root}" if args.store else "")


if __name__ == "__main__":
    main()
