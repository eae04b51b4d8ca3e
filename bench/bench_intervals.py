"""Which bootstrap interval to trust near no effect: a simulation of random clusterings of real-sized tables.

For each scenario, rows are drawn from a known population (a cluster × class × sensitive-values probability table),
the audit's metrics are computed on the drawn table, resampled exactly as `auditing.audit` resamples (a multinomial
draw of the occupied cells), and each candidate interval is built from the same resamples. Printed per metric and
method: the share of intervals that contain their own estimate before the containment step (`_interval` then widens
the interval to the estimate, so the audit's intervals always contain it) and the coverage of the TRUE value (the
metric of the population's expected-count table: NMI 0, ARI 0, MNCE 1, TV 0, KL 0, Balance the population's
min/max group ratio, ACC the best matching of the independent joint p_k q_c) by the final interval.

Scenarios: null (clusters independent of classes and groups) at n = 500 (sex 2), 7,000 (race 6 with two groups
under 1 %, sex 2, race × sex 12) and 32,000 (census-like: sex 2, race 5, sex × race 10), K = 2, 5, 10 clusters
of unequal sizes; and one non-null scenario (n = 7,000, K = 5, clusters that track race and classes that track
clusters), so the choice is not tuned to the null alone.

Last, the embedding metrics (social fairness ratio, silhouette difference) through the real audit, under no effect.

    python bench/bench_intervals.py [--reps 200] [--resamples 1000] [--scenarios null-500-k2 ...] [--embedding-reps 50]
"""
import argparse
import math
import time

import numpy as np

from dashboard_lib import auditing as A
from dashboard_lib import metrics as M

# The last two are not _interval's: exact simultaneous intervals (the minima only), and the audit's bootstrap interval
# extended to exact simultaneous bounds on the side the truth lies under no effect (TV, KL, entropy, MNCE).
METHODS = A.INTERVAL_METHODS + ("simultaneous", "extended")
SEX = [0.33, 0.67]
RACE6 = [0.51, 0.34, 0.09, 0.052, 0.005, 0.003]  # a criminal-justice table's race mix: two groups under 1 %
RACE5 = [0.854, 0.096, 0.031, 0.01, 0.009]  # a census table's race mix
CLASS2 = [0.55, 0.45]


def cluster_probs(k: int) -> np.ndarray:
    p = np.linspace(1, 2.5, k)  # unequal sizes, the largest 2.5 times the smallest
    return p / p.sum()


def scenarios() -> dict[str, tuple[int, np.ndarray, list[str]]]:
    """name -> (n, population table of shape K × C × G1 [× G2], names of the sensitive axes)."""
    out = {}
    for k in (2, 5, 10):
        p = cluster_probs(k)
        out[f"null-500-k{k}"] = (500, np.einsum("k,c,g->kcg", p, CLASS2, SEX), ["sex"])
        out[f"null-7000-k{k}"] = (7000, np.einsum("k,c,r,s->kcrs", p, CLASS2, RACE6, SEX), ["race", "sex"])
        out[f"null-32000-k{k}"] = (32000, np.einsum("k,c,s,r->kcsr", p, [0.76, 0.24], SEX, RACE5), ["sex", "race"])
    # Non-null: clusters track race (each race favours its own clusters), classes track clusters.
    rng = np.random.default_rng(1)
    k = 5
    p_k_given_r = np.exp(1.2 * rng.normal(size=(len(RACE6), k)))
    p_k_given_r /= p_k_given_r.sum(1, keepdims=True)
    q_c_given_k = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55], [0.2, 0.8]])
    out["tracks-race-7000-k5"] = (7000, np.einsum("r,rk,kc,s->kcrs", RACE6, p_k_given_r, q_c_given_k, SEX), ["race", "sex"])
    return out


def views(names: list[str], joint: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(view name, 0/1 matrix mapping the joint sensitive axes to the view's groups), as the audit forms them."""
    shape = joint.shape[2:]
    flat = int(np.prod(shape))
    out = []
    for axis, name in enumerate(names):
        index = np.unravel_index(np.arange(flat), shape)[axis]
        out.append((name, np.eye(shape[axis])[index]))
    if len(names) > 1:
        out.append((" × ".join(names), np.eye(flat)))
    return out


def metrics(tables: np.ndarray, n_classes: int, maps, present, minority_majority, k: int) -> dict[str, np.ndarray]:
    """Every table metric of a batch of joint tables (B, K, C, sensitive cells) -> name -> (B,)."""
    b = len(tables)
    joint = tables.reshape(b, k, n_classes, -1)
    quality = joint.sum(3).transpose(0, 2, 1)  # class × cluster
    out = {"acc": M.accuracy_from_tables(quality), "nmi": M.nmi_from_tables(quality, "arithmetic"),
           "nmi_geometric": M.nmi_from_tables(quality, "geometric"), "ari": M.ari_from_tables(quality)}
    cluster_cells = joint.sum(2)
    for (view, mapping), keep, (minority, majority) in zip(maps, present, minority_majority):
        t = (cluster_cells @ mapping)[..., keep]
        for key, values in A._fairness_batch(t, minority, majority).items():
            out[f"{view}: {key}"] = values
        out[f"{view}: f_beta"] = M.f_beta_from_scores(out["nmi"], out[f"{view}: mnce"])
    return out


def bounds(key: str, k: int) -> tuple[float, float]:
    base = key.split(": ")[-1]
    return (0.0, math.log(k)) if base == "entropy" else A.RANGES[base]


def run(name, n, population, axes, reps, resamples, rng):
    k, n_classes = population.shape[:2]
    maps = views(axes, population)
    # The population's expected counts, scaled up: ARI's value on a finite table of expected counts is off its
    # limit (0 when independent) by O(1/n), as much as its sampling noise; every other metric is a ratio of counts.
    truth_table = population.reshape(1, -1) * 1e9
    pop_cells = population.reshape(k, n_classes, -1).sum((0, 1))
    counts = {}  # (metric, method) -> [contained before widening, covered]
    for _ in range(reps):
        drawn = rng.multinomial(n, population.ravel())
        sample_cells = drawn.reshape(k, n_classes, -1).sum((0, 1))
        present = [(sample_cells @ m) > 0 for _, m in maps]  # the audit sees only groups present in the sample
        mm = [M.minority_majority((sample_cells @ m)[keep]) for (_, m), keep in zip(maps, present)]
        args = (n_classes, maps, present, mm, k)
        point = {key: float(v[0]) for key, v in metrics(drawn[None], *args).items()}
        truth_mm = [M.minority_majority((pop_cells @ m)[keep]) for (_, m), keep in zip(maps, present)]
        truth = {key: float(v[0]) for key, v in metrics(truth_table, n_classes, maps, present, truth_mm, k).items()}
        occupied = np.flatnonzero(drawn)
        boot_cells = rng.multinomial(n, drawn[occupied] / n, size=resamples)
        boot = np.zeros((resamples, drawn.size))
        boot[:, occupied] = boot_cells
        boot_values = metrics(boot, *args)
        jack = np.broadcast_to(drawn.astype(np.float64), (len(occupied), drawn.size)).copy()
        jack[np.arange(len(occupied)), occupied] -= 1
        jack_values = metrics(jack, *args)
        cluster_cells = drawn.reshape(k, n_classes, -1).sum(1)
        minima, edges = {}, {}
        for (view, mapping), keep, (minority, majority) in zip(maps, present, mm):
            t = (cluster_cells @ mapping)[:, keep]
            for base, interval in A._minimum_intervals(t, 0.95, minority, majority).items():
                minima[f"{view}: {base}"] = interval
            for base, interval in A._edge_bounds(t, 0.95).items():
                edges[f"{view}: {base}"] = interval
        for key, value in point.items():
            if not math.isfinite(truth[key]):
                continue
            accel = A._jackknife_acceleration(jack_values[key], drawn[occupied])
            for method in METHODS:
                c = counts.setdefault((key, method), [0, 0, 0])
                if method == "simultaneous":
                    if key not in minima:
                        continue
                    raw = final = minima[key]
                elif method == "extended":
                    if key not in edges:
                        continue
                    raw = A._interval(boot_values[key], value, 0.95, bounds(key, k), chosen(key.split(": ")[-1], True),
                                      contain=False)
                    floor, ceiling = edges[key]
                    raw = (raw[0] if floor is None else min(raw[0], floor), raw[1] if ceiling is None else max(raw[1], ceiling))
                    final = (min(raw[0], value), max(raw[1], value))
                else:
                    raw = A._interval(boot_values[key], value, 0.95, bounds(key, k), method, accel, contain=False)
                    final = A._interval(boot_values[key], value, 0.95, bounds(key, k), method, accel)
                if raw[0] is None:
                    continue
                c[0] += raw[0] <= value <= raw[1]
                c[1] += final[0] - 1e-12 <= truth[key] <= final[1] + 1e-12
                c[2] += 1
    return counts


def embedding_null(reps: int, rng) -> None:
    """The embedding metrics through the real audit: 2,000 rows, an embedding independent of the 3 groups, clusters
    cut from it; the truth is a social fairness ratio of 1 and a silhouette difference of 0."""
    hits = {"social_fairness_ratio": [0, 1.0], "silhouette_diff": [0, 0.0]}
    for r in range(reps):
        x = rng.normal(size=(2000, 3))
        groups = rng.choice(3, 2000, p=[0.5, 0.3, 0.2])
        clusters = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
        result = A.audit(clusters, groups, embedding=x, resamples=200, random_draws=2, seed=r, probe=False)
        for key, value in hits.items():
            e = result.attributes[0].metrics[key]
            assert e.low <= e.value <= e.high
            value[0] += e.low <= value[1] <= e.high
    print(f"\nEmbedding metrics, null, n = 2,000, {reps} replications (the audit's intervals): "
          + ", ".join(f"{key} covers its truth {100 * v[0] / reps:.0f} %" for key, v in hits.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--embedding-reps", type=int, default=50, help="replications of the embedding metrics' null")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", nargs="*")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    table = scenarios()
    names = args.scenarios or list(table)
    worst = {}
    print(f"{args.reps} replications per scenario, {args.resamples} resamples, 95 % nominal. "
          "Per method: % containing the estimate before widening / % covering the true value (after widening).")
    for name in names:
        n, population, axes = table[name]
        start = time.perf_counter()
        counts = run(name, n, population, axes, args.reps, args.resamples, rng)
        print(f"\n{name} (n = {n:,}, K = {population.shape[0]}, sensitive {' and '.join(axes)}; "
              f"{time.perf_counter() - start:.0f} s)")
        print(f"  {'metric':<34}" + "".join(f"{m:>18}" for m in METHODS))
        for key in dict.fromkeys(k for k, _ in counts):
            cells = []
            for method in METHODS:
                contained, covered, total = counts[(key, method)]
                if total == 0:
                    cells.append(f"{'n/a':>18}")
                    continue
                cells.append(f"{100 * contained / total:>9.0f} / {100 * covered / total:>5.1f}")
                base = key.split(": ")[-1]
                w = worst.setdefault((base, method), [101.0, 101.0, ""])  # noqa: F841
                if covered / total * 100 < w[1]:
                    w[1], w[2] = covered / total * 100, name + " " + key
                w[0] = min(w[0], contained / total * 100)
            print(f"  {key:<34}" + "".join(cells))
    print("\nWorst over scenarios and views (% containing before widening / % coverage, where):")
    for base in dict.fromkeys(b for b, _ in worst):
        print(f"  {base:<20}" + "  ".join(f"{m}: {worst[(base, m)][0]:.0f} / {worst[(base, m)][1]:.1f} ({worst[(base, m)][2]})"
                                          for m in METHODS if (base, m) in worst))
    print("\nThe audit's choice (auditing.BOOTSTRAP_INTERVAL, MINIMA, _edge_bounds); every interval contains its estimate:")
    for base in dict.fromkeys(b for b, _ in worst):
        m = chosen(base)
        print(f"  {base:<20} {m:<13} worst coverage {worst[(base, m)][1]:5.1f} % ({worst[(base, m)][2]})")
    if args.embedding_reps:
        embedding_null(args.embedding_reps, rng)


EDGES = ("cluster_tv", "cluster_kl", "entropy", "mnce")  # the keys of auditing._edge_bounds


def chosen(base: str, bootstrap_only: bool = False) -> str:
    """The audit's method for a metric (bootstrap_only: the bootstrap interval an extended one starts from)."""
    if base in EDGES and not bootstrap_only:
        return "extended"
    return "simultaneous" if base in A.MINIMA else A.BOOTSTRAP_INTERVAL


if __name__ == "__main__":
    main()
