"""DEC: Deep Embedded Clustering (Xie, Girshick & Farhadi 2016), the deep baseline of DFC and FCMI.

The losses are small pure functions (one per equation); the class only wires them. The method's docstring
lists every interpretation of the paper and its public code.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..data import BiasedDataset
from ..nn import (DFCAutoencoder, MLPAutoencoder, embed_chunks, mixed_precision, pretrain_autoencoder,
                  student_t_assignment, synchronize)
from ..params import Param
from .base import Method, RunContext, Steps, ensure_finite, n_clusters_param, precision_param
from .kmeans import kmeans

EPS = 1e-12


def dec_soft_assignment(z: torch.Tensor, centers: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Q: Student-t kernel q_ik ∝ (1 + ‖z_i − μ_k‖²/α)^(−(α+1)/2), rows summing to 1 (DEC Eq. 1)."""
    return student_t_assignment(z, centers, alpha)


def dec_target(q: torch.Tensor) -> torch.Tensor:
    """P: p_ik = (q_ik² / f_k) / Σ_k' (q_ik'² / f_k'), f_k = Σ_i q_ik the soft cluster frequency (DEC Eq. 3)."""
    weight = q.pow(2) / q.sum(0).clamp_min(EPS)
    return weight / weight.sum(1, keepdim=True)


def dec_clustering_loss(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """L = KL(P ‖ Q) = Σ_k p_ik log(p_ik / q_ik), averaged over the batch (DEC Eq. 2; Keras 'kld')."""
    return (torch.xlogy(p, p) - p * torch.log(q.clamp_min(EPS))).sum(1).mean()


def image_reconstruction_loss(x: torch.Tensor, logits: torch.Tensor, is_image: bool) -> torch.Tensor:
    """L_rec = MSE between inputs and reconstructions (sigmoid of the logits for images in [0, 1])."""
    return F.mse_loss(torch.sigmoid(logits) if is_image else logits, x)


class DEC(Method):
    """Deep Embedded Clustering: pretrain an autoencoder, init centroids by k-means, then sharpen with KL(P‖Q).

    Autoencoder pretraining on reconstruction, k-means on the embedding for the initial centroids, then the encoder
    and the centroids minimise KL(P ‖ Q) between the Student-t soft assignment Q and the sharpened target P.

    Interpretations (the paper and its public code leave these open; each is a declared hyperparameter or noted here):
    - Architecture. Vectors: DEC's d-500-500-2000-z MLP. Images: DFC's convolutional autoencoder (DFCAutoencoder,
      non-variational, inputs resized to 32 × 32), because DFC states it runs every compared method, DEC included,
      with its own encoder; z = 10 as in DEC. `encoder` picks either explicitly.
    - Pretraining: end-to-end Adam on the MSE (the Keras DEC re-implementation; the paper's layer-wise stacked
      denoising pretraining is not reproduced). Image reconstructions pass through a sigmoid (pixels in [0, 1]).
    - The target P is recomputed on the whole dataset every `update_interval` iterations and training stops early
      when fewer than `tol` of the samples changed cluster between two updates (DEC §3.1.3, §4.3).
    - Evaluations are indexed by clustering iteration (0 = after pretraining, i.e. autoencoder + k-means).
    """

    id = "dec"
    name = "DEC"
    summary = ("Deep Embedded Clustering: autoencoder pretraining, k-means centroids, then the encoder and centroids "
               "minimise KL(P‖Q) between the Student-t soft assignment and its sharpened target. No fairness term: "
               "the unfair deep baseline of DFC and FCMI.")
    paper = "Xie, Girshick & Farhadi 2016, Unsupervised Deep Embedding for Clustering Analysis (ICML)"
    quick = {"pretrain_epochs": 3, "iterations": 240, "eval_every": 120, "n_init": 5}
    eval_unit = "iteration"
    quick_minutes = 2.6
    params = (
        n_clusters_param(),
        Param("encoder", "auto", kind="choice", choices=("auto", "conv", "mlp"),
              help="auto: DFC's conv autoencoder for images (inputs resized to 32×32), DEC's d-500-500-2000-z MLP for vectors.",
              source="DEC §4.2 (MLP); DFC §5.1 runs DEC with its own conv encoder"),
        Param("latent_dim", 10, kind="int", low=1, high=512, symbol="d_z", help="Embedding size z.", source="DEC §4.2: 10"),
        Param("pretrain_epochs", 300, kind="int", low=0, high=5000,
              help="Autoencoder epochs on reconstruction before clustering (0 = none: k-means on a random encoder).",
              source="DEC-keras (Guo) pretrain_epochs = 300 for MNIST"),
        Param("pretrain_lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η_pre",
              help="Adam learning rate of the pretraining.", source="DEC-keras: Adam, Keras default 1e-3"),
        Param("batch_size", 256, kind="int", low=2, high=65536, symbol="B", help="Samples per step, both stages.",
              source="DEC §4.3: 256"),
        Param("lr", 0.01, low=0, low_open=True, high=10.0, log=True, symbol="η",
              help="SGD learning rate of the clustering stage (minimising Eq. 2).", source="DEC §4.3: 0.01"),
        Param("momentum", 0.9, low=0, high=1, high_open=True, help="SGD momentum of the clustering stage.",
              source="DEC §4.3: 0.9"),
        Param("iterations", 20000, kind="int", low=0, high=10_000_000,
              help="Clustering iterations at most (mini-batches).", source="DEC-keras maxiter = 2e4"),
        Param("update_interval", 140, kind="int", low=1, high=1_000_000, symbol="T",
              help="Recompute the target P (Eq. 3) on the whole dataset every T iterations.",
              source="DEC-keras update_interval = 140 for MNIST"),
        Param("tol", 0.001, low=0, high=1, symbol="tol",
              help="Stop when fewer than this share of samples change cluster between two target updates (0 = never).",
              source="DEC §4.3: 0.1%"),
        Param("alpha", 1.0, low=0, low_open=True, high=1000, symbol="α",
              help="Degrees of freedom of the Student-t kernel (Eq. 1).", source="DEC §3.1.1: 1"),
        Param("n_init", 20, kind="int", low=1, high=100, help="k-means restarts for the initial centroids.",
              source="DEC-keras: KMeans(n_init=20)"),
        Param("eval_every", 1400, kind="int", low=0, high=10_000_000,
              help="Evaluate every this many clustering iterations (0 = only after pretraining and at the end).",
              source="ours (DEC-keras evaluates at each target update)"),
        precision_param(),
    )

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        hp = self.hparams
        self.check_batch_size(len(data))
        if hp["encoder"] == "conv" and not data.is_image:
            raise ValueError(f"{self.name}: encoder 'conv' needs images; {data.id} holds vectors (use 'mlp' or 'auto')")

    def _network(self, data: BiasedDataset) -> "_Autoencoder":
        hp = self.hparams
        if hp["encoder"] == "conv" or (hp["encoder"] == "auto" and data.is_image):
            model = DFCAutoencoder(data.X.shape[1:], hp["latent_dim"], variational=False)
            return _Autoencoder(model, model.prepare, lambda x: model.encode(x)[1], model.decode, conv=True)
        model = MLPAutoencoder(data.n_features, hp["latent_dim"])
        return _Autoencoder(model, lambda x: x.flatten(1), model.encoder, model.decoder, conv=False)

    def train(self, data: BiasedDataset, ctx: RunContext) -> "DEC":
        hp = self.hparams
        X = data.X.to(ctx.device)
        net = self._network(data)
        net.model.to(ctx.device)
        generator = torch.Generator().manual_seed(ctx.seed)
        steps_per_epoch = -(-len(X) // hp["batch_size"])
        steps = Steps(ctx, hp["pretrain_epochs"] * steps_per_epoch + hp["iterations"])
        t0 = time.perf_counter()
        self._pretrain(net, X, generator, steps)
        synchronize(ctx.device)
        t_pre = time.perf_counter() - t0
        centers, start = self._initialise_centres(net, X, self.n_clusters(data), steps)
        t1 = time.perf_counter()
        iteration, last_eval = self._cluster(net, X, centers, start, generator, steps)
        synchronize(ctx.device)
        t_clu = time.perf_counter() - t1
        z, labels = self._assign(net, X, centers, steps)
        if iteration != last_eval:
            ctx.evaluate(iteration, z, labels)
        self.embedding_ = z.cpu().numpy()
        self.labels_ = labels.cpu().numpy()
        self.centers_ = centers.detach().cpu().numpy()
        self.model_, self.net_ = net.model, net
        self.timings_ = {"pretrain_s": t_pre, "pretrain_epochs": hp["pretrain_epochs"],
                         "pretrain_s_per_epoch": t_pre / max(hp["pretrain_epochs"], 1),
                         "train_s": t_clu, "iterations": iteration,
                         "train_s_per_epoch": t_clu / max(iteration / steps_per_epoch, 1e-9) if iteration else 0.0}
        return self

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """The most probable cluster under the Student-t assignment (Eq. 1) of the fitted encoder's embedding."""
        z = embed_chunks(self.net_.embed, X, [self.net_.model])
        return dec_soft_assignment(z, torch.from_numpy(self.centers_).to(X.device), self.hparams["alpha"]).argmax(1)

    def _pretrain(self, net: "_Autoencoder", X: torch.Tensor, generator: torch.Generator, steps: Steps) -> None:
        """Stage 1: the autoencoder trained end to end on reconstruction (MSE, Adam)."""
        hp = self.hparams
        pretrain_autoencoder(
            net.model, X, lambda x: net.decode(net.encode(x)),
            lambda x, x_hat: {"L_rec": image_reconstruction_loss(x, x_hat.float(), net.conv)},
            lr=hp["pretrain_lr"], batch_size=hp["batch_size"], generator=generator, epochs=hp["pretrain_epochs"],
            prepare=net.prepare, precision=hp["precision"], fused=X.device.type in ("cpu", "cuda"), min_batch=2,
            on_step=lambda done, epoch, terms: steps.tick(f"pretraining epoch {epoch}/{hp['pretrain_epochs']}", **terms))

    def _initialise_centres(self, net: "_Autoencoder", X: torch.Tensor, k: int, steps: Steps
                            ) -> tuple[torch.nn.Parameter, torch.Tensor]:
        """(centroids μ_k, labels) of k-means on the pretrained embedding (DEC §3.2); evaluation 0 is that k-means."""
        steps.report("k-means on the embedding")
        z = embed_chunks(net.embed, X, [net.model])
        ensure_finite(steps.ctx, z, steps.done)
        km = kmeans(z, k, n_init=self.hparams["n_init"], seed=steps.ctx.seed)
        steps.ctx.evaluate(0, z, km.labels)
        return torch.nn.Parameter(km.centers.clone()), km.labels

    def _cluster(self, net: "_Autoencoder", X: torch.Tensor, centers: torch.nn.Parameter, start: torch.Tensor,
                 generator: torch.Generator, steps: Steps) -> tuple[int, int]:
        """Stage 2: encoder and centroids minimise KL(P ‖ Q) by SGD, P recomputed on all data every T iterations;
        stops once fewer than tol of the samples changed cluster (DEC §3.1.3). Returns (iterations run, last evaluated)."""
        hp, ctx, device = self.hparams, steps.ctx, X.device
        optimiser = torch.optim.SGD(list(encoder_params(net.model, net.conv)) + [centers], lr=hp["lr"], momentum=hp["momentum"])
        labels_last = start
        p_all = None
        last_eval = 0
        order = torch.randperm(len(X), generator=generator).to(device)
        position = 0
        iteration = 0
        for iteration in range(hp["iterations"]):
            if iteration % hp["update_interval"] == 0:  # the target is part of training: in its precision too
                with mixed_precision(device, hp["precision"]):
                    z = embed_chunks(net.embed, X, [net.model]).float()
                ensure_finite(ctx, z, steps.done)
                q_all = dec_soft_assignment(z, centers.detach(), hp["alpha"])
                p_all = dec_target(q_all)
                labels = q_all.argmax(1)
                if iteration > 0:
                    changed = float((labels != labels_last).float().mean())  # one sync per target update
                    ctx.log(steps.done, changed=changed)
                    labels_last = labels
                    if changed < hp["tol"]:
                        break
            if position + hp["batch_size"] > len(X):
                # non_blocking: a new pass's order reaches the device without a stream sync
                order, position = torch.randperm(len(X), generator=generator).to(device, non_blocking=True), 0
            index = order[position:position + hp["batch_size"]]
            position += hp["batch_size"]
            with mixed_precision(device, hp["precision"]):
                z_batch = net.encode(net.prepare(X[index]))
            q = dec_soft_assignment(z_batch.float(), centers, hp["alpha"])
            loss = dec_clustering_loss(q, p_all[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps.tick(f"clustering iteration {iteration + 1}/{hp['iterations']}", L_clu=loss.detach(), L_total=loss.detach())
            if hp["eval_every"] and (iteration + 1) % hp["eval_every"] == 0 and iteration + 1 < hp["iterations"]:
                z, labels = self._assign(net, X, centers, steps)
                ctx.evaluate(iteration + 1, z, labels)
                last_eval = iteration + 1
        else:
            iteration = hp["iterations"]
        return iteration, last_eval

    def _assign(self, net: "_Autoencoder", X: torch.Tensor, centers: torch.Tensor, steps: Steps
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, argmax_k q_ik) of all samples, the embedding checked finite."""
        z = embed_chunks(net.embed, X, [net.model])
        ensure_finite(steps.ctx, z, steps.done)
        return z, dec_soft_assignment(z, centers.detach(), self.hparams["alpha"]).argmax(1)


@dataclass
class _Autoencoder:
    """DEC's network and how to use it: inputs prepared for it, their embedding, the reconstruction (logits for images)."""

    model: torch.nn.Module
    prepare: Callable[[torch.Tensor], torch.Tensor]
    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]
    conv: bool  # DFC's convolutional autoencoder (images in [0, 1], reconstructed as logits), else DEC's MLP

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.prepare(x))


def encoder_params(model, conv: bool):
    """The encoder's parameters (the decoder is dropped after pretraining, DEC §3.2)."""
    if conv:
        return [p for name, p in model.named_parameters() if not name.startswith("untrunk")]
    return model.encoder.parameters()
