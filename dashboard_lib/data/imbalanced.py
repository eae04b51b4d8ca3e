"""Imbalanced MNIST and Fashion-MNIST for StatDEC (papers/statdec.md §IV-a, §IV-e).

StatDEC follows LDAM (Cao et al. 2019) to subsample a balanced training set: long-tailed imbalance is an
exponential decay n_i = ⌊n_max · ratio^(−i/(K−1))⌋ over classes i = 0..K−1; step imbalance gives the first
K/2 classes n_max and the other half ⌊n_max / ratio⌋. ratio = n_max / n_min (10 or 100 in the paper).
n_max is the smallest class count of the source training set, so every class can supply its quota.

Sensitive attribute (our choice; StatDEC has none): g = 0 for the K/2 head classes (0–4), 1 for the tail
classes (5–9), so group metrics report how the minority classes fare. g is a function of the class: a
clustering that recovers the classes has Balance 0 by construction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..params import Param
from . import sources
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .colored import _fashion_needs
from .mnist_family import DIGITS, npz_available, npz_needs
from .sources import MNIST_SOURCE_PARAM, n_param, seed_param, subset_index

STATDEC_CITATION = ("Rezaei, Dorigatti, Rügamer & Bischl, Joint Debiased Representation Learning and Imbalanced Data Clustering (StatDEC); "
                    "Cao et al. 2019, Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss")


def imbalance_counts(n_max: int, n_classes: int, kind: str, ratio: int) -> np.ndarray:
    """Samples per class: long_tail n_i = ⌊n_max·ratio^(−i/(K−1))⌋, step n_i = n_max (i < K/2) else ⌊n_max/ratio⌋ (LDAM)."""
    if kind == "long_tail":  # LDAM's int(img_max * imb_factor ** (i / (K - 1))), imb_factor = 1 / ratio
        return np.array([int(n_max * (1.0 / ratio) ** (i / (n_classes - 1.0))) for i in range(n_classes)], dtype=np.int64)
    return np.array([n_max if i < n_classes // 2 else n_max // ratio for i in range(n_classes)], dtype=np.int64)


def _loader(family: str, dataset_id: str):
    class_names = sources.FASHION_CLASSES if family == "fashion" else DIGITS

    def load(options: dict, data_dir: Path | None) -> BiasedDataset:
        src = {"mnist": lambda: sources.mnist_train(options["source"], data_dir, dataset_id),
               "fashion": lambda: sources.fashion("train", data_dir, dataset_id),
               "sample": sources.mnist_sample}[family]()
        k = len(class_names)
        n_max = int(np.bincount(src.y, minlength=k).min())
        counts = imbalance_counts(n_max, k, options["imbalance"], options["ratio"])
        rng = np.random.default_rng(options["seed"])
        chosen = np.sort(np.concatenate([rng.choice(np.flatnonzero(src.y == c), counts[c], replace=False) for c in range(k)]))
        g = (src.y[chosen] >= k // 2).astype(np.int64)
        pos = subset_index(options["n"], options["seed"], src.y[chosen], g)
        keep = chosen[pos]
        subset = f"; then a stratified subset of {len(keep):,} by class (seed {options['seed']})" if options["n"] else ""
        return BiasedDataset(
            id=dataset_id, X=torch.from_numpy(src.x[keep].astype(np.float32) / 255.0).unsqueeze(1),
            y=src.y[keep], g=g[pos], group_names=["head classes 0–4", "tail classes 5–9"],
            class_names=class_names, n_clusters=k, options=dict(options), row_id=keep,  # the source's rows
            info=DatasetInfo(
                name=SPEC_NAMES[family], source=src.origin,
                licence=sources.FASHION_LICENCE if family == "fashion" else sources.MNIST_LICENCE,
                citation=f"{STATDEC_CITATION}; " + (sources.FASHION_CITATION if family == "fashion" else sources.MNIST_CITATION),
                built=(f"{options['imbalance'].replace('_', '-')} imbalance, ratio {options['ratio']}: per-class counts "
                       f"{counts.tolist()} (n_max = {n_max:,}, the smallest class of the source) drawn without replacement "
                       f"with numpy default_rng({options['seed']}); images scaled to [0, 1]; "
                       f"g = 0 head classes 0–4, 1 tail classes 5–9 (our choice: StatDEC defines no sensitive attribute){subset}"),
            ),
        )
    return load


SPEC_NAMES = {"mnist": "Imbalanced MNIST (StatDEC)", "fashion": "Imbalanced Fashion-MNIST (StatDEC)",
              "sample": "Imbalanced MNIST sample (built-in, offline)"}


def _options(family: str) -> tuple[Param, ...]:
    common = (
        n_param("of the imbalanced set"),
        seed_param(what="the per-class draw and the subset"),
        Param("imbalance", "long_tail", kind="choice", choices=("long_tail", "step"),
              help="long_tail: exponential decay of class sizes; step: half the classes are minorities of equal size.",
              source="StatDEC §IV-a, after LDAM"),
        Param("ratio", 10, kind="int", low=1, symbol="ρ",
              help="Imbalance ratio n_max / n_min (StatDEC reports 10 and 100).", source="StatDEC Table I"),
    )
    return common + (MNIST_SOURCE_PARAM,) if family == "mnist" else common


IMBALANCED_MNIST_SPEC = DatasetSpec(
    id="imbalanced_mnist", name=SPEC_NAMES["mnist"],
    summary="MNIST train subsampled to a long-tailed or step class distribution (ratio 10 or 100); g = head vs tail classes.",
    load=_loader("mnist", "imbalanced_mnist"), options=_options("mnist"),
    available=npz_available, needs=npz_needs("imbalanced_mnist"), offline=False,
    size="long-tail ratio 10: 22,152 images 28×28 (5,421 … 542 per class; ratio 100: 13,449), 10 classes, 2 groups (head / tail)",
)
IMBALANCED_FASHION_SPEC = DatasetSpec(
    id="imbalanced_fashion_mnist", name=SPEC_NAMES["fashion"],
    summary="Fashion-MNIST train subsampled to a long-tailed or step class distribution; g = head vs tail classes.",
    load=_loader("fashion", "imbalanced_fashion_mnist"), options=_options("fashion"),
    available=sources.fashion_available, needs=_fashion_needs, offline=False,
    size="long-tail ratio 10: 24,516 images 28×28 (6,000 … 600 per class; ratio 100: 14,886), 10 classes, 2 groups (head / tail)",
)
IMBALANCED_SAMPLE_SPEC = DatasetSpec(
    id="imbalanced_digits", name=SPEC_NAMES["sample"],
    summary="The built-in 5,000-digit MNIST sample subsampled to a long-tailed or step class distribution as Imbalanced "
            "MNIST is; g = head vs tail classes. Ships with the install: the quick demo of StatDEC and IDEC.",
    load=_loader("sample", "imbalanced_digits"), options=_options("sample"),
    size="long-tail ratio 10: 2,040 images 28×28 (500 … 50 per class; ratio 100: 1,236), 10 classes, 2 groups (head / tail)",
)
SPECS = (IMBALANCED_MNIST_SPEC, IMBALANCED_FASHION_SPEC)  # IMBALANCED_SAMPLE_SPEC: listed with the offline data
