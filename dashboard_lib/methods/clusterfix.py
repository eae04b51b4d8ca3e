"""ClusterFix (Capitani et al., WACV 2024; papers/clusterfix.md) and its baseline ERM: a classifier debiased with
cluster pseudo-labels, never with the bias attribute.

Stage 1 (pseudo-labels): a small convolutional autoencoder is trained on reconstruction of the training split
(no labels of any kind; our stand-in for the paper's Barlow Twins encoder); its encoder's conv feature maps (every
block's, global-average-pooled and L2-normalised) are clustered with k-means into K = 8 clusters inside each target
class y, giving each training sample a pseudo-label c.
Stage 2 (debiased training): a small CNN F (five 3 × 3 convolutions, global average pooling; initialised from the
stage-1 encoder, as the paper initialises F from its self-supervised network) with a task head T and one cluster
head C_y per class. L_s = CE(C_{y_i}(F(x_i)), c_i); L_t = w_{c_i}·CE(T(F(x_i)), y_i) with
w_c = (1/N_c)·mean over cluster c of [CE_task + γ·CE_cluster] (Eq. 8), smoothed with momentum m = 0.3 as in BPA;
objective L_t + γ·L_s (Eq. 9). ERM is the same network and initialisation trained on the plain mean task CE.

The bias attribute (the dataset's group g) is used only to evaluate: per epoch the predictions on the "test" split
give the accuracy of every (target y, bias b) group, their mean (unbiased accuracy) and minimum (worst-group).

Interpretations (the paper leaves these open):
- Features clustered (cluster_features=pooled): every conv block's maps of the stage-1 encoder, global-average-pooled,
  L2-normalised and concatenated: early blocks keep colour and texture, later ones shape. The autoencoder's
  bottleneck code (cluster_features=code) and the last block alone mostly encode the digit's shape, so their
  per-class clusters do not separate the bias-conflicting samples (measurements: docs/METHOD_NOTES.md#clusterfix).
  The paper's Barlow Twins features play this role on CelebA.
- Weights are estimated per epoch from the per-sample losses seen while training that epoch (BPA's practice); the
  first epoch uses weights from one pass of the initial model. After each estimate, weights are normalised so that
  their mean over the training samples is 1 (Σ_c N_c·w_c = N), keeping the loss on ERM's scale; then smoothed,
  w ← m·w_old + (1 − m)·ŵ.
- The batch loss is the mean over the batch of w_{c_i}·CE_task,i plus γ times the mean cluster CE.
- A class with fewer than K training samples gets as many clusters as samples.
- Datasets with a "train" split train on it and evaluate on "test" (Colored MNIST: biased train, unbiased test);
  datasets without splits train and evaluate on all samples (then the group accuracies are training accuracies).
- Vectors (not images) get an MLP instead of the CNN; such a model has no convolution for Grad-CAM to explain.
- Optimiser: Adam, weight decay, cosine schedule and batch 256 as the paper; lr 1e-3 (the paper's 1e-4 fine-tunes a
  pretrained ResNet-18; this CNN is small and its head starts from scratch).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from ..data import BiasedDataset
from ..nn import embed_chunks, minibatches, pretrain_autoencoder
from ..params import Param
from .base import Method, RunContext, Steps
from .kmeans import kmeans

WEIGHTS_FILE = "weights.pt"
ERR_NO_TARGET = ("{name} needs a target label y to classify, and {dataset} has none (an upload without a class column?). "
                 "Pick a dataset with classes, e.g. colored_mnist with target=binary.")
ERR_ONE_CLASS = "{name} needs at least two target classes in the training data; {dataset} has {n}."


# --------------------------------------------------------------------------------------------------------------
# The maths, as small pure functions.
# --------------------------------------------------------------------------------------------------------------
def cluster_weights(task_loss_sum: torch.Tensor, cluster_loss_sum: torch.Tensor, counts: torch.Tensor,
                    gamma: float) -> torch.Tensor:
    """ŵ_c = (1/N_c)·mean_{i∈c}[ℓ_task + γ·ℓ_cluster] (ClusterFix Eq. 8), normalised so that Σ_c N_c·ŵ_c = Σ_c N_c.

    Inputs are per-cluster sums of the per-sample losses and the cluster sizes N_c; empty clusters get weight 0.
    """
    counts = counts.to(task_loss_sum.dtype)
    filled = counts > 0
    mean_loss = (task_loss_sum + gamma * cluster_loss_sum) / counts.clamp_min(1.0)
    raw = torch.where(filled, mean_loss / counts.clamp_min(1.0), torch.zeros_like(mean_loss))
    mass = (raw * counts).sum()
    return raw * (counts.sum() / mass) if mass > 0 else torch.where(filled, torch.ones_like(raw), raw)


def momentum_update(previous: torch.Tensor | None, estimate: torch.Tensor, momentum: float) -> torch.Tensor:
    """w ← m·w_old + (1 − m)·ŵ (BPA's smoothing, m = 0.3 in ClusterFix §4); the first estimate is taken as is."""
    return estimate if previous is None else momentum * previous + (1.0 - momentum) * estimate


def weighted_task_loss(task_losses: torch.Tensor, sample_weights: torch.Tensor) -> torch.Tensor:
    """L_t = mean_i w_{c_i}·ℓ(T∘F(x_i), y_i) (ClusterFix Eq. 7)."""
    return (sample_weights * task_losses).mean()


def cluster_head_loss(cluster_logits: torch.Tensor, y: torch.Tensor, c: torch.Tensor, per_class: int) -> torch.Tensor:
    """Per-sample ℓ(C_{y_i}∘F(x_i), c_i) (ClusterFix Eq. 6): the head of the sample's own class, c local to that class.

    cluster_logits: B × (n_classes·K), the K logits of class y in columns y·K … y·K + K − 1.
    """
    logits = cluster_logits.view(len(y), -1, per_class).gather(1, y.view(-1, 1, 1).expand(-1, 1, per_class))[:, 0]
    return F.cross_entropy(logits, c, reduction="none")


def clusterfix_objective(task_losses: torch.Tensor, cluster_losses: torch.Tensor, sample_weights: torch.Tensor,
                         gamma: float) -> torch.Tensor:
    """L_t + γ·L_s (ClusterFix Eq. 9), L_s the batch mean of the cluster losses."""
    return weighted_task_loss(task_losses, sample_weights) + gamma * cluster_losses.mean()


def weight_spread(weights: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """max_c w_c / min_c w_c over non-empty clusters: 1 = ERM's uniform weights."""
    w = weights[counts > 0]
    return w.max() / w.min().clamp_min(1e-12)


def group_report(y_true, y_pred, bias) -> dict:
    """avg_acc, unbiased_acc, worst_group_acc and each (y, b) group's accuracy (ClusterFix §4.1 evaluation protocol)."""
    groups = metrics.group_accuracies(y_true, y_pred, bias)
    return {"avg_acc": metrics.average_accuracy(y_true, y_pred), "unbiased_acc": float(np.mean(list(groups.values()))),
            "worst_group_acc": float(min(groups.values())), "groups": groups}


def pseudo_labels(features: torch.Tensor, y: torch.Tensor, per_class: int, n_classes: int, seed: int,
                  n_init: int = 10) -> torch.Tensor:
    """k-means with K clusters inside each class (K capped by the class size): local labels c ∈ [0, K) (ClusterFix §3.2)."""
    c = torch.zeros(len(y), dtype=torch.long, device=features.device)
    for cls in range(n_classes):
        members = torch.nonzero(y == cls).flatten()
        if len(members) == 0:
            continue
        k = min(per_class, len(members))
        c[members] = kmeans(features[members], k, n_init=n_init, seed=seed + cls).labels.to(c.device)
    return c


# --------------------------------------------------------------------------------------------------------------
# The networks.
# --------------------------------------------------------------------------------------------------------------
def conv_trunk(channels: int, width: int = 32) -> nn.Sequential:
    """Five 3 × 3 convolutions (strides 1, 2, 1, 2, 1; BatchNorm, ReLU), receptive field 21 px: 28 × 28 → width·2 × 7 × 7.
    The last convolution's maps are what Grad-CAM reads."""
    sizes = [(channels, width // 2, 1), (width // 2, width, 2), (width, width, 1), (width, 2 * width, 2), (2 * width, 2 * width, 1)]
    layers: list[nn.Module] = []
    for c_in, c_out, stride in sizes:
        layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers)


class ConvAutoencoder(nn.Module):
    """Stage-1 encoder: the conv trunk → linear code; the decoder mirrors it with transposed convolutions (sigmoid
    output, images in [0, 1])."""

    def __init__(self, input_shape, code_dim: int = 32, width: int = 32):
        super().__init__()
        c, h, w = input_shape
        self.trunk = conv_trunk(c, width)
        h4, w4 = -(-h // 4), -(-w // 4)
        self.down = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * h4 * w4, code_dim))
        self.up = nn.Sequential(nn.Linear(code_dim, 2 * width * h4 * w4), nn.ReLU(), nn.Unflatten(1, (2 * width, h4, w4)),
                                nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
                                nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.ReLU(),
                                nn.Conv2d(width // 2, c, 3, padding=1))
        self.shape = (h, w)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.trunk(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Each conv block's feature maps, global-average-pooled and L2-normalised, concatenated: a multi-level descriptor
        (early blocks keep colour and texture, later ones shape)."""
        parts = []
        for module in self.trunk:
            x = module(x)
            if isinstance(module, nn.ReLU):
                parts.append(F.normalize(x.mean((2, 3)), dim=1))
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.up(self.encode(x))
        return torch.sigmoid(out[..., : self.shape[0], : self.shape[1]])


class MLPAutoencoder1(nn.Module):
    """Stage-1 encoder for vectors: d → 256 → code, mirrored."""

    def __init__(self, n_features: int, code_dim: int = 32, width: int = 256):
        super().__init__()
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(n_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.down = nn.Linear(width, code_dim)
        self.up = nn.Sequential(nn.Linear(code_dim, width), nn.ReLU(), nn.Linear(width, n_features))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.trunk(x))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.trunk(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.encode(x)).view_as(x)


class DebiasNet(nn.Module):
    """F (conv trunk + global average pooling, or an MLP for vectors), task head T, and one cluster head per class
    (stored as one linear layer with n_classes·K outputs). forward(x) returns the task logits."""

    def __init__(self, input_shape, n_classes: int, per_class: int = 0, width: int = 32):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.is_image = len(self.input_shape) == 3
        if self.is_image:
            self.trunk = conv_trunk(self.input_shape[0], width)
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            dim = 2 * width
        else:
            self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(self.input_shape)), 256), nn.ReLU(),
                                       nn.Linear(256, 256), nn.ReLU())
            self.pool = nn.Identity()
            dim = 256
        self.task_head = nn.Linear(dim, n_classes)
        self.per_class = per_class
        self.cluster_head = nn.Linear(dim, n_classes * per_class) if per_class else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.task_head(self.features(x))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(task logits, cluster logits) from one pass through F."""
        h = self.features(x)
        return self.task_head(h), self.cluster_head(h)


def build_classifier(hparams: dict, input_shape, n_classes: int, with_cluster_heads: bool) -> DebiasNet:
    """The stage-2 network of a run, from its hyperparameters and data shape (used to reload saved weights)."""
    return DebiasNet(input_shape, n_classes, hparams.get("clusters_per_class", 0) if with_cluster_heads else 0,
                     hparams.get("width", 32))


# --------------------------------------------------------------------------------------------------------------
# The methods.
# --------------------------------------------------------------------------------------------------------------
def _common_params() -> tuple[Param, ...]:
    return (
        Param("epochs", 20, kind="int", low=1, high=10_000, help="Stage-2 training epochs over the training split.",
              source="ours for MNIST-sized data (ClusterFix §4: 100 epochs with ResNet-18 on CelebA)"),
        Param("batch_size", 256, kind="int", low=2, high=65536, symbol="B", help="Samples per step.",
              source="ClusterFix §4: 256"),
        Param("lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η",
              help="Adam learning rate, cosine-annealed to 0 over the epochs.",
              source="ours (ClusterFix §4: 1e-4 fine-tuning a pretrained ResNet-18)"),
        Param("weight_decay", 1e-4, low=0, high=1.0, help="Adam weight decay (L2).",
              source="ours (ClusterFix §4: 0.01 for ResNet-18)"),
        Param("width", 32, kind="int", low=4, high=512, help="Channels of the CNN's last convolutions (feature size of F)."),
        Param("ae_epochs", 5, kind="int", low=0, high=1000,
              help="Stage 1: epochs of the convolutional autoencoder on the training split (no labels). Its encoder "
                   "initialises F and, for ClusterFix, its embedding is clustered. 0 = random encoder.",
              source="ours (the paper uses a Barlow Twins encoder)"),
        Param("eval_every", 1, kind="int", low=0, high=10_000,
              help="Evaluate on the test split every this many epochs (0 = only at the end)."),
    )


class ERM(Method):
    """Empirical risk minimisation: the same CNN and initialisation as ClusterFix, trained on the plain mean cross-entropy."""

    id = "erm"
    kind, explainable = "classifier", True
    name = "ERM (classifier)"
    summary = ("A small CNN trained on the target label with the plain mean cross-entropy: the biased baseline of "
               "ClusterFix. On Colored MNIST with 99% bias-aligned training images it learns the colour.")
    paper = "Empirical risk minimisation, the baseline of ClusterFix (Capitani et al., WACV 2024) and BPA"
    params = _common_params()
    uses_clusters = False
    headline_metrics = ("avg_acc", "unbiased_acc", "worst_group_acc", "probe_acc")
    curve_metrics = ("avg_acc", "unbiased_acc", "worst_group_acc")
    accuracy_caption = ("Accuracy on each (class, bias) group of the unbiased test split, at every evaluation. A "
                        "classifier that learned the bias is near 1 on the bias-aligned groups and low on the others; "
                        "a debiased one brings them together. The lowest line is the worst-group accuracy.")
    quick = {"ae_epochs": 2, "epochs": 5}
    quick_minutes = 1.3
    # The bias must be strong for debiasing to show: the binary label y' = [digit ≥ 5], 95% of the training images
    # coloured as their label (colour flipped for 5%), on the coloured built-in sample, which ships with the install.
    quick_data = ("colored_digits", {"target": "binary", "label_flip": 0.0, "color_flip": 0.05})

    def check_data(self, data: BiasedDataset) -> None:
        if data.y is None:
            raise ValueError(ERR_NO_TARGET.format(name=self.name, dataset=data.id))
        train = _train_index(data)
        n_classes = len(np.unique(data.y[train]))
        if n_classes < 2:
            raise ValueError(ERR_ONE_CLASS.format(name=self.name, dataset=data.id, n=n_classes))
        self.check_batch_size(len(train), "training samples")

    def train(self, data: BiasedDataset, ctx: RunContext) -> "ERM":
        hp = self.hparams
        device = ctx.device
        train = _train_index(data)
        eval_split = "test" if "test" in data.splits else None
        evaluation = data.split(eval_split) if eval_split else data
        n_classes = _n_classes(data)
        X = data.X.to(device)
        X_train = X[torch.from_numpy(train).to(device)]
        y_train = torch.from_numpy(data.y[train]).to(device)
        X_eval = evaluation.X.to(device)
        generator = torch.Generator().manual_seed(ctx.seed)
        steps = Steps(ctx, (hp["ae_epochs"] + hp["epochs"]) * -(-len(train) // hp["batch_size"]))
        t0 = time.perf_counter()
        ae = self._pretrain(data, X_train, generator, steps)
        model = build_classifier(hp, data.X.shape[1:], n_classes, self.uses_clusters).to(device)
        model.trunk.load_state_dict(ae.trunk.state_dict())  # the stage-1 encoder initialises F
        steps.report("stage 1: pseudo-labels" if self.uses_clusters else "stage 2")
        stage1 = self._stage1(ae, X_train, y_train, n_classes, ctx)
        t_stage1 = time.perf_counter() - t0
        t1 = time.perf_counter()
        self._train(model, X_train, y_train, stage1, generator, steps,
                    lambda epoch: self._evaluate(ctx, model, evaluation, X_eval, eval_split, epoch, steps.done))
        t_train = time.perf_counter() - t1

        model.eval()
        features = embed_chunks(model.features, X, [model])
        self.labels_ = embed_chunks(model, X, [model]).argmax(1).cpu().numpy()
        self.embedding_ = features.cpu().numpy()
        self.model_ = model
        self.timings_ = {"stage1_s": t_stage1, "train_s": t_train, "epochs": hp["epochs"]}
        saver = getattr(ctx, "save_weights", None)
        if saver is not None:
            saver(model.state_dict())
        return self

    def assign(self, X: torch.Tensor) -> torch.Tensor:
        """The class the fitted classifier predicts."""
        return embed_chunks(self.model_, X, [self.model_]).argmax(1)

    def _pretrain(self, data: BiasedDataset, X_train: torch.Tensor, generator: torch.Generator, steps: Steps) -> nn.Module:
        """Stage 1: an autoencoder trained on reconstruction of the training split (MSE, Adam 1e-3; no labels)."""
        hp = self.hparams
        ae = (ConvAutoencoder(data.X.shape[1:], width=hp["width"]) if data.is_image
              else MLPAutoencoder1(data.n_features)).to(X_train.device)
        pretrain_autoencoder(
            ae, X_train, ae, lambda x, x_hat: {"L_rec": F.mse_loss(x_hat, x)}, lr=1e-3, batch_size=hp["batch_size"],
            generator=generator, epochs=hp["ae_epochs"],
            on_step=lambda done, epoch, terms: steps.tick(f"stage 1: autoencoder epoch {epoch}/{hp['ae_epochs']}", **terms))
        return ae

    def _train(self, model: DebiasNet, X_train: torch.Tensor, y_train: torch.Tensor, stage1, generator: torch.Generator,
               steps: Steps, evaluate) -> None:
        """Stage 2: Adam with weight decay, cosine-annealed over the epochs, on the loss of _step; evaluate(epoch) every
        eval_every epochs and at the last."""
        hp = self.hparams
        optimiser = torch.optim.Adam(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        total_steps = hp["epochs"] * -(-len(X_train) // hp["batch_size"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total_steps, 1.0))))
        state = self._init_state(model, X_train, y_train, stage1)
        for epoch in range(1, hp["epochs"] + 1):
            model.train()
            sums = self._epoch_start(state)
            for index in minibatches(len(X_train), hp["batch_size"], generator, X_train.device):
                if len(index) < 2:
                    continue
                loss, scalars = self._step(model, X_train[index], y_train[index], index, state, sums)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                scheduler.step()
                steps.tick(f"epoch {epoch}/{hp['epochs']}", **scalars)
            self._epoch_end(state, sums, steps.done, steps.ctx)
            if epoch == hp["epochs"] or (hp["eval_every"] and epoch % hp["eval_every"] == 0):
                evaluate(epoch)

    # Hooks ClusterFix overrides: pseudo-labels, weights, the loss.
    def _stage1(self, ae, X_train, y_train, n_classes, ctx):
        return None

    def _init_state(self, model, X_train, y_train, stage1):
        return {}

    def _epoch_start(self, state):
        return None

    def _step(self, model, x, y, index, state, sums):
        task = F.cross_entropy(model(x), y)
        return task, {"L_task": task.detach(), "L_total": task.detach()}

    def _epoch_end(self, state, sums, step, ctx) -> None:
        return None

    @staticmethod
    def _evaluate(ctx: RunContext, model: DebiasNet, evaluation: BiasedDataset, X_eval: torch.Tensor,
                  split: str | None, epoch: int, step: int) -> dict:
        """Predictions on the evaluation split: average / unbiased / worst-group accuracy (extra metrics) and each
        (y, b) group's accuracy as a live scalar; the bias attribute b (the group g) enters only here."""
        features = embed_chunks(model.features, X_eval, [model])
        pred = model.task_head(features).argmax(1).cpu().numpy()
        report = group_report(evaluation.y, pred, evaluation.g)
        names = evaluation.group_names
        ctx.log(step, **{f"acc (y={y}, {names[b] if b < len(names) else b})": v for (y, b), v in report["groups"].items()})
        extra = {k: report[k] for k in ("avg_acc", "unbiased_acc", "worst_group_acc")}
        return ctx.evaluate(epoch, features, pred, extra=extra, split=split)


class ClusterFix(ERM):
    """ClusterFix: per-cluster weights from task and cluster-head losses, L_t + γ·L_s, no bias labels."""

    id = "clusterfix"
    debiases_with_clusters = True
    name = "ClusterFix"
    summary = ("Debiasing without group labels: k-means (K per class) on an unsupervised autoencoder's embedding gives "
               "pseudo-labels; a CNN with a task head and one cluster head per class is trained on L_t + γ·L_s, each "
               "sample's task loss weighted by its cluster's mean (task + γ·cluster) loss over the cluster size, "
               "smoothed with momentum. The bias attribute is used only to evaluate.")
    paper = "Capitani, Bolelli, Porrello, Calderara & Ficarra, ClusterFix: A Cluster-Based Debiasing Approach without Protected-Group Supervision (WACV 2024)"
    params = (
        Param("clusters_per_class", 8, kind="int", low=1, high=100, symbol="K",
              help="k-means clusters inside each target class (pseudo-labels); at least 1.", source="ClusterFix §4: 8"),
        Param("gamma", 0.5, low=0, high=100, symbol="γ",
              help="Weight of the cluster loss, in the objective L_t + γ·L_s (Eq. 9) and in the cluster weights (Eq. 8); at least 0.",
              source="ClusterFix §4.1: 0.5 on CelebA (0.01 on Waterbirds)"),
        Param("momentum", 0.3, low=0, high=1, high_open=True, symbol="m",
              help="Smoothing of the cluster weights between epochs: w ← m·w_old + (1 − m)·ŵ.", source="ClusterFix §4, after BPA: 0.3"),
        Param("cluster_features", "pooled", kind="choice", choices=("pooled", "code"),
              help="What k-means clusters: pooled = every conv block's maps of the stage-1 encoder, global-average-pooled, "
                   "L2-normalised and concatenated; code = the autoencoder's bottleneck code.",
              source="ours"),
    ) + _common_params()
    uses_clusters = True

    def _stage1(self, ae, X_train, y_train, n_classes, ctx):
        features = embed_chunks(ae.pooled if self.hparams["cluster_features"] == "pooled" else ae.encode, X_train, [ae])
        k = self.hparams["clusters_per_class"]
        local = pseudo_labels(features, y_train, k, n_classes, seed=ctx.seed)
        cluster = y_train * k + local
        counts = torch.bincount(cluster, minlength=n_classes * k)
        self.pseudo_labels_ = cluster.cpu().numpy()
        return {"local": local, "cluster": cluster, "counts": counts}

    def _init_state(self, model, X_train, y_train, stage1):
        """Weights for the first epoch from one pass of the initial model."""
        k = self.hparams["clusters_per_class"]
        model.eval()
        with torch.no_grad():
            task_sum, cluster_sum = _zeros(stage1["counts"]), _zeros(stage1["counts"])
            for start in range(0, len(X_train), 4096):
                sl = slice(start, start + 4096)
                task_logits, cluster_logits = model.both(X_train[sl])
                _accumulate(task_sum, cluster_sum, stage1["cluster"][sl], F.cross_entropy(task_logits, y_train[sl], reduction="none"),
                            cluster_head_loss(cluster_logits, y_train[sl], stage1["local"][sl], k))
        model.train()
        estimate = cluster_weights(task_sum, cluster_sum, stage1["counts"], self.hparams["gamma"])
        return {**stage1, "weights": momentum_update(None, estimate, self.hparams["momentum"])}

    def _epoch_start(self, state):
        return _zeros(state["counts"]), _zeros(state["counts"])

    def _step(self, model, x, y, index, state, sums):
        hp = self.hparams
        task_logits, cluster_logits = model.both(x)
        task_losses = F.cross_entropy(task_logits, y, reduction="none")
        cluster_losses = cluster_head_loss(cluster_logits, y, state["local"][index], hp["clusters_per_class"])
        cluster = state["cluster"][index]
        _accumulate(sums[0], sums[1], cluster, task_losses.detach(), cluster_losses.detach())
        loss = clusterfix_objective(task_losses, cluster_losses, state["weights"][cluster], hp["gamma"])
        return loss, {"L_task": task_losses.detach().mean(), "L_cluster": cluster_losses.detach().mean(),
                      "L_total": loss.detach()}

    def _epoch_end(self, state, sums, step, ctx) -> None:
        estimate = cluster_weights(sums[0], sums[1], state["counts"], self.hparams["gamma"])
        state["weights"] = momentum_update(state["weights"], estimate, self.hparams["momentum"])
        ctx.log(step, w_spread=weight_spread(state["weights"], state["counts"]))
        self.cluster_weights_ = state["weights"].cpu().numpy()


def _zeros(counts: torch.Tensor) -> torch.Tensor:
    return torch.zeros(len(counts), dtype=torch.float32, device=counts.device)


def _accumulate(task_sum, cluster_sum, cluster, task_losses, cluster_losses) -> None:
    task_sum.index_add_(0, cluster, task_losses.float())
    cluster_sum.index_add_(0, cluster, cluster_losses.float())


def _train_index(data: BiasedDataset) -> np.ndarray:
    """The training samples: the "train" split when the dataset has one, else all."""
    return np.asarray(data.splits["train"]) if "train" in data.splits else np.arange(len(data))


def _n_classes(data: BiasedDataset) -> int:
    return len(data.class_names) if data.class_names else int(data.y.max()) + 1

