"""FCMI: Deep Fair Clustering via Maximizing and Minimizing Mutual Information (Zeng, Li, Hu, Peng, Lv & Peng, CVPR 2023).

The losses are small pure functions (one per equation); the class only wires them. The method's docstring
lists every interpretation of the paper and its public code.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..data import BiasedDataset
from ..nn import FCMINet, cosine_assignment, embed_chunks, group_sorted_batches, synchronize
from ..params import Param
from .base import Method, RunContext, Steps, ensure_finite, n_clusters_param
from .kmeans import kmeans

EPS = 1e-12


def fcmi_soft_assignment(h: torch.Tensor, centers: torch.Tensor, tau: float) -> torch.Tensor:
    """q_ik = exp(cos(h_i, u_k)/τ) / Σ_j exp(cos(h_i, u_j)/τ) (FCMI supplementary Eq. 1)."""
    return cosine_assignment(h, centers, tau)


def fcmi_joint(q: torch.Tensor, groups: torch.Tensor, n_groups: int | None = None) -> torch.Tensor:
    """K × M joint p(c, g) = Σ_{i∈g} q_ic / Σ_i Σ_c q_ic over the batch (FCMI Eq. 7–8 in its public code)."""
    if n_groups is None:
        n_groups = int(groups.max()) + 1
    counts = q.T @ torch.eye(n_groups, device=q.device, dtype=q.dtype)[groups]
    return counts / counts.sum()


def fcmi_clustering_loss(q: torch.Tensor) -> torch.Tensor:
    """L_clu = Σ_c p(c) log p(c) + (1/B) Σ_i Σ_k −q_ik log q_ik = −H(C) + H(C|X) (FCMI Eq. 7)."""
    p_c = q.mean(0)
    return (p_c * torch.log(p_c.clamp_min(EPS))).sum() - (q * torch.log(q.clamp_min(EPS))).sum(1).mean()


def fcmi_fairness_loss(q: torch.Tensor, groups: torch.Tensor, n_groups: int | None = None) -> torch.Tensor:
    """L_fair = I(C; G) = Σ_{c,g} p(c,g) log[p(c,g) / (p(c) p(g))] from the batch joint (FCMI Eq. 8)."""
    joint = fcmi_joint(q, groups, n_groups)
    p_c, p_g = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    log_ratio = torch.log(joint.clamp_min(EPS)) - torch.log(p_c.clamp_min(EPS)) - torch.log(p_g.clamp_min(EPS))
    return (joint * log_ratio).sum()


def fcmi_input_squash(X: torch.Tensor, is_image: bool) -> tuple[float, float] | None:
    """(mean, sd) over every entry of vector data outside [−1, 1], for the network's tanh((x − mean) / sd) input (the
    public code's GlT_GaussainlizeAndTanh); None for images and for vectors already in [−1, 1] (HAR)."""
    if is_image or (float(X.min()) >= -1.0 and float(X.max()) <= 1.0):
        return None
    X = X.double()
    sd = float(X.std(unbiased=False))
    return float(X.mean()), sd if sd > 0 else 1.0


def fcmi_reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """L_rec = mean squared error between inputs and reconstructions (FCMI Eq. 11)."""
    return F.mse_loss(x_hat, x)


class FCMI(Method):
    """FCMI: maximise I(X; C), minimise I(C; G), with k-means centres on an L2-normalised embedding each epoch.

    An autoencoder with an L2-normalised embedding h of dimension D (K by default); cluster centres U from k-means on all embeddings
    at the start of every epoch (not learned); soft assignment q_ik = softmax_k(cos(h_i, u_k)/τ) (supplementary Eq. 1).
    Per mini-batch the joint p(c, g) = Σ_{i∈g} q_ic / Σ_i Σ_c q_ic gives
    - L_clu = Σ_c p(c) log p(c) + (1/B) Σ_i Σ_k −q_ik log q_ik = −H(C) + H(C|X)  (maximise I(X; C));
    - L_fair = Σ_{c,g} p(c,g) log[p(c,g) / (p(c) p(g))] = I(C; G)  (minimise it);
    - L_rec = MSE(x, x̂), one decoder per group by default.
    L = L_rec + α·L_clu + β·L_fair after `warmup_epochs` epochs of L_rec alone (supplementary Algorithm 1).

    Interpretations (the main paper is not in ../shared/papers; losses and defaults follow the public code):
    - α weighs both parts of L_clu (the public code sets InfoBalanceLoss = OneHot = LambdaClu = 0.04) and β = 0.20
      (its InfoFairLoss; its --LambdaFair flag is overwritten by that default). Both use the same τ = 0.1.
    - p(c, g) entries are clamped at 1e-12 inside the logarithms (the public code replaces zeros by a tenth of the
      smallest positive entry): a group absent from a batch adds nothing and yields no NaN.
    - k-means is skipped during warm-up epochs that are not evaluated: its centres are not used by L_rec, so training
      is unchanged. It runs on the device (k-means++, best of `kmeans_n_init`, ≤ `kmeans_max_iter` Lloyd steps; the
      public code uses faiss with nredo 10, niter 300). The assignment evaluated is argmax_k q_ik with the centres
      of the k-means run on the current embedding (the public code's pred is the same rule).
    - Images are resized to 28 × 28 on the device (the public conv net's size) and scaled to [−1, 1]. Vectors already
      in [−1, 1] (HAR) are used as given; other vectors (uploaded tables, ResNet-50 features, expression profiles)
      enter as tanh((x − mean) / sd) with one mean and sd over all their entries, the public code's transform of
      its ResNet-50 features (FeatureType GlT_GaussainlizeAndTanh). The decoder ends in Tanh for every input (its
      ActivationType), so x and x̂ share a range, and on z-scored tables L_rec is not led by rare one-hot levels
      (measurements: docs/METHOD_NOTES.md#fcmi).
    - The embedding's dimension D is the public code's representation_dim: K by default (embedding_dim = 0); its
      main.py sets 5 for MTFL, its only K = 2 dataset. The default stays K for every data set (measurements:
      docs/METHOD_NOTES.md#fcmi).
    - The last incomplete mini-batch of an epoch is dropped, as the public code's DataLoader(drop_last=True): the
      estimates of p(c) and p(c, g) from a few samples are noisy, and β weighs them every epoch.
    """

    id = "fcmi"
    name = "FCMI"
    summary = ("Fair clustering via maximising and minimising mutual information: an autoencoder whose normalised "
               "embedding is softly assigned to k-means centres (recomputed every epoch); α·(−H(C) + H(C|X)) makes "
               "clusters confident and balanced in size, β·I(C;G) makes them independent of the group.")
    paper = ("Zeng, Li, Hu, Peng, Lv & Peng 2023, Deep Fair Clustering via Maximizing and Minimizing Mutual "
             "Information: Theory, Algorithm and Metric (CVPR)")
    needs_groups = True
    quick = {"epochs": 10, "warmup_epochs": 4, "eval_every": 5, "batch_size": 256, "kmeans_n_init": 3}
    quick_minutes = 2.3
    divergence_settings = ("lr", "alpha", "beta")
    params = (
        n_clusters_param(),
        Param("alpha", 0.04, low=0, high=1e4, symbol="α",
              help="Weight of L_clu = −H(C) + H(C|X) (Eq. 7, 12).", source="FCMI public code --LambdaClu: 0.04"),
        Param("beta", 0.20, low=0, high=1e4, symbol="β",
              help="Weight of L_fair = I(C;G) (Eq. 8, 12).", source="FCMI public code InfoFairLoss: 0.20"),
        Param("embedding_dim", 0, kind="int", low=0, high=4096, symbol="D",
              help="Dimension of the L2-normalised embedding h (0 = K, the number of clusters).",
              source="FCMI public code --representation_dim: 0 (= K); 5 for MTFL, its K = 2 dataset"),
        Param("tau", 0.1, low=0, low_open=True, high=100, symbol="τ",
              help="Temperature of the soft assignment softmax(cos/τ) (supplementary Eq. 1).",
              source="FCMI supplementary §2: 0.1"),
        Param("epochs", 300, kind="int", low=1, high=100_000, help="Training epochs, warm-up included.",
              source="FCMI supplementary Algorithm 1: max_epoch 300"),
        Param("warmup_epochs", 20, kind="int", low=0, high=100_000,
              help="Epochs of L_rec alone before the clustering and fairness terms join (must be < epochs).",
              source="FCMI supplementary Algorithm 1: warmup_epoch 20"),
        Param("lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η", help="Adam learning rate.",
              source="FCMI public code --LearnRate: 1e-3"),
        Param("batch_size", 512, kind="int", low=2, high=65536, symbol="B", help="Samples per mini-batch.",
              source="FCMI public code --batch_size: 512"),
        Param("group_decoders", True, kind="bool", help="One decoder per group (else one shared decoder).",
              source="FCMI public code --GroupWiseDecoder: 1"),
        Param("kmeans_n_init", 10, kind="int", low=1, high=100, help="k-means restarts at each epoch start.",
              source="FCMI public code: faiss nredo 10"),
        Param("kmeans_max_iter", 300, kind="int", low=1, high=10_000, help="Lloyd iterations per k-means restart at most.",
              source="FCMI public code: faiss niter 300"),
        Param("eval_every", 10, kind="int", low=0, high=100_000,
              help="Evaluate every this many epochs (also at the end of warm-up and at the last epoch; 0 = those only).",
              source="ours (the public code evaluates every epoch)"),
    )

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        hp = self.hparams
        if self.n_clusters(data) < 2:
            raise ValueError(f"{self.name}: needs K ≥ 2 clusters (the embedding has dimension K)")
        self.check_batch_size(len(data))
        if hp["warmup_epochs"] >= hp["epochs"]:
            raise ValueError(f"{self.name}: warm-up epochs ({hp['warmup_epochs']}) must be fewer than epochs "
                             f"({hp['epochs']}), or the clustering and fairness terms never train")

    def embedding_dim(self, k: int) -> int:
        """D: the embedding_dim hyperparameter, or K when it is 0 (the public code's default)."""
        return int(self.hparams["embedding_dim"] or k)

    def train(self, data: BiasedDataset, ctx: RunContext) -> "FCMI":
        hp = self.hparams
        k, m = self.n_clusters(data), data.n_groups
        X = data.X.to(ctx.device)
        G = torch.from_numpy(data.g).to(ctx.device)
        net = FCMINet(data.X.shape[1:], self.embedding_dim(k), m, group_decoders=hp["group_decoders"],
                      squash=fcmi_input_squash(X, data.is_image)).to(ctx.device)
        optimiser = torch.optim.Adam(net.parameters(), lr=hp["lr"])
        rng = np.random.default_rng(ctx.seed)
        epochs, warmup = hp["epochs"], hp["warmup_epochs"]
        eval_epochs = self._evaluation_epochs()
        steps = Steps(ctx, epochs * (len(X) // hp["batch_size"]))
        epoch_times: list[float] = []
        centers = h_all = None
        for epoch in range(1, epochs + 2):  # the extra pass only clusters and evaluates the final embedding
            t0 = time.perf_counter()
            if epoch > warmup or (epoch - 1) in eval_epochs:  # warm-up epochs train L_rec alone: no centres needed
                h_all, centers = self._centres(net, X, k, epoch, steps)
                if (epoch - 1) in eval_epochs:
                    ctx.evaluate(epoch - 1, h_all, fcmi_soft_assignment(h_all, centers, hp["tau"]).argmax(1))
            if epoch > epochs:
                break
            self._train_epoch(net, optimiser, X, G, data.g, m, centers, epoch, rng, steps)
            synchronize(ctx.device)
            epoch_times.append(time.perf_counter() - t0)
        self.embedding_ = h_all.cpu().numpy()
        self.labels_ = fcmi_soft_assignment(h_all, centers, hp["tau"]).argmax(1).cpu().numpy()
        self.centers_ = centers.cpu().numpy()
        self.model_ = net
        warm, fair = epoch_times[:warmup], epoch_times[warmup:]
        self.timings_ = {"warmup_s": sum(warm), "warmup_s_per_epoch": sum(warm) / max(len(warm), 1),
                         "train_s": sum(fair), "train_s_per_epoch": sum(fair) / max(len(fair), 1), "epochs": epochs}
        return self

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """The most probable cluster under the cosine assignment (supplementary Eq. 1) of the fitted embedding."""
        h = embed_chunks(self.model_.embed, X, [self.model_])
        return fcmi_soft_assignment(h, torch.from_numpy(self.centers_).to(X.device), self.hparams["tau"]).argmax(1)

    def _evaluation_epochs(self) -> set[int]:
        """The epochs after which the run is evaluated: every eval_every, the end of warm-up and the last."""
        hp = self.hparams
        epochs = {hp["epochs"], hp["warmup_epochs"]} - {0}
        if hp["eval_every"]:
            epochs |= set(range(hp["eval_every"], hp["epochs"] + 1, hp["eval_every"]))
        return epochs

    def _centres(self, net: FCMINet, X: torch.Tensor, k: int, epoch: int, steps: Steps) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding h of all data, the centres U: k-means on it, normalised), before an epoch (Algorithm 1, lines 2–3)."""
        hp = self.hparams
        steps.report(f"k-means before epoch {min(epoch, hp['epochs'])}")
        h_all = embed_chunks(net.embed, X, [net])
        ensure_finite(steps.ctx, h_all, steps.done)
        km = kmeans(h_all, k, n_init=hp["kmeans_n_init"], max_iter=hp["kmeans_max_iter"], seed=steps.ctx.seed + epoch)
        return h_all, F.normalize(km.centers, dim=1)

    def _train_epoch(self, net: FCMINet, optimiser: torch.optim.Optimizer, X: torch.Tensor, G: torch.Tensor,
                     groups: np.ndarray, m: int, centers: torch.Tensor | None, epoch: int, rng: np.random.Generator,
                     steps: Steps) -> None:
        """One epoch of group-sorted full mini-batches: L_rec during warm-up, then L_rec + α·L_clu + β·L_fair (Eq. 12)."""
        hp = self.hparams
        warm = epoch <= hp["warmup_epochs"]
        order, batches = group_sorted_batches(groups, hp["batch_size"], rng, m, min_batch=hp["batch_size"])
        order = torch.from_numpy(order).to(X.device)
        net.train()
        for start, end, counts in batches:
            index = order[start:end]
            x = net.prepare(X[index])
            h = net.encode(x)
            loss_rec = fcmi_reconstruction_loss(x, net.decode(h, counts))
            if warm:
                loss = loss_rec
                scalars = {"L_rec": loss_rec.detach(), "L_total": loss.detach()}
            else:
                q = fcmi_soft_assignment(h, centers, hp["tau"])
                loss_clu = fcmi_clustering_loss(q)
                loss_fair = fcmi_fairness_loss(q, G[index], m)
                loss = loss_rec + hp["alpha"] * loss_clu + hp["beta"] * loss_fair
                with torch.no_grad():
                    p_c = q.mean(0)
                    h_c = -(p_c * torch.log(p_c.clamp_min(EPS))).sum()
                scalars = {"L_rec": loss_rec.detach(), "L_clu": loss_clu.detach(), "L_fair": loss_fair.detach(),
                           "L_total": loss.detach(), "H_C": h_c, "H_C_given_X": loss_clu.detach() + h_c}
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps.tick(f"{'warm-up ' if warm else ''}epoch {epoch}/{hp['epochs']}", **scalars)
