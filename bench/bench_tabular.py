"""Every method's quick preset on a census-like table (tests/tabular_data.py: 6 numeric and 8 categorical columns, sex
as the sensitive attribute, income as the class), one-hot encoded and saved as an upload, as a user's UCI Adult would
be; the upload's standardize option z-scores every column. Each method runs its quick preset as the app runs it on
an upload: with the method's quick_tables overlay (DFC: 30 pretraining epochs, 200 group-DEC iterations).

Prints, per table, hand-made reference splits (the fair, income-linked college stratum; the sex-linked split k-means
finds; fair splits that say little of income), so "comparable ACC" has a yardstick; then per run: seconds, ACC, NMI,
Balance (with its ceiling), MNCE, the reference split its clusters follow most closely (by NMI) among women and
among men (a clustering fair by MNCE can split each sex along a different line), its profile agreement (do its
clusters stand apart on the same features in both sexes? metrics.profile_agreement), and whether a
logged loss became NaN; last, a summary per method over every table and seed. The goal: FCMI and DFC reach
MNCE ≥ 0.8 where k-means stays below 0.3, at comparable ACC, each in at most 3 minutes on 2 CPU cores.

    python -m bench.bench_tabular                      # k-means, DFC, FCMI on 4,000 rows
    python -m bench.bench_tabular --all                # every registered method
    python -m bench.bench_tabular --methods dfc --n 8000 --set dfc:lr=0.001 --missing 0.05 --seeds 0,1,2
    python -m bench.bench_tabular --data-seeds 0,1,2 --seeds 0,1,2,3,4   # 3 tables × 5 seeds, with a summary

From the repository root, as a module: the tables come from tests/tabular_data.py (tests/ is not installed).
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

os.environ.setdefault("FCLAB_HOME", tempfile.mkdtemp(prefix="bench_tabular_"))  # before dashboard_lib reads it

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dashboard_lib.jobs import JobRegistry, RunConfig, training_threads  # noqa: E402
from dashboard_lib.data import load_dataset  # noqa: E402
from dashboard_lib.metrics import clustering_accuracy, mnce, nmi, profile_agreement  # noqa: E402
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
    row = {"method": method, "seconds": seconds, "status": run.status, "error": run.error, "nan": diverged, "run_id": run_id}
    row.update({k: v for k, v in (run.metrics or {}).items() if isinstance(v, (int, float))})
    return row


# Hand-made K = 2 clusterings of the table (name, meaning, rule): the fair, income-linked college stratum; the
# sex-linked split k-means finds; fair ones that say little of income. They are the yardstick for a run's ACC,
# and the "follows" column names the one closest to each run's clusters.
SPLITS = (
    ("college", "education_num ≥ 13", lambda t: t["education_num"] >= 13),
    ("husband", "relationship = Husband", lambda t: t["relationship"] == "Husband"),
    ("race", "race = White", lambda t: t["race"] == "White"),
    ("region", "native_region = United-States", lambda t: t["native_region"] == "United-States"),
    ("age≥40", "age ≥ 40", lambda t: t["age"] >= 40),
    ("gain>0", "capital_gain > 0", lambda t: t["capital_gain"] > 0),
)


def reference_splits(table) -> str:
    """ACC and NMI against income, and MNCE, of each split in SPLITS on the rows the upload keeps (those without a
    missing value). Without a fair, income-related split (college) no fair clustering could match k-means' ACC."""
    table = table.dropna()
    income, sex = ((table["income"] == ">50K").to_numpy().astype(int), (table["sex"] == "Male").to_numpy().astype(int))
    lines = []
    for name, meaning, split in SPLITS:
        labels = split(table).to_numpy().astype(int)
        lines.append(f"  {name:<8} ({meaning}): ACC {clustering_accuracy(income, labels):.3f}, "
                     f"NMI {nmi(income, labels):.3f}, MNCE {mnce(labels, sex):.3f}")
    return "reference splits:\n" + "\n".join(lines)


def closest_split(rows, assignment) -> tuple[str, float]:
    """The split of SPLITS closest to a clustering of these rows, and its NMI with it."""
    scores = {name: nmi(split(rows).to_numpy().astype(int), assignment) for name, _, split in SPLITS}
    best = max(scores, key=scores.get)
    return best, scores[best]


def meaning(table, features: np.ndarray, store: RunStore, run_id: str) -> tuple[dict[str, tuple[str, float]], float]:
    """What the run's last evaluated clusters mean in each sex: {sex: (split, NMI)}, the split of SPLITS they follow
    most closely among women and among men, and their profile agreement (metrics.profile_agreement) on the upload's
    features. MNCE and Balance count group shares only: a clustering can be fair by them while it splits men by
    marriage and women by age."""
    evaluations = [e for e in store.evaluations(run_id) if e["has_arrays"]]
    if not evaluations:
        return {}, math.nan
    arrays = store.load_arrays(run_id, evaluations[-1]["epoch"])
    rows, assignment = table.iloc[arrays["row_id"]], arrays["assignment"]
    closest = {sex: closest_split(rows[mask], assignment[mask])
               for sex in ("Female", "Male") for mask in [(rows["sex"] == sex).to_numpy()]}
    return closest, profile_agreement(features, assignment, arrays["g"])[0]


def follows_text(closest: dict[str, tuple[str, float]]) -> str:
    return " | ".join(f"{sex[0]}: {name} {score:.2f}" for sex, (name, score) in closest.items()) or "–"


def cell(value, width: int = 8) -> str:
    return f"{value:>{width}.3f}" if isinstance(value, float) and math.isfinite(value) else f"{'–':>{width}}"


def summary(rows: list[dict]) -> list[str]:
    """One line per method over every table and seed: mean (min–max) ACC, NMI, MNCE; how many runs are fair
    (MNCE ≥ 0.8), how many of those reach k-means' ACC on the same table less 0.05 ("comparable"), and how many
    split both sexes along the same reference split (the college one, or any)."""
    kmeans_acc = {r["data_seed"]: r.get("acc") for r in rows if r["method"] == "kmeans"}
    lines = []
    for method in dict.fromkeys(r["method"] for r in rows):
        done = [r for r in rows if r["method"] == method and "acc" in r]
        if not done:
            continue
        parts = [f"{name} {sum(r[key] for r in done) / len(done):.3f} ({min(r[key] for r in done):.3f}–"
                 f"{max(r[key] for r in done):.3f})" for name, key in (("ACC", "acc"), ("NMI", "nmi"), ("MNCE", "mnce"))]
        fair = [r for r in done if r["mnce"] >= 0.8]
        text = f"{method:<11}{len(done):>3} runs: " + ", ".join(parts) + f"; MNCE ≥ 0.8 in {len(fair)}"
        if method != "kmeans" and all(kmeans_acc.get(r["data_seed"]) is not None for r in done):
            comparable = sum(r["acc"] >= kmeans_acc[r["data_seed"]] - 0.05 for r in fair)
            text += f", of which {comparable} at ACC ≥ k-means' − 0.05"
        same = sum(len({name for name, _ in r["follows"].values()}) == 1 for r in fair)
        college = sum(all(name == "college" for name, _ in r["follows"].values()) for r in fair)
        text += f"; {same} fair runs follow one split in both sexes, {college} the college one"
        agreements = [r["agreement"] for r in fair if math.isfinite(r["agreement"])]
        if agreements:
            text += f"; profile agreement of the fair runs {sum(agreements) / len(agreements):+.2f} (min {min(agreements):+.2f})"
        lines.append(text)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="rows of the census-like table (before dropping missing)")
    parser.add_argument("--missing", type=float, default=0.0, help="share of rows with a missing categorical")
    parser.add_argument("--data-seeds", default="0", help="comma-separated seeds of the table generator (one table each)")
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
    registry = JobRegistry(RunStore(store_dir()), threads=training_threads())
    rows, slow = [], []
    for data_seed in (int(s) for s in args.data_seeds.split(",")):
        table = census_like(args.n, data_seed, args.missing)
        meta = save_as_upload(table, "census")
        features = load_dataset("upload", {"name": "census"}).X.numpy()  # as the methods see them (z-scored)
        counts = meta["group_counts"]
        print(f"\ncensus-like table (data seed {data_seed}): {meta['n']:,} rows × {len(meta['feature_columns'])} columns → "
              f"{len(meta['feature_names'])} features (one-hot), sex {dict(zip(meta['group_names'], counts))}, income "
              f"{meta['class_names']}; quick presets, torch threads {torch.get_num_threads()}, budget {BUDGET_S:.0f} s per run")
        print(reference_splits(table))
        print(f"{'method':<11}{'seed':>5}{'seconds':>9}{'ACC':>8}{'NMI':>8}{'Balance':>9}{'(ceil)':>8}{'MNCE':>8}  "
              f"{'follows (NMI), F | M':<35}{'agree':>6}  NaN?  status", flush=True)
        for method in methods:
            for seed in (int(s) for s in args.seeds.split(",")):
                row = run_one(registry, method, "census", overrides.get(method, {}), seed)
                follows, agreement = meaning(table, features, registry.store, row["run_id"])
                row.update(data_seed=data_seed, follows=follows, agreement=agreement)
                rows.append(row)
                status = row["status"] if row["status"] == "finished" else f"{row['status']}: {row['error']}"
                print(f"{method:<11}{seed:>5}{row['seconds']:>9.1f}{cell(row.get('acc'))}{cell(row.get('nmi'))}"
                      f"{cell(row.get('balance'), 9)}{cell(row.get('balance_ceiling'))}{cell(row.get('mnce'))}"
                      f"  {follows_text(row['follows']):<35}{cell(row['agreement'], 6)}  {'yes' if row['nan'] else 'no':<4}  {status}",
                      flush=True)
                if row["seconds"] > BUDGET_S:
                    slow.append(f"{method} {row['seconds']:.0f} s")
    print("\nsummary over tables and seeds:")
    print("\n".join(summary(rows)))
    print("over budget: " + (", ".join(slow) if slow else "none"))


if __name__ == "__main__":
    main()
