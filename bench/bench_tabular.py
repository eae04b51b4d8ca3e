"""Every method's quick preset on a census-like table (tests/tabular_data.py: 6 numeric and 8 categorical columns, sex
as the sensitive attribute, income as the class), one-hot encoded and saved as an upload, as a user's UCI Adult would
be; the upload's standardize option z-scores every column. Each method runs its quick preset as the app runs it on
an upload: with the method's quick_tables overlay (DFC: 30 pretraining epochs, 200 group-DEC iterations). Prints a side-by-side table: seconds, ACC, NMI, Balance
(with its ceiling), MNCE, and whether a logged loss became NaN, under two hand-made reference splits: the fair one
(the table's college stratum) and the sex-linked one k-means finds, so "comparable ACC" has a yardstick. The goal:
FCMI and DFC reach MNCE ≥ 0.8 where k-means stays below 0.3, at comparable ACC, each in at most 3 minutes on 2 CPU
cores.

    python bench/bench_tabular.py                      # k-means, DFC, FCMI on 4,000 rows
    python bench/bench_tabular.py --all                # every registered method
    python bench/bench_tabular.py --methods dfc --n 8000 --set dfc:lr=0.001 --missing 0.05 --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FCLAB_HOME", tempfile.mkdtemp(prefix="bench_tabular_"))  # before dashboard_lib reads it

import torch  # noqa: E402

from dashboard_lib.jobs import JobRegistry, RunConfig, training_threads  # noqa: E402
from dashboard_lib.metrics import clustering_accuracy, mnce, nmi  # noqa: E402
from dashboard_lib.methods import REGISTRY, get_method  # noqa: E402
from dashboard_lib.params import parse_assignments  # noqa: E402
from dashboard_lib.settings import store_dir  # noqa: E402
from dashboard_lib.store import RunStore  # noqa: E402
from tests.tabular_data import census_like, save_as_upload  # noqa: E402

BUDGET_S = 180.0
DEFAULT = ("kmeans", "dfc", "fcmi")


def run_one(registry: JobRegistry, method: str, name: str, overrides: dict, seed: int) -> dict:
    hparams = {**get_method(method).preset("quick", "upload"), **overrides}
    start = time.perf_counter()
    run_id = registry.start(RunConfig(dataset="upload", method=method, dataset_options={"name": name},
                                      hparams=hparams, seed=seed))
    registry.wait(run_id)
    seconds = time.perf_counter() - start
    run = registry.store.get_run(run_id)
    # The Recorder stores only finite values and fails the run at the first NaN: its message says "diverged".
    diverged = run.status == "failed" and "diverged" in (run.error or "")
    row = {"method": method, "seconds": seconds, "status": run.status, "error": run.error, "nan": diverged}
    row.update({k: v for k, v in (run.metrics or {}).items() if isinstance(v, (int, float))})
    return row


def reference_splits(table) -> str:
    """ACC, NMI and MNCE of two hand-made clusterings of the rows the upload keeps (those without a missing value):
    the fair one a clustering could find (education_num ≥ 13, the college stratum's mark) and the sex-linked one
    k-means finds (relationship = Husband). Without such a fair, income-related split no fair clustering can match
    k-means' ACC."""
    table = table.dropna()
    income, sex = ((table["income"] == ">50K").to_numpy().astype(int), (table["sex"] == "Male").to_numpy().astype(int))
    parts = []
    for name, split in (("education_num ≥ 13", table["education_num"] >= 13),
                        ("relationship = Husband", table["relationship"] == "Husband")):
        labels = split.to_numpy().astype(int)
        parts.append(f"{name}: ACC {clustering_accuracy(income, labels):.3f}, NMI {nmi(income, labels):.3f}, "
                     f"MNCE {mnce(labels, sex):.3f}")
    return "reference splits: " + "; ".join(parts)


def cell(value, width: int = 8) -> str:
    return f"{value:>{width}.3f}" if isinstance(value, float) and math.isfinite(value) else f"{'–':>{width}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="rows of the census-like table (before dropping missing)")
    parser.add_argument("--missing", type=float, default=0.0, help="share of rows with a missing categorical")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", default="0", help="comma-separated run seeds")
    parser.add_argument("--methods", help="comma-separated method ids (default: " + ", ".join(DEFAULT) + ")")
    parser.add_argument("--all", action="store_true", help="every registered method: " + ", ".join(REGISTRY))
    parser.add_argument("--set", action="append", default=[], metavar="METHOD:NAME=VALUE",
                        help="override a hyperparameter of one method (repeatable)")
    args = parser.parse_args()
    methods = list(REGISTRY) if args.all else (args.methods.split(",") if args.methods else list(DEFAULT))
    overrides: dict[str, dict] = {}
    for item in args.set:
        method, _, assignment = item.partition(":")
        overrides.setdefault(method, {}).update(parse_assignments([assignment]))
    table = census_like(args.n, args.data_seed, args.missing)
    meta = save_as_upload(table, "census")
    registry = JobRegistry(RunStore(store_dir()), threads=training_threads())
    counts = meta["group_counts"]
    print(f"census-like table: {meta['n']:,} rows × {len(meta['feature_columns'])} columns → {len(meta['feature_names'])} features (one-hot), "
          f"sex {dict(zip(meta['group_names'], counts))}, income {meta['class_names']}; "
          f"quick presets, torch threads {torch.get_num_threads()}, budget {BUDGET_S:.0f} s per run")
    print(reference_splits(table))
    print(f"{'method':<11}{'seed':>5}{'seconds':>9}{'ACC':>8}{'NMI':>8}{'Balance':>9}{'(ceil)':>8}{'MNCE':>8}  NaN?  status",
          flush=True)
    slow = []
    for method in methods:
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run_one(registry, method, "census", overrides.get(method, {}), seed)
            status = row["status"] if row["status"] == "finished" else f"{row['status']}: {row['error']}"
            print(f"{method:<11}{seed:>5}{row['seconds']:>9.1f}{cell(row.get('acc'))}{cell(row.get('nmi'))}"
                  f"{cell(row.get('balance'), 9)}{cell(row.get('balance_ceiling'))}{cell(row.get('mnce'))}"
                  f"  {'yes' if row['nan'] else 'no':<4}  {status}", flush=True)
            if row["seconds"] > BUDGET_S:
                slow.append(f"{method} {row['seconds']:.0f} s")
    print("\nover budget: " + (", ".join(slow) if slow else "none"))


if __name__ == "__main__":
    main()
