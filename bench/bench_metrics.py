"""Time dashboard_lib.metrics on 1,000,000 samples, K = 10, 30 groups, one core."""

import os

# Pin every BLAS/OpenMP pool to one thread before numpy loads: the goal is per core.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

from dashboard_lib import metrics  # noqa: E402

N_SAMPLES, N_CLUSTERS, N_GROUPS, REPEATS, GOAL_S = 1_000_000, 10, 30, 5, 0.5


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classes, clusters that agree with them 70% of the time, and 30 uneven groups."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, N_CLUSTERS, N_SAMPLES)
    noise = rng.integers(0, N_CLUSTERS, N_SAMPLES)
    y_pred = np.where(rng.random(N_SAMPLES) < 0.7, y_true, noise)
    group_weights = rng.uniform(0.5, 1.5, N_GROUPS)
    groups = rng.choice(N_GROUPS, N_SAMPLES, p=group_weights / group_weights.sum())
    return y_true, y_pred, groups


def timings(fn) -> tuple[float, float]:
    """Best and median wall time of REPEATS calls."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    """Print a timing table for evaluate and each metric, then the goal line."""
    y_true, y_pred, groups = make_data()
    # Labels far apart defeat the bincount re-coding and take the np.unique path.
    sparse_pred, sparse_groups = y_pred * 10**9 - 7, groups * 10**9 + 3
    cases = {
        "evaluate": lambda: metrics.evaluate(y_pred, y_true, groups),
        "evaluate, sparse ids": lambda: metrics.evaluate(sparse_pred, y_true, sparse_groups),
        "clustering_accuracy": lambda: metrics.clustering_accuracy(y_true, y_pred),
        "nmi (arithmetic)": lambda: metrics.nmi(y_true, y_pred),
        "nmi (geometric)": lambda: metrics.nmi(y_true, y_pred, average="geometric"),
        "ari": lambda: metrics.ari(y_true, y_pred),
        "balance": lambda: metrics.balance(y_pred, groups),
        "balance_ceiling": lambda: metrics.balance_ceiling(groups),
        "entropy": lambda: metrics.entropy(y_pred, groups),
        "mnce": lambda: metrics.mnce(y_pred, groups),
        "group_accuracies": lambda: metrics.group_accuracies(y_true, y_pred, groups),
        "sklearn nmi (ref.)": lambda: normalized_mutual_info_score(y_true, y_pred),
        "sklearn ari (ref.)": lambda: adjusted_rand_score(y_true, y_pred),
    }
    print(f"{N_SAMPLES:,} samples, K = {N_CLUSTERS}, {N_GROUPS} groups, one thread, "
          f"{REPEATS} runs each")
    print(f"{'function':<24}{'best (s)':>10}{'median (s)':>12}")
    results = {name: timings(fn) for name, fn in cases.items()}
    for name, (best, median) in results.items():
        print(f"{name:<24}{best:>10.3f}{median:>12.3f}")
    scores = metrics.evaluate(y_pred, y_true, groups)
    print("scores: " + ", ".join(f"{key} = {value:.4f}" for key, value in scores.items()))
    nmi_gap = abs(scores["nmi"] - normalized_mutual_info_score(y_true, y_pred))
    ari_gap = abs(scores["ari"] - adjusted_rand_score(y_true, y_pred))
    print(f"|nmi - sklearn| = {nmi_gap:.1e}, |ari - sklearn| = {ari_gap:.1e}")
    best, median = results["evaluate"]
    print(f"evaluate: {best:.3f} s (goal < {GOAL_S} s; median {median:.3f} s)")


if __name__ == "__main__":
    main()
