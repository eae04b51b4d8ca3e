"""Shared network blocks and training helpers used by several methods."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: Sequence[int], *, last_activation: bool = False, batch_norm: bool = False) -> nn.Sequential:
    """Fully connected layers sizes[0] → … → sizes[-1] with ReLU between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or last_activation:
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """DEC's feed-forward autoencoder d-500-500-2000-z and its mirror (Xie et al. 2016; ClustPy's default)."""

    def __init__(self, n_features: int, latent_dim: int = 10, hidden: Sequence[int] = (500, 500, 2000)):
        super().__init__()
        self.encoder = mlp([n_features, *hidden, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), n_features])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decoder(z).view_as(x)


ERR_SCHEDULE = "a pretraining schedule is either a number of epochs or a number of steps, not both or neither"


def minibatches(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
    """Index tensors of one shuffled epoch over n samples (on device, so slicing the data needs no copy to the host)."""
    order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def pretrain_autoencoder(model: nn.Module, X: torch.Tensor, forward: Callable[[torch.Tensor], Any],
                         loss: Callable[[torch.Tensor, Any], dict[str, torch.Tensor]], *, lr: float, batch_size: int,
                         generator: torch.Generator, epochs: int | None = None, steps: int | None = None,
                         prepare: Callable[[torch.Tensor], torch.Tensor] | None = None, precision: str = "fp32",
                         fused: bool = False, min_batch: int = 1,
                         on_step: Callable[[int, int, dict[str, torch.Tensor]], None] | None = None,
                         on_epoch: Callable[[int], None] | None = None) -> int:
    """Train `model` to reconstruct the rows of X with Adam: the autoencoder pretraining every deep method shares.

    Each step takes the next mini-batch of a shuffled pass (nn.minibatches over `generator`, a new permutation per
    pass), x = prepare(X[index]) (or X[index]), runs forward(x) (under bfloat16 autocast when precision is "bf16"),
    and minimises the sum of the named terms loss(x, output) returns. The schedule is `epochs` passes or `steps`
    mini-batches (one of them); a mini-batch of fewer than min_batch rows (BatchNorm cannot train on one) counts
    towards the schedule but is not trained on. fused: Adam's fused kernel (the same maths in one kernel).
    on_step(steps done, epoch, detached terms) follows every trained step: the caller logs, reports progress and checks
    for a stop there; on_epoch(epoch) follows every completed pass. Returns the mini-batches done (skipped included).
    """
    if (epochs is None) == (steps is None):
        raise ValueError(ERR_SCHEDULE)
    n = len(X)
    per_epoch = -(-n // batch_size)
    total = epochs * per_epoch if steps is None else steps
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, fused=True if fused else None)
    model.train()
    done, epoch = 0, 0
    while done < total:
        epoch += 1
        for index in minibatches(n, batch_size, generator, X.device):
            if done >= total:
                break
            done += 1
            if len(index) < min_batch:
                continue
            x = X[index] if prepare is None else prepare(X[index])
            with mixed_precision(X.device, precision):
                output = forward(x)
            terms = loss(x, output)
            first, *rest = terms.values()
            objective = first
            for term in rest:
                objective = objective + term
            optimiser.zero_grad(set_to_none=True)
            objective.backward()
            optimiser.step()
            if on_step is not None:
                on_step(done, epoch, {name: term.detach() for name, term in terms.items()})
        else:
            if on_epoch is not None:
                on_epoch(epoch)
    return done


# ---------------------------------------------------------------------------------------------------------------
# Blocks of the fair deep clustering papers (DEC, DFC, FCMI): soft assignments, gradient reversal, the papers'
# convolutional and MLP autoencoders, and group-sorted mini-batches.
# ---------------------------------------------------------------------------------------------------------------


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coeff * grad, None


def mixed_precision(device: torch.device, precision: str):
    """The context a training step's forward pass runs in: bfloat16 autocast for "bf16" (matrix products and
    convolutions in bf16; weights, gradients' accumulation, optimiser state and the losses stay fp32), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient multiplied by −coeff backward (Ganin & Lempitsky 2015; DFC's minimax, Eq. 7–8)."""
    return _GradientReversal.apply(x, coeff)


def grl_coefficient(progress: float, ramp: float = 10.0) -> float:
    """Reversal coefficient 2 / (1 + e^(−ramp·t)) − 1 over training progress t ∈ [0, 1] (DFC public code, calc_coeff)."""
    return 2.0 / (1.0 + math.exp(-ramp * progress)) - 1.0


def squared_distances_to(z: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """B × K squared Euclidean distances ‖z_i − μ_k‖², differentiable in both arguments."""
    return (z.unsqueeze(1) - centers.unsqueeze(0)).pow(2).sum(-1)


def student_t_assignment(z: torch.Tensor, centers: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """q_ik ∝ (1 + ‖z_i − μ_k‖²/α)^(−(α+1)/2), rows summing to 1 (DEC Eq. 1; DFC Eq. 6)."""
    logits = -0.5 * (alpha + 1.0) * torch.log1p(squared_distances_to(z, centers) / alpha)
    return torch.softmax(logits, dim=1)


def cosine_assignment(h: torch.Tensor, centers: torch.Tensor, tau: float) -> torch.Tensor:
    """q_ik = softmax_k(cos(h_i, u_k) / τ) (FCMI supplementary Eq. 1)."""
    return torch.softmax(F.normalize(h, dim=1) @ F.normalize(centers, dim=1).T / tau, dim=1)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """N × C × H × W images resized bilinearly to size × size (antialiased when shrinking); unchanged if already so."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def _dfc_init(module: nn.Module) -> None:
    """DFC public code's initialisation: Kaiming-uniform convolutions, Xavier-normal linears (bias 0.1), BN γ ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_uniform_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            nn.init.constant_(m.bias, 0.1)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)


def _conv_bn_relu(c_in: int, c_out: int, stride: int, transpose: bool = False) -> list[nn.Module]:
    conv = (nn.ConvTranspose2d(c_in, c_out, 3, stride=stride, padding=1, output_padding=stride - 1, bias=False)
            if transpose else nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False))
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU()]


def _linear_bn_relu(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU()]


LOGVAR_BOUND = 10.0  # σ between e^−5 and e^5 (DFCAutoencoder)


class DFCAutoencoder(nn.Module):
    """DFC's (variational) autoencoder, encoder as in its public code (module.Encoder).

    Images: resized to 32 × 32 (the public code's input size), conv C→16→32→32→16 (3 × 3, strides 1, 2, 1, 2,
    BatchNorm, ReLU) → 16·8·8 = 1024 → fc 512 (BatchNorm, ReLU) → μ and log σ² heads of size latent_dim (64).
    Vectors: the same fully connected part with the convolutions replaced by d → 1024 (BatchNorm, ReLU).
    pad > 0: images of (32 − 2·pad)² are framed with zeros instead of resized.
    The decoder (not in the public code, which ships pretrained weights) mirrors the encoder and returns logits.
    variational=False gives a plain autoencoder (z = μ), used by DEC with the same architecture.
    """

    image_size = 32

    def __init__(self, input_shape: Sequence[int], latent_dim: int = 64, variational: bool = True, pad: int = 0):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.is_image = len(self.input_shape) == 3
        self.variational = variational
        self.pad = pad
        if self.is_image:
            c = self.input_shape[0]
            if pad and tuple(self.input_shape[1:]) != (self.image_size - 2 * pad,) * 2:
                raise ValueError(f"padding {pad} px makes {self.input_shape[1]}×{self.input_shape[2]} images "
                                 f"{self.input_shape[1] + 2 * pad}×{self.input_shape[2] + 2 * pad}, not the encoder's "
                                 f"{self.image_size}×{self.image_size}")
            self.trunk = nn.Sequential(*_conv_bn_relu(c, 16, 1), *_conv_bn_relu(16, 32, 2), *_conv_bn_relu(32, 32, 1),
                                       *_conv_bn_relu(32, 16, 2), nn.Flatten(), *_linear_bn_relu(16 * 8 * 8, 512))
            self.untrunk = nn.Sequential(*_linear_bn_relu(latent_dim, 512), *_linear_bn_relu(512, 16 * 8 * 8),
                                         nn.Unflatten(1, (16, 8, 8)), *_conv_bn_relu(16, 32, 2, transpose=True),
                                         *_conv_bn_relu(32, 32, 1), *_conv_bn_relu(32, 16, 2, transpose=True),
                                         nn.Conv2d(16, c, 3, padding=1))
        else:
            d = int(np.prod(self.input_shape))
            self.trunk = nn.Sequential(nn.Flatten(), *_linear_bn_relu(d, 1024), *_linear_bn_relu(1024, 512))
            self.untrunk = nn.Sequential(*_linear_bn_relu(latent_dim, 512), *_linear_bn_relu(512, 1024), nn.Linear(1024, d))
        self.fc_mu = nn.Linear(512, latent_dim)
        self.fc_logvar = nn.Linear(512, latent_dim) if variational else None
        _dfc_init(self)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input (and reconstruction target): images resized to 32 × 32 (or, with `pad`, framed by pad
        zero pixels on each side: 28 × 28 digits as DFC's released weights saw them), vectors flattened."""
        if not self.is_image:
            return x.flatten(1)
        return F.pad(x, (self.pad,) * 4) if self.pad else resize_square(x, self.image_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(z, μ, log σ²) of prepared inputs; z is sampled (reparameterised) only when training a variational model."""
        features = self.trunk(x)
        mu = self.fc_mu(features)
        if self.fc_logvar is None:
            return mu, mu, None
        # log σ² clamped to [−10, 10]: nothing bounds it in fair training (no KL term there), and unbounded, L_s can
        # push it until exp overflows and every loss becomes NaN (measurements: docs/METHOD_NOTES.md#dfc).
        logvar = self.fc_logvar(features).clamp(-LOGVAR_BOUND, LOGVAR_BOUND)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return z, mu, logvar

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """μ of raw inputs (prepared here): the embedding used for k-means and evaluation."""
        return self.encode(self.prepare(x))[1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits (images: apply a sigmoid; vectors: the values themselves)."""
        return self.untrunk(z)


def vae_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ (1 + log σ² − μ² − σ²), summed over dimensions, averaged over the batch (Kingma & Welling 2014)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


class FCMINet(nn.Module):
    """FCMI's autoencoder (public code, networkExplicitDecoupleShuffle.Net / NetFCN): L2-normalised embedding of size
    `embedding_dim` (the public representation_dim; K unless set), one decoder per group by default.

    Images: resized to 28 × 28 and scaled to [−1, 1] (the public transforms: Normalize(0.5, 0.5)); conv C→16→32→32→16
    (3 × 3, strides 1, 2, 1, 2, ReLU, no BatchNorm) → 16·7·7 = 784 → 256 → D; decoder D → 256 → 784 (ReLU) →
    transposed convs 16→32→32→16→C with a Tanh output.
    Vectors: d → 1024 → 1024 → 512 (BatchNorm, ReLU) → 256 → D; decoder D → 256 → 512 (ReLU) → 1024 → 1024
    (BatchNorm, ReLU) → d with a Tanh output. Vectors already in [−1, 1] (HAR) are used as given; others, given
    `squash` = (mean, sd), become tanh((x − mean) / sd) with one mean and sd over all entries: the public code's
    feature transform for its vector data (FeatureType GlT_GaussainlizeAndTanh, applied to its ResNet-50
    features), so input and reconstruction target share the Tanh output's range.
    """

    image_size = 28

    def __init__(self, input_shape: Sequence[int], embedding_dim: int, n_groups: int, group_decoders: bool = True,
                 squash: tuple[float, float] | None = None):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.is_image = len(self.input_shape) == 3
        self.squash = squash is not None and not self.is_image
        if self.squash:  # buffers: they follow the network to its device and into its state_dict
            self.register_buffer("input_mean", torch.tensor(float(squash[0])))
            self.register_buffer("input_sd", torch.tensor(float(squash[1])))
        k = embedding_dim
        if self.is_image:
            c = self.input_shape[0]
            self.encoder = nn.Sequential(
                nn.Conv2d(c, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 16, 3, 2, 1), nn.ReLU(), nn.Flatten(),
                nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, k))
            self.decoder_linear = nn.Sequential(nn.Linear(k, 256), nn.ReLU(), nn.Linear(256, 784), nn.ReLU(),
                                                nn.Unflatten(1, (16, 7, 7)))

            def decoder() -> nn.Module:
                return nn.Sequential(
                    nn.ConvTranspose2d(16, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
                    nn.ConvTranspose2d(32, 32, 3, 1, 1), nn.ReLU(),
                    nn.ConvTranspose2d(32, 16, 3, 2, 1, output_padding=1), nn.ReLU(),
                    nn.ConvTranspose2d(16, c, 3, 1, 1), nn.Tanh())
        else:
            d = int(np.prod(self.input_shape))
            self.encoder = nn.Sequential(nn.Flatten(), *_linear_bn_relu(d, 1024), *_linear_bn_relu(1024, 1024),
                                         *_linear_bn_relu(1024, 512), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, k))
            self.decoder_linear = nn.Sequential(nn.Linear(k, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU())

            def decoder() -> nn.Module:
                return nn.Sequential(*_linear_bn_relu(512, 1024), *_linear_bn_relu(1024, 1024), nn.Linear(1024, d),
                                     nn.Tanh())
        self.decoders = nn.ModuleList([decoder() for _ in range(n_groups if group_decoders else 1)])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input and reconstruction target, in [−1, 1]: images at 28 × 28, vectors flattened (and
        squashed when the network was given `squash`)."""
        if self.is_image:
            return resize_square(x, self.image_size) * 2.0 - 1.0
        x = x.flatten(1)
        return torch.tanh((x - self.input_mean) / self.input_sd) if self.squash else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embedding h of prepared inputs (dimension embedding_dim)."""
        return F.normalize(self.encoder(x), dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """h of raw inputs (prepared here)."""
        return self.encode(self.prepare(x))

    def decode(self, h: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
        """Reconstructions of a batch sorted by group, counts[g] samples of group g in order (no host sync)."""
        u = self.decoder_linear(h)
        if len(self.decoders) == 1:
            return self.decoders[0](u)
        parts, start = [], 0
        for group, count in enumerate(counts):
            if count == 0:
                continue
            segment = u[start:start + count]
            if count == 1 and self.training:  # BatchNorm cannot train on one sample: run it twice (public code does the same)
                parts.append(self.decoders[group](segment.repeat(2, *([1] * (segment.dim() - 1))))[:1])
            else:
                parts.append(self.decoders[group](segment))
            start += count
        return torch.cat(parts)


def group_sorted_batches(groups: np.ndarray, batch_size: int, rng: np.random.Generator, n_groups: int,
                         min_batch: int = 2) -> tuple[np.ndarray, list[tuple[int, int, list[int]]]]:
    """One shuffled epoch, each mini-batch sorted by group: (order, [(start, end, counts per group)]).

    Done on the host from the numpy group labels, so splitting a batch by group (FCMI's per-group decoders) needs
    no device sync. A last batch smaller than min_batch is dropped (BatchNorm cannot train on one sample).
    """
    n = len(groups)
    perm = rng.permutation(n)
    batch_id = np.arange(n) // batch_size
    key = batch_id * n_groups + groups[perm]
    order = perm[np.argsort(key, kind="stable")]
    n_batches = -(-n // batch_size)
    counts = np.bincount(key, minlength=n_batches * n_groups).reshape(n_batches, n_groups)
    batches = []
    for b in range(n_batches):
        start, end = b * batch_size, min((b + 1) * batch_size, n)
        if end - start >= min_batch:
            batches.append((start, end, counts[b].tolist()))
    return order, batches


class GroupCycler:
    """Per-group mini-batches of a fixed size, each group reshuffled when it runs out (DFC's one loader per group,
    shuffle and drop_last as in its public code). Host-side, so the device never waits on it."""

    def __init__(self, groups: np.ndarray, n_groups: int, batch_per_group: int, rng: np.random.Generator):
        self.members = [np.flatnonzero(groups == g) for g in range(n_groups)]
        self.batch, self.rng = batch_per_group, rng
        self._order = [rng.permutation(m) for m in self.members]
        self._pos = [0] * n_groups

    def next(self) -> np.ndarray:
        """Indices of batch_per_group samples of group 0, then of group 1, … (concatenated)."""
        out = []
        for g, members in enumerate(self.members):
            if self._pos[g] + self.batch > len(members):
                self._order[g], self._pos[g] = self.rng.permutation(members), 0
            out.append(self._order[g][self._pos[g]:self._pos[g] + self.batch])
            self._pos[g] += self.batch
        return np.concatenate(out)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a wall-clock time covers it; nothing elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_numpy(a) -> np.ndarray:
    """A tensor (detached, on the host) or any array-like as a numpy array."""
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


@torch.no_grad()
def embed_chunks(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, modules: Sequence[nn.Module],
                 batch_size: int = 4096) -> torch.Tensor:
    """fn(x) over X in chunks with every module in eval mode (restored afterwards)."""
    states = [m.training for m in modules]
    for m in modules:
        m.eval()
    out = torch.cat([fn(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])
    for m, state in zip(modules, states):
        m.train(state)
    return out
