"""Every method's quick preset (the Train page's and the CLI's default schedule) beside its baseline: seconds and the
headline numbers of the story its paper tells. The goal: each run at most 3 minutes on 2 CPU cores.

    python bench/bench_quick_presets.py                          # every story; the data folder for the MNIST ones
    python bench/bench_quick_presets.py --stories fair,invariance  # only these (they need no data folder)
    python bench/bench_quick_presets.py --methods dfc --set dfc:alpha_s=0   # one method, a hyperparameter changed
    python bench/bench_quick_presets.py --methods dfc --seeds 0,1,2,3,4 --threads 1,2   # robust over seeds and threads

Stories (dataset, baseline → methods, the numbers that tell it):
- fair:       built-in digits, k-means → AE + k-means, DEC, DFC, FCMI: Balance (and its ceiling) and MNCE, beside ACC, NMI;
- invariance: built-in digits, SENet → Inv-SENnet: the bias classifiers' last accuracies beside chance;
- tail:       the built-in MNIST sample, long-tailed (ρ = 10), DEC → IDEC, StatDEC: the tail classes' recall, ACC;
- debias:     the built-in MNIST sample coloured, 95% bias-aligned, ERM → ClusterFix: worst-group and unbiased accuracy.
Every run takes the method's quick preset; the tail and debias stories use the data the Train page suggests for
those methods' quick demo (Method.quick_data); the seed is the same for all.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


from dashboard_lib.jobs import JobRegistry, RunConfig, training_threads
from dashboard_lib.methods import get_method
from dashboard_lib.methods.statdec import class_recall_metrics
from dashboard_lib.params import parse_assignments
from dashboard_lib.store import RunStore

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 180.0


@dataclass(frozen=True)
class Story:
    name: str
    dataset: str
    options: dict
    baseline: str
    methods: tuple[str, ...]
    columns: tuple[str, ...]  # run metrics, or last values of logged series (FINAL)


STORIES = {
    "fair": Story("fair clustering", "mnist_optdigits", {}, "kmeans", ("ae_kmeans", "dec", "dfc", "fcmi"), ("acc", "nmi", "balance", "mnce")),
    "invariance": Story("invariant self-expression", "mnist_optdigits", {}, "senet", ("inv_senet",),
                        ("acc", "acc_bias_key", "acc_bias_query", "bias_chance", "same_group_share")),
    "tail": Story("imbalanced clusters", *get_method("statdec").quick_data, "dec", ("idec", "statdec"), ("acc", "nmi", "tail_recall", "min_class_recall")),
    "debias": Story("debiasing a classifier", *get_method("clusterfix").quick_data, "erm", ("clusterfix",), ("avg_acc", "unbiased_acc", "worst_group_acc")),
}
FINAL = ("acc_bias_key", "acc_bias_query", "bias_chance")  # read from the logged series (their last step)


def run_one(registry: JobRegistry, store: RunStore, story: Story, method: str, overrides: dict, data_dir: str,
            seed: int) -> dict:
    dataset, options = story.dataset, story.options
    hparams = {**get_method(method).preset("quick"), **overrides}
    start = time.perf_counter()
    run_id = registry.start(RunConfig(dataset=dataset, method=method, dataset_options=options, hparams=hparams,
                                      seed=seed, data_dir=data_dir))
    registry.wait(run_id)
    seconds = time.perf_counter() - start
    run = store.get_run(run_id)
    row = {"method": method, "dataset": dataset, "seconds": seconds, "status": run.status, "error": run.error}
    row.update({k: v for k, v in (run.metrics or {}).items() if isinstance(v, (int, float))})
    row.update(store.last_scalars(run_id, FINAL))
    if "tail_recall" in story.columns and "tail_recall" not in row and run.status == "finished":  # DEC does not report it
        last = store.evaluations(run_id)[-1]
        arrays = store.load_arrays(run_id, last["epoch"])
        row.update(class_recall_metrics(arrays["y"], arrays["assignment"], len(run.dataset_info["class_names"])))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", default=",".join(STORIES), help="comma-separated subset of " + ", ".join(STORIES))
    parser.add_argument("--methods", help="only these methods (comma-separated; baselines included only if named)")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD:NAME=VALUE",
                        help="override a hyperparameter of one method (repeatable)")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: every run once per seed")
    parser.add_argument("--threads", help="comma-separated torch thread counts: every run once per count (default: the "
                                          "app's, all cores but one)")
    parser.add_argument("--store", help="run store folder to keep the runs in (default: a temporary one)")
    args = parser.parse_args()
    overrides: dict[str, dict] = {}
    for item in args.set:
        method, _, assignment = item.partition(":")
        overrides.setdefault(method, {}).update(parse_assignments([assignment]))
    store = RunStore(args.store or tempfile.mkdtemp(prefix="bench_quick_"))
    seeds = [int(s) for s in args.seeds.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else [training_threads()]
    registries = {t: JobRegistry(store, threads=t) for t in thread_counts}
    only = set(args.methods.split(",")) if args.methods else None
    print(f"quick presets, seeds {seeds}, torch threads {thread_counts}, budget {BUDGET_S:.0f} s per run")
    slow = []
    for key in args.stories.split(","):
        story = STORIES[key]
        methods = [m for m in (story.baseline, *story.methods) if only is None or m in only]
        if not methods:
            continue
        print(f"\n{story.name}: {story.dataset} {story.options or ''} (baseline {story.baseline})")
        print(f"{'method':<11}{'seed':>5}{'threads':>8}{'seconds':>8}" + "".join(f"{c:>18}" for c in story.columns),
              flush=True)
        for method in methods:
            for threads, registry in registries.items():
                for seed in seeds:
                    row = run_one(registry, store, story, method, overrides.get(method, {}), args.data_dir, seed)
                    head = f"{method:<11}{seed:>5}{threads:>8}{row['seconds']:>8.1f}"
                    if row["status"] != "finished":
                        print(f"{head}  {row['status']}: {row['error']}", flush=True)
                        continue
                    cells = "".join(f"{row[c]:>18.3f}" if isinstance(row.get(c), float) else f"{'–':>18}"
                                    for c in story.columns)
                    extra = (f"  (ceiling {row['balance_ceiling']:.3f})"
                             if "balance" in story.columns and "balance_ceiling" in row else "")
                    print(f"{head}{cells}{extra}", flush=True)
                    if row["seconds"] > BUDGET_S:
                        slow.append(f"{method} seed {seed} at {threads} thread(s) {row['seconds']:.0f} s")
    print("\nover budget: " + (", ".join(slow) if slow else "none"))


if __name__ == "__main__":
    main()
