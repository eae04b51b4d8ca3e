"""DFC: Deep Fair Clustering for Visual Learning (Li, Zhao & Liu, CVPR 2020).

The losses are small pure functions (one per equation); the class only wires them. The method's docstring
lists every interpretation of the paper and its public code.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import BiasedDataset
from ..nn import DFCAutoencoder, GroupCycler, embed_chunks, grad_reverse, grl_coefficient, minibatches, student_t_assignment, vae_kl
from ..params import Param
from .base import Method, RunContext, n_clusters_param
from .dec import _sync, dec_clustering_loss, dec_target, ensure_finite
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


class DFC(Method):
    """Deep Fair Clustering: adversarial fairness on the soft assignments, structural preservation, group-wise DEC.

    Encoder F → embedding z → Student-t soft assignment q (learned centroids, Eq. 6). Three terms (Eq. 7–8):
    - L_c (Eq. 4–5): DEC's KL to the sharpened target, the target computed within each group;
    - L_f (Eq. 2): a discriminator D reads q and predicts the group (cross-entropy); D minimises α_f·L_f, the encoder
      and centroids maximise it through a gradient-reversal layer whose coefficient ramps 2/(1+e^(−10t)) − 1;
    - L_s (Eq. 3): Σ_g ‖Q̂_g Q̂_gᵀ − Q_g Q_gᵀ‖², Q̂_g the soft assignments of a DEC model fitted on group g alone, frozen.
    Encoder and centroids minimise L_c − α_f·L_f + α_s·L_s.

    Interpretations (each documented where the paper and its public code are silent or disagree):
    - Defaults follow the public code (lr 1e-2 with weight decay 5e-4, discriminator ×10, batch 512 per group,
      20,000 iterations); the paper's text says lr 1e-4. Schedule lr·(1 + 10t)^(−0.75), t = iteration / iterations.
    - Loss scaling as in the public code: L_c and L_s are sums over the batch (KLDivLoss / MSELoss with
      reduction="sum"), averaged over groups (its 0.5 per group for two groups, 1/M for M groups); L_c is KL(P ‖ Q),
      target P against assignment Q, as DEC (the paper's Eq. 5 names them the other way round). L_f is the
      mean cross-entropy; the public code's one sigmoid output for two groups becomes M logits for M groups.
    - The target P of L_c is computed on each group's half of the mini-batch (public code), not over the whole group.
    - The autoencoder is a convolutional VAE (paper §5.1; public encoder with μ / log σ² heads; z is sampled while
      training). Its pretraining and the per-group DEC models are not in the public code (it ships their weights):
      here the VAE is pretrained on all data (BCE + KL for images in [0, 1], squared error + KL for vectors) for
      `pretrain_epochs`; each group's DEC model starts from that encoder, takes k-means centroids on the group's
      embedding μ and minimises DEC's KL (batch target) on the group alone for `group_dec_iterations`, then is frozen.
    - Images are resized to 32 × 32 on the device (the public code's input size); vectors use the encoder's fully
      connected part (d → 1024 → 512 → 64). Any number of channels and groups.
    - disc_acc is the discriminator's accuracy on its training batches, which hold b samples of each group, so its
      chance (majority-group) rate there is 1/M, logged as disc_chance. Evaluations are indexed by iteration
      (0 = after pretraining: VAE + k-means, the unfair start).
    """

    id = "dfc"
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
    # sets how much the adversary weighs against structure. In 300 iterations at b = 256 it never catches up
    # (built-in data: MNCE 0.59, 7.5 min); at b = 64 it does (MNCE 0.86, 2.3 min), every weight the paper's.
    quick = {"pretrain_epochs": 3, "group_dec_iterations": 30, "iterations": 300, "eval_every": 100,
             "batch_per_group": 64, "n_init": 5}
    # On a table, 3 pretraining epochs leave an embedding whose per-group k-means splits at random (census-like table,
    # 5 seeds: ACC .51–.58); 30 epochs and 200 group-DEC iterations let it find the table's college stratum in both
    # groups (ACC .65–.69, MNCE .96–1.0; bench/bench_tabular.py, about 35 s for 4,000 rows on 2 cores).
    quick_tables = {"pretrain_epochs": 30, "group_dec_iterations": 200}
    quick_minutes = 2.4
    divergence_settings = ("lr", "alpha_s", "alpha_f")
    params = (
        n_clusters_param(),
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
              help="Samples of each group in every mini-batch (M·b per step).", source="DFC §5.1 and public code --bs: 512"),
        Param("iterations", 20000, kind="int", low=1, high=10_000_000, help="Fair training iterations.",
              source="DFC public code --iters: 20,000"),
        Param("eval_every", 5000, kind="int", low=0, high=10_000_000,
              help="Evaluate every this many iterations (0 = only after pretraining and at the end).",
              source="DFC public code --test_interval: 5,000"),
        Param("variational", True, kind="bool", help="Pretrain a VAE (paper §5.1) rather than a plain autoencoder.",
              source="DFC §5.1; public Encoder has μ / log σ² heads"),
        Param("pretrain_epochs", 50, kind="int", low=0, high=5000,
              help="(V)AE epochs on all data before fair training.", source="ours: not in the public code (it ships weights)"),
        Param("pretrain_lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η_pre",
              help="Adam learning rate of the (V)AE pretraining and of the per-group DEC models.", source="ours"),
        Param("pretrain_batch_size", 256, kind="int", low=2, high=65536, help="Batch size of the (V)AE pretraining.",
              source="ours (DEC: 256)"),
        Param("group_dec_iterations", 1000, kind="int", low=0, high=1_000_000,
              help="DEC iterations on each group alone for the frozen Q̂_g of L_s (0 = k-means init only).",
              source="ours: not in the public code (it ships dec_mnist.pth, dec_usps.pth)"),
        Param("n_init", 10, kind="int", low=1, high=100, help="k-means restarts (all-data and per-group centroids).",
              source="scikit-learn default"),
    )

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        hp = self.hparams
        sizes = np.bincount(data.g, minlength=data.n_groups)
        smallest = int(sizes.argmin())
        name = data.group_names[smallest] if smallest < len(data.group_names) else str(smallest)
        self.check_batch_size(int(sizes[smallest]), f"samples of its smallest group ({name})", "batch_per_group")
        k = self.n_clusters(data)
        if k > sizes[smallest]:
            raise ValueError(f"{self.name}: K = {k} clusters is more than the {sizes[smallest]} samples of group {name}, "
                             "which gets its own clustering for L_s")
        self.check_batch_size(len(data), "samples", "pretrain_batch_size")

    def fit(self, data: BiasedDataset, ctx: RunContext) -> "DFC":
        hp = self.hparams
        k, m = self.n_clusters(data), data.n_groups
        device = ctx.device
        X = data.X.to(device)
        b = hp["batch_per_group"]
        rng = np.random.default_rng(ctx.seed)
        generator = torch.Generator().manual_seed(ctx.seed)
        ae = DFCAutoencoder(data.X.shape[1:], hp["latent_dim"], variational=hp["variational"]).to(device)
        is_image = ae.is_image
        pre_steps = hp["pretrain_epochs"] * -(-len(X) // hp["pretrain_batch_size"])
        total = pre_steps + m * hp["group_dec_iterations"] + hp["iterations"]
        step = 0
        t0 = time.perf_counter()

        # Stage 1: (V)AE pretraining on all data.
        optimiser = torch.optim.Adam(ae.parameters(), lr=hp["pretrain_lr"])
        ae.train()
        for epoch in range(1, hp["pretrain_epochs"] + 1):
            for index in minibatches(len(X), hp["pretrain_batch_size"], generator, device):
                if len(index) < 2:
                    continue
                x = ae.prepare(X[index])
                z, mu, logvar = ae.encode(x)
                rec = vae_reconstruction_loss(x, ae.decode(z), is_image)
                kl = vae_kl(mu, logvar) if logvar is not None else torch.zeros((), device=device)
                loss = rec + kl
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                ctx.log(step, L_rec=rec.detach(), L_kl=kl.detach())
                ctx.progress(step / total, f"pretraining epoch {epoch}/{hp['pretrain_epochs']}")
        _sync(device)
        t_pre = time.perf_counter() - t0

        ctx.progress(step / total, "k-means on the pretrained embedding")
        mu_all = embed_chunks(ae.mean, X, [ae])
        ensure_finite(ctx, mu_all, step)
        km = kmeans(mu_all, k, n_init=hp["n_init"], seed=ctx.seed)
        ctx.evaluate(0, mu_all, km.labels, extra={"disc_chance": 1.0 / m})

        # Stage 2: one DEC model per group, fitted on that group alone, then frozen (Q̂_g of L_s).
        t1 = time.perf_counter()
        group_models = []
        for g in range(m):
            members = np.flatnonzero(data.g == g)
            encoder_g = copy.deepcopy(ae)
            encoder_g.untrunk = None  # the decoder is not needed
            km_g = kmeans(mu_all[torch.from_numpy(members).to(device)], k, n_init=hp["n_init"], seed=ctx.seed + 1 + g)
            centers_g = nn.Parameter(km_g.centers.clone())
            optimiser = torch.optim.Adam(list(encoder_g.parameters()) + [centers_g], lr=hp["pretrain_lr"])
            encoder_g.train()
            for it in range(hp["group_dec_iterations"]):
                index = torch.from_numpy(rng.choice(members, size=min(b, len(members)), replace=False)).to(device)
                q = student_t_assignment(encoder_g.encode(encoder_g.prepare(X[index]))[1], centers_g, hp["alpha"])
                loss = dec_clustering_loss(q, dec_target(q).detach())
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step += 1
                ctx.log(step, **{"L_group_dec": loss.detach()})
                ctx.progress(step / total, f"DEC on group {g + 1}/{m}, iteration {it + 1}/{hp['group_dec_iterations']}")
            encoder_g.eval()
            for p in encoder_g.parameters():
                p.requires_grad_(False)
            group_models.append((encoder_g, centers_g.detach()))
        _sync(device)
        t_group = time.perf_counter() - t1

        # Stage 3: fair clustering.
        encoder = ae
        encoder.untrunk = None
        centers = nn.Parameter(km.centers.clone())
        critic = Discriminator(k, m).to(device)
        optimiser = torch.optim.Adam([
            {"params": list(encoder.parameters()) + [centers], "lr_mult": 1.0},
            {"params": critic.parameters(), "lr_mult": hp["disc_lr_mult"]},
        ], lr=hp["lr"], weight_decay=hp["weight_decay"])
        cycler = GroupCycler(data.g, m, b, rng)
        group_of_batch = torch.arange(m, device=device).repeat_interleave(b)
        encoder.train()
        critic.train()
        disc_sum, disc_count = torch.zeros((), device=device), 0
        t2 = time.perf_counter()
        iterations = hp["iterations"]
        for it in range(1, iterations + 1):
            progress = (it - 1) / iterations
            lr = dfc_lr(hp["lr"], progress)
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
            step += 1
            acc = discriminator_accuracy(logits.detach(), group_of_batch)
            disc_sum = disc_sum + acc
            disc_count += 1
            ctx.log(step, L_c=loss_c.detach(), L_f=loss_f.detach(), L_s=loss_s.detach(), L_total=loss.detach(),
                    disc_acc=acc, disc_chance=1.0 / m, grl_coeff=coeff)
            ctx.progress(step / total, f"fair training iteration {it}/{iterations}")
            if it == iterations or (hp["eval_every"] and it % hp["eval_every"] == 0):
                mu_all = embed_chunks(encoder.mean, X, [encoder])
                ensure_finite(ctx, mu_all, step)
                labels = student_t_assignment(mu_all, centers.detach(), hp["alpha"]).argmax(1)
                ctx.evaluate(it, mu_all, labels, extra={"disc_acc": float(disc_sum) / disc_count, "disc_chance": 1.0 / m})
                disc_sum, disc_count = torch.zeros((), device=device), 0
        _sync(device)
        t_fair = time.perf_counter() - t2
        self.embedding_ = mu_all.cpu().numpy()
        self.labels_ = labels.cpu().numpy()
        self.centers_ = centers.detach().cpu().numpy()
        self.model_, self.critic_ = encoder, critic
        iters_per_epoch = max(1, int(np.bincount(data.g).max()) // b)  # one pass over the largest group
        self.timings_ = {"pretrain_s": t_pre, "pretrain_epochs": hp["pretrain_epochs"],
                         "pretrain_s_per_epoch": t_pre / max(hp["pretrain_epochs"], 1), "group_dec_s": t_group,
                         "train_s": t_fair, "iterations": iterations, "s_per_iteration": t_fair / iterations,
                         "train_s_per_epoch": t_fair / iterations * iters_per_epoch}
        return self
