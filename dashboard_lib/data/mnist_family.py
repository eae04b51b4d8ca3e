"""MNIST-USPS and Color Reverse MNIST, built as DFC (Li et al. 2020, §5) and FCMI (supplementary Table 1) describe."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import sources
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import all_local, missing_message
from .sources import MNIST_SOURCE_PARAM, n_param, seed_param, subset_index
from .transforms import resize_images

DIGITS = [str(d) for d in range(10)]
DFC_CITATION = "Li, Zhao & Liu 2020, Deep Fair Clustering for Visual Learning (CVPR)"


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)


def load_mnist_usps(options: dict, data_dir: Path | None) -> BiasedDataset:
    """MNIST train (60,000) + USPS train (7,291) resized 16×16 → 28×28; group = source."""
    if options["source"] == "official":
        sources.prefetch("mnist_usps", [*sources.MNIST_TRAIN, sources.USPS_TRAIN], data_dir)
    mnist = sources.mnist_train(options["source"], data_dir, "mnist_usps")
    usps = sources.usps_train(options["source"], data_dir, "mnist_usps")
    y = np.concatenate([mnist.y, usps.y])
    g = np.concatenate([np.zeros(len(mnist.y), np.int64), np.ones(len(usps.y), np.int64)])
    index = subset_index(options["n"], options["seed"], y, g)
    m_idx, u_idx = index[index < len(mnist.y)], index[index >= len(mnist.y)] - len(mnist.y)
    # Resize only what is kept: the full USPS set is cheap, but subsets should not pay for it.
    X = torch.cat([_to_tensor(mnist.x[m_idx]), resize_images(_to_tensor(usps.x[u_idx]), 28)])
    subset = f"; stratified subset of {len(index):,} by class × group (seed {options['seed']})" if options["n"] else ""
    return BiasedDataset(
        id="mnist_usps", X=X, y=y[index], g=g[index], group_names=["MNIST", "USPS"], class_names=DIGITS, n_clusters=10,
        options=dict(options), row_id=index,
        info=DatasetInfo(
            name="MNIST-USPS", source=f"{mnist.origin}; {usps.origin}",
            licence=f"MNIST: {sources.MNIST_LICENCE}; USPS: free for research use",
            citation=f"{DFC_CITATION}; {sources.MNIST_CITATION}; {sources.USPS_CITATION}",
            built="MNIST 28×28 and USPS 16×16 scaled to [0, 1]; USPS resized bilinearly (antialiased) to 28×28; "
                  f"concatenated MNIST then USPS; group 0 = MNIST, 1 = USPS{subset}",
        ),
    )


def load_reverse_mnist(options: dict, data_dir: Path | None) -> BiasedDataset:
    """MNIST train and its inverse 255 − x (120,000 images); group = inverted or not."""
    mnist = sources.mnist_train(options["source"], data_dir, "reverse_mnist")
    n = len(mnist.y)
    y = np.concatenate([mnist.y, mnist.y])
    g = np.repeat(np.arange(2, dtype=np.int64), n)
    index = subset_index(options["n"], options["seed"], y, g)
    images = np.where((index >= n)[:, None, None], 255 - mnist.x[index % n], mnist.x[index % n])
    subset = f"; stratified subset of {len(index):,} by class × group (seed {options['seed']})" if options["n"] else ""
    return BiasedDataset(
        id="reverse_mnist", X=_to_tensor(images), y=y[index], g=g[index], group_names=["original", "inverted"],
        class_names=DIGITS, n_clusters=10, options=dict(options), row_id=index,
        info=DatasetInfo(
            name="Color Reverse MNIST", source=mnist.origin, licence=sources.MNIST_LICENCE,
            citation=f"{DFC_CITATION}; {sources.MNIST_CITATION}",
            built="MNIST train (uint8) and its inverse 255 − x, concatenated, scaled to [0, 1]; "
                  f"group 0 = original, 1 = inverted{subset}",
        ),
    )


def npz_available(data_dir: Path | None) -> bool:
    """Whether the default source (mnist_usps.npz) is in the data folder."""
    return all_local([sources.MNIST_USPS_NPZ], data_dir)


def official_source(options: dict) -> bool:
    """The MNIST families download the original files only with source=official (mnist_usps.npz has no public URL)."""
    return options.get("source") == "official"


def npz_needs(name: str):
    """The Data page's message for an MNIST family when mnist_usps.npz is missing."""
    def needs(data_dir: Path | None) -> str:
        if npz_available(data_dir):
            return ""
        return missing_message(name, [sources.MNIST_USPS_NPZ], data_dir, "not found in the data folder") + sources.HINT_OFFICIAL
    return needs


MNIST_USPS_SPEC = DatasetSpec(
    id="mnist_usps", name="MNIST-USPS",
    summary="MNIST train (60,000) + USPS train (7,291, resized to 28×28), 10 digits; group = source (DFC, FCMI).",
    load=load_mnist_usps, options=(n_param("67,291"), seed_param(), MNIST_SOURCE_PARAM),
    available=npz_available, needs=npz_needs("mnist_usps"), offline=False, downloads=official_source,
    size="67,291 images 28×28, 10 classes, 2 groups (60,000 / 7,291)",
)
REVERSE_MNIST_SPEC = DatasetSpec(
    id="reverse_mnist", name="Color Reverse MNIST",
    summary="MNIST train and its inverse 255 − x, 10 digits; group = inverted or not (DFC, FCMI).",
    load=load_reverse_mnist, options=(n_param("120,000"), seed_param(), MNIST_SOURCE_PARAM),
    available=npz_available, needs=npz_needs("reverse_mnist"), offline=False, downloads=official_source,
    size="120,000 images 28×28, 10 classes, 2 groups (60,000 / 60,000)",
)
SPECS = (MNIST_USPS_SPEC, REVERSE_MNIST_SPEC)
