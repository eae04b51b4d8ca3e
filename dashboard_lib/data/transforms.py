"""Transforms shared by the dataset families: resizing and stratified subsets."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_images(images: torch.Tensor, size: int, pad: int = 0) -> torch.Tensor:
    """Bilinear resize of N × C × H × W images to size × size, then zero-pad `pad` pixels on each side."""
    out = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    out = out.clamp_(0.0, 1.0)
    return F.pad(out, (pad, pad, pad, pad)) if pad else out


def stratified_subset(n: int, strata: np.ndarray, seed: int) -> np.ndarray:
    """Indices of about n samples keeping each stratum's share (strata: one code per sample, e.g. class * M + group).

    Each stratum gets round(n * share) samples, at least one if it is non-empty, so a reduced run
    keeps the full data's class and group proportions. Returned sorted, reproducible for a seed.
    """
    total = len(strata)
    if n <= 0 or n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    codes, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    quota = np.maximum(1, np.round(counts * (n / total)).astype(int))
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked = [rng.choice(order[s:s + c], size=min(q, c), replace=False) for s, c, q in zip(starts, counts, quota)]
    return np.sort(np.concatenate(picked))
