"""SENet and Inv-SENnet: self-expressive subspace clustering, without and with bias invariance.

SENet (Zhang, You, Vidal & Li, CVPR 2021): a query net q and a key net k (MLPs d → 1024 → 1024 → 1024 with ReLU,
then a linear output of 1024 with tanh, as the public code's MLP) give the self-expression coefficient of sample i
on dictionary atom j, c_ij = α·T_b(q(x_i)ᵀ k(x_j)), T_b(t) = sign(t)·max(0, |t| − b) with a learned threshold b
(initial 0) and α = 1/1024 (the public code's `shrink`), c_ii = 0. Both nets minimise the self-expression loss

    L_SE = (1/B) Σ_i [ (γ/2)‖x_i − Σ_{j≠i} c_ij x_j‖² + Σ_{j≠i} (λ_en |c_ij| + (1 − λ_en)/2 · c_ij²) ]

(paper Eq. 6–7; public code: γ = 200, λ_en = 0.9, the sum over the batch divided by its size B). Clustering:
coefficients of every sample to clustered set, the top-k per row kept (public code: 1,000), rows L2-normalised (public
code), then as the paper's text says, affinity A = |C| + |Cᵀ| and scikit-learn SpectralClustering(affinity=
"precomputed") on a K-dimensional embedding (defaults: affinity "symmetric", spectral_dim 0); or as both public
repositories run it, a k-nearest-neighbour graph of the rows of C (affinity "knn") clustered by spectral_embedding_labels
(spectral_dim > 0), see "Public code" below.

Inv-SENnet (Singh et al., papers/inv-sennet.md): bias classifiers g(u) on the key embeddings u and g'(v) on the query
embeddings v (MLPs p → 512 → 256 → M with BatchNorm and ReLU, §4.1) learn to predict the bias label (the group g,
Colored MNIST's colour) by cross-entropy, Adam 1e-4; the key and query nets (Adam 1e-3) are trained through gradient
reversal: ∇θ_u = ∂L_SE/∂θ_u − λ ∂L_bias^key/∂θ_u (and alike for θ_v), §3.3, plus the entropy term of Eq. 11–12
weighted μ, which pushes the bias classifiers' predictive distribution towards uniform.

Two readings of each method are named variants (Method.variants): "paper text" (the declared defaults) and "public
code", which sets every setting below that the authors' code runs; the schedule preset still sets the budget (epochs).

Input features (the paper and SENet use a scattering transform): `features` is a declared choice, the same for both
methods and fitted on the training rows only, and recorded in every run's hyperparameters:
- "auto" (default): "scattering" for images, "pca" for vectors (an uploaded table).
- "scattering": a 2-D Morlet scattering transform of order 2 (J = 3 scales, L = 8 orientations; Bruna &
  Mallat 2013, Morlet filters built as kymatio builds them, images zero-padded to a multiple of 2^J, output averaged
  and sampled every 2^J pixels: 217 maps of 4 × 4 = 3,472 numbers for a 28 × 28 image, SENet's MNIST size) of the
  luminance (the channel mean) and of each colour channel separately (colour scattering networks likewise transform
  luminance and colour channels apart, e.g. Oyallon & Mallat's YUV), each coefficient scaled to unit standard
  deviation over the training rows, PCA to `pca_dim` (SENet: 500) fitted on the training rows, rows scaled to unit
  norm. The colour channels make a red and a green image of one digit far apart (the bias SENet falls for); the
  luminance part is what they share. No learned weights: fixed, offline, named.
- "pca": the raw pixels (or vector features), PCA fitted on the training rows, unit-norm rows.
- "raw": the raw pixels or vector features, unit-norm rows.

Protocols (`protocol`):
- "ood" (paper Table 1, out-of-distribution): train on the "train" split (biased Colored MNIST), cluster the "test"
  split (unbiased); evaluations and `labels_` refer to the test split's rows (`eval_split_ = "test"`).
- "mixed" (paper Table 2, mixed domain): train and cluster every row of a dataset that has both splits (biased and
  unbiased samples together). The paper uses equal parts; bench/reproduce.py --dataset colored_mnist_mixed builds one.
- "all": train and cluster every row (any dataset). "auto" (default): "ood" when the dataset has "train" and "test"
  splits, else "all".

Interpretations (where the paper is silent or garbled; Eq. 12 as printed repeats the query terms):
- Direction of the coefficients as in the public code: the query embeds the sample being reconstructed, the keys embed
  the dictionary atoms (the paper's Eq. 12 writes kᵀq; the product is the same).
- Scalability: by default each step reconstructs a mini-batch of B training samples from a dictionary of `dict_size`
  training samples drawn at random for that step (on CPU a random subset per step keeps the cost fixed; the public
  code's whole training set, in blocks, is dict_size 0). A batch sample that is also in the dictionary gets c_ii = 0
  (masked), as the public code subtracts the diagonal term.
- The key classifier g reads the keys of B of the step's dictionary atoms (keys the coefficients used, labels g of
  those atoms; B as many as the query classifier reads; with the whole training set as dictionary or one shared
  classifier, the batch's own keys, as the public code), the query classifier g' the queries of the batch. Loss of each: mean cross-entropy (L_bias^key,
  L_bias^query, logged). Gradient reversal of weight λ sits between each embedding and its classifier
  (dashboard_lib.nn.grad_reverse); the classifiers themselves minimise the cross-entropy.
- Entropy term: μ · E_x[Σ_b Q(b|u) log Q(b|u)] (the negative entropy of Eq. 11's first expectation) is added to the
  key/query loss, for both embeddings, with the classifiers' weights held fixed in it (only θ_u, θ_v move), as in
  Learning Not to Learn (Kim et al. 2019), which the paper follows. Defaults λ = 10 and μ = 10 are ours (the paper
  gives no values): large enough that the classifiers do not saturate, so their reversed gradient does not vanish.
  Every weight can be changed (measurements: docs/METHOD_NOTES.md#senet).
- `same_group_share` (evaluated with two groups or more) is the share of the clustered samples' coefficient mass that
  links two samples of the same group, beside `same_group_chance`, its value when the links ignore the group. Each
  row keeps `top_k` coefficients, 1,000 by default as the public code: a short row fills with whatever the links
  prefer most, the bias included (measurements of both methods: docs/METHOD_NOTES.md#senet).
- `senet` trains the same two classifiers on detached embeddings (no reversal, no entropy term): monitors only, so the
  Monitor page shows how much bias SENet's embeddings carry beside Inv-SENnet's. acc_bias_* is the classifier's
  accuracy on its training batch; bias_chance is the majority-group rate of the training rows.
- λ and μ ramp up over training as Ganin et al.'s gradient reversal (the paper's [16]) does, 2/(1 + e^(−10t)) − 1
  (`grl_ramp`, 0 = constant): the classifiers first learn the bias (accuracy near 1), then lose it as the reversal
  grows (the decay §3.3 describes); logged as lambda_eff = λ × ramp.
- Learning rates are constant by default (paper §4.1), no gradient clipping; lr_schedule and grad_clip give the public
  code's. Its budget is 100,000 steps of batch 100 whatever N (≈ 166 epochs of 60,000 samples, 1,000 epochs of
  10,000), where our `epochs` default is 20: no variant sets it.
- The embedding saved with each evaluation (for the UMAP views and the group probe) is the query embedding v of the
  clustered samples projected on its `embed_dim` leading principal components (storage: 1,024 floats per sample
  would not fit tens of thousands of samples per evaluation).
- Spectral clustering: assign_labels "auto" is k-means for up to 20,000 samples and cluster_qr above; the eigensolver
  is ARPACK up to 2,000 samples and LOBPCG above (ARPACK's shift-invert mode factorises the graph; measurements:
  docs/METHOD_NOTES.md#senet).

Public code, as read (SENet: github.com/zhangsz1998/Self-Expressive-Network main.py and utils.py at 381daf9; Inv-SENnet:
github.com/singh17ashu/Inv-Senet-Invariant-Self-Expression-Network main_invsenet.py at e0ea1fb; each setting a declared
hyperparameter, the "public code" variants set them):
- Clustering (both): 1,000 coefficients per row (zeros included where a row has fewer), rows L2-normalised,
  kneighbors_graph(C, 3, mode="connectivity", include_self=False) (Euclidean distance between the normalised rows, signs
  kept), A = 0.5·(G + Gᵀ): build_affinity(kind="knn"). Then the eigenvectors of the 15 largest eigenvalues of
  I − L_sym = D^−1/2 A D^−1/2 (scipy eigsh, which="LA"), rows L2-normalised, k-means with 20 restarts:
  spectral_embedding_labels. Ours differs in the eigensolver below 1,000 samples (dense, the same vectors), in using
  the run's seed (the code fixes 1 in SENet, 2 in Inv-SENnet) and the repository's own k-means (k-means++, Lloyd, as
  scikit-learn's), and in float64 rows of C (the code casts them to float32).
- Dictionary (both): each batch is reconstructed from every training row, keys computed in blocks of 10,000, the
  diagonal term subtracted afterwards. The code runs N // 10,000 blocks, so the rows past the last full block are never
  atoms when N is not a multiple of 10,000 (N > 10,000); ours takes the last, partial block too. Memory: the code keeps
  every block's graph for one backward; ours holds one block at a time (whole_set_self_expression), same gradients.
- SENet optimiser: Adam 1e-3, gradient norm of all its weights clipped to 0.001, CosineAnnealingLR(T_max = epochs,
  η_min = 0) stepped per epoch (lr_schedule "cosine").
- Inv-SENnet (main_invsenet.py; its main_adverserial*.py are earlier drafts): one bias classifier (Predictor:
  1024 → 512 → 512 → M, LeakyReLU, one BatchNorm module applied after both hidden layers; M hard-coded 3 there, the
  number of groups here) reading torch.cat(keys, queries) of the batch, the batch's colour labels twice (bias_head
  "shared"). Each iteration: (1) a step of the key/query nets on L_SE + 0.01 · E[Σ p log p] of the classifier's
  softmax on the stacked embeddings (the classifier's gradients of that pass are discarded); (2) the embeddings
  recomputed, the classifier's cross-entropy through GradReverse (× −0.1) backward, the classifier's gradient norm
  clipped to 0.001 (only the classifier's: the key/query nets are not clipped), a second step of the key/query nets
  and a step of the classifier (adv_update "alternating"; λ = 0.1, μ = 0.01, no ramp). Both optimisers AdamW 1e-4
  (weight decay 0.01), each with CosineAnnealingLR(T_max = epochs, η_min = 0) stepped every iteration, hence a
  cosine of period 2·epochs iterations (lr_schedule "cosine_per_step"); 200,000 iterations of batch 100 by default.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from torch import nn

from ..data import BiasedDataset
from ..nn import grad_reverse, grl_coefficient, mlp
from ..params import Param
from .base import Method, RunContext, Variant, n_clusters_param

LARGE = 20_000  # above this many samples: cluster_qr labels (k-means below)
LOBPCG_ABOVE = 2_000  # above this many samples: the LOBPCG eigensolver (ARPACK's shift-invert factorises the graph)
ERR_SPECTRAL = ("spectral clustering failed on the {n}-sample affinity ({links} links): {reason}. Try a larger top_k, the "
                "knn affinity, another assign_labels, or fewer clusters")
ERR_NAN = ("the self-expression coefficients contain NaN or infinite values: training diverged. Lower the learning rate "
           "or γ and start again")
ERR_ALL_ZERO = ("every self-expression coefficient of the {n} samples to cluster is zero (the soft threshold b = {b:.3g} "
                "removes them all): nothing to cluster. Train longer or lower λ_en (the ℓ1 share of the elastic net)")


# --------------------------------------------------------------------------------------------------------------------
# Input features: a fixed 2-D Morlet scattering transform (Bruna & Mallat 2013; filters as kymatio builds them).
# --------------------------------------------------------------------------------------------------------------------

def _gabor_2d(m: int, n: int, sigma: float, theta: float, xi: float, slant: float = 1.0) -> np.ndarray:
    """A Gabor filter on an m × n periodic grid (kymatio's gabor_2d): Gaussian envelope, carrier of frequency xi along theta."""
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    rot_inv = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    curv = rot @ np.diag([1.0, slant * slant]) @ rot_inv / (2 * sigma * sigma)
    out = np.zeros((m, n), np.complex128)
    for ex in (-1, 0):
        for ey in (-1, 0):
            xx, yy = np.mgrid[ex * m:m + ex * m, ey * n:n + ey * n]
            arg = (-(curv[0, 0] * xx * xx + (curv[0, 1] + curv[1, 0]) * xx * yy + curv[1, 1] * yy * yy)
                   + 1j * (xx * np.cos(theta) * xi + yy * np.sin(theta) * xi))
            out += np.exp(arg)
    return out / (2 * np.pi * sigma * sigma / slant)


def _morlet_2d(m: int, n: int, sigma: float, theta: float, xi: float, slant: float) -> np.ndarray:
    """A Morlet wavelet: a Gabor filter minus its envelope scaled to give zero mean (kymatio's morlet_2d)."""
    wave = _gabor_2d(m, n, sigma, theta, xi, slant)
    envelope = _gabor_2d(m, n, sigma, theta, 0.0, slant)
    return wave - wave.sum() / envelope.sum() * envelope


def _periodize(spectrum: torch.Tensor, k: int) -> torch.Tensor:
    """The spectrum of the signal sampled every k pixels: the mean of its k × k aliased blocks (kymatio's subsample_fourier)."""
    if k == 1:
        return spectrum
    m, n = spectrum.shape[-2:]
    return spectrum.reshape(*spectrum.shape[:-2], k, m // k, k, n // k).mean(dim=(-4, -2))


class Scattering2D:
    """Order-2 2-D scattering of single-channel images, in the Fourier domain, as kymatio's scattering2d computes it.

    S0 = x ⋆ φ_J, S1 = |x ⋆ ψ_{j1,θ1}| ⋆ φ_J, S2 = ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| ⋆ φ_J for j2 > j1, each sampled every
    2^J pixels; |x ⋆ ψ_j| is computed at resolution 2^−j (periodised spectra). Filters (kymatio's filter_bank): ψ with
    σ = 0.8·2^j, ξ = 3π/4 / 2^j, slant 4/L; φ with σ = 0.8·2^(J−1). Images are zero-padded to a multiple of 2^J
    (background is 0 in the digit datasets). 1 + JL + L²J(J−1)/2 maps (217 for J = 3, L = 8).
    """

    def __init__(self, height: int, width: int, J: int = 3, L: int = 8):
        self.J, self.L = J, L
        step = 2 ** J
        self.size = (-(-height // step) * step, -(-width // step) * step)
        self.pad = ((self.size[0] - height) // 2, (self.size[1] - width) // 2)
        m, n = self.size
        psi, scales = [], []
        for j in range(J):
            for t in range(L):
                theta = (int(L - L / 2 - 1) - t) * np.pi / L
                psi.append(np.real(np.fft.fft2(_morlet_2d(m, n, 0.8 * 2 ** j, theta, 3.0 / 4.0 * np.pi / 2 ** j, 4.0 / L))))
                scales.append(j)
        psi = torch.tensor(np.stack(psi), dtype=torch.float32)  # JL × m × n (real in Fourier)
        phi = torch.tensor(np.real(np.fft.fft2(_gabor_2d(m, n, 0.8 * 2 ** (J - 1), 0.0, 0.0))), dtype=torch.float32)
        # Filters at each resolution level r (the signal sampled every 2^r pixels): periodised spectra.
        self.psi = [_periodize(psi, 2 ** r) for r in range(J)]
        self.phi = [_periodize(phi, 2 ** r) for r in range(J)]
        self.scales = np.array(scales)
        self.n_maps = 1 + J * L + L * L * J * (J - 1) // 2
        self.out_hw = (m // step, n // step)

    @property
    def n_features(self) -> int:
        return self.n_maps * self.out_hw[0] * self.out_hw[1]

    def _lowpass(self, spectrum: torch.Tensor, level: int) -> torch.Tensor:
        """(signal at resolution level ⋆ φ_J) sampled every 2^J pixels of the original grid."""
        return torch.fft.ifft2(_periodize(spectrum * self.phi[level], 2 ** (self.J - level))).real

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: B × H × W → B × n_features."""
        x = F.pad(x, (self.pad[1], self.size[1] - x.shape[-1] - self.pad[1], self.pad[0], self.size[0] - x.shape[-2] - self.pad[0]))
        spectrum = torch.fft.fft2(x)
        out = [self._lowpass(spectrum, 0).flatten(1)]
        for j1 in range(self.J):
            first = self.scales == j1
            u1 = torch.fft.fft2(torch.fft.ifft2(_periodize(spectrum[:, None] * self.psi[0][first], 2 ** j1)).abs())
            out.append(self._lowpass(u1, j1).flatten(1))
            for j2 in range(j1 + 1, self.J):
                second = self.psi[j1][self.scales == j2]  # L × (m/2^j1) × (n/2^j1)
                u2 = torch.fft.ifft2(_periodize(u1[:, :, None] * second, 2 ** (j2 - j1))).abs()
                out.append(self._lowpass(torch.fft.fft2(u2), j2).flatten(1))
        return torch.cat(out, 1)


@torch.no_grad()
def scattering_features(X: torch.Tensor, J: int = 3, L: int = 8, batch_size: int = 128, luminance: bool = False,
                        check_stop=None) -> torch.Tensor:
    """Per-channel scattering of images N × C × H × W → N × (C · n_features); with luminance and C > 1, the
    scattering of the channel mean comes first (N × ((C + 1) · n_features)). All-zero channels (Colored MNIST's
    unused colours) give all-zero features exactly and are skipped."""
    if luminance and X.shape[1] > 1:
        X = torch.cat([X.mean(1, keepdim=True), X], 1)
    n, c, h, w = X.shape
    scat = Scattering2D(h, w, J, L)
    flat = X.reshape(n * c, h, w)
    active = torch.nonzero(flat.flatten(1).abs().amax(1) > 0).flatten()
    out = torch.zeros(n * c, scat.n_features)
    for start in range(0, len(active), batch_size):
        rows = active[start:start + batch_size]
        out[rows] = scat(flat[rows].float())
        if check_stop is not None:
            check_stop()
    return out.reshape(n, c * scat.n_features)


def pca_fit_transform(train: torch.Tensor, rows: torch.Tensor, dim: int, seed: int, whiten: bool = False) -> torch.Tensor:
    """Project rows on the `dim` leading principal axes of train (centred on train's mean); whiten: divide each
    component by its standard deviation over train. The projection is rows·V − mean·V: no centred copy of rows
    (full-size Colored MNIST: 70,000 × 13,888 floats; torch.pca_lowrank still centres a copy of train)."""
    dim = min(dim, train.shape[0], train.shape[1])
    mean = train.mean(0, keepdim=True)
    if dim >= min(train.shape) // 2:
        _, sv, vh = torch.linalg.svd(train - mean, full_matrices=False)
        axes = vh[:dim].T
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            _, sv, axes = torch.pca_lowrank(train, q=dim, niter=4)
    axes = axes[:, :dim]
    out = rows @ axes - mean @ axes
    if whiten:
        out = out / (sv[:dim] / math.sqrt(max(1, len(train) - 1))).clamp_min(1e-8)
    return out


def row_std(x: torch.Tensor, rows: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Per-column standard deviation (unbiased) of x[rows], in chunks of rows (no copy of x[rows] at once)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros(x.shape[1], dtype=torch.float64)
    for start in range(0, len(rows), chunk):
        block = x[rows[start:start + chunk]].double()
        total += block.sum(0)
        squares += block.pow(2).sum(0)
    n = len(rows)
    var = (squares - total.pow(2) / n) / max(n - 1, 1)
    return var.clamp_min(0).sqrt().to(x.dtype)


def extract_features(kind: str, X: torch.Tensor, train_rows: np.ndarray, pca_dim: int, seed: int,
                     whiten: bool = False, check_stop=None) -> torch.Tensor:
    """The fixed input features of both methods (see the module docstring), unit-norm rows; PCA fitted on train_rows."""
    train = torch.from_numpy(train_rows)
    if kind == "scattering":
        if X.dim() != 4:
            raise ValueError("scattering features need images; this dataset holds vectors: choose features = pca or raw")
        feats = scattering_features(X, luminance=True, check_stop=check_stop)
        # Each coefficient scaled to unit standard deviation over the training rows (else the low-pass S0 dominates).
        feats.div_(row_std(feats, train).clamp_min(1e-8))
    else:
        feats = X.flatten(1).float()
    if kind in ("scattering", "pca"):
        # every row trains (protocol "all"): fit on feats itself, not on a row-permuted copy of it (same axes)
        feats = pca_fit_transform(feats if len(train) == len(feats) else feats[train], feats, pca_dim, seed, whiten)
    return F.normalize(feats, dim=1)


# --------------------------------------------------------------------------------------------------------------------
# The self-expressive network and its losses.
# --------------------------------------------------------------------------------------------------------------------

def soft_threshold(t: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """T_b(t) = sign(t)·max(0, |t| − b) (SENet Eq. 8)."""
    return torch.sign(t) * torch.relu(torch.abs(t) - b)


def elastic_net(c: torch.Tensor, lambda_en: float) -> torch.Tensor:
    """r(C) = Σ λ_en|c| + (1 − λ_en)/2 · c² over all entries (public code's regularizer)."""
    return lambda_en * c.abs().sum() + (1.0 - lambda_en) / 2.0 * c.pow(2).sum()


def self_expression_loss(x: torch.Tensor, c: torch.Tensor, dictionary: torch.Tensor, gamma: float,
                         lambda_en: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_SE, its reconstruction part) for a batch x (B × d) reconstructed as c @ dictionary (c: B × D, self already 0):
    L_SE = [ (γ/2) Σ_i ‖x_i − Σ_j c_ij d_j‖² + r(c) ] / B."""
    rec = 0.5 * gamma * (x - c @ dictionary).pow(2).sum() / len(x)
    return rec + elastic_net(c, lambda_en) / len(x), rec


class KeyQueryNet(nn.Module):
    """SENet public code's MLP: Linear + ReLU for each hidden width, a linear output layer, tanh (Kaiming-uniform hidden
    weights, Xavier-uniform output, zero biases)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int):
        super().__init__()
        self.hidden = mlp([n_in, *hidden], last_activation=True)
        self.out = nn.Linear(hidden[-1], n_out)
        for layer in self.hidden:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.hidden(x)))


class SelfExpressiveNet(nn.Module):
    """Query and key nets, the learned threshold b and the scale α: c_ij = α·T_b(q(x_i)ᵀ k(x_j))."""

    def __init__(self, n_in: int, width: int = 1024, depth: int = 3, alpha: float | None = None):
        super().__init__()
        self.query = KeyQueryNet(n_in, (width,) * depth, width)
        self.key = KeyQueryNet(n_in, (width,) * depth, width)
        self.threshold = nn.Parameter(torch.zeros(1))
        self.alpha = 1.0 / width if alpha is None else alpha

    def coefficients(self, v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """C (queries × keys) = α·T_b(v uᵀ)."""
        return self.alpha * soft_threshold(v @ u.T, self.threshold)


def whole_set_self_expression(model: "SelfExpressiveNet", x: torch.Tensor, v: torch.Tensor, batch: torch.Tensor,
                              dictionary: torch.Tensor, block: int, gamma: float, lambda_en: float
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """L_SE of the batch x (rows `batch` of dictionary, query embedding v) reconstructed from the whole dictionary, its
    keys computed `block` rows at a time (SENet public code: blocks of 10,000), c_ii = 0.

    Returns (to_backward, L_SE, its reconstruction part, share of nonzero coefficients), the last three detached.
    With one block, to_backward is L_SE itself. With more, memory stays bounded by one block: a first pass without
    gradients gives the residual R = x − Σ_b C_b D_b; then each block's keys are recomputed and the surrogate
    [−γ⟨R, C_b D_b⟩ + r(C_b)] / B, whose gradient in C_b is L_SE's, is back-propagated at once into the key net and
    b, its gradient in v gathered; to_backward is then ⟨v, that gradient⟩, whose backward carries it into the query
    net. The caller adds to_backward to its other terms and calls backward once, its gradients zeroed BEFORE this call
    (the blocks' gradients are already in them)."""
    n, B = len(dictionary), len(x)

    def coefficients(queries: torch.Tensor, start: int) -> torch.Tensor:
        stop = min(n, start + block)
        c = model.coefficients(queries, model.key(dictionary[start:stop]))
        atoms = torch.arange(start, stop, device=batch.device)
        return c.masked_fill(batch[:, None] == atoms[None, :], 0.0)

    if n <= block:
        c = coefficients(v, 0)
        l_se, l_rec = self_expression_loss(x, c, dictionary, gamma, lambda_en)
        return l_se, l_se.detach(), l_rec.detach(), (c.detach() != 0).float().mean()
    with torch.no_grad():
        rec, reg, nonzero = torch.zeros_like(x), x.new_zeros(()), x.new_zeros(())
        for start in range(0, n, block):
            c = coefficients(v, start)
            rec += c @ dictionary[start:start + block]
            reg += elastic_net(c, lambda_en)
            nonzero += (c != 0).sum()
        residual = x - rec
        l_rec = 0.5 * gamma * residual.pow(2).sum() / B
        l_se = l_rec + reg / B
    v_leaf = v.detach().requires_grad_()
    for start in range(0, n, block):
        c = coefficients(v_leaf, start)
        part = (-gamma * (residual * (c @ dictionary[start:start + block])).sum() + elastic_net(c, lambda_en)) / B
        part.backward()
    return (v * v_leaf.grad).sum(), l_se, l_rec, nonzero / (B * n)


def lr_factor(schedule: str, epoch: int, step: int, epochs: int) -> float:
    """The learning rate's multiplier (of its set value; minimum 0) at an epoch (from 0) and a step (from 0).

    constant: 1. cosine: (1 + cos(π·epoch/epochs))/2, SENet public code's CosineAnnealingLR(T_max = epochs) stepped
    once per epoch. cosine_per_step: (1 + cos(π·step/epochs))/2, Inv-SENnet public code's same scheduler stepped after
    every training step: a cosine of period 2·epochs steps, repeated over the run (PyTorch's closed form)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "cosine_per_step":
        return 0.5 * (1.0 + math.cos(math.pi * step / epochs))
    raise ValueError(f"unknown lr_schedule '{schedule}'; valid: {', '.join(LR_SCHEDULES)}")


def make_optimizer(kind: str, params, lr: float) -> torch.optim.Optimizer:
    """Adam, or AdamW with PyTorch's default weight decay (0.01), as Inv-SENnet's public code creates it."""
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer '{kind}'; valid: adam, adamw")


def set_lr(optimiser: torch.optim.Optimizer, lr: float) -> None:
    for group in optimiser.param_groups:
        group["lr"] = lr


def clip_gradients(params, max_norm: float) -> None:
    """Scale the gradients of params to a total L2 norm of at most max_norm (0: leave them)."""
    if max_norm > 0:
        nn.utils.clip_grad_norm_(list(params), max_norm)


def bias_classifier(width: int, n_groups: int) -> nn.Sequential:
    """Inv-SENnet §4.1: p → 512 → 256 → M with BatchNorm and ReLU between the layers (logits out)."""
    return mlp([width, 512, 256, n_groups], batch_norm=True)


class SharedBiasClassifier(nn.Module):
    """Inv-SENnet public code's one bias classifier for keys and queries (main_invsenet.py's Predictor): p → p/2 →
    p/2 → M, each hidden layer Linear, LeakyReLU (slope 0.01), then ONE BatchNorm module applied after both hidden
    layers (its weights and running statistics shared between them, as the public code reuses bn1)."""

    def __init__(self, width: int, n_groups: int):
        super().__init__()
        hidden = max(1, width // 2)
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, n_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.leaky_relu(self.fc1(x)))
        h = self.norm(F.leaky_relu(self.fc2(h)))
        return self.out(h)


def bias_losses(heads: tuple[nn.Module, ...], u: torch.Tensor, v: torch.Tensor, g_u: torch.Tensor, g_v: torch.Tensor,
                reversal: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss the classifiers minimise, L_bias^key, L_bias^query, key logits, query logits) of the bias classifiers on
    keys u (labels g_u) and queries v (labels g_v). reversal: the gradient-reversal weight between the embeddings and
    the classifiers (None: the embeddings detached, monitors only).

    Two heads (g, g'; paper §3.3): the loss is L_bias^key + L_bias^query. One head (Inv-SENnet public code): it reads
    the keys and queries stacked, and the loss is the mean cross-entropy over the 2B rows (= the mean of the two when
    u and v have as many rows), one BatchNorm batch over both."""
    if reversal is None:
        u, v = u.detach(), v.detach()
    else:
        u, v = grad_reverse(u, reversal), grad_reverse(v, reversal)
    if len(heads) == 1:
        logits = heads[0](torch.cat([u, v]))
        loss = F.cross_entropy(logits, torch.cat([g_u, g_v]))
        logits_k, logits_q = logits[:len(u)], logits[len(u):]
    else:
        logits_k, logits_q = heads[0](u), heads[1](v)
    l_key, l_query = F.cross_entropy(logits_k, g_u), F.cross_entropy(logits_q, g_v)
    return (loss if len(heads) == 1 else l_key + l_query), l_key, l_query, logits_k, logits_q


def bias_entropy(heads: tuple[nn.Module, ...], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The entropy term of Eq. 11–12 before its weight μ: the classifiers' negative entropy on the keys u and the
    queries v, their weights held fixed (gradients reach u and v only). Two heads: the sum of the two; one head (public
    code): the mean over the stacked keys and queries."""
    if len(heads) == 1:
        return negative_entropy(frozen_forward(heads[0], torch.cat([u, v])))
    return negative_entropy(frozen_forward(heads[0], u)) + negative_entropy(frozen_forward(heads[1], v))


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """E_x[Σ_b Q(b|x) log Q(b|x)] of the classifier's softmax (−H: minimising it makes the prediction uniform)."""
    log_q = F.log_softmax(logits, dim=1)
    return (log_q.exp() * log_q).sum(1).mean()


def same_group_share(C: sparse.spmatrix, g: np.ndarray) -> float:
    """Share of the coefficient mass Σ|c_ij| that links samples of the same group (g_i = g_j)."""
    coo = abs(sparse.coo_matrix(C))
    total = coo.data.sum()
    return float(coo.data[g[coo.row] == g[coo.col]].sum() / total) if total > 0 else float("nan")


def group_blind_share(g: np.ndarray) -> float:
    """Σ_g p_g²: the same-group share of links drawn without regard to the group."""
    p = np.bincount(g) / len(g)
    return float(p @ p)


def frozen_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with its parameters held fixed (gradients reach x only)."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, (x,))


# --------------------------------------------------------------------------------------------------------------------
# Affinity and spectral clustering.
# --------------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def sparse_coefficients(v: torch.Tensor, u: torch.Tensor, threshold: float, alpha: float, top_k: int,
                        chunk_elements: int = 2 ** 24, check_stop=None) -> sparse.csr_matrix:
    """C (N × N, c_ii = 0) from query embeddings v and key embeddings u of the same N samples, computed a block of
    rows at a time, keeping each row's top_k coefficients by magnitude (SENet public code: get_sparse_rep)."""
    n = len(v)
    k = max(1, min(top_k, n - 1))
    rows = max(1, chunk_elements // n)
    values, columns = [], []
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        c = alpha * soft_threshold(v[start:stop] @ u.T, threshold)
        c[torch.arange(stop - start), torch.arange(start, stop)] = 0.0
        if not torch.isfinite(c).all():
            raise ValueError(ERR_NAN)
        top = c.abs().topk(k, dim=1).indices
        values.append(c.gather(1, top).cpu().numpy())
        columns.append(top.cpu().numpy())
        if check_stop is not None:
            check_stop()
    values, columns = np.concatenate(values).ravel(), np.concatenate(columns).ravel()
    C = sparse.csr_matrix((values, columns, np.arange(0, n * k + 1, k)), shape=(n, n))
    C.eliminate_zeros()
    return C


def build_affinity(C: sparse.csr_matrix, kind: str = "symmetric", normalize_rows: bool = True,
                   n_neighbors: int = 3) -> sparse.csr_matrix:
    """A = |C| + |Cᵀ| (paper §2.1; rows of C L2-normalised first as the public code does), or the public code's
    'nearest_neighbor' graph: the n_neighbors nearest rows of the normalised C, symmetrised."""
    from sklearn.neighbors import kneighbors_graph
    from sklearn.preprocessing import normalize

    Cn = normalize(C, norm="l2", axis=1) if normalize_rows else C.copy()
    if kind == "symmetric":
        A = abs(Cn) + abs(Cn).T
    elif kind == "knn":
        G = kneighbors_graph(Cn, min(n_neighbors, C.shape[0] - 1), mode="connectivity", include_self=False)
        A = 0.5 * (G + G.T)
    else:
        raise ValueError(f"unknown affinity '{kind}'; valid: symmetric, knn")
    return sparse.csr_matrix(A, dtype=np.float64)


def spectral_labels(A: sparse.spmatrix, n_clusters: int, assign_labels: str = "auto", seed: int = 0,
                    eigen_solver: str | None = None, n_init: int = 10) -> np.ndarray:
    """scikit-learn SpectralClustering on the precomputed affinity; any failure becomes a ValueError that says what to try."""
    from sklearn.cluster import SpectralClustering

    n = A.shape[0]
    if A.nnz == 0:
        raise ValueError(ERR_SPECTRAL.format(n=n, links=0, reason="the affinity has no links"))
    if not np.isfinite(A.data).all():
        raise ValueError(ERR_NAN)
    if n_clusters > n:
        raise ValueError(f"spectral clustering: K = {n_clusters} clusters is more than the {n} samples")
    if assign_labels == "auto":
        assign_labels = "kmeans" if n <= LARGE else "cluster_qr"
    if eigen_solver is None:
        eigen_solver = "arpack" if n <= LOBPCG_ABOVE else "lobpcg"
    model = SpectralClustering(n_clusters=n_clusters, affinity="precomputed", assign_labels=assign_labels,
                               eigen_solver=eigen_solver, random_state=seed, n_init=n_init)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            warnings.filterwarnings("ignore", message="Exited")  # LOBPCG a little short of its tolerance: still usable
            labels = model.fit_predict(A)
    except Exception as exc:  # ArpackNoConvergence, LinAlgError, a singular factorisation…
        raise ValueError(ERR_SPECTRAL.format(n=n, links=A.nnz, reason=f"{type(exc).__name__}: {exc}")) from exc
    return np.asarray(labels, dtype=np.int64)


DENSE_EIGEN_AT_MOST = 1_000  # up to this many samples: a dense symmetric eigensolver (exact; ARPACK needs dim < N)


def spectral_embedding(A: sparse.spmatrix, dim: int) -> np.ndarray:
    """The public code's spectral embedding (SENet utils.spectral_clustering): the dim eigenvectors of largest
    eigenvalue of I − L = D^−1/2 A D^−1/2 (L the normalised Laplacian of the symmetric affinity A), each row scaled to
    unit L2 norm (Ng, Jordan & Weiss 2001). N × min(dim, N). No D^−1/2 rescaling and no first vector dropped, unlike
    scikit-learn's spectral_embedding. ValueError (ERR_SPECTRAL) when the eigensolver fails."""
    from scipy.sparse import csgraph
    from scipy.sparse.linalg import eigsh
    from sklearn.preprocessing import normalize

    A = sparse.csr_matrix(A, dtype=np.float64)
    n = A.shape[0]
    if A.nnz == 0:
        raise ValueError(ERR_SPECTRAL.format(n=n, links=0, reason="the affinity has no links"))
    if not np.isfinite(A.data).all():
        raise ValueError(ERR_NAN)
    if abs(A - A.T).max() > 1e-10 * max(1.0, abs(A).max()):
        raise ValueError(ERR_SPECTRAL.format(n=n, links=A.nnz, reason="the affinity is not symmetric"))
    dim = min(dim, n)
    M = sparse.identity(n, format="csr") - csgraph.laplacian(A, normed=True)
    try:
        if n <= DENSE_EIGEN_AT_MOST or dim >= n - 1:
            _, vectors = np.linalg.eigh(M.toarray())  # ascending eigenvalues: the last dim are the largest
            vectors = vectors[:, n - dim:]
        else:
            _, vectors = eigsh(M, k=dim, which="LA")
    except Exception as exc:  # ArpackNoConvergence, LinAlgError
        raise ValueError(ERR_SPECTRAL.format(n=n, links=A.nnz, reason=f"{type(exc).__name__}: {exc}")) from exc
    return normalize(vectors)


def spectral_embedding_labels(A: sparse.spmatrix, n_clusters: int, dim: int, n_init: int = 20, seed: int = 0) -> np.ndarray:
    """The public code's spectral clustering: k-means (k-means++ seeding, best of n_init restarts by inertia; the
    repository's own kmeans) on spectral_embedding(A, dim) (SENet and Inv-SENnet: dim 15, n_init 20)."""
    from .kmeans import kmeans

    n = A.shape[0]
    if n_clusters > n:
        raise ValueError(f"spectral clustering: K = {n_clusters} clusters is more than the {n} samples")
    embedding = torch.from_numpy(spectral_embedding(A, dim)).float()
    return kmeans(embedding, n_clusters, n_init=n_init, seed=seed).labels.cpu().numpy().astype(np.int64)


@torch.no_grad()
def principal_components(z: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    """z projected on its dim leading principal components (or z itself when it is already that small)."""
    if z.shape[1] <= dim:
        return z
    return pca_fit_transform(z, z, dim, seed)


# --------------------------------------------------------------------------------------------------------------------
# The methods.
# --------------------------------------------------------------------------------------------------------------------

PROTOCOLS = ("auto", "ood", "mixed", "all")
LR_SCHEDULES = ("constant", "cosine", "cosine_per_step")
# The clustering both public repositories run by default (SENet main.py's evaluate, Inv-SENnet's the same).
SENET_PUBLIC_AFFINITY = {"top_k": 1000, "affinity": "knn", "n_neighbors": 3, "spectral_dim": 15, "spectral_n_init": 20}


def protocol_rows(data: BiasedDataset, protocol: str) -> tuple[str, np.ndarray, np.ndarray, str | None]:
    """(protocol, training rows, rows to cluster, split the clustered rows are) for a protocol on data."""
    has_splits = "train" in data.splits and "test" in data.splits
    if protocol == "auto":
        protocol = "ood" if has_splits else "all"
    every = np.arange(len(data))
    if protocol in ("ood", "mixed") and not has_splits:
        have = ", ".join(data.splits) or "none"
        raise ValueError(f"protocol {protocol} needs the dataset's 'train' (biased) and 'test' (unbiased) splits; "
                         f"{data.id} has splits: {have}. Choose protocol all (or auto)")
    if protocol == "ood":
        return protocol, np.asarray(data.splits["train"]), np.asarray(data.splits["test"]), "test"
    if protocol in ("mixed", "all"):
        return protocol, every, every, None
    raise ValueError(f"unknown protocol '{protocol}'; valid: {', '.join(PROTOCOLS)}")


def senet_params() -> tuple[Param, ...]:
    return (
        n_clusters_param(),
        Param("protocol", "auto", kind="choice", choices=PROTOCOLS,
              help="ood: train on the 'train' split, cluster the 'test' split (paper Table 1); mixed: train and cluster "
                   "both splits together (Table 2); all: every row; auto: ood when the data has both splits, else all.",
              source="Inv-SENnet §4.2"),
        Param("features", "auto", kind="choice", choices=("auto", "scattering", "pca", "raw"),
              help="Fixed input features, fitted on the training rows only: Morlet scattering (J=3, L=8, order 2) of the "
                   "luminance and of each colour channel + PCA; raw-pixel (or raw-vector) PCA; or raw. Rows scaled to "
                   "unit norm. auto: scattering for images, PCA for vectors such as an uploaded table.",
              source="paper §4.1 and SENet: scattering + PCA 500"),
        Param("pca_dim", 500, kind="int", low=1, high=100_000, symbol="d", help="PCA dimension of the features.",
              source="SENet public code: 500"),
        Param("whiten", False, kind="bool",
              help="Scale each principal component to unit variance (training rows) before the unit-norm rows.",
              source="ours (SENet: no whitening)"),
        Param("gamma", 200.0, low=0, low_open=True, high=1e8, symbol="γ",
              help="Weight of the reconstruction term (γ/2)‖x − Cx‖².", source="SENet public code: 200"),
        Param("lambda_en", 0.9, low=0, high=1, symbol="λ_en",
              help="Elastic-net mix: λ_en|c| + (1 − λ_en)/2·c².", source="SENet public code: 0.9"),
        Param("alpha", 0.0, low=0, high=10, symbol="α",
              help="Scale of the coefficients c = α·T_b(qᵀk); 0 = 1/width.", source="SENet public code: 1/1024"),
        Param("width", 1024, kind="int", low=2, high=8192, symbol="p",
              help="Width of the query/key hidden layers and of their output embedding.", source="Inv-SENnet §4.1: 1024"),
        Param("depth", 3, kind="int", low=1, high=10, help="Hidden layers of the query/key nets.",
              source="Inv-SENnet §4.1: three"),
        Param("lr", 1e-3, low=0, low_open=True, high=1.0, log=True, symbol="η",
              help="Learning rate of the query/key nets and the threshold b (its value at the start of lr_schedule).",
              source="Inv-SENnet §4.1: 1e-3; Inv-SENnet public code: 1e-4"),
        Param("lr_bias", 1e-4, low=0, low_open=True, high=1.0, log=True, symbol="η_bias",
              help="Learning rate of the bias classifiers (same schedule).", source="Inv-SENnet §4.1 and public code: 1e-4"),
        Param("optimizer", "adam", kind="choice", choices=("adam", "adamw"),
              help="Optimiser of both the query/key nets and the bias classifiers: Adam, or AdamW with PyTorch's default "
                   "decoupled weight decay 0.01 (on every weight, b included, as the public code's AdamW).",
              source="Inv-SENnet §4.1: Adam; SENet public code: Adam; Inv-SENnet public code: AdamW"),
        Param("lr_schedule", "constant", kind="choice", choices=LR_SCHEDULES,
              help="constant; cosine: η·(1 + cos(π·epoch/epochs))/2, annealed to 0 over the run, set each epoch; "
                   "cosine_per_step: η·(1 + cos(π·step/epochs))/2, the epoch-length cosine advanced every step, so the "
                   "rate swings between η and 0 with a period of 2·epochs steps (both optimisers).",
              source="Inv-SENnet §4.1: constant; SENet public code: cosine (per epoch); Inv-SENnet public code: "
                     "cosine_per_step (CosineAnnealingLR(T_max = epochs) stepped every step)"),
        Param("grad_clip", 0.0, low=0, high=1e6,
              help="Clip the gradient norm of the query/key nets and b to this before each step (0 = no clipping).",
              source="SENet public code: 0.001; Inv-SENnet public code: none (it clips the bias classifier only)"),
        Param("epochs", 20, kind="int", low=1, high=100_000, help="Passes over the training rows."),
        Param("batch_size", 100, kind="int", low=2, high=65536, symbol="B",
              help="Samples reconstructed per step.", source="SENet public code: 100"),
        Param("dict_size", 1000, kind="int", low=0, high=1_000_000, symbol="D",
              help="Dictionary atoms each step reconstructs its batch from: that many training rows drawn at random for "
                   "the step (at most all of them); 0 = every training row, in blocks of dict_block, as the public "
                   "code does. Not the default: every step then runs the key net forward and back over the whole "
                   "training set, N/D times the work of a random dictionary: slow on a CPU, affordable on a GPU.",
              source="ours (random atoms); SENet and Inv-SENnet public code: 0 (the whole training set)"),
        Param("dict_block", 10_000, kind="int", low=1, high=1_000_000,
              help="With dict_size 0: dictionary rows per block. Memory holds one block's key-net activations at a "
                   "time (a first pass without gradients, then one backward per block); the result does not depend on it.",
              source="SENet public code: 10,000"),
        Param("top_k", 1000, kind="int", low=1, high=1_000_000,
              help="Coefficients kept per row of C for the affinity. A short row fills with whatever the links prefer "
                   "most, the bias included (measurements: docs/METHOD_NOTES.md#senet).",
              source="SENet public code non_zeros: 1000"),
        Param("affinity", "symmetric", kind="choice", choices=("symmetric", "knn"),
              help="Rows of C L2-normalised, then symmetric: A = |C| + |Cᵀ|; knn: each row linked (weight 1) to the "
                   "n_neighbors rows of C nearest it in Euclidean distance, itself excluded, A = (G + Gᵀ)/2.",
              source="paper §2.1: symmetric; SENet and Inv-SENnet public code: knn (their default 'nearest_neighbor')"),
        Param("n_neighbors", 3, kind="int", low=1, high=1000, help="Neighbours of the knn affinity.",
              source="SENet public code: 3"),
        Param("spectral_dim", 0, kind="int", low=0, high=1000,
              help="Spectral embedding clustered by k-means. 0: K dimensions, scikit-learn's SpectralClustering "
                   "(assign_labels applies). > 0: the public code's: that many leading eigenvectors of D^−1/2 A D^−1/2, "
                   "rows scaled to unit norm, then k-means (assign_labels unused).",
              source="paper text: spectral clustering (K); SENet and Inv-SENnet public code: 15"),
        Param("spectral_n_init", 10, kind="int", low=1, high=1000,
              help="k-means restarts on the spectral embedding (the lowest inertia wins).",
              source="scikit-learn's default 10 (the papers are silent); SENet and Inv-SENnet public code: 20"),
        Param("assign_labels", "auto", kind="choice", choices=("auto", "kmeans", "cluster_qr", "discretize"),
              help="Spectral clustering's label assignment with spectral_dim 0 (auto: kmeans up to 20,000 samples, "
                   "cluster_qr above)."),
        Param("eval_every", 5, kind="int", low=0, help="Cluster and evaluate every this many epochs (0 = only at the end)."),
        Param("log_every", 5, kind="int", low=1, high=100_000, help="Log the live signals every this many steps."),
        Param("embed_dim", 32, kind="int", low=2, high=1024,
              help="Principal components of the query embedding saved with each evaluation (UMAP views, group probe)."),
    )


class SENet(Method):
    """SENet: self-expressive network subspace clustering (see the module docstring)."""

    id = "senet"
    signal_metrics = ("acc_bias_key", "acc_bias_query", "same_group_share")
    signal_series = ("acc_bias_key", "acc_bias_query")  # the bias classifiers' accuracy, logged as they train
    name = "SENet (self-expressive network)"
    summary = ("Subspace clustering by self-expression: query and key networks give each sample's coefficients on the "
               "others (soft-thresholded inner products), trained to reconstruct each sample from the others (γ) with an "
               "elastic-net penalty (λ_en); affinity |C| + |Cᵀ| and spectral clustering (paper text) or the public "
               "code's kNN graph and 15-dimensional spectral embedding. Bias classifiers watch the embeddings "
               "(monitors only).")
    paper = "Zhang, You, Vidal & Li 2021, Learning a Self-Expressive Network for Subspace Clustering (CVPR)"
    invariant = False
    # top_k stays at the public code's 1,000: with fewer, a residual preference for same-colour atoms fills each row
    # (measurements: docs/METHOD_NOTES.md#senet).
    quick = {"width": 256, "pca_dim": 200, "epochs": 10, "dict_size": 500}
    quick_minutes = 0.8
    accuracy_caption = ("acc_bias_key / acc_bias_query: bias classifiers trained on SENet's key and query embeddings "
                        "(detached: they only watch, SENet is not trained against them), beside chance, the majority "
                        "group's rate (dashed). They stay well above chance when the embeddings carry the group, as "
                        "SENet's do; Inv-SENnet trains against the same classifiers.")
    params = senet_params() + (
        Param("monitor_bias", True, kind="bool",
              help="Train bias classifiers on the detached key/query embeddings to show how much of the group they carry."),
    )
    variants = {
        "paper text": Variant(source=(
            "SENet paper (Zhang, You, Vidal & Li, CVPR 2021) Eq. 6–8 with its public code's γ, λ_en, widths and "
            "α; affinity |C| + |Cᵀ| and spectral clustering (K eigenvectors), Adam at a constant rate; each step's "
            "dictionary a random subset of the training rows (ours, for CPU cost)")),
        "public code": Variant(values={
            **SENET_PUBLIC_AFFINITY, "dict_size": 0, "dict_block": 10_000, "lr_schedule": "cosine", "grad_clip": 0.001},
            source=(
            "github.com/zhangsz1998/Self-Expressive-Network, main.py and utils.py (commit 381daf9): each batch "
            "reconstructed from the whole training set in blocks of 10,000, gradient norm clipped to 0.001, Adam 1e-3 "
            "with CosineAnnealingLR(T_max = epochs) stepped per epoch to 0; 1,000 coefficients per row, rows "
            "L2-normalised, kNN graph (k = 3, connectivity, self excluded, (G + Gᵀ)/2), spectral embedding of "
            "dimension 15 with rows normalised, k-means × 20. Its budget, 100,000 iterations of batch 100, is the "
            "schedule's to set (epochs)")),
    }

    def uses_bias(self, data: BiasedDataset) -> bool:
        return self.invariant or (self.hparams.get("monitor_bias", False) and data.n_groups >= 2)

    def check_data(self, data: BiasedDataset) -> None:
        super().check_data(data)
        hp = self.hparams
        _, train, cluster, _ = protocol_rows(data, hp["protocol"])
        if self.features(data) == "scattering" and not data.is_image:
            raise ValueError(f"{self.name}: scattering features need images; {data.id} holds vectors: choose features = pca or raw")
        self.check_batch_size(len(train), "training samples")
        k = self.n_clusters(data)
        if k > len(cluster):
            raise ValueError(f"{self.name}: K = {k} clusters is more than the {len(cluster)} samples to cluster")
        if self.invariant and len(np.unique(data.g[train])) < 2:
            raise ValueError(f"{self.name} needs at least two groups among its training samples to learn invariance; "
                             f"the training rows of {data.id} hold one")

    def features(self, data: BiasedDataset) -> str:
        """The input features this run uses: the declared choice, with auto resolved by the data's kind."""
        if self.hparams["features"] == "auto":
            return "scattering" if data.is_image else "pca"
        return self.hparams["features"]

    # -- clustering ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def cluster(self, model: SelfExpressiveNet, feats: torch.Tensor, k: int, seed: int, ctx: RunContext | None = None
                ) -> tuple[np.ndarray, torch.Tensor, sparse.csr_matrix]:
        """Labels of the rows feats (spectral clustering of their self-expression affinity), their query embedding and
        their coefficient matrix C (top_k per row)."""
        hp = self.hparams
        was = model.training
        model.eval()
        v = torch.cat([model.query(feats[i:i + 4096]) for i in range(0, len(feats), 4096)])
        u = torch.cat([model.key(feats[i:i + 4096]) for i in range(0, len(feats), 4096)])
        model.train(was)
        check = ctx.check_stop if ctx is not None else None
        C = sparse_coefficients(v, u, float(model.threshold), model.alpha, hp["top_k"], check_stop=check)
        if C.nnz == 0:
            raise ValueError(ERR_ALL_ZERO.format(n=len(feats), b=float(model.threshold)))
        A = build_affinity(C, hp["affinity"], True, hp["n_neighbors"])
        if hp["spectral_dim"] > 0:
            return spectral_embedding_labels(A, k, hp["spectral_dim"], hp["spectral_n_init"], seed), v, C
        return spectral_labels(A, k, hp["assign_labels"], seed, n_init=hp["spectral_n_init"]), v, C

    # -- training -----------------------------------------------------------------------------------------------
    def train(self, data: BiasedDataset, ctx: RunContext) -> "SENet":
        hp = self.hparams
        k = self.n_clusters(data)
        f_train, f_cluster, g_train, cluster_rows, split = self._input_features(data, ctx)
        run = self._training(data, f_train, g_train, ctx)
        steps_per_epoch = len(f_train) // hp["batch_size"]  # the last incomplete batch is dropped (BatchNorm, equal-size steps)
        total = hp["epochs"] * steps_per_epoch
        step = 0
        labels = embedding = None
        t0 = time.perf_counter()
        for epoch in range(1, hp["epochs"] + 1):
            order = torch.randperm(len(f_train), generator=run.generator)
            for s in range(steps_per_epoch):
                step += 1
                batch = order[s * hp["batch_size"]:(s + 1) * hp["batch_size"]]
                scalars = self._train_step(run, batch, epoch, step, total, log=step % hp["log_every"] == 0 or step == 1)
                if scalars is not None:
                    ctx.log(step, **scalars)
                ctx.progress(step / total, f"epoch {epoch}/{hp['epochs']}")
            if epoch == hp["epochs"] or (hp["eval_every"] and epoch % hp["eval_every"] == 0):
                ctx.progress(step / total, f"spectral clustering (epoch {epoch})")
                labels, embedding = self._evaluate(run.model, f_cluster, k, data.g[cluster_rows], data.n_groups >= 2,
                                                   epoch, split, time.perf_counter() - t0, ctx)
        self.labels_ = labels
        self.embedding_ = embedding.cpu().numpy()
        self.model_ = run.model
        return self

    def _input_features(self, data: BiasedDataset, ctx: RunContext):
        """(training features, features to cluster, training groups, rows to cluster, their split) by the protocol:
        the fixed features of the training and clustered rows, fitted on the training rows."""
        hp = self.hparams
        protocol, train, cluster_rows, split = protocol_rows(data, hp["protocol"])
        self.protocol_, self.eval_split_ = protocol, split
        self.train_index_, self.cluster_index_ = train, cluster_rows
        features = self.features(data)
        ctx.progress(0.0, f"features: {features}" + (" (auto)" if hp["features"] == "auto" else ""))
        rows = np.union1d(train, cluster_rows)
        position = np.full(len(data), -1)
        position[rows] = np.arange(len(rows))
        X = data.X[torch.from_numpy(rows)]
        feats = extract_features(features, X, position[train], hp["pca_dim"], ctx.seed, hp["whiten"],
                                 ctx.check_stop).to(ctx.device)
        f_train, f_cluster = feats[torch.from_numpy(position[train])], feats[torch.from_numpy(position[cluster_rows])]
        return f_train, f_cluster, torch.from_numpy(data.g[train]).to(ctx.device), cluster_rows, split

    def _training(self, data: BiasedDataset, f_train: torch.Tensor, g_train: torch.Tensor, ctx: RunContext) -> "_Training":
        """The networks, optimisers and settings of a run (the bias classifiers when the method uses them)."""
        hp, device = self.hparams, ctx.device
        n_train, d = f_train.shape
        model = SelfExpressiveNet(d, hp["width"], hp["depth"], hp["alpha"] or None).to(device)
        run = _Training(model=model, optimiser=make_optimizer(hp["optimizer"], model.parameters(), hp["lr"]),
                        f_train=f_train, g_train=g_train)
        # One classifier reading keys and queries (Inv-SENnet public code) or one each (the paper's g and g').
        run.shared = self.invariant and hp.get("bias_head") == "shared"
        if self.uses_bias(data):
            m, width = data.n_groups, hp["width"]
            run.heads = ((SharedBiasClassifier(width, m).to(device),) if run.shared else
                         (bias_classifier(width, m).to(device), bias_classifier(width, m).to(device)))
            run.head_params = [p for head in run.heads for p in head.parameters()]
            run.bias_optimiser = make_optimizer(hp["optimizer"], run.head_params, hp["lr_bias"])
            run.chance = float(np.bincount(g_train.cpu().numpy(), minlength=m).max() / n_train)
        run.generator = torch.Generator().manual_seed(ctx.seed)
        run.dict_size = 0 if hp["dict_size"] == 0 else min(hp["dict_size"], n_train)
        return run

    def _train_step(self, run: "_Training", batch: torch.Tensor, epoch: int, step: int, total: int,
                    log: bool) -> dict | None:
        """One step: the batch reconstructed from the dictionary (L_SE), the bias classifiers' loss through gradient
        reversal (Inv-SENnet) or on detached embeddings (SENet's monitors), then the optimisers' steps. Returns the
        scalars to log when `log`."""
        hp, model = self.hparams, run.model
        use_bias = run.heads is not None
        factor = lr_factor(hp["lr_schedule"], epoch - 1, step - 1, hp["epochs"])
        set_lr(run.optimiser, hp["lr"] * factor)
        run.optimiser.zero_grad(set_to_none=True)
        if use_bias:
            set_lr(run.bias_optimiser, hp["lr_bias"] * factor)
            run.bias_optimiser.zero_grad(set_to_none=True)
        se = self._self_expression(run, batch)
        loss, bias = se.loss, None
        if use_bias:
            loss, bias = self._bias_terms(run, se, (step - 1) / total)
        loss.backward()
        clip_gradients(model.parameters(), hp["grad_clip"])
        run.optimiser.step()
        if use_bias:
            clip_gradients(run.head_params, hp.get("grad_clip_bias", 0.0))
            run.bias_optimiser.step()
        if not log:
            return None
        scalars = {"L_SE": se.l_se, "L_rec": se.l_rec, "threshold": model.threshold.detach()[0], "nonzero": se.nonzero}
        if use_bias:
            scalars.update(bias)
        if hp["lr_schedule"] != "constant":
            scalars["lr_factor"] = factor
        return scalars

    def _self_expression(self, run: "_Training", batch: torch.Tensor) -> "_SelfExpression":
        """L_SE of the batch (Eq. 6–7): reconstructed from a random dictionary of dict_size training rows drawn for the
        step, or from every training row in blocks of dict_block (the public code); c_ii = 0."""
        hp, model, f_train = self.hparams, run.model, run.f_train
        if run.dict_size == 0:
            batch = batch.to(f_train.device, non_blocking=True)
            x = f_train[batch]
            v = model.query(x)
            loss, l_se, l_rec, nonzero = whole_set_self_expression(
                model, x, v, batch, f_train, hp["dict_block"], hp["gamma"], hp["lambda_en"])
            # the key classifier reads the batch's own keys (public code)
            return _SelfExpression(loss, l_se, l_rec, nonzero, batch, x, v, None, batch)
        atoms = torch.randperm(len(f_train), generator=run.generator)[:run.dict_size]
        # Asynchronous copies of the two index vectors, the mask built on the device: no stream sync and
        # no B × dict_size copy per step.
        batch, atoms = batch.to(f_train.device, non_blocking=True), atoms.to(f_train.device, non_blocking=True)
        self_mask = batch[:, None] == atoms[None, :]
        x, dictionary = f_train[batch], f_train[atoms]
        v = model.query(x)
        u = model.key(dictionary)
        c = model.coefficients(v, u).masked_fill(self_mask, 0.0)
        loss, l_rec = self_expression_loss(x, c, dictionary, hp["gamma"], hp["lambda_en"])
        # Two heads: the key classifier reads the keys of the first B atoms (as many samples as the query
        # classifier); one head: the batch's own keys, as the public code.
        read = batch if run.shared else atoms[:len(batch)]
        return _SelfExpression(loss, loss.detach(), l_rec.detach(), (c.detach() != 0).float().mean(), batch, x, v, u, read)

    def _bias_terms(self, run: "_Training", se: "_SelfExpression", progress: float) -> tuple[torch.Tensor, dict]:
        """(L_SE plus the bias classifiers' terms, their scalars to log). Inv-SENnet: the classifiers' cross-entropy
        through gradient reversal of weight λ and the entropy term μ (§3.3, Eq. 9–12), both ramped over training
        progress; with adv_update "alternating", first a step of the key/query nets on L_SE + entropy, then the
        embeddings afresh (public code). SENet: the classifiers on detached embeddings (monitors)."""
        hp, model, f_train = self.hparams, run.model, run.f_train
        loss, v = se.loss, se.v
        g_read, g_batch = run.g_train[se.read], run.g_train[se.batch]
        u_read = se.u[:len(se.batch)] if se.u is not None and not run.shared else model.key(f_train[se.read])
        reversal = None
        if self.invariant:
            ramp = grl_coefficient(progress, hp["grl_ramp"]) if hp["grl_ramp"] > 0 else 1.0
            reversal = float(hp["lambda_adv"]) * ramp
            mu = float(hp["mu"])
            if mu > 0:
                loss = loss + mu * ramp * bias_entropy(run.heads, u_read, v)
            if hp["adv_update"] == "alternating":
                loss.backward()
                clip_gradients(model.parameters(), hp["grad_clip"])
                run.optimiser.step()
                run.optimiser.zero_grad(set_to_none=True)
                run.bias_optimiser.zero_grad(set_to_none=True)
                v, u_read = model.query(se.x), model.key(f_train[se.read])
                loss = 0.0
        bias_loss, l_key, l_query, logits_k, logits_q = bias_losses(run.heads, u_read, v, g_read, g_batch, reversal)
        scalars = {"L_bias_key": l_key.detach(), "L_bias_query": l_query.detach(),
                   "acc_bias_key": (logits_k.detach().argmax(1) == g_read).float().mean(),
                   "acc_bias_query": (logits_q.detach().argmax(1) == g_batch).float().mean(), "bias_chance": run.chance}
        if self.invariant:
            scalars["lambda_eff"] = reversal
        return loss + bias_loss, scalars

    def _evaluate(self, model: SelfExpressiveNet, f_cluster: torch.Tensor, k: int, g_cluster: np.ndarray,
                  groups: bool, epoch: int, split: str | None, seconds: float, ctx: RunContext
                  ) -> tuple[np.ndarray, torch.Tensor]:
        """Spectral clustering of the clustered rows, evaluated with the query embedding's leading principal components
        and (with two groups or more) the share of C linking samples of one group. Returns (labels, that embedding)."""
        hp = self.hparams
        labels, v_cluster, C = self.cluster(model, f_cluster, k, ctx.seed, ctx)
        embedding = principal_components(v_cluster, hp["embed_dim"], ctx.seed)
        extra = {"seconds": seconds, "threshold": float(model.threshold.detach())}
        if groups:  # how much of C links samples of one group, beside the group-blind value
            extra["same_group_share"] = same_group_share(C, g_cluster)
            extra["same_group_chance"] = group_blind_share(g_cluster)
        ctx.evaluate(epoch, embedding, labels, extra=extra, split=split)
        return labels, embedding


class _SelfExpression(NamedTuple):
    """One step's self-expression: the loss to back-propagate, L_SE and its reconstruction part and the share of
    nonzero coefficients (detached), the batch's rows, features x and queries v, the dictionary's keys u (None with the
    whole training set as dictionary), and the rows whose keys the key classifier reads."""

    loss: torch.Tensor
    l_se: torch.Tensor
    l_rec: torch.Tensor
    nonzero: torch.Tensor
    batch: torch.Tensor
    x: torch.Tensor
    v: torch.Tensor
    u: torch.Tensor | None
    read: torch.Tensor


@dataclass
class _Training:
    """What a SENet run trains: the self-expressive net and its optimiser, the bias classifiers (heads; None when the
    method does not use them) and theirs, the training features and groups, and the draws of each step's dictionary."""

    model: SelfExpressiveNet
    optimiser: torch.optim.Optimizer
    f_train: torch.Tensor
    g_train: torch.Tensor
    heads: tuple[nn.Module, ...] | None = None
    head_params: list = field(default_factory=list)
    bias_optimiser: torch.optim.Optimizer | None = None
    chance: float = 0.0
    shared: bool = False
    generator: torch.Generator | None = None
    dict_size: int = 0  # atoms drawn per step; 0 = every training row, in blocks of dict_block


class InvSENnet(SENet):
    """Inv-SENnet: SENet whose key and query embeddings are made invariant to the bias label (see the module docstring)."""

    id = "inv_senet"
    name = "Inv-SENnet (invariant self-expressive network)"
    summary = ("SENet plus two bias classifiers reading the key and the query embeddings; through gradient reversal "
               "(λ) and an entropy term (μ) the key and query networks learn to hide the bias label, so the "
               "self-expression coefficients, and the clusters, become invariant to it.")
    paper = ("Singh, Singh, Masoomi, Imbiriba, Learned-Miller & Erdoğmuş, Inv-SENnet: Invariant Self Expression Network "
             "for Clustering under Biased Data")
    invariant = True
    quick_minutes = 0.9
    needs_groups = True
    accuracy_caption = ("acc_bias_key / acc_bias_query: the adversarial bias classifiers reading the key and query "
                        "embeddings, beside chance, the majority group's rate (dashed). They learn fast at first; as "
                        "the gradient reversal (λ) and the entropy term (μ) ramp up, the key and query networks hide "
                        "the group and a fair run decays toward the dashed line. SENet's monitors stay high.")
    params = senet_params() + (
        Param("lambda_adv", 10.0, low=0, high=1e6, symbol="λ",
              help="Weight of the gradient reversal from the bias classifiers into the key/query nets (Eq. 9, §3.3).",
              source="ours: the paper gives no value"),
        Param("mu", 10.0, low=0, high=1e6, symbol="μ",
              help="Weight of the entropy term that pushes the bias classifiers' predictions towards uniform (Eq. 11–12).",
              source="ours: the paper gives no value"),
        Param("grl_ramp", 10.0, low=0, high=1000, symbol="γ_GRL",
              help="λ and μ ramp up as 2/(1 + e^(−γ_GRL·t)) − 1 over training progress t (0 = constant from the start).",
              source="Ganin et al. 2016 (the paper's gradient reversal [16]): 10; Inv-SENnet public code: 0 (no ramp)"),
        Param("bias_head", "separate", kind="choice", choices=("separate", "shared"),
              help="separate: two bias classifiers, g on the keys and g' on the queries (p → 512 → 256 → M, BatchNorm "
                   "and ReLU), their cross-entropies summed. shared: one classifier reading the keys and queries of the "
                   "batch stacked (p → p/2 → p/2 → M, LeakyReLU, one BatchNorm reused after both hidden layers), the "
                   "mean cross-entropy over both.",
              source="Inv-SENnet §3.3, §4.1: separate; Inv-SENnet public code (main_invsenet.py): shared"),
        Param("adv_update", "joint", kind="choice", choices=("joint", "alternating"),
              help="joint: one backward of L_SE + μ·entropy + the reversed classifier loss, then one step of the "
                   "key/query nets and one of the classifiers. alternating: a step of the key/query nets on L_SE + "
                   "μ·entropy, then the embeddings recomputed and a second step of the nets (on the reversed classifier "
                   "loss alone) with the classifiers' step.",
              source="ours (the paper's Eq. 9 as one objective); Inv-SENnet public code: alternating"),
        Param("grad_clip_bias", 0.0, low=0, high=1e6,
              help="Clip the gradient norm of the bias classifier(s) to this before their step (0 = no clipping).",
              source="ours: none; Inv-SENnet public code: 0.001"),
    )
    variants = {
        "paper text": Variant(source=(
            "Inv-SENnet paper (papers/inv-sennet.md) §3.3 and §4.1, SENet paper Eq. 6–8: two bias classifiers, "
            "gradient reversal λ and the entropy term μ (their values ours, the paper gives none), Adam 1e-3 / 1e-4 at "
            "a constant rate; affinity |C| + |Cᵀ| and spectral clustering (K eigenvectors); each step's dictionary a "
            "random subset of the training rows (ours, for CPU cost)")),
        "public code": Variant(values={
            **SENET_PUBLIC_AFFINITY, "dict_size": 0, "dict_block": 10_000,
            "bias_head": "shared", "adv_update": "alternating", "lambda_adv": 0.1, "mu": 0.01, "grl_ramp": 0.0,
            "optimizer": "adamw", "lr": 1e-4, "lr_bias": 1e-4, "lr_schedule": "cosine_per_step", "grad_clip": 0.0,
            "grad_clip_bias": 0.001}, source=(
            "github.com/singh17ashu/Inv-Senet-Invariant-Self-Expression-Network, main_invsenet.py (commit e0ea1fb): "
            "one bias classifier (Predictor 1024-512-512-M, LeakyReLU) on the batch's keys and queries stacked, "
            "GradReverse × 0.1, entropy weight 0.01 (_lambda), AdamW 1e-4 for both nets with CosineAnnealingLR "
            "(T_max = epochs) stepped every step, gradient norm of the bias classifier clipped to 0.001, two "
            "key/query steps per iteration; each batch reconstructed from the whole training set in blocks of "
            "10,000; kNN graph (k = 3, 1,000 coefficients per row), spectral embedding of dimension 15, k-means × 20. "
            "Its budget, 200,000 iterations of batch 100 (333 epochs of 60,000 images), is the schedule's to set "
            "(epochs)")),
    }
