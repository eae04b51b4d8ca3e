"""StatDEC (Rezaei et al., papers/statdec.md) and its baseline IDEC (Guo et al. 2017): deep embedded clustering with a
reconstruction loss, for imbalanced data.

Both share one autoencoder d-500-500-1000-10 (StatDEC §IV-d; the same sizes as the IDEC PyTorch reference), are
pretrained on reconstruction, get their centroids from k-means on the embedding, and then minimise a weighted sum of
the clustering loss KL(P ‖ Q) (Student-t Q, α = 1) and the reconstruction MSE. IDEC is StatDEC with both of its
additions switched off: the plain DEC target and no statistics pooling.

StatDEC has no public code. Each point below is our reading of the paper, and each is a declared hyperparameter
where it can be:
- Target (Eq. 4). As printed, the numerator divides by (u_j + v_j) and the denominator by v_k only, so rows of P
  would not sum to 1. We use p_ij = [q_ij² / (u_j + v_j)] / Σ_k [q_ik² / (u_k + v_k)]: a distribution per sample,
  and exactly DEC's target when v = 0.
- Cluster frequency u_j = Σ_i q_ij, taken as a share of the N samples (÷ N) so that u and v are on the same scale;
  DEC's row normalisation makes the ÷ N irrelevant there, but here the two terms are added.
- Sample frequency (Eq. 5). As printed it sums over j inside the definition of v_j and takes the square root of a
  negative number. We read it as a focal-loss mass per cluster: v_j = (1/N) Σ_{i ∈ C_j} √(N / N_j) ·
  (1 − q_ij)^γ · (−log q_ij), the sum over the samples currently assigned to j (argmax q), N_j their number
  (the estimated cardinality), the square root over the inverse frequency only, the minus sign outside.
- Update rule. §III-A says P "is only updated if changes in the label assignments between two consecutive
  updates of the target distribution are less than a threshold δ", while §IV-d calls δ "the convergence
  threshold" beside "update intervals for target distribution" of 70–120 iterations: DEC's and IDEC's rule, where
  P is recomputed on the whole dataset every T iterations and training stops once fewer than δ of the samples
  changed cluster between two updates. We default to that reading (target_update = "interval"): read literally,
  §III-A freezes P at its first value for as long as more than δ = 0.1 % of the samples keep changing cluster
  between checks, which would make the paper's update intervals meaningless (measurements:
  docs/METHOD_NOTES.md#statdec). target_update = "stable"
  is the literal reading (recompute P only when fewer than δ changed; never stop early). The first P is computed
  right after the k-means initialisation. The paper's further "convergence criterion based on the KL loss" is
  not specified, so it is not used.
- Statistics pooling (Eq. 6) sits on top of the second hidden layer of the decoder (§IV-d). For a batch with
  decoder features h (B × 500) and soft assignments q (B × K, detached: the pooling conditions the decoder, the
  assignments are trained by L_c), each cluster k gets its soft cardinality N_k = Σ_i q_ik, mean μ_k = Σ_i q_ik h_i / N_k
  and variance σ_k = Σ_i q_ik (h_i − μ_k)² / N_k; sample i receives its clusters' statistics weighted by q_i and the
  next decoder layer reads [h_i, Σ_k q_ik μ_k, Σ_k q_ik σ_k, Σ_k q_ik N_k / B]. During pretraining there are no
  clusters yet: the pooled inputs are zero and the weights that read them start at zero, so the pretraining trains
  the plain autoencoder (IDEC's) and the block joins at the clustering stage without changing what the pretrained
  decoder computes (measurements: docs/METHOD_NOTES.md#statdec).
- Loss (Eq. 1): L = λ·L_c + (1 − λ)·L_r with λ = 0.1, L_c = KL(P ‖ Q) averaged over the batch, L_r the MSE.
- Optimiser of the clustering stage: mini-batch SGD (§III-C), learning rate 0.01 divided by 10 every 20,000
  iterations (§IV-d), momentum 0.9 (DEC's; the paper gives none). IDEC keeps its PyTorch reference's Adam 1e-3
  (measurements: docs/METHOD_NOTES.md#statdec).
- Pretraining: Adam 1e-3, end to end (not the paper's layer-wise pretraining with dropout).
- Images are flattened (the paper's MLP takes d_x inputs).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from ..data import BiasedDataset
from ..nn import embed_chunks, mlp, pretrain_autoencoder, student_t_assignment
from ..params import Param
from .base import Method, RunContext, Steps, n_clusters_param
from .dec import dec_clustering_loss, dec_target
from .kmeans import kmeans

EPS = 1e-12
HIDDEN = (500, 500, 1000)  # StatDEC §IV-d: d-500-500-1000-10, decoder 10-1000-500-500-d


# --------------------------------------------------------------------------------------------------------------
# The maths, as small pure functions.
# --------------------------------------------------------------------------------------------------------------
def cluster_frequency(q: torch.Tensor) -> torch.Tensor:
    """u_j = Σ_i q_ij / N: the soft share of each cluster (StatDEC Eq. 4, as a share of the N samples)."""
    return q.sum(0) / q.shape[0]


def sample_frequency(q: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """v_j = (1/N) Σ_{i∈C_j} √(N/N_j) (1 − q_ij)^γ (−log q_ij), C_j the samples whose argmax is j (StatDEC Eq. 5, our reading)."""
    n, k = q.shape
    labels = q.argmax(1)
    counts = torch.bincount(labels, minlength=k).to(q.dtype)
    focal = (1.0 - q).pow(gamma) * -torch.log(q.clamp_min(EPS))
    member_focal = torch.zeros(k, dtype=q.dtype, device=q.device).index_add_(0, labels, focal.gather(1, labels[:, None])[:, 0])
    return torch.sqrt(n / counts.clamp_min(1.0)) * member_focal / n


def statdec_target(q: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """P: p_ij = [q_ij² / (u_j + v_j)] / Σ_k [q_ik² / (u_k + v_k)] (StatDEC Eq. 4, normalised per sample)."""
    weight = q.pow(2) / (cluster_frequency(q) + sample_frequency(q, gamma)).clamp_min(EPS)
    return weight / weight.sum(1, keepdim=True)


def statistics_pooling(h: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """[h_i, Σ_k q_ik μ_k, Σ_k q_ik σ_k, Σ_k q_ik N_k / B]: per-cluster cardinality, mean and variance (StatDEC Eq. 6).

    h: B × D features, q: B × K soft assignments (rows summing to 1). Returns B × (3D + 1).
    """
    n_k = q.sum(0)  # K soft cardinalities
    weights = q / n_k.clamp_min(EPS)  # each column sums to 1 over the batch
    mean = weights.T @ h  # K × D
    var = (weights.T @ h.pow(2) - mean.pow(2)).clamp_min(0.0)
    cardinality = (q @ (n_k / h.shape[0]))[:, None]
    return torch.cat([h, q @ mean, q @ var, cardinality], dim=1)


def statdec_loss(l_c: torch.Tensor, l_r: torch.Tensor, lam: float) -> torch.Tensor:
    """L = λ·L_c + (1 − λ)·L_r (StatDEC Eq. 1)."""
    return lam * l_c + (1.0 - lam) * l_r


def idec_loss(l_c: torch.Tensor, l_r: torch.Tensor, gamma: float) -> torch.Tensor:
    """L = L_r + γ·L_c (IDEC Eq. 3, Guo et al. 2017)."""
    return l_r + gamma * l_c


def label_change(labels: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Share of samples whose cluster changed between two checks (a 0-d tensor: no host sync)."""
    return (labels != previous).float().mean()


def class_recall_metrics(y_true, labels, n_classes: int) -> dict[str, float]:
    """min_class_recall (the worst class's matched-cluster recall) and tail_recall (its mean over the smaller half of
    the classes present, by sample count)."""
    recall = matched_class_recall(y_true, labels, n_classes)
    sizes = np.bincount(y_true, minlength=n_classes)
    present = np.flatnonzero(sizes)
    tail = present[np.argsort(sizes[present], kind="stable")][: max(1, len(present) // 2)]
    return {"min_class_recall": float(recall[present].min()), "tail_recall": float(recall[tail].mean())}


def matched_class_recall(y_true, labels, n_classes: int | None = None) -> np.ndarray:
    """Per class c, the share of its samples in the cluster matched to c by the Hungarian one-to-one map used for ACC.

    A class left without a cluster (more classes than clusters) has recall 0. Index = class label 0..n_classes-1.
    """
    y = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(labels, dtype=np.int64)
    n_classes = int(n_classes if n_classes is not None else y.max() + 1)
    n_clusters = int(pred.max() + 1) if len(pred) else 0
    table = np.zeros((n_classes, max(n_clusters, 1)), dtype=np.int64)
    np.add.at(table, (y, pred), 1)
    rows, cols = linear_sum_assignment(-table)
    recall = np.zeros(n_classes)
    totals = table.sum(1)
    for r, c in zip(rows, cols):
        recall[r] = table[r, c] / totals[r] if totals[r] else 0.0
    return recall


# --------------------------------------------------------------------------------------------------------------
# The network.
# --------------------------------------------------------------------------------------------------------------
class StatAutoencoder(nn.Module):
    """MLP autoencoder d-500-500-1000-z; the decoder z-1000-500-[statistics pooling]-500-d when stat_pool (StatDEC §IV-d)."""

    def __init__(self, n_features: int, latent_dim: int = 10, stat_pool: bool = True, hidden=HIDDEN):
        super().__init__()
        self.encoder = mlp([n_features, *hidden, latent_dim])
        h1, h2, h3 = reversed(hidden)
        self.stat_pool = stat_pool
        self.decoder_head = mlp([latent_dim, h1, h2], last_activation=True)
        self.decoder_tail = mlp([3 * h2 + 1 if stat_pool else h2, h3, n_features])
        if stat_pool:  # the pooled statistics start with no say: the block joins at the clustering stage (docstring);
            # the weights reading h start as a plain Linear(h2, h3)'s would (fan-in h2, not 3·h2 + 1), so the
            # pretraining starts from IDEC's initial distribution
            plain = nn.Linear(h2, h3)
            with torch.no_grad():
                first = self.decoder_tail[0]
                first.weight.zero_()
                first.weight[:, :h2] = plain.weight
                first.bias.copy_(plain.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def decode(self, z: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction of flattened inputs; q (B × K) feeds the statistics pooling (None, during pretraining: the
        pooled inputs are zero)."""
        h = self.decoder_head(z)
        if self.stat_pool:
            h = (torch.cat([h, h.new_zeros(len(h), 2 * h.shape[1] + 1)], 1) if q is None
                 else statistics_pooling(h, q.detach()))
        return self.decoder_tail(h)


# --------------------------------------------------------------------------------------------------------------
# The methods.
# --------------------------------------------------------------------------------------------------------------
def _optimiser_params(optimizer: str, lr: float, lr_step: int, source: str) -> tuple[Param, ...]:
    """The clustering stage's optimiser: StatDEC's paper and IDEC's reference differ here."""
    return (
        Param("optimizer", optimizer, kind="choice", choices=("adam", "sgd"),
              help="Optimiser of the clustering stage (sgd uses momentum 0.9).", source=source),
        Param("lr", lr, low=0, low_open=True, high=10.0, log=True, symbol="η",
              help="Learning rate of the clustering stage.", source=source),
        Param("lr_step", lr_step, kind="int", low=0, high=10_000_000,
              help="Divide the learning rate by 10 every this many clustering iterations (0 = never).", source=source),
    )


def _shared_params(update_interval: int, update_source: str, optimiser: tuple[Param, ...]) -> tuple[Param, ...]:
    return (
        n_clusters_param(),
        Param("latent_dim", 10, kind="int", low=1, high=512, symbol="d_z", help="Embedding size z.",
              source="StatDEC §IV-d: 10"),
        Param("pretrain_epochs", 200, kind="int", low=0, high=5000,
              help="Autoencoder epochs on reconstruction before clustering (0 = none: k-means on a random encoder).",
              source="IDEC PyTorch reference: 200 epochs"),
        Param("pretrain_lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η_pre",
              help="Adam learning rate of the pretraining.", source="IDEC PyTorch reference: Adam 1e-3"),
        Param("batch_size", 256, kind="int", low=2, high=65536, symbol="B", help="Samples per step, both stages.",
              source="StatDEC §IV-d: 256 for MNIST"),
        *optimiser,
        Param("iterations", 20000, kind="int", low=0, high=10_000_000, help="Clustering iterations at most (mini-batches).",
              source="DEC-keras maxiter = 2e4"),
        Param("update_interval", update_interval, kind="int", low=1, high=1_000_000, symbol="T",
              help="Check the assignments (and possibly recompute the target P on the whole dataset) every T iterations.",
              source=update_source),
        Param("alpha", 1.0, low=0, low_open=True, high=1000, symbol="α",
              help="Degrees of freedom of the Student-t kernel.", source="StatDEC §III-A: 1"),
        Param("n_init", 20, kind="int", low=1, high=100, help="k-means restarts for the initial centroids.",
              source="IDEC PyTorch reference: KMeans(n_init=20)"),
        Param("eval_every", 1000, kind="int", low=0, high=10_000_000,
              help="Evaluate every this many clustering iterations (0 = only after pretraining and at the end).",
              source="ours"),
    )


class StatDEC(Method):
    """StatDEC: IDEC with a target re-weighted by cluster and sample frequency, and statistics pooling in the decoder."""

    id = "statdec"
    signal_metrics = ("tail_recall", "min_class_recall")
    name = "StatDEC"
    summary = ("Deep embedded clustering for imbalanced data: an autoencoder d-500-500-1000-10 with a statistics "
               "pooling block (per-cluster cardinality, mean, variance) in the decoder, and a target distribution "
               "re-weighted by cluster frequency and a focal-style sample frequency, updated only when the "
               "assignments are stable. L = λ·KL(P‖Q) + (1 − λ)·MSE.")
    paper = "Rezaei, Dorigatti, Rügamer & Bischl, Joint Debiased Representation Learning and Imbalanced Data Clustering"
    quick = {"pretrain_epochs": 20, "iterations": 1200, "eval_every": 400, "n_init": 5}
    quick_minutes = 2.6
    eval_unit = "iteration"
    # The tail needs a long-tailed set: the built-in MNIST sample (it ships with the install) with class sizes
    # decaying 10:1.
    quick_data = ("imbalanced_digits", {"imbalance": "long_tail", "ratio": 10})
    params = _shared_params(80, "StatDEC §IV-d: 80 for MNIST", _optimiser_params(
        "sgd", 0.01, 20000, "StatDEC §III-C: mini-batch SGD; §IV-d: 0.01, divided by 10 every 20,000 iterations")) + (
        Param("lam", 0.1, low=0, high=1, symbol="λ", help="Weight of the clustering loss: L = λ·L_c + (1 − λ)·L_r (Eq. 1).",
              source="StatDEC §III: 0.1"),
        Param("gamma", 2.0, low=0, high=100, symbol="γ", help="Focal exponent of the sample frequency v_j (Eq. 5).",
              source="StatDEC §III-A: 2"),
        Param("delta", 0.001, low=0, high=1, symbol="δ",
              help="Convergence threshold: share of samples changing cluster between two target updates below which "
                   "training stops (interval), or below which P is recomputed (stable). 0 = never stop.",
              source="StatDEC §IV-d: 0.001"),
        Param("target_update", "interval", kind="choice", choices=("interval", "stable"),
              help="interval: recompute P every T iterations, stop once fewer than δ changed (§IV-d, DEC's rule); "
                   "stable: recompute P only when fewer than δ changed (§III-A read literally: P then rarely moves).",
              source="StatDEC §IV-d (interval), §III-A (stable)"),
        Param("weighted_target", True, kind="bool",
              help="Re-weight the target by cluster and sample frequency (Eq. 4–5); off = DEC's target (ablation StatDEC-3).",
              source="StatDEC Table IV"),
        Param("stat_pool", True, kind="bool",
              help="Statistics pooling block in the decoder (Eq. 6); off = ablation StatDEC-2.", source="StatDEC Table IV"),
    )

    # What differs between StatDEC and IDEC: the target, when it is recomputed, the loss, the decoder.
    def _target(self, q: torch.Tensor) -> torch.Tensor:
        return statdec_target(q, self.hparams["gamma"]) if self.hparams["weighted_target"] else dec_target(q)

    def _loss(self, l_c: torch.Tensor, l_r: torch.Tensor) -> torch.Tensor:
        return statdec_loss(l_c, l_r, self.hparams["lam"])

    def _uses_stat_pool(self) -> bool:
        return self.hparams["stat_pool"]

    def _gate(self, changed: float) -> tuple[bool, bool]:
        """(update P, stop) after a check where `changed` of the samples moved cluster (see target_update)."""
        if self.hparams["target_update"] == "stable":
            return changed < self.hparams["delta"], False
        return True, changed < self.hparams["delta"]

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        self.check_batch_size(len(data))

    def train(self, data: BiasedDataset, ctx: RunContext) -> "StatDEC":
        hp = self.hparams
        X = data.X.flatten(1).to(ctx.device)
        model = StatAutoencoder(X.shape[1], hp["latent_dim"], stat_pool=self._uses_stat_pool()).to(ctx.device)
        generator = torch.Generator().manual_seed(ctx.seed)
        steps = Steps(ctx, hp["pretrain_epochs"] * -(-len(X) // hp["batch_size"]) + hp["iterations"])
        t0 = time.perf_counter()
        self._pretrain(model, X, generator, steps)
        t_pre = time.perf_counter() - t0
        centers, z = self._initialise_centres(model, X, self.n_clusters(data), data, steps)
        t1 = time.perf_counter()
        iteration, updates = self._cluster(model, X, centers, z, data, generator, steps)
        t_clu = time.perf_counter() - t1
        z, labels = self._assign(model, X, centers)
        if iteration > 0:
            self._evaluate(ctx, data, iteration, z, labels)
        self.embedding_ = z.cpu().numpy()
        self.labels_ = labels.cpu().numpy()
        self.centers_ = centers.detach().cpu().numpy()
        self.model_ = model
        self.target_updates_ = updates
        self.timings_ = {"pretrain_s": t_pre, "train_s": t_clu, "iterations": iteration}
        return self

    def _pretrain(self, model: StatAutoencoder, X: torch.Tensor, generator: torch.Generator, steps: Steps) -> None:
        """Stage 1: reconstruction pretraining (MSE, Adam; the statistics pooling's inputs are zero, see the module docstring)."""
        hp = self.hparams
        pretrain_autoencoder(
            model, X, lambda x: model.decode(model.encode(x)), lambda x, x_hat: {"L_rec": F.mse_loss(x_hat, x)},
            lr=hp["pretrain_lr"], batch_size=hp["batch_size"], generator=generator, epochs=hp["pretrain_epochs"],
            on_step=lambda done, epoch, terms: steps.tick(f"pretraining epoch {epoch}/{hp['pretrain_epochs']}", **terms))

    def _initialise_centres(self, model: StatAutoencoder, X: torch.Tensor, k: int, data: BiasedDataset, steps: Steps
                            ) -> tuple[nn.Parameter, torch.Tensor]:
        """(centroids from k-means on the pretrained embedding, that embedding); evaluation 0 is that k-means."""
        steps.report("k-means on the embedding")
        z = embed_chunks(model.encode, X, [model])
        km = kmeans(z, k, n_init=self.hparams["n_init"], seed=steps.ctx.seed)
        self._evaluate(steps.ctx, data, 0, z, km.labels)
        return nn.Parameter(km.centers.clone()), z

    def _cluster(self, model: StatAutoencoder, X: torch.Tensor, centers: nn.Parameter, z: torch.Tensor,
                 data: BiasedDataset, generator: torch.Generator, steps: Steps) -> tuple[int, int]:
        """Stage 2: the loss of Eq. 1 (λ·KL(P‖Q) + (1 − λ)·MSE; IDEC's L_r + γ·L_c) by mini-batch SGD or Adam, the
        assignments checked every T iterations and P recomputed or training stopped as _gate says (P first computed
        on z, the pretrained embedding). Returns (iterations run, target updates)."""
        hp, ctx, device = self.hparams, steps.ctx, X.device
        params = list(model.parameters()) + [centers]
        optimiser = (torch.optim.Adam(params, lr=hp["lr"]) if hp["optimizer"] == "adam"
                     else torch.optim.SGD(params, lr=hp["lr"], momentum=0.9))
        scheduler = torch.optim.lr_scheduler.StepLR(optimiser, hp["lr_step"], 0.1) if hp["lr_step"] else None
        q_all = student_t_assignment(z, centers.detach(), hp["alpha"])
        p_all = self._target(q_all)
        labels_prev = q_all.argmax(1)
        updates = 1
        order = torch.randperm(len(X), generator=generator).to(device)
        position = 0
        iteration = 0
        for iteration in range(1, hp["iterations"] + 1):
            if iteration % hp["update_interval"] == 0:
                z = embed_chunks(model.encode, X, [model])
                q_all = student_t_assignment(z, centers.detach(), hp["alpha"])
                labels = q_all.argmax(1)
                changed = float(label_change(labels, labels_prev))  # one sync per check, every T iterations
                labels_prev = labels
                update, stop = self._gate(changed)
                if update:
                    p_all = self._target(q_all)
                    updates += 1
                ctx.log(steps.done, changed=changed, target_updated=float(update))
                if stop:
                    break
            if position + hp["batch_size"] > len(X):
                # non_blocking: a new pass's order reaches the device without a stream sync
                order, position = torch.randperm(len(X), generator=generator).to(device, non_blocking=True), 0
            index = order[position:position + hp["batch_size"]]
            position += hp["batch_size"]
            x = X[index]
            z_b = model.encode(x)
            q = student_t_assignment(z_b, centers, hp["alpha"])
            l_c = dec_clustering_loss(q, p_all[index])
            l_r = F.mse_loss(model.decode(z_b, q), x)
            loss = self._loss(l_c, l_r)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            steps.tick(f"clustering iteration {iteration}/{hp['iterations']}",
                       L_rec=l_r.detach(), L_clu=l_c.detach(), L_total=loss.detach())
            if hp["eval_every"] and iteration % hp["eval_every"] == 0 and iteration < hp["iterations"]:
                self._evaluate(ctx, data, iteration, *self._assign(model, X, centers))
        return iteration, updates

    def _assign(self, model: StatAutoencoder, X: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, argmax_k q_ik) of all samples."""
        z = embed_chunks(model.encode, X, [model])
        return z, student_t_assignment(z, centers.detach(), self.hparams["alpha"]).argmax(1)

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """The most probable cluster under the Student-t assignment of the fitted encoder's embedding."""
        z = embed_chunks(self.model_.encode, X, [self.model_])
        return student_t_assignment(z, torch.from_numpy(self.centers_).to(X.device), self.hparams["alpha"]).argmax(1)

    @staticmethod
    def _evaluate(ctx: RunContext, data: BiasedDataset, epoch: int, z: torch.Tensor, labels: torch.Tensor) -> dict:
        """All metrics, plus the matched-cluster recall of the worst class and the mean over the smaller half of classes."""
        extra = {}
        if data.y is not None:
            n_classes = len(data.class_names) if data.class_names else int(data.y.max()) + 1
            extra = class_recall_metrics(data.y, labels.cpu().numpy(), n_classes)
        return ctx.evaluate(epoch, z, labels, extra=extra)


class IDEC(StatDEC):
    """IDEC: DEC's KL(P‖Q) plus the autoencoder's reconstruction loss, L = L_r + γ·L_c (Guo et al. 2017)."""

    id = "idec"
    quick_minutes = 1.8
    name = "IDEC"
    summary = ("Improved Deep Embedded Clustering: DEC's KL(P‖Q) with the decoder kept and its reconstruction loss "
               "added (L = L_r + γ·L_c), preserving the local structure of the embedding. StatDEC's baseline, "
               "with the same autoencoder d-500-500-1000-10.")
    paper = "Guo, Gao, Liu & Yin 2017, Improved Deep Embedded Clustering with Local Structure Preservation (IJCAI)"
    params = _shared_params(140, "IDEC-keras update_interval = 140 for MNIST", _optimiser_params(
        "adam", 1e-3, 0, "IDEC PyTorch reference: Adam 1e-3")) + (
        Param("gamma", 0.1, low=0, high=100, symbol="γ", help="Weight of the clustering loss: L = L_r + γ·L_c (IDEC Eq. 3).",
              source="IDEC §4: 0.1"),
        Param("tol", 0.001, low=0, high=1, symbol="tol",
              help="Stop when fewer than this share of samples change cluster between two target updates (0 = never).",
              source="IDEC §4: 0.1%"),
    )

    def _target(self, q: torch.Tensor) -> torch.Tensor:
        return dec_target(q)

    def _loss(self, l_c: torch.Tensor, l_r: torch.Tensor) -> torch.Tensor:
        return idec_loss(l_c, l_r, self.hparams["gamma"])

    def _uses_stat_pool(self) -> bool:
        return False

    def _gate(self, changed: float) -> tuple[bool, bool]:
        """(update P, stop): IDEC recomputes P at every check and stops once fewer than tol changed."""
        return True, changed < self.hparams["tol"]
