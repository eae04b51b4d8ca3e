"""Time to audit a large clustering: 1,000,000 rows × 3 sensitive columns, 1,000 bootstrap resamples (goal < 10 s on
2 cores), and the size of its report.

    python bench/bench_audit.py [--rows 1000000] [--resamples 1000] [--embedding 8]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dashboard_lib import report
from dashboard_lib.auditing import audit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--embedding", type=int, default=0, help="also an embedding of this many dimensions (0 = none)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, k = args.rows, args.clusters
    sex = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    race = rng.choice(["a", "b", "c", "d", "e"], n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    age = rng.choice(["<30", "30-50", "50-65", ">65"], n)
    y = rng.integers(0, 2, n)
    clusters = (rng.integers(0, k, n) + (sex == "male") * rng.integers(0, 2, n)) % k  # men drift to the next cluster
    embedding = None
    if args.embedding:
        embedding = rng.normal(size=(n, args.embedding)).astype(np.float32) + clusters[:, None]
    print(f"{n:,} rows, {k} clusters, 3 sensitive columns (2, 5 and 4 groups; 40 intersections), "
          f"class column, {args.resamples:,} resamples" + (f", embedding {args.embedding}-D" if embedding is not None else ""))
    start = time.perf_counter()
    result = audit(clusters, {"sex": sex, "race": race, "age": age}, y=y, embedding=embedding, resamples=args.resamples)
    seconds = time.perf_counter() - start
    print(f"audit: {seconds:.2f} s ({'meets' if seconds < 10 else 'misses'} the 10 s goal)")
    inter = result.attribute("sex × race × age")
    print(f"  sex × race × age: {len(inter.group_names)} groups; Balance {inter.metrics['balance'].text()}, "
          f"MNCE {inter.metrics['mnce'].text()}")
    start = time.perf_counter()
    html = report.build_report(result, title="Audit benchmark", provenance={"file": "synthetic"})
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(html)
        size = path.stat().st_size
    print(f"report: {size / 1024:,.0f} KiB HTML, built in {seconds:.2f} s; JSON "
          f"{len(report.report_json(result)) / 1024:,.0f} KiB")


if __name__ == "__main__":
    main()
