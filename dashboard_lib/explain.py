"""Grad-CAM of trained classifiers (ERM, ClusterFix) through captum's LayerGradCam, and numbers that measure what the
maps show. No streamlit here: the Explain page calls these functions.

Grad-CAM (Selvaraju et al. 2017): the feature maps A^k of the last convolutional block, weighted by the spatial mean of
∂y_c/∂A^k, summed over k and passed through a ReLU; upsampled bilinearly to the input size. The class c explained is
the true target class (ClusterFix Fig. 4 shows the target's maps).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import methods
from .data import BiasedDataset
from .methods.clusterfix import WEIGHTS_FILE, build_classifier
from .store import RunRecord, RunStore

STROKE_THRESHOLD = 0.25  # a pixel is stroke when its brightest channel exceeds this (images in [0, 1])
ERR_NO_CONV = ("{what} has no convolutional layer, so Grad-CAM has no feature maps to explain "
               "(runs on vector data use an MLP). Explain a run trained on images.")
ERR_NO_WEIGHTS = ("run {run_id} ({method}) saved no classifier weights: the Explain page reads the weights.pt that "
                  "ERM and ClusterFix runs save when they finish. Train one of those first.")
ERR_NOT_FINISHED = "run {run_id} is {status}: only finished runs have trained weights to explain."
_BLOCK_TAIL = (nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)


class ExplainError(ValueError):
    """What cannot be explained, said so that the user knows what to do."""


# --------------------------------------------------------------------------------------------------------------
# Grad-CAM.
# --------------------------------------------------------------------------------------------------------------
def conv_blocks(model: nn.Module) -> list[nn.Module]:
    """The end of every convolutional block, in order: each Conv2d, or the BatchNorm/activation right after it."""
    leaves = [m for m in model.modules() if not list(m.children())]
    ends = []
    for i, module in enumerate(leaves):
        if isinstance(module, nn.Conv2d):
            end = i
            while end + 1 < len(leaves) and isinstance(leaves[end + 1], _BLOCK_TAIL):
                end += 1
            ends.append(leaves[end])
    return ends


def gradcam_layer(model: nn.Module, what: str = "this model", block: int = -1) -> nn.Module:
    """The layer Grad-CAM reads: the end of the last convolutional block (block=-1), or an earlier one (-2, …)."""
    blocks = conv_blocks(model)
    if not blocks:
        raise ExplainError(ERR_NO_CONV.format(what=what))
    return blocks[max(block, -len(blocks))]


def block_sizes(model: nn.Module, input_shape) -> list[tuple[int, int]]:
    """Spatial size (H, W) of each convolutional block's output for one input of input_shape (C × H × W)."""
    sizes, hooks = [], [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:]))) for m in conv_blocks(model)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return sizes


def grad_cam(model: nn.Module, images: torch.Tensor, targets, layer: nn.Module | None = None) -> torch.Tensor:
    """Grad-CAM maps (B × H × W, ≥ 0) of the target classes, upsampled bilinearly to the images' size."""
    from captum.attr import LayerAttribution, LayerGradCam

    layer = layer if layer is not None else gradcam_layer(model)
    was_training = model.training
    model.eval()
    targets = torch.as_tensor(targets, dtype=torch.long, device=images.device)
    try:
        attribution = LayerGradCam(model, layer).attribute(images, target=targets, relu_attributions=True)
    finally:
        model.train(was_training)
    cam = LayerAttribution.interpolate(attribution.detach(), tuple(images.shape[-2:]), interpolate_mode="bilinear")
    return cam[:, 0].clamp_min(0.0)


def stroke_mask(images: torch.Tensor | np.ndarray, threshold: float = STROKE_THRESHOLD) -> np.ndarray:
    """B × H × W (or H × W) booleans: pixels whose brightest channel exceeds threshold, i.e. the digit's strokes."""
    x = np.asarray(images.detach().cpu() if torch.is_tensor(images) else images, dtype=np.float32)
    if x.ndim == 2:
        return x > threshold
    if x.ndim == 3 and x.shape[0] in (1, 3):  # one C × H × W image
        return x.max(0) > threshold
    return x.max(1) > threshold  # B × C × H × W


def stroke_mass_share(cam, image, threshold: float = STROKE_THRESHOLD, mask=None) -> float:
    """Share of the Grad-CAM mass on the digit's strokes: Σ cam·[stroke] / Σ cam, for one map (H × W) and its image
    (C × H × W or H × W). The rest of the mass lies on the background (where a tint or backdrop would carry a bias).
    NaN when the map is zero everywhere. mask overrides the stroke detection (H × W booleans)."""
    cam = np.asarray(cam.detach().cpu() if torch.is_tensor(cam) else cam, dtype=np.float64)
    strokes = stroke_mask(image, threshold) if mask is None else np.asarray(mask, dtype=bool)
    total = cam.sum()
    return float(cam[strokes].sum() / total) if total > 0 else float("nan")


def stroke_area_share(images, threshold: float = STROKE_THRESHOLD) -> float:
    """Mean share of pixels that are strokes: the stroke-mass share a map spread evenly over the image would get."""
    return float(stroke_mask(images, threshold).mean())


def mean_stroke_share(model: nn.Module, images: torch.Tensor, targets, batch_size: int = 128,
                      threshold: float = STROKE_THRESHOLD, layer: nn.Module | None = None) -> float:
    """The stroke-mass share averaged over images (maps that are zero everywhere are left out)."""
    shares = []
    targets = torch.as_tensor(targets, dtype=torch.long)
    layer = layer if layer is not None else gradcam_layer(model)
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        cams = grad_cam(model, x, targets[start:start + batch_size], layer).cpu().numpy()
        strokes = stroke_mask(x, threshold)
        totals = cams.sum((1, 2))
        on_strokes = (cams * strokes).sum((1, 2))
        shares.extend((on_strokes[totals > 0] / totals[totals > 0]).tolist())
    return float(np.mean(shares)) if shares else float("nan")


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, its softmax probability) per image."""
    was_training = model.training
    model.eval()
    probs = torch.cat([torch.softmax(model(images[i:i + batch_size]), 1) for i in range(0, len(images), batch_size)])
    model.train(was_training)
    confidence, pred = probs.max(1)
    return pred.cpu().numpy(), confidence.cpu().numpy()


# --------------------------------------------------------------------------------------------------------------
# Colour reliance: what the stroke share cannot separate when the colour sits on the strokes themselves.
# --------------------------------------------------------------------------------------------------------------
def recolour(images: torch.Tensor, rgb) -> torch.Tensor:
    """Coloured-digit images (grey level × RGB) repainted with another colour per image (B × 3 or one RGB triple)."""
    grey = images.max(1, keepdim=True).values
    rgb = torch.as_tensor(rgb, dtype=images.dtype, device=images.device)
    rgb = rgb.view(1, 3, 1, 1) if rgb.dim() == 1 else rgb.view(-1, 3, 1, 1)
    return grey * rgb


def colour_swap_flip_rate(model: nn.Module, images: torch.Tensor, groups: np.ndarray, palette) -> float:
    """Share of images whose prediction changes when each is repainted in the other group's colour (two groups)."""
    colours = torch.tensor([c for _, c in palette], dtype=images.dtype)
    swapped = recolour(images, colours[torch.as_tensor(1 - np.asarray(groups), dtype=torch.long)])
    return float(np.mean(predict(model, images)[0] != predict(model, swapped)[0]))


def palette_for(dataset_id: str):
    """The colour palette of a Colored MNIST family dataset ((name, RGB) per group), or None."""
    from .data.colored import DATASET_PALETTES

    return DATASET_PALETTES.get(dataset_id)


# --------------------------------------------------------------------------------------------------------------
# The headline: numbers formatted for a class, and the sentence they support.
# --------------------------------------------------------------------------------------------------------------
FLIP_BLIND = 0.0  # flip rate of a model blind to the colour: its prediction never depends on it
FLIP_COLOUR_ONLY = 1.0  # flip rate of a model that reads only the colour: swapping it changes every prediction
# Flip rates closer than this are "about the same": on a few hundred test images one rate's standard error is at
# most √(0.25 / 300) ≈ 0.03, so a gap under 0.05 is within the noise of the sample.
FLIP_TOLERANCE = 0.05
STROKE_TOLERANCE = 0.01  # stroke shares closer than this to the strokes' area (or to each other) are "no difference"
MINUS = "\u2212"


def format_share(value: float | None, digits: int = 2) -> str:
    """A share in [0, 1] with `digits` decimals; a value that rounds to zero is "0.00", never "−0.00"; "n/a" for
    None or NaN."""
    if value is None or not np.isfinite(value):
        return "n/a"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text.replace("-", MINUS)


def format_difference(value: float, tolerance: float, digits: int = 2) -> str:
    """A signed difference ("+0.04", "−0.12"), or "no difference" when |value| < tolerance (so never "−0.00")."""
    if not np.isfinite(value):
        return "n/a"
    if abs(value) < tolerance or float(f"{abs(value):.{digits}f}") == 0:
        return "no difference"
    return f"{value:+.{digits}f}".replace("-", MINUS)


def colour_reliance_sentence(flips: dict[str, float], tolerance: float = FLIP_TOLERANCE) -> str:
    """One sentence on which of two models relies on the colour and by how much, from their flip rates (name → share
    of predictions that change when the colour is swapped). Rates within `tolerance` are called about the same."""
    (first, a), (second, b) = flips.items()
    if abs(a - b) < tolerance:
        return (f"{first} and {second} change about as many predictions when the colour is swapped ({format_share(a)} "
                f"and {format_share(b)}): this measure does not separate them.")
    (more, high), (less, low) = sorted(flips.items(), key=lambda kv: -kv[1])
    high_pct, low_pct = round(100 * high), round(100 * low)  # the gap from the percentages printed, so they add up
    sentence = (f"{more} relies on the colour more than {less}: swapping the colour changes {high_pct}% of {more}'s "
                f"predictions and {low_pct}% of {less}'s, {high_pct - low_pct} percentage points more.")
    if high >= FLIP_COLOUR_ONLY - tolerance:
        sentence += f" {more} reads almost nothing but the colour."
    if low <= FLIP_BLIND + tolerance:
        sentence += f" {less} is almost blind to it."
    return sentence


def stroke_share_sentence(name: str, share: float, area: float, tolerance: float = STROKE_TOLERANCE) -> str:
    """Where one model's Grad-CAM mass lies, against a map spread evenly over the image (the strokes' area share)."""
    if not np.isfinite(share):
        return f"{name}: every Grad-CAM map is zero, so there is no mass to place on the strokes."
    diff = share - area
    if abs(diff) < tolerance:
        return f"{name}: {format_share(share)} of the map on the strokes, the same as a map spread evenly."
    side = "more" if diff > 0 else "less"
    return (f"{name}: {format_share(share)} of the map on the strokes, {format_share(abs(diff))} {side} than a map "
            "spread evenly.")


# --------------------------------------------------------------------------------------------------------------
# Display helpers.
# --------------------------------------------------------------------------------------------------------------
# The map in grey levels, never in hues: the data's own colours (Colored MNIST's red and green digits, Fashion's blue
# and yellow) stay the only colours in an overlay, so no colour there can be read as the map.
OVERLAY_LEGEND = ("Grad-CAM in grey levels over the image at half strength: white where the map is strongest, dark "
                  "where the model does not look; any colour you see is the image's own.")


def intensity(values: np.ndarray) -> np.ndarray:
    """A grey-to-white intensity map for values in [0, 1]: H × W → H × W × 3 (0 black, 1 white)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    return np.repeat(v, 3, -1)


def to_rgb(image) -> np.ndarray:
    """C × H × W (C = 1 or 3) in [0, 1] → H × W × 3 floats."""
    x = np.asarray(image.detach().cpu() if torch.is_tensor(image) else image, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    x = np.repeat(x, 3, 0) if x.shape[0] == 1 else x[:3]
    return np.clip(x.transpose(1, 2, 0), 0, 1)


def overlay(image, cam, alpha: float = 0.5, scale: int = 4) -> np.ndarray:
    """The image with its Grad-CAM (normalised to its maximum) blended on top as a grey-to-white intensity map
    (OVERLAY_LEGEND says how to read it), as uint8 H·s × W·s × 3."""
    cam = np.asarray(cam.detach().cpu() if torch.is_tensor(cam) else cam, dtype=np.float32)
    peak = cam.max()
    heat = intensity(cam / peak if peak > 0 else cam)
    blended = (1 - alpha) * to_rgb(image) + alpha * heat
    return upscale(blended, scale)


def upscale(rgb: np.ndarray, scale: int = 4) -> np.ndarray:
    """H × W × 3 floats in [0, 1] → uint8, each pixel a scale × scale block (crisp when shown large)."""
    out = np.repeat(np.repeat(np.clip(rgb, 0, 1), scale, 0), scale, 1)
    return (out * 255).round().astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------
# Runs and images.
# --------------------------------------------------------------------------------------------------------------
def explainable(method: str) -> bool:
    """Whether runs of this method (its id) save a classifier the Explain page can read (Method.explainable)."""
    cls = methods.REGISTRY.get(method)  # None: a clustering made elsewhere (the Audit page's runs)
    return cls is not None and cls.explainable


def weights_path(store: RunStore, run_id: str) -> Path:
    return store.run_dir(run_id) / WEIGHTS_FILE


def load_run_model(store: RunStore, run: RunRecord) -> nn.Module:
    """The trained classifier of a finished ERM or ClusterFix run, rebuilt from its config and weights (weights_only)."""
    if run.status != "finished":
        raise ExplainError(ERR_NOT_FINISHED.format(run_id=run.id, status=run.status))
    path = weights_path(store, run.id)
    cls = methods.REGISTRY.get(run.method)
    if not explainable(run.method) or not path.exists():
        raise ExplainError(ERR_NO_WEIGHTS.format(run_id=run.id, method=run.method))
    info = run.dataset_info
    n_classes = info.get("n_classes") or 2
    model = build_classifier(run.hparams, info["shape"], int(n_classes), with_cluster_heads=cls.debiases_with_clusters)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def bias_aligned(data: BiasedDataset, train_index: np.ndarray | None = None) -> np.ndarray:
    """1 where a sample is bias-aligned: the dataset's own "bias_aligned" attribute, else its group is the most
    common group of its class in the training samples."""
    if "bias_aligned" in data.attributes:
        return np.asarray(data.attributes["bias_aligned"], dtype=np.int64)
    train = np.arange(len(data)) if train_index is None else train_index
    n_classes = int(data.y.max()) + 1
    table = np.zeros((n_classes, data.n_groups), dtype=np.int64)
    np.add.at(table, (data.y[train], data.g[train]), 1)
    return (data.g == table.argmax(1)[data.y]).astype(np.int64)


def pick_images(data: BiasedDataset, per_group: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Test-split indices (into data) per group, "bias-aligned" and "bias-conflicting", balanced over classes."""
    test = np.asarray(data.splits["test"]) if "test" in data.splits else np.arange(len(data))
    train = np.asarray(data.splits["train"]) if "train" in data.splits else None
    aligned = bias_aligned(data, train)
    rng = np.random.default_rng(seed)
    picked = {}
    for name, flag in (("bias-aligned", 1), ("bias-conflicting", 0)):
        pool = test[aligned[test] == flag]
        by_class = [rng.permutation(pool[data.y[pool] == c]) for c in np.unique(data.y[pool])]
        chosen = [members[i] for i in range(per_group) for members in by_class if i < len(members)][:per_group]
        picked[name] = np.asarray(chosen, dtype=np.int64)
    return picked


@dataclass
class ModelExplanation:
    """One model on the chosen images: maps, predictions, confidences; and the stroke share over many test images."""

    cams: np.ndarray  # n × H × W
    pred: np.ndarray
    confidence: np.ndarray
    stroke_share: float
    colour_flip_rate: float | None


def explain_model(model: nn.Module, data: BiasedDataset, chosen: np.ndarray, sample: np.ndarray,
                  block: int = -1) -> ModelExplanation:
    """Grad-CAM, prediction and confidence on the chosen images; stroke share (and colour reliance) on the sample.
    block picks the convolutional block whose maps Grad-CAM reads (-1 = the last)."""
    layer = gradcam_layer(model, block=block)
    x = data.X[torch.from_numpy(chosen)]
    cams = grad_cam(model, x, data.y[chosen], layer).cpu().numpy() if len(chosen) else np.zeros((0, *data.X.shape[-2:]))
    pred, confidence = predict(model, x) if len(chosen) else (np.zeros(0, int), np.zeros(0))
    xs = data.X[torch.from_numpy(sample)]
    share = mean_stroke_share(model, xs, data.y[sample], layer=layer)
    return ModelExplanation(cams, pred, confidence, share, colour_flip_rate(model, data, sample))


def colour_flip_rate(model: nn.Module, data: BiasedDataset, sample: np.ndarray) -> float | None:
    """colour_swap_flip_rate on the sample's images (indices into data); None where the data has no two colours."""
    palette = palette_for(data.id)
    if palette is None or data.n_groups != 2:
        return None
    return colour_swap_flip_rate(model, data.X[torch.from_numpy(sample)], data.g[sample], palette)


def stroke_sample(data: BiasedDataset, n: int = 300, seed: int = 0) -> np.ndarray:
    """A few hundred test images (as many aligned as conflicting when both exist) for the stroke-share average."""
    groups = pick_images(data, n // 2, seed)
    return np.concatenate([groups["bias-aligned"], groups["bias-conflicting"]])
