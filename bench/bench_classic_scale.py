"""Scale of the classic fair-clustering algorithms: repair (fewest moved, least distance) and fair assignment on
N points × 10 clusters × 4 groups (goal < 30 s at N = 100,000 on 2 cores), scalable fairlets (goal < 60 s at
100,000), timed at each N to show how each grows; a size over an algorithm's limit prints its refusal.

    python bench/bench_classic_scale.py [--sizes 10000 30000 100000] [--dims 5]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dashboard_lib.classic import fair_assignment, fairlet_clustering, proportional_bounds, repair  # noqa: E402
from dashboard_lib.classic._common import kmeans_pp, lloyd  # noqa: E402


def data(n, dims, k, rng):
    """k Gaussian blobs; the 4 groups (shares 0.4, 0.3, 0.2, 0.1) lean toward different blobs."""
    blob = rng.integers(0, k, n)
    x = rng.normal(size=(n, dims)) + 4 * rng.normal(size=(k, dims))[blob]
    groups = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    leaning = rng.random(n) < 0.5
    groups[leaning] = blob[leaning] % 4
    return x, groups, blob


def load_average():
    """The 1-minute load average (others share the CPU: the figures depend on it), or "?" off Linux."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def timed(function):
    start = time.perf_counter()
    try:
        result = function()
    except ValueError as error:
        return None, time.perf_counter() - start, str(error)
    return result, time.perf_counter() - start, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--dims", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=10)
    args = parser.parse_args()
    k = args.clusters
    print(f"{k} clusters, 4 groups, {args.dims}-D features, bounds (1 − δ) r_g .. r_g / (1 − δ), δ = 0.2; "
          f"load average {load_average()}")
    print(f"{'N':>8}  {'algorithm':<34} {'seconds':>8}  result")
    for n in args.sizes:
        rng = np.random.default_rng(0)
        x, groups, blob = data(n, args.dims, k, rng)
        lower, upper = proportional_bounds(groups, 0.2)
        (labels, centres), seconds, _ = timed(lambda: lloyd(x, kmeans_pp(x, k, np.random.default_rng(0))))
        print(f"{n:>8}  {'k-means (Lloyd, for the centres)':<34} {seconds:8.2f}")
        result, seconds, refused = timed(lambda: repair(labels, groups, lower, upper))
        print(f"{n:>8}  {'repair, fewest moved':<34} {seconds:8.2f}  "
              + (refused or f"{result.n_moved:,} moved"))
        result, seconds, refused = timed(lambda: repair(labels, groups, lower, upper, features=x, cost="distance"))
        print(f"{n:>8}  {'repair, least distance':<34} {seconds:8.2f}  "
              + (refused or f"{result.n_moved:,} moved, cost {result.cost_before:.1f} -> {result.cost_after:.1f}"))
        result, seconds, refused = timed(lambda: fair_assignment(x, groups, lower, upper, centres=centres))
        print(f"{n:>8}  {'fair assignment (LP + rounding)':<34} {seconds:8.2f}  "
              + (refused or f"LP {result.lp_cost:.1f}, rounded {result.cost:.1f}"))
        result, seconds, refused = timed(lambda: fairlet_clustering(x, groups, k, decomposition="scalable"))
        print(f"{n:>8}  {'fairlets, scalable + k-center':<34} {seconds:8.2f}  "
              + (refused or f"t = {result.t}, {len(result.fairlet_centres):,} fairlets"))
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
