"""k-means on the device (torch), the baseline every paper compares against and the initialiser of the deep methods."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..data import BiasedDataset
from ..params import Param
from .base import Method, RunContext, n_clusters_param


@dataclass
class KMeansResult:
    centers: torch.Tensor  # K × D
    labels: torch.Tensor  # N, int64
    inertia: float  # sum of squared distances to the nearest centre
    n_iter: int


def squared_distances(X: torch.Tensor, centers: torch.Tensor, x_norms: torch.Tensor | None = None) -> torch.Tensor:
    """N × K squared Euclidean distances, ‖x‖² − 2x·c + ‖c‖², clamped at 0 against round-off."""
    if x_norms is None:
        x_norms = (X * X).sum(1)
    # 2·(X Cᵀ), not (2X) Cᵀ: the latter copies the whole N × D data at every Lloyd step.
    return (x_norms[:, None] - 2.0 * (X @ centers.T) + (centers * centers).sum(1)[None, :]).clamp_(min=0.0)


def kmeans_plus_plus(X: torch.Tensor, k: int, generator: torch.Generator, x_norms: torch.Tensor) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; 2 + ln k trials per centre, as scikit-learn does)."""
    n = len(X)
    trials = 2 + int(np.log(k))
    first = torch.randint(n, (1,), generator=generator).item()
    centers = [X[first]]
    closest = squared_distances(X, X[first:first + 1], x_norms)[:, 0]
    for _ in range(1, k):
        weights = closest.cpu().double()
        if weights.sum() <= 0:  # every point already sits on a centre: pick uniformly
            weights = torch.ones_like(weights)
        candidates = torch.multinomial(weights, trials, replacement=True, generator=generator).to(X.device)
        cand_dist = torch.minimum(closest[None, :], squared_distances(X, X[candidates], x_norms).T)  # trials × N
        best = int(cand_dist.sum(1).argmin())
        centers.append(X[candidates[best]])
        closest = cand_dist[best]
    return torch.stack(centers)


def kmeans(X: torch.Tensor, k: int, *, n_init: int = 10, max_iter: int = 300, tol: float = 1e-4, seed: int = 0,
           on_iteration: Callable[[int, float, int], None] | None = None) -> KMeansResult:
    """Lloyd's k-means with k-means++ seeding, best of n_init restarts by inertia.

    tol is relative, as in scikit-learn: stop when the centres move less than tol × mean feature variance
    (squared Frobenius norm). on_iteration(iteration, inertia, restart) is called after each Lloyd step (restart counts from 1).
    """
    if not 1 <= k <= len(X):
        raise ValueError(f"k-means needs 1 ≤ K ≤ N; got K = {k} for N = {len(X)}")
    X = X.flatten(1).float()
    generator = torch.Generator().manual_seed(seed)
    x_norms = (X * X).sum(1)
    threshold = tol * float(X.var(0).mean())
    best: KMeansResult | None = None
    step = 0
    for restart in range(1, n_init + 1):
        centers = kmeans_plus_plus(X, k, generator, x_norms)
        for it in range(1, max_iter + 1):
            dist = squared_distances(X, centers, x_norms)
            min_dist, labels = dist.min(1)
            counts = torch.bincount(labels, minlength=k)
            new_centers = torch.zeros_like(centers).index_add_(0, labels, X) / counts.clamp(min=1)[:, None].to(X.dtype)
            empty = counts == 0
            if empty.any():  # re-seed an empty cluster with the points farthest from their centres
                far = min_dist.topk(int(empty.sum())).indices
                new_centers[empty] = X[far]
            shift = float(((new_centers - centers) ** 2).sum())
            centers = new_centers
            step += 1
            if on_iteration is not None:
                on_iteration(step, float(min_dist.sum()), restart)
            if shift <= threshold:
                break
        min_dist, labels = squared_distances(X, centers, x_norms).min(1)
        inertia = float(min_dist.sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(centers, labels, inertia, it)
    return best


class KMeans(Method):
    """k-means on the raw features (Lloyd, k-means++ seeding, best of n_init)."""

    id = "kmeans"
    name = "k-means"
    summary = "Lloyd's k-means on the raw features: the unfair baseline every fair-clustering paper starts from."
    paper = "Lloyd 1982; k-means++ seeding, Arthur & Vassilvitskii 2007"
    quick_minutes = 0.2
    params = (
        n_clusters_param(),
        Param("n_init", 10, kind="int", low=1, high=100, help="Restarts from different seeds; the lowest inertia wins (scikit-learn default 10)."),
        Param("max_iter", 300, kind="int", low=1, high=10000, help="Lloyd iterations per restart at most (scikit-learn default 300)."),
        Param("tol", 1e-4, low=0, help="Stop when centres move less than tol × mean feature variance (scikit-learn's rule)."),
    )

    def train(self, data: BiasedDataset, ctx: RunContext) -> "KMeans":
        X = data.X.flatten(1).to(ctx.device)
        hp = self.hparams
        total = hp["n_init"] * hp["max_iter"]

        def on_iteration(step: int, inertia: float, restart: int) -> None:
            ctx.log(step, inertia=inertia, restart=restart)  # the Monitor draws each restart as its own segment
            ctx.progress(min(step / total, 1.0), "Lloyd iterations")

        result = kmeans(X, self.n_clusters(data), n_init=hp["n_init"], max_iter=hp["max_iter"], tol=hp["tol"],
                        seed=ctx.seed, on_iteration=on_iteration)
        self.labels_ = result.labels.cpu().numpy()
        self.centers_ = result.centers.cpu().numpy()
        self.embedding_ = None  # raw features: the embedding views project X itself
        ctx.evaluate(0, None, self.labels_)
        return self

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """Lloyd's assignment step: the nearest fitted centre."""
        return squared_distances(X.flatten(1), torch.from_numpy(self.centers_).to(X.device)).min(1).indices
