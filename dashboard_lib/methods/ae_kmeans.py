"""Autoencoder + k-means: the deep baseline (reconstruction pretraining, then k-means on the embedding)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import BiasedDataset
from ..nn import MLPAutoencoder, embed_chunks, pretrain_autoencoder
from ..params import Param
from .base import Method, RunContext, Steps, n_clusters_param, precision_param
from .kmeans import kmeans, squared_distances


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """L_rec = mean squared error between inputs and reconstructions (DEC, FCMI)."""
    return F.mse_loss(x_hat, x)


class AEKMeans(Method):
    """Train a d-500-500-2000-z autoencoder on reconstruction, then run k-means on its embedding."""

    id = "ae_kmeans"
    name = "Autoencoder + k-means"
    summary = ("A feed-forward autoencoder (DEC's d-500-500-2000-z) trained on reconstruction, then k-means on the "
               "embedding. The deep baseline before any clustering or fairness loss.")
    paper = "Xie, Girshick & Farhadi 2016 (DEC), autoencoder pretraining stage"
    quick_minutes = 1.1  # its declared schedule is already short (no quick overlay)
    params = (
        n_clusters_param(),
        Param("latent_dim", 10, kind="int", low=1, high=512, symbol="d_z", help="Embedding size (DEC: 10)."),
        Param("epochs", 20, kind="int", low=1, high=2000, help="Reconstruction epochs over the whole dataset."),
        Param("batch_size", 256, kind="int", low=1, high=65536, help="Samples per step (DEC/ClustPy: 256)."),
        Param("lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η", help="Adam learning rate (ClustPy: 1e-3)."),
        Param("eval_every", 5, kind="int", low=0, help="Run k-means and all metrics every this many epochs (0 = only at the end)."),
        Param("n_init", 10, kind="int", low=1, high=100, help="k-means restarts on the embedding."),
        precision_param(),
    )

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        self.check_batch_size(len(data))

    def train(self, data: BiasedDataset, ctx: RunContext) -> "AEKMeans":
        hp = self.hparams
        k = self.n_clusters(data)
        X = data.X.to(ctx.device)
        model = MLPAutoencoder(data.n_features, hp["latent_dim"]).to(ctx.device)
        steps = Steps(ctx, hp["epochs"] * -(-len(X) // hp["batch_size"]))
        z = labels = None

        def evaluate(epoch: int) -> None:
            nonlocal z, labels
            if epoch == hp["epochs"] or (hp["eval_every"] and epoch % hp["eval_every"] == 0):
                z, labels = self._cluster(model, X, k, ctx.seed)
                ctx.evaluate(epoch, z, labels)

        pretrain_autoencoder(
            model, X, lambda x: model(x)[1], lambda x, x_hat: {"L_rec": reconstruction_loss(x, x_hat.float())},
            lr=hp["lr"], batch_size=hp["batch_size"], generator=torch.Generator().manual_seed(ctx.seed),
            epochs=hp["epochs"], precision=hp["precision"], fused=ctx.device.type in ("cpu", "cuda"),
            on_step=lambda done, epoch, terms: steps.tick(f"epoch {epoch}/{hp['epochs']}", **terms), on_epoch=evaluate)
        self.embedding_ = z.cpu().numpy()
        self.labels_ = labels.cpu().numpy()
        self.model_ = model
        return self

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """The nearest centre of the fitted clusters in the autoencoder's embedding (each centre the mean of its
        cluster's embedded points: k-means's fixed point)."""
        z = torch.from_numpy(self.embedding_).to(X.device)
        labels = torch.from_numpy(self.labels_).to(X.device)
        centers = torch.zeros(int(labels.max()) + 1, z.shape[1], device=X.device).index_add_(0, labels, z)
        centers /= torch.bincount(labels, minlength=len(centers)).clamp(min=1)[:, None]
        return squared_distances(embed_chunks(self.model_.encode, X, [self.model_]), centers).min(1).indices

    def _cluster(self, model: MLPAutoencoder, X: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, k-means labels) of X."""
        z = embed_chunks(model.encode, X, [model])
        return z, kmeans(z, k, n_init=self.hparams["n_init"], seed=seed).labels
