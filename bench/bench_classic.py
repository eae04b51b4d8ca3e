"""Our classic fair-clustering methods beside HolisticAI's implementations, on the same data, K and seed.

    python -m bench.bench_classic [--holisticai-python /tmp/holisticai-venv/bin/python] [--data digits,census]
                                  [--small-n 500] [--seed 0]

Run from the repository root, as a module (the census-like table comes from tests/tabular_data.py).

Set-up (benchmark only: a separate, clean virtual environment; holisticai is in none of the app's requirements):
    python -m venv /tmp/holisticai-venv
    /tmp/holisticai-venv/bin/pip install -c <(echo torch==2.13.0) -r bench/requirements-holisticai.txt
HolisticAI 1.0.14 (2025-03) fails on the app's numpy 2.4 and scikit-learn 1.9 (int() of a 1-element array in its
KCenters; no __sklearn_tags__ in its KMedoids), so its venv pins the numpy, SciPy, scikit-learn and pandas of its
release; its package imports jax and flax at start-up (the [bias] extra), though none of the code measured uses them.

One process runs ours; HolisticAI runs in a worker process of its venv (this file with --holisticai-worker, which
imports only numpy and holisticai), started once and fed one run at a time, so the pairs alternate ours, theirs.
Arrays go through .npz files in a temporary folder. Times: wall-clock seconds of the fit alone on each side (ours:
the estimator's fit as a user calls it, its metrics included; theirs: fit / fit_transform; neither counts imports
or data transfer). Metrics: dashboard_lib.metrics.evaluate on both sides' labels (ACC and NMI against the class,
Balance and MNCE against the group); Φ_max = the largest group-average squared distance to the own cluster's mean
(classic.group_costs with the clusters' means: what socially fair k-means minimises); K' = non-empty clusters.

Data: (a) the built-in digits (mnist_optdigits: 6,797 images, 784 pixels in [0, 1], groups MNIST / optdigits, K = 10);
(b) a census-like table (tests/tabular_data.py: synthetic, Adult-like, 4,000 rows, one-hot and z-scored by the upload
as a user's Adult would be; sensitive attribute sex, class income, K = 2). HolisticAI's API takes exactly two groups
(two boolean masks); both data sets have two.

Pairs (HolisticAI 1.0.14):
  fairlets + k-center   ours Fairlets(decomposition="scalable", objective="k-center", t = ⌈n_max / n_min⌉)
                        vs FairletClustering(decomposition="Scalable", clustering_model="KCenters", p=1, q=t):
                        - as released: fails on any data (two checks of its _decompose are inverted, see _fixed_scalable);
                        - with those two checks negated here (a benchmark-only fix, nothing else changed);
                        - its default decomposition "Vanilla" (Chierichetti et al.'s Lemma 3 construction: fairlets
                          formed in index order, no distances).
  fairlets + k-median   ours Fairlets(scalable, objective="k-median") vs FairletClustering("Vanilla", "KMedoids").
  variational           ours VariationalFair(lam=2000, lipschitz=2, normalize) vs VariationalFairClustering(lmbda=2000,
                        lipchitz_value=2, method="kmeans", normalize_input=True): the same energy and λ scale; their
                        loop runs up to 100 outer and 10,000 bound iterations, ours up to 50 and 200 (our defaults).
  socially fair         ours SociallyFairKMeans (Ghadiri et al.'s Fair-Lloyd: worst group's average k-means cost)
                        vs FairKMedianClustering(strategy="LS") (Abbasi et al. 2021: worst group's average k-median
                        cost, L1 distances, centres among the points, swap local search). The nearest counterpart, not
                        the same objective. On a --small-n random subset: theirs holds an N × N distance matrix and
                        each pass tries N·K swaps of O(N K) each.
  repair                from the same k-means labels (our KMeans, n_init 10) on a --small-n subset: ours
                        classic.repair(cost="moves", δ = 0.2 proportional bounds, cluster sizes kept) vs MCMF(metric=
                        "constant", group_mode="a" on the smaller group) (Davidson and Ravi 2020: the fewest moves
                        that give every cluster ⌊n_a/K⌋ or ⌈n_a/K⌉ points of the group, cluster sizes free). Same
                        objective, different constraints. On the subset: its LP (HiGHS through linprog, N·K + 2K
                        variables) slows down steeply with N (docs/CLASSIC.md).
  ours only             fair assignment (Bera et al.'s LP, δ = 0.2; HolisticAI has none) and k-means itself (the
                        repairs' start, for reference). HolisticAI's fair k-center (Kleindessner et al. 2019: fair
                        representation among the centres, labels over K + 100 centres) has no counterpart here.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

# Only numpy at the top: the worker runs this file in HolisticAI's venv, which has neither torch nor the lab.

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PEER_PYTHON = "/tmp/holisticai-venv/bin/python"
DELTA = 0.2
VARIATIONAL = {"lam": 2000.0, "lipschitz": 2.0}


# ----------------------------------------------------------------------------------------------------------------
# HolisticAI's side (runs in its venv)
# ----------------------------------------------------------------------------------------------------------------

def _fixed_scalable():
    """BENCHMARK-ONLY FIX. HolisticAI 1.0.14's ScalableFairletDecomposition._decompose turned Backurs et al.'s asserts
    `assert balanced(p, q, NR, NB)` and `assert len(reds) == NR and len(blues) == NB` into `if <condition>: raise`
    without negating them, so it raises "Constructed node sets are unbalanced" at the first inner node of any tree.
    This returns a subclass whose _decompose is HolisticAI's source with those two conditions negated and its two
    `super()._decompose(` calls spelled out (an exec'd function has no class cell); nothing else is changed. Fails
    loudly if the source no longer has exactly those lines."""
    import inspect
    import re
    import textwrap

    from holisticai.bias.mitigation.commons.fairlet_clustering.decompositions import _scalable

    src = textwrap.dedent(inspect.getsource(_scalable.ScalableFairletDecomposition._decompose))
    src, n1 = re.subn(r'if self\.balanced\(p, q, NR, NB\):(\s+msg = "Constructed)', r"if not self.balanced(p, q, NR, NB):\1", src)
    src, n2 = re.subn(r"if len\(reds\) == NR and len\(blues\) == NB:", "if not (len(reds) == NR and len(blues) == NB):", src)
    src, n3 = re.subn(r"super\(\)\._decompose\(", "VanillaFairletDecomposition._decompose(self, ", src)
    if (n1, n2, n3) != (1, 1, 2):
        raise RuntimeError(f"HolisticAI's _decompose changed: the fix found {(n1, n2, n3)} of (1, 1, 2) lines")
    namespace = dict(vars(_scalable))
    exec(src, namespace)  # noqa: S102 - the library's own source, two conditions negated
    return type("FixedScalableFairletDecomposition", (_scalable.ScalableFairletDecomposition,),
                {"_decompose": namespace["_decompose"]})


def _holisticai_fit(spec: dict, x: np.ndarray, a: np.ndarray, b: np.ndarray, start: np.ndarray | None) -> np.ndarray:
    """One HolisticAI run (spec["algo"] with spec's parameters); returns its labels (any label values)."""
    import random

    from holisticai.bias.mitigation import MCMF, FairKMedianClustering, FairletClustering, VariationalFairClustering

    algo, k, seed = spec["algo"], spec["k"], spec["seed"]
    if algo == "fairlets":
        model = FairletClustering(n_clusters=k, decomposition=spec["decomposition"], clustering_model=spec["clustering"],
                                  p=1, q=spec["t"], seed=seed)
        if spec.get("fixed"):
            model.decomposition = model.algorithm.decomposition = _fixed_scalable()(p=1, q=spec["t"])
        return model.fit(x, a, b).labels_
    if algo == "variational":
        return VariationalFairClustering(n_clusters=k, lipchitz_value=VARIATIONAL["lipschitz"],
                                         lmbda=VARIATIONAL["lam"], method="kmeans", normalize_input=True,
                                         seed=seed).fit(x, a, b).labels_
    if algo == "fair_kmedian":
        random.seed(seed)  # its local search draws its start and order from Python's random, which seed= does not set
        return FairKMedianClustering(n_clusters=k, strategy="LS", seed=seed).fit(x, a, b).labels_
    if algo == "mcmf":
        centres = np.stack([x[start == c].mean(0) for c in range(k)])
        return MCMF(metric="constant", group_mode="a").fit_transform(x, start, a.astype(bool), b.astype(bool),
                                                                     centres)["y_pred"]
    raise ValueError(f"unknown HolisticAI run {algo!r}")


def worker() -> None:
    """Reads one JSON job a line from stdin ({"data", "idx", "start", "spec", "out"}), fits, saves the labels to
    "out" and prints one JSON line {"seconds", "error"}."""
    import logging
    import warnings
    from importlib.metadata import version

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # its variational code logs every iteration
    import holisticai.bias.mitigation  # noqa: F401 - imported once, outside the timings

    print(json.dumps({"versions": {p: version(p) for p in ("holisticai", "numpy", "scipy", "scikit-learn", "pandas")}}),
          flush=True)
    cache: dict[str, dict] = {}
    for line in sys.stdin:
        job = json.loads(line)
        data = cache.setdefault(job["data"], dict(np.load(job["data"])))
        idx = np.asarray(job["idx"]) if job["idx"] is not None else np.arange(len(data["g"]))
        x, minority = data["X"][idx], data["g"][idx] == int(data["minority"])
        start = None if job["start"] is None else np.load(job["start"])["labels"]
        began = time.perf_counter()
        try:
            labels = _holisticai_fit(job["spec"], x, minority.astype(int), (~minority).astype(int), start)
            seconds, error = time.perf_counter() - began, None
            np.savez(job["out"], labels=np.asarray(labels))
        except Exception as exc:  # a failure of theirs is a result to report, not a crash of the bench
            seconds, error = time.perf_counter() - began, f"{type(exc).__name__}: {exc}"[:160]
        print(json.dumps({"seconds": seconds, "error": error}), flush=True)


# ----------------------------------------------------------------------------------------------------------------
# Our side and the table
# ----------------------------------------------------------------------------------------------------------------

class Peer:
    """HolisticAI's worker process, fed one job at a time."""

    def __init__(self, python: str, folder: Path):
        self.folder, self.count = folder, 0
        self.process = subprocess.Popen([python, str(Path(__file__).resolve()), "--holisticai-worker"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=folder)
        self.versions = json.loads(self.process.stdout.readline())["versions"]

    def run(self, data: Path, spec: dict, idx, start) -> tuple[np.ndarray | None, float, str | None]:
        self.count += 1
        out, start_file = self.folder / f"theirs{self.count}.npz", None
        if start is not None:
            start_file = self.folder / f"start{self.count}.npz"
            np.savez(start_file, labels=start)
        job = {"data": str(data), "idx": None if idx is None else idx.tolist(), "spec": spec, "out": str(out),
               "start": None if start_file is None else str(start_file)}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        labels = None if reply["error"] else np.load(out)["labels"]
        return labels, reply["seconds"], reply["error"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def load_data(name: str):
    """(X float32 N × d, y, g, K, group names, description) of a data set."""
    from dashboard_lib.data import load_dataset

    if name == "digits":
        d = load_dataset("mnist_optdigits", {})
        text = "built-in digits (mnist_optdigits)"
    else:
        from tests.tabular_data import census_like, save_as_upload

        meta = save_as_upload(census_like(4000, 0), "census")
        d = load_dataset("upload", {"name": "census"})
        text = f"census-like table (tests/tabular_data.py, seed 0; {len(meta['feature_columns'])} columns one-hot)"
    x = d.X.flatten(1).numpy().astype(np.float32)
    return x, np.asarray(d.y), np.asarray(d.g), int(d.n_clusters), list(d.group_names), f"{text}: N = {len(x):,}, d = {x.shape[1]}"


def ours(kind: str, x, y, g, k, seed, start=None) -> np.ndarray:
    """One run of ours; returns the labels."""
    from dashboard_lib import classic
    from dashboard_lib.methods import Fairlets, FairAssignment, KMeans, SociallyFairKMeans, VariationalFair

    if kind == "repair":
        lower, upper = classic.proportional_bounds(g, DELTA)
        return classic.repair(start, g, lower, upper, features=x, cost="moves").labels
    make, settings = {
        "fairlets k-center": (Fairlets, {"decomposition": "scalable", "objective": "k-center"}),
        "fairlets k-median": (Fairlets, {"decomposition": "scalable", "objective": "k-median"}),
        "variational": (VariationalFair, VARIATIONAL),
        "socially fair": (SociallyFairKMeans, {}),
        "fair assignment": (FairAssignment, {"delta": DELTA}),
        "kmeans": (KMeans, {}),
    }[kind]
    return make(**settings, n_clusters=k, random_state=seed).fit(x, y, sensitive=g).labels_


def scores(labels, x, y, g, start=None) -> dict:
    from dashboard_lib.classic import group_costs
    from dashboard_lib.metrics import evaluate

    codes = np.unique(labels, return_inverse=True)[1].ravel()
    means = np.stack([x[codes == c].mean(0) for c in range(codes.max() + 1)]).astype(np.float64)
    row = {key: value for key, value in evaluate(codes, y, g).items() if key in ("acc", "nmi", "balance", "mnce")}
    row["phi"] = float(group_costs(x.astype(np.float64), codes, means, g).max())
    row["k"] = int(codes.max() + 1)
    if start is not None:
        row["moved"] = int((np.asarray(labels) != start).sum())
    return row


# (row label, our run or None, HolisticAI's run or None, on the --small-n subset)
PAIRS = (
    ("fairlets + k-center: HolisticAI as released", "fairlets k-center",
     {"algo": "fairlets", "decomposition": "Scalable", "clustering": "KCenters"}, False),
    ("fairlets + k-center: scalable (HolisticAI's 2 inverted checks fixed)", "fairlets k-center",
     {"algo": "fairlets", "decomposition": "Scalable", "clustering": "KCenters", "fixed": True}, False),
    ("fairlets + k-center: HolisticAI's default, Vanilla", "fairlets k-center",
     {"algo": "fairlets", "decomposition": "Vanilla", "clustering": "KCenters"}, False),
    ("fairlets + k-median: ours scalable, HolisticAI Vanilla + KMedoids", "fairlets k-median",
     {"algo": "fairlets", "decomposition": "Vanilla", "clustering": "KMedoids"}, False),
    ("variational fair, λ = 2000, L = 2", "variational", {"algo": "variational"}, False),
    ("socially fair k-means (ours) / fair k-median (theirs)", "socially fair", {"algo": "fair_kmedian"}, True),
    ("k-means (the repair's start)", "kmeans", None, True),
    ("repair, fewest moved: ours δ = 0.2 / MCMF", "repair", {"algo": "mcmf"}, True),
    ("fair assignment (Bera LP), δ = 0.2", "fair assignment", None, False),
)


COLUMNS = (("acc", ".3f"), ("nmi", ".3f"), ("balance", ".3f"), ("mnce", ".3f"), ("phi", ".2f"), ("k", "d"),
           ("moved", ","))


def _cells(row: dict) -> str:
    return " | ".join(format(row[key], fmt) if key in row else "" for key, fmt in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--holisticai-python", default=DEFAULT_PEER_PYTHON)
    parser.add_argument("--data", default="digits,census")
    parser.add_argument("--small-n", type=int, default=500, help="subset size for the fair k-median and repair pairs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("FCLAB_HOME", tempfile.mkdtemp(prefix="bench_classic_"))  # before the lab reads it
    sys.path.insert(0, str(ROOT))  # tests.tabular_data
    import dashboard_lib
    import sklearn

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    print(f"# bench_classic {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load before "
          f"{' '.join(load_before)}; python {platform.python_version()}, numpy {np.__version__}, "
          f"scikit-learn {sklearn.__version__} (ours: {Path(dashboard_lib.__file__).parent})")
    with tempfile.TemporaryDirectory(prefix="bench_classic_") as tmp:
        folder = Path(tmp)
        peer = Peer(args.holisticai_python, folder)
        print("# HolisticAI side: " + ", ".join(f"{p} {v}" for p, v in peer.versions.items()))
        try:
            for name in args.data.split(","):
                x, y, g, k, group_names, text = load_data(name)
                sizes = np.bincount(g)
                minority = int(sizes.argmin())
                t = int(-(-sizes.max() // sizes.min()))
                data_file = folder / f"{name}.npz"
                np.savez(data_file, X=x.astype(np.float64), g=g, minority=minority)
                small = np.sort(np.random.default_rng(args.seed).choice(len(x), min(args.small_n, len(x)), replace=False))
                print(f"\n## {text}; groups {dict(zip(group_names, sizes.tolist()))}, K = {k}, t = {t}, seed {args.seed};"
                      f" subset rows: {len(small):,} random rows")
                print("\n| pair | side | N | time s | ours/theirs time | ACC | NMI | Balance | MNCE | Φ_max | K' | moved |")
                print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
                done: dict[tuple, tuple] = {}
                start = None
                for label, our_kind, their_spec, on_subset in PAIRS:
                    idx = small if on_subset else None
                    xs, ys, gs = (x[idx], y[idx], g[idx]) if on_subset else (x, y, g)
                    key = (our_kind, on_subset)
                    if key not in done:
                        began = time.perf_counter()
                        labels = ours(our_kind, xs, ys, gs, k, args.seed, start)
                        done[key] = (labels, time.perf_counter() - began)
                    labels, our_seconds = done[key]
                    if our_kind == "kmeans":
                        start = np.asarray(labels)
                    repairing = our_kind == "repair"
                    mine = scores(labels, xs, ys, gs, start if repairing else None)
                    theirs, their_seconds, error = None, None, None
                    if their_spec is not None:
                        spec = {**their_spec, "k": k, "seed": args.seed, "t": t}
                        their_labels, their_seconds, error = peer.run(data_file, spec, idx, start if repairing else None)
                        if error is None:
                            theirs = scores(their_labels, xs, ys, gs, start if repairing else None)
                    n = f"{len(xs):,}"
                    ratio = "" if their_seconds is None or error else f"{our_seconds / their_seconds:.3g}"
                    print(f"| {label} | ours | {n} | {our_seconds:.2f} | {ratio} | {_cells(mine)} |", flush=True)
                    if their_spec is not None:
                        shown = f"fails: {error} | | | | | |" if error else _cells(theirs)
                        print(f"| | HolisticAI | {n} | {their_seconds:.2f} | | {shown} |", flush=True)
        finally:
            peer.close()
    print(f"\n# load after {' '.join(Path('/proc/loadavg').read_text().split()[:3])}, "
          f"{datetime.now(timezone.utc):%H:%M} UTC")


if __name__ == "__main__":
    if sys.argv[1:] == ["--holisticai-worker"]:
        worker()
    else:
        main()
