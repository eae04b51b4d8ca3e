"""How far points move between two aligned UMAP epochs, and whether the aligned layout is still faithful.

The Embeddings view starts each epoch's UMAP from the nearest epoch's layout (projection.compute_umap). This prints,
over several data seeds, the mean displacement of a point between two epochs (in units of the first layout's spread,
as tests/unit/test_projection.py measures it) for:
  - aligned at UMAP's default learning rate 1.0, and at the app's UMAP_ALIGNED_LEARNING_RATE;
  - free: an independent UMAP of the second epoch, Procrustes-fitted onto the first (what alignment must beat);
and the trustworthiness (k = 15) of each second-epoch layout, for a small drift (noise of 0.15 on clusters of 0.6)
and for a restructure (30 % of the points move to another cluster), where a start that is too sticky would show.

A UMAP is chaotic: the last bits of its start (the PCA layout, computed by OpenBLAS) change the draw, so the figures
change with the processor's BLAS kernel (printed). Compare kernels with OPENBLAS_CORETYPE=Haswell (or SkylakeX).

    python bench/bench_umap_alignment.py [--seeds 10]
"""
import argparse
import warnings

import numpy as np

from dashboard_lib import projection as P


def spread(coords):
    return float(np.sqrt(((coords - coords.mean(0)) ** 2).sum(1).mean()))


def move(a, b):
    return float(np.sqrt(((a - b) ** 2).sum(1)).mean() / spread(a))


def epochs(seed: int, restructure: bool):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6, size=(5, 10))
    labels = rng.integers(0, 5, 400)
    x = (centres[labels] + rng.normal(scale=0.6, size=(400, 10))).astype(np.float32)
    if not restructure:
        return x, x + rng.normal(scale=0.15, size=x.shape).astype(np.float32)
    moved = labels.copy()
    switch = rng.random(400) < 0.3
    moved[switch] = (labels[switch] + 1) % 5
    return x, (centres[moved] + rng.normal(scale=0.6, size=(400, 10))).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    from sklearn.manifold import trustworthiness
    from threadpoolctl import threadpool_info

    warnings.simplefilter("ignore")
    kernels = sorted({i.get("architecture", "?") for i in threadpool_info() if i["user_api"] == "blas"})
    print(f"BLAS kernel: {', '.join(kernels)}; {args.seeds} seeds; 400 points, 5 clusters in 10-D")
    P.warm_up_umap(background=False)
    rates = (1.0, P.UMAP_ALIGNED_LEARNING_RATE)
    for restructure in (False, True):
        rows = {f"aligned, rate {r:g}": [] for r in rates} | {"free (independent UMAP)": []}
        for seed in range(args.seeds):
            x, x2 = epochs(seed, restructure)
            start = P.pca_2d(x)
            first = P.procrustes_align(P.umap_2d(x, init=start, n_epochs=P.UMAP_EPOCHS), start)
            for rate in rates:
                second = P.procrustes_align(P.umap_2d(x2, init=first, n_epochs=P.UMAP_ALIGNED_EPOCHS,
                                                      learning_rate=rate), first)
                rows[f"aligned, rate {rate:g}"].append((move(first, second), trustworthiness(x2, second, n_neighbors=15)))
            free = P.procrustes_align(P.umap_2d(x2, seed=7), first)
            rows["free (independent UMAP)"].append((move(first, free), trustworthiness(x2, free, n_neighbors=15)))
        print(f"\n{'restructure: 30 % of points change cluster' if restructure else 'drift: noise 0.15 added'}")
        print(f"{'layout':<26} {'move mean':>9} {'move max':>9} {'trust mean':>10} {'trust min':>9}")
        for name, values in rows.items():
            a = np.array(values)
            print(f"{name:<26} {a[:, 0].mean():9.3f} {a[:, 0].max():9.3f} {a[:, 1].mean():10.3f} {a[:, 1].min():9.3f}")
        if not restructure:
            ratio = np.array(rows[f"aligned, rate {rates[1]:g}"])[:, 0] / np.array(rows["free (independent UMAP)"])[:, 0]
            print(f"aligned (rate {rates[1]:g}) / free move, per seed: max {ratio.max():.2f}, mean {ratio.mean():.2f}")


if __name__ == "__main__":
    main()
