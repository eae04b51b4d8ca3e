"""DFC: Deep Fair Clustering for Visual Learning (Li, Zhao & Liu, CVPR 2020).

The losses are small pure functions (one per equation); the class only wires them. The method's docstring
lists every interpretation of the paper and its public code.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from ..data import BiasedDataset
from ..nn import (DFCAutoencoder, GroupCycler, embed_chunks, grad_reverse, grl_coefficient, minibatches,
                  pretrain_autoencoder, student_t_assignment, synchronize, to_numpy, vae_kl)
from ..params import Param
from .base import Method, RunContext, Steps, ensure_finite, n_clusters_param
from .dec import dec_clustering_loss, dec_target
from . import dfc_released
from .dfc_released import GROUP_FILES, REPOSITORY, load_released
from .kmeans import kmeans

EPS = 1e-12


def group_one_hot(groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """B × M one-hot matrix of group labels (indexing an identity: no device sync)."""
    return torch.eye(n_groups, device=groups.device)[groups]


def dfc_target(q: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Group-wise DEC target: p_ik = (q_ik² / f_{g(i)k}) / Σ_k' (q_ik'² / f_{g(i)k'}), f_gk = Σ_{j∈g} q_jk (DFC Eq. 4)."""
    onehot = group_one_hot(groups, n_groups)
    frequency = onehot.T @ q  # M × K soft cluster sizes within each group
    weight = q.pow(2) / frequency[groups].clamp_min(EPS)
    return weight / weight.sum(1, keepdim=True)


def dfc_clustering_loss(q: torch.Tensor, target: torch.Tensor, n_groups: int) -> torch.Tensor:
    """L_c = (1/M) Σ_g Σ_{i∈g} Σ_k p_ik log(p_ik / q_ik), KL of target to assignment summed over the batch (DFC Eq. 5; public code's scaling)."""
    return (torch.xlogy(target, target) - target * torch.log(q.clamp_min(EPS))).sum() / n_groups


def dfc_fairness_loss(logits: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """L_f = cross-entropy of the discriminator's group prediction from the soft assignment (DFC Eq. 2)."""
    return F.cross_entropy(logits, groups)


def dfc_structural_loss(q: torch.Tensor, q_hat: torch.Tensor) -> torch.Tensor:
    """L_s for one group: ‖Q̂ Q̂ᵀ − Q Qᵀ‖², squared Frobenius norm of the affinity difference (DFC Eq. 3)."""
    return (q_hat @ q_hat.T - q @ q.T).pow(2).sum()


def discriminator_accuracy(logits: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Share of samples whose group the discriminator predicts correctly (a 0-d tensor: no host sync)."""
    return (logits.argmax(1) == groups).float().mean()


def dfc_lr(lr: float, progress: float, gamma: float = 10.0, power: float = 0.75) -> float:
    """Learning rate lr·(1 + γt)^(−power) at training progress t (DFC §5.1, public inv_lr_scheduler)."""
    return lr * (1.0 + gamma * progress) ** (-power)


def vae_reconstruction_loss(x: torch.Tensor, logits: torch.Tensor, is_image: bool) -> torch.Tensor:
    """−log p(x|z) per sample: Bernoulli (BCE summed over pixels) for images in [0, 1], Gaussian (½ squared error) for vectors."""
    if is_image:
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    return 0.5 * F.mse_loss(logits, x, reduction="sum") / len(x)


class Discriminator(nn.Module):
    """DFC's adversarial network (public code, AdversarialNetwork): K → 32 → 32 → M, ReLU, dropout 0.5."""

    def __init__(self, n_clusters: int, n_groups: int, hidden: int = 32, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_clusters, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_groups))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return self.net(q)


def group_model_report(name: str, size: int, y: np.ndarray | None, start_labels: np.ndarray, labels: np.ndarray,
                       epochs: dict | None = None) -> dict:
    """One row of the per-group model table: the shared encoder's k-means (the unfair start) against the group's own
    model, both on this group's samples alone; ACC and NMI (arithmetic) when the data has classes."""
    row = {"group": name, "samples": int(size), **(epochs or {})}
    if y is not None:
        row.update(start_acc=metrics.clustering_accuracy(y, start_labels), start_nmi=metrics.nmi(y, start_labels),
                   model_acc=metrics.clustering_accuracy(y, labels), model_nmi=metrics.nmi(y, labels))
    return row


def changed_share(before: torch.Tensor, after: torch.Tensor) -> float:
    """Share of samples whose hard assignment changed between two passes (DEC's stopping test, tol 0.1%)."""
    return float((before != after).float().mean())


class DFC(Method):
    """Deep Fair Clustering: adversarial fairness on the soft assignments, structural preservation, group-wise DEC.

    Encoder F → embedding z → Student-t soft assignment q (learned centroids, Eq. 6). Three terms (Eq. 7–8):
    - L_c (Eq. 4–5): DEC's KL to the sharpened target, the target computed within each group;
    - L_f (Eq. 2): a discriminator D reads q and predicts the group (cross-entropy); D minimises α_f·L_f, the encoder
      and centroids maximise it through a gradient-reversal layer whose coefficient ramps 2/(1+e^(−10t)) − 1;
    - L_s (Eq. 3): Σ_g ‖Q̂_g Q̂_gᵀ − Q_g Q_gᵀ‖², Q̂_g the soft assignments of a DEC model fitted on group g alone, frozen.
    Encoder and centroids minimise L_c − α_f·L_f + α_s·L_s.

    Three stages. The public code trains only the third: its main.py loads released files for the first two (a VAE
    encoder pretrained for 10,000 steps with k-means centroids; per group, an encoder and DEC model trained on that
    group alone, separately from the shared one, for 800 epochs by their BatchNorm counters). Here:
    1. A (V)AE pretrained on all data for `pretrain_steps` (BCE + KL for images in [0, 1], squared error + KL for
       vectors), then k-means on its embedding μ: the centroids and the unfair start (evaluation 0).
    2. Per group, its own autoencoder (its own initialisation and pretraining, `group_pretrain_epochs` on the group
       alone) and a DEC model on it (k-means start, DEC's KL with the batch target) for at most `group_dec_epochs`,
       stopping early once fewer than `group_dec_tol` of the group's samples change cluster in an epoch (DEC's test;
       no labels decide anything). Its batches are `batch_per_group`, as the released models' counters imply (117
       batches per MNIST epoch). The table of each group's model against the shared k-means on that group is saved
       with the run (Monitor).
    3. Fair training of the shared encoder and centroids (the public code).
    `init = released` replaces stages 1–2 by the authors' files (MNIST-USPS only; dfc_released.py): 28 × 28 digits
    framed by 2 zero pixels to 32 × 32, as those weights were trained.

    Interpretations (each documented where the paper and its public code are silent or disagree):
    - Defaults follow the public code (lr 1e-2 with weight decay 5e-4, discriminator ×10, batch 512 per group,
      20,000 iterations); the paper's text says lr 1e-4. Schedule lr·(1 + 10t)^(−0.75), t = iteration / iterations.
    - Loss scaling as in the public code: L_c and L_s are sums over the batch (KLDivLoss / MSELoss with
      reduction="sum"), averaged over groups (its 0.5 per group for two groups, 1/M for M groups); L_c is KL(P ‖ Q),
      target P against assignment Q, as DEC (the paper's Eq. 5 names them the other way round). L_f is the
      mean cross-entropy; the public code's one sigmoid output for two groups becomes M logits for M groups.
    - The target P of L_c is computed on each group's half of the mini-batch (public code), not over the whole group.
    - The autoencoder is a convolutional VAE (paper §5.1; public encoder with μ / log σ² heads; z is sampled while
      training). The decoders are ours (not released). The split of the released group models' 800 epochs between
      pretraining and DEC is not published: the defaults give 200 and at most 600.
    - Images are resized to 32 × 32 on the device (the public code's input size); vectors use the encoder's fully
      connected part (d → 1024 → 512 → 64). Any number of channels and groups.
    - disc_acc is the discriminator's accuracy on its training batches, which hold b samples of each group, so its
      chance (majority-group) rate there is 1/M, logged as disc_chance. Evaluations are indexed by iteration
      (0 = after stages 1–2: the shared encoder's k-means, the unfair start).
    """

    id = "dfc"
    signal_metrics = ("disc_acc",)
    name = "DFC"
    summary = ("Deep Fair Clustering: a discriminator tries to read the group from the soft cluster assignments while "
               "the encoder learns, through gradient reversal, to hide it (α_f); assignments keep the structure of "
               "per-group DEC clusterings (α_s); a DEC target computed within each group sharpens them.")
    paper = "Li, Zhao & Liu 2020, Deep Fair Clustering for Visual Learning (CVPR)"
    needs_groups = True
    eval_unit = "iteration"
    accuracy_caption = ("disc_acc is the discriminator's accuracy at reading the group from the soft assignments, on "
                        "training batches that hold b samples of each group, so chance is 1/M (dashed). It starts "
                        "near chance (the assignments have not been looked at yet), rises as the discriminator learns, "
                        "and the encoder pushes it back: a fair run ends near the dashed line, from above or below. "
                        "The held-out bias probe (right, under the metrics) reads the embedding, not the assignments.")
    # b = 64, not 256: L_c sums over the batch and L_s over its b² pairs while L_f is a batch mean, so the batch size
    # sets how much the adversary weighs against structure. One epoch of each group's own model, not two: a sharper Q̂
    # holds the fair stage to per-group structure (measurements: docs/METHOD_NOTES.md#dfc).
    quick = {"pretrain_steps": 80, "group_pretrain_epochs": 1, "group_dec_epochs": 1, "iterations": 300,
             "eval_every": 100, "batch_per_group": 64, "n_init": 5}
    # On a table, a short pretraining leaves an embedding whose per-group k-means splits at random; a longer one lets it
    # find the table's strata in both groups (measurements: docs/METHOD_NOTES.md#dfc).
    quick_tables = {"pretrain_steps": 500, "group_pretrain_epochs": 10, "group_dec_epochs": 10}
    quick_minutes = 2.4
    divergence_settings = ("lr", "alpha_s", "alpha_f")
    params = (
        n_clusters_param(),
        Param("init", "scratch", kind="choice", choices=("scratch", "released"),
              help="scratch: train stages 1–2 here. released: start from the authors' trained models for MNIST-USPS "
                   "(shared VAE encoder, k-means centroids, per-group encoder and DEC model), downloaded from their "
                   "repository with their SHA-256 checked, or read from the data folder's dfc_released/ folder.",
              source=f"DFC public code main.py loads save/*.pth ({REPOSITORY})"),
        Param("alpha_f", 1.0, low=0, high=1e6, symbol="α_f",
              help="Weight of the fairness-adversarial loss L_f (Eq. 7–8).", source="DFC §5.1 and public code --coeff_fair: 1"),
        Param("alpha_s", 1.0, low=0, high=1e6, symbol="α_s",
              help="Weight of the structural preservation loss L_s (Eq. 3, 7).", source="DFC §5.1 and public code --coeff_par: 1"),
        Param("alpha", 1.0, low=0, low_open=True, high=1000, symbol="α",
              help="Degrees of freedom of the Student-t assignment (Eq. 6).", source="DFC §5.1: 1"),
        Param("latent_dim", 64, kind="int", low=1, high=1024, symbol="d_z", help="Embedding size z.",
              source="DFC public code: 64"),
        Param("lr", 1e-2, low=0, low_open=True, high=10.0, log=True, symbol="η",
              help="Adam learning rate of encoder and centroids, decayed as η(1 + 10t)^(−0.75).",
              source="DFC public code --lr 1e-2 (paper text: 1e-4)"),
        Param("disc_lr_mult", 10.0, low=0, low_open=True, high=1000, symbol="η_D/η",
              help="The discriminator's learning rate as a multiple of η.", source="DFC §5.1 and public code --adv_mult: 10"),
        Param("weight_decay", 5e-4, low=0, high=1.0, symbol="λ", help="Adam weight decay of all parameters.",
              source="DFC public code: 5e-4"),
        Param("grl_ramp", 10.0, low=0, high=1000, symbol="γ_GRL",
              help="Gradient-reversal coefficient 2/(1 + e^(−γ t)) − 1 over progress t (0 = reversal off).",
              source="DFC public code calc_coeff: alpha 10"),
        Param("batch_per_group", 512, kind="int", low=2, high=65536, symbol="b",
              help="Samples of each group in every mini-batch of fair training (M·b per step) and of the per-group "
                   "models' training.", source="DFC §5.1 and public code --bs: 512"),
        Param("iterations", 20000, kind="int", low=1, high=10_000_000, help="Fair training iterations.",
              source="DFC public code --iters: 20,000"),
        Param("eval_every", 5000, kind="int", low=0, high=10_000_000,
              help="Evaluate every this many iterations (0 = only after pretraining and at the end).",
              source="DFC public code --test_interval: 5,000"),
        Param("variational", True, kind="bool", help="Pretrain VAEs (paper §5.1) rather than plain autoencoders.",
              source="DFC §5.1; public Encoder has μ / log σ² heads"),
        Param("pretrain_steps", 10000, kind="int", low=0, high=10_000_000,
              help="Steps of the shared (V)AE's pretraining on all data (stage 1).",
              source="DFC public code: the released encoder_pretrain.pth, 10,000 steps"),
        Param("pretrain_lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η_pre",
              help="Adam learning rate of the (V)AE pretrainings and of the per-group DEC models.", source="ours"),
        Param("pretrain_batch_size", 256, kind="int", low=2, high=65536, help="Batch size of the shared (V)AE's pretraining.",
              source="ours (DEC: 256)"),
        Param("group_pretrain_epochs", 200, kind="int", low=0, high=100_000,
              help="Epochs of each group's own (V)AE on that group alone (stage 2).",
              source="ours: the released per-group encoders ran 800 epochs in all (BatchNorm counters); split not published"),
        Param("group_dec_epochs", 600, kind="int", low=0, high=100_000,
              help="At most this many DEC epochs of each group's model on that group (stage 2; 0 = k-means only).",
              source="ours: with group_pretrain_epochs, the released models' 800 epochs"),
        Param("group_dec_tol", 0.001, low=0, high=1,
              help="Stop a group's DEC once fewer than this share of its samples change cluster in an epoch (0 = never).",
              source="DEC (Xie et al. 2016): tol 0.1%"),
        Param("n_init", 10, kind="int", low=1, high=100, help="k-means restarts (all-data and per-group centroids).",
              source="scikit-learn default"),
    )

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        hp = self.hparams
        if hp["init"] == "released":
            wanted = list(GROUP_FILES)
            if (tuple(data.X.shape[1:]) != (1, 28, 28) or list(data.group_names) != wanted or self.n_clusters(data) != 10
                    or hp["latent_dim"] != 64):
                raise ValueError(f"{self.name}: the released models are MNIST-USPS's: 1 × 28 × 28 digits, groups "
                                 f"{' and '.join(wanted)} in that order, K = 10, latent_dim 64. This data has "
                                 f"{' × '.join(map(str, data.X.shape[1:]))} samples and groups "
                                 f"{', '.join(map(str, data.group_names))}; choose init scratch or MNIST-USPS")
        sizes = np.bincount(data.g, minlength=data.n_groups)
        smallest = int(sizes.argmin())
        name = data.group_names[smallest] if smallest < len(data.group_names) else str(smallest)
        self.check_batch_size(int(sizes[smallest]), f"samples of its smallest group ({name})", "batch_per_group")
        k = self.n_clusters(data)
        if k > sizes[smallest]:
            raise ValueError(f"{self.name}: K = {k} clusters is more than the {sizes[smallest]} samples of group {name}, "
                             "which gets its own clustering for L_s")
        if hp["init"] != "released" and hp["pretrain_steps"]:
            self.check_batch_size(len(data), "samples", "pretrain_batch_size")

    def train(self, data: BiasedDataset, ctx: RunContext) -> "DFC":
        hp = self.hparams
        k, m = self.n_clusters(data), data.n_groups
        X = data.X.to(ctx.device)
        members = [np.flatnonzero(data.g == g) for g in range(m)]
        names = [str(data.group_names[g]) if g < len(data.group_names) else str(g) for g in range(m)]
        released = hp["init"] == "released"
        generator = torch.Generator().manual_seed(ctx.seed)
        steps = Steps(ctx, self._planned_steps(members))
        t0 = time.perf_counter()
        if released:  # stages 1–2 from the authors' files
            encoder, released_centers, group_models = self._released(data, ctx)
        else:
            encoder = self._pretrain(X, hp["pretrain_steps"], hp["pretrain_batch_size"], generator, steps, "shared (V)AE")
            released_centers = group_models = None
        t_pre = time.perf_counter() - t0
        mu_all, centers_init, start = self._initialise_centres(encoder, X, k, released_centers, steps)

        t1 = time.perf_counter()
        if group_models is None:
            group_models = [self._group_model(X[torch.from_numpy(rows).to(ctx.device)], len(rows), f"{g + 1}/{m} ({names[g]})",
                                              g, k, generator, steps) for g, rows in enumerate(members)]
        self.group_report_ = self._group_report(X, data, members, names, group_models, start)
        save = getattr(ctx, "save_table", None)
        if save is not None:
            save("group_models", self.group_report_)
        ctx.evaluate(0, mu_all, start, extra={"disc_chance": 1.0 / m})
        synchronize(ctx.device)
        t_group = time.perf_counter() - t1

        t2 = time.perf_counter()
        mu_all, labels, centers, critic = self._fair_training(encoder, centers_init, group_models, X, data, start, steps)
        synchronize(ctx.device)
        t_fair = time.perf_counter() - t2
        self.embedding_ = mu_all.cpu().numpy()
        self.labels_ = to_numpy(labels)
        self.centers_ = centers.detach().cpu().numpy()
        self.model_, self.critic_ = encoder, critic
        self.group_models_ = group_models
        iterations = hp["iterations"]
        iters_per_epoch = max(1, int(np.bincount(data.g).max()) // hp["batch_per_group"])  # a pass over the largest group
        self.timings_ = {"pretrain_s": t_pre, "pretrain_steps": 0 if released else hp["pretrain_steps"],
                         "group_models_s": t_group, "train_s": t_fair, "iterations": iterations,
                         "s_per_iteration": t_fair / max(iterations, 1),
                         "train_s_per_epoch": t_fair / max(iterations, 1) * iters_per_epoch}
        return self

    def _planned_steps(self, members: list[np.ndarray]) -> int:
        """Steps of the three stages (stages 1–2 none with the released models; a group's DEC may stop earlier)."""
        hp = self.hparams
        if hp["init"] == "released":
            return hp["iterations"]
        b = hp["batch_per_group"]
        group_steps = sum(-(-len(rows) // b) * (hp["group_pretrain_epochs"] + hp["group_dec_epochs"]) for rows in members)
        return hp["pretrain_steps"] + group_steps + hp["iterations"]

    def _new_autoencoder(self, data_shape, pad: int = 0) -> DFCAutoencoder:
        return DFCAutoencoder(data_shape, self.hparams["latent_dim"], variational=self.hparams["variational"], pad=pad)

    def _pretrain(self, X: torch.Tensor, steps: int | None, batch: int, generator: torch.Generator, counter: Steps,
                  what: str, epochs: int | None = None) -> DFCAutoencoder:
        """A new (V)AE trained to reconstruct X (BCE or squared error, + KL when variational), for `steps` steps or
        `epochs` passes."""
        ae = self._new_autoencoder(X.shape[1:]).to(X.device)
        per_epoch = -(-len(X) // batch)
        planned = steps if epochs is None else epochs * per_epoch
        rec_name, kl_name = ("L_rec", "L_kl") if epochs is None else ("L_group_rec", "L_group_kl")

        def forward(x: torch.Tensor):
            z, mu, logvar = ae.encode(x)
            return ae.decode(z), mu, logvar

        def loss(x: torch.Tensor, output) -> dict[str, torch.Tensor]:
            logits, mu, logvar = output
            kl = vae_kl(mu, logvar) if logvar is not None else torch.zeros((), device=x.device)
            return {rec_name: vae_reconstruction_loss(x, logits, ae.is_image), kl_name: kl}

        done = pretrain_autoencoder(
            ae, X, forward, loss, lr=self.hparams["pretrain_lr"], batch_size=batch, generator=generator, steps=planned,
            prepare=ae.prepare, min_batch=2,
            on_step=lambda done, epoch, terms: counter.tick(f"pretraining the {what}: step {done}/{planned}", **terms))
        ae.epochs_ = {"pretrain_epochs": done / per_epoch}
        return ae

    def _initialise_centres(self, encoder: DFCAutoencoder, X: torch.Tensor, k: int, released_centers, steps: Steps
                            ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """(embedding μ of all data, initial centroids, their hard assignment: the unfair start): k-means on the
        pretrained embedding, or the released centroids."""
        hp, ctx = self.hparams, steps.ctx
        mu_all = embed_chunks(encoder.mean, X, [encoder])
        ensure_finite(ctx, mu_all, steps.done)
        if released_centers is not None:
            return mu_all, released_centers, to_numpy(student_t_assignment(mu_all, released_centers.to(X.device),
                                                                           hp["alpha"]).argmax(1))
        steps.report("k-means on the pretrained embedding")
        km = kmeans(mu_all, k, n_init=hp["n_init"], seed=ctx.seed)
        return mu_all, km.centers, to_numpy(km.labels)

    def _group_model(self, X_g: torch.Tensor, n_rows: int, label: str, g: int, k: int, generator: torch.Generator,
                     steps: Steps) -> tuple[DFCAutoencoder, torch.Tensor]:
        """Stage 2 for one group (its rows X_g): its own (V)AE, k-means on its embedding, then DEC until assignments
        settle; frozen."""
        hp, ctx, device = self.hparams, steps.ctx, X_g.device
        b = min(hp["batch_per_group"], n_rows)
        what = f"model of group {label}"
        encoder = self._pretrain(X_g, None, b, generator, steps, what, epochs=hp["group_pretrain_epochs"])
        encoder.untrunk = None  # the decoder is not needed from here on
        mu = embed_chunks(encoder.mean, X_g, [encoder])
        ensure_finite(ctx, mu, steps.done)
        km = kmeans(mu, k, n_init=hp["n_init"], seed=ctx.seed + 1 + g)
        centers = nn.Parameter(km.centers.clone().to(device))
        optimiser = torch.optim.Adam(list(encoder.parameters()) + [centers], lr=hp["pretrain_lr"])
        previous = km.labels.to(device) if torch.is_tensor(km.labels) else torch.as_tensor(km.labels, device=device)
        epochs_run, stopped = 0, "max epochs"
        for epoch in range(1, hp["group_dec_epochs"] + 1):
            encoder.train()
            for index in minibatches(n_rows, b, generator, device):
                if len(index) < 2:
                    continue
                q = student_t_assignment(encoder.encode(encoder.prepare(X_g[index]))[1], centers, hp["alpha"])
                loss = dec_clustering_loss(q, dec_target(q).detach())
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                steps.tick(f"DEC of the {what}: epoch {epoch}/{hp['group_dec_epochs']}", L_group_dec=loss.detach())
            epochs_run = epoch
            current = student_t_assignment(embed_chunks(encoder.mean, X_g, [encoder]), centers.detach(), hp["alpha"]).argmax(1)
            changed = changed_share(previous, current)
            previous = current
            if changed < hp["group_dec_tol"]:
                stopped = f"settled ({100 * changed:.2f}% changed)"
                # the steps this group no longer needs leave the progress bar's total
                steps.planned -= (hp["group_dec_epochs"] - epoch) * -(-n_rows // b)
                break
        encoder.eval()
        for p in encoder.parameters():
            p.requires_grad_(False)
        encoder.epochs_ = {**getattr(encoder, "epochs_", {}), "dec_epochs": epochs_run, "dec_stopped": stopped}
        return encoder, centers.detach()

    def _group_report(self, X: torch.Tensor, data: BiasedDataset, members: list[np.ndarray], names: list[str],
                      group_models, start: np.ndarray) -> list[dict]:
        """Per group: its own model's clustering of its samples against the shared start's (group_model_report)."""
        report = []
        for g, rows in enumerate(members):
            enc_g, centers_g = group_models[g]
            labels_g = student_t_assignment(embed_chunks(enc_g.mean, X[torch.from_numpy(rows).to(X.device)], [enc_g]),
                                            centers_g, self.hparams["alpha"]).argmax(1)
            y_g = data.y[rows] if data.y is not None else None
            report.append(group_model_report(names[g], len(rows), y_g, start[rows], to_numpy(labels_g),
                                             getattr(enc_g, "epochs_", None)))
        return report

    def _fair_training(self, encoder: DFCAutoencoder, centers_init, group_models, X: torch.Tensor, data: BiasedDataset,
                       start: np.ndarray, steps: Steps):
        """Stage 3: encoder and centroids minimise L_c − α_f·L_f + α_s·L_s (Eq. 7–8), the discriminator α_f·L_f, on
        mini-batches of b samples per group; evaluated every eval_every iterations and at the last.
        Returns (embedding μ, labels, centroids, discriminator) of the last evaluation."""
        hp, ctx, device = self.hparams, steps.ctx, X.device
        k, m, b = len(centers_init), data.n_groups, hp["batch_per_group"]
        encoder.untrunk = None
        centers = nn.Parameter(torch.as_tensor(centers_init, dtype=torch.float32, device=device).clone())
        critic = Discriminator(k, m).to(device)
        optimiser = torch.optim.Adam([
            {"params": list(encoder.parameters()) + [centers], "lr_mult": 1.0},
            {"params": critic.parameters(), "lr_mult": hp["disc_lr_mult"]},
        ], lr=hp["lr"], weight_decay=hp["weight_decay"])
        cycler = GroupCycler(data.g, m, b, np.random.default_rng(ctx.seed))
        group_of_batch = torch.arange(m, device=device).repeat_interleave(b)
        encoder.train()
        critic.train()
        disc_sum, disc_count = torch.zeros((), device=device), 0
        iterations = hp["iterations"]
        labels = torch.as_tensor(start, device=device)
        mu_all = None
        for it in range(1, iterations + 1):
            lr = dfc_lr(hp["lr"], (it - 1) / iterations)
            for group in optimiser.param_groups:
                group["lr"] = lr * group["lr_mult"]
            index = torch.from_numpy(cycler.next()).to(device, non_blocking=True)
            x = encoder.prepare(X[index])
            z = encoder.encode(x)[0]
            q = student_t_assignment(z, centers, hp["alpha"])
            with torch.no_grad():
                q_hat = [student_t_assignment(enc.encode(x[g * b:(g + 1) * b])[1], c, hp["alpha"])
                         for g, (enc, c) in enumerate(group_models)]
            target = dfc_target(q.detach(), group_of_batch, m)
            loss_c = dfc_clustering_loss(q, target, m)
            coeff = grl_coefficient(it / iterations, hp["grl_ramp"])
            logits = critic(grad_reverse(q, coeff))
            loss_f = dfc_fairness_loss(logits, group_of_batch)
            loss_s = sum(dfc_structural_loss(q[g * b:(g + 1) * b], q_hat[g]) for g in range(m)) / m
            loss = loss_c + hp["alpha_f"] * loss_f + hp["alpha_s"] * loss_s
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            acc = discriminator_accuracy(logits.detach(), group_of_batch)
            disc_sum = disc_sum + acc
            disc_count += 1
            steps.tick(f"fair training iteration {it}/{iterations}", L_c=loss_c.detach(), L_f=loss_f.detach(),
                       L_s=loss_s.detach(), L_total=loss.detach(), disc_acc=acc, disc_chance=1.0 / m, grl_coeff=coeff)
            if it == iterations or (hp["eval_every"] and it % hp["eval_every"] == 0):
                mu_all = embed_chunks(encoder.mean, X, [encoder])
                ensure_finite(ctx, mu_all, steps.done)
                labels = student_t_assignment(mu_all, centers.detach(), hp["alpha"]).argmax(1)
                ctx.evaluate(it, mu_all, labels, extra={"disc_acc": float(disc_sum) / disc_count, "disc_chance": 1.0 / m})
                disc_sum, disc_count = torch.zeros((), device=device), 0
        return mu_all, labels, centers, critic

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """The most probable cluster under the Student-t assignment (Eq. 6) of the fitted encoder's mean embedding."""
        mu = embed_chunks(self.model_.mean, X, [self.model_])
        return student_t_assignment(mu, torch.from_numpy(self.centers_).to(X.device), self.hparams["alpha"]).argmax(1)

    def _released(self, data: BiasedDataset, ctx: RunContext):
        """Stages 1–2 from the authors' files: the shared encoder, its centroids and the frozen group models."""
        device = ctx.device

        def progress(done: int, total: int | None) -> None:
            ctx.progress(0.0, f"downloading DFC's released models: {done / 1e6:.1f}"
                              + (f" of {total / 1e6:.1f} MB" if total else " MB"))

        ctx.progress(0.0, "reading DFC's released models")
        models = load_released(getattr(ctx, "data_dir", None), files=dfc_released.RELEASED_FILES, progress=progress)
        encoder = self._new_autoencoder(data.X.shape[1:], pad=2)
        encoder.untrunk = None
        encoder.load_state_dict(models.encoder)
        group_models = []
        for state, centers in zip(models.group_encoders, models.group_centers):
            enc = self._new_autoencoder(data.X.shape[1:], pad=2)
            enc.untrunk = None
            enc.load_state_dict(state)
            enc.eval()
            for p in enc.parameters():
                p.requires_grad_(False)
            enc.epochs_ = {"source": "released"}
            group_models.append((enc.to(device), centers.to(device)))
        return encoder.to(device), models.centers, group_models

