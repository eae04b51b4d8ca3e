"""Autoencoder + k-means: the deep baseline (reconstruction pretraining, then k-means on the embedding)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import BiasedDataset
from ..nn import MLPAutoencoder, embed_chunks, minibatches, mixed_precision
from ..params import Param
from .base import Method, RunContext, n_clusters_param, precision_param
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
        # fused: one kernel for the whole update, the same Adam maths (~17% less per step on 1 CPU thread, bench/peers.py)
        optimiser = torch.optim.Adam(model.parameters(), lr=hp["lr"], fused=ctx.device.type in ("cpu", "cuda") or None)
        generator = torch.Generator().manual_seed(ctx.seed)
        steps_per_epoch = -(-len(X) // hp["batch_size"])
        step = 0
        for epoch in range(1, hp["epochs"] + 1):
            for index in minibatches(len(X), hp["batch_size"], generator, ctx.device):
                x = X[index]
                with mixed_precision(ctx.device, hp["precision"]):
                    _, x_hat = model(x)
                loss = reconstruction_loss(x, x_hat.float())
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                ctx.log(step, L_rec=loss.detach())
                ctx.progress(step / (hp["epochs"] * steps_per_epoch), f"epoch {epoch}/{hp['epochs']}")
            if epoch == hp["epochs"] or (hp["eval_every"] and epoch % hp["eval_every"] == 0):
                z = embed_chunks(model.encode, X, [model])
                labels = kmeans(z, k, n_init=hp["n_init"], seed=ctx.seed).labels
                ctx.evaluate(epoch, z, labels)
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
