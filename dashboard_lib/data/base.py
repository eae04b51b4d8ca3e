"""The dataset shape every method consumes, and the declaration each dataset family registers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..params import Param


@dataclass(frozen=True)
class DatasetInfo:
    """Provenance shown on the Data page and kept in each run's record."""

    name: str
    source: str
    licence: str = ""
    citation: str = ""
    built: str = ""  # how this copy was made: resizing, colouring, flips, seed
    provenance: dict = field(default_factory=dict)  # what it was made from, as data (a source run's id, a file's hash)

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "licence": self.licence, "citation": self.citation,
                "built": self.built, **({"provenance": dict(self.provenance)} if self.provenance else {})}


@dataclass
class BiasedDataset:
    """Samples with a sensitive attribute.

    X: float32 CPU tensor, N × D (vectors) or N × C × H × W (images, values in [0, 1]).
    y: int64 class labels (evaluation only; None for uploads without a class column).
    g: int64 group labels 0..M-1 (the sensitive attribute).
    splits: named index arrays, e.g. {"train": ..., "test": ...}; methods that need a split say which.
    attributes: other per-sample labels, aligned with X (e.g. Colored MNIST's "digit", "binary_label", "color").
    row_id: each sample's row in the dataset as first built (0..N-1; an upload's row in its file), kept through
        subsets, so a run's saved assignments join back to the source rows.
    feature_names: one name per feature of a vector dataset (an upload's columns, one-hot levels as column=value).
    unscale: (mean, sd) per feature when X is standardised: X · sd + mean is the value in the source's units.
    """

    id: str
    X: torch.Tensor
    y: np.ndarray | None
    g: np.ndarray
    group_names: list[str]
    class_names: list[str] | None
    n_clusters: int
    info: DatasetInfo
    options: dict = field(default_factory=dict)
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    row_id: np.ndarray | None = None
    feature_names: list[str] | None = None
    unscale: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self):
        n = len(self.X)
        if self.row_id is None:
            self.row_id = np.arange(n, dtype=np.int64)
        elif len(self.row_id) != n:
            raise ValueError(f"{self.id}: row_id must have one value per sample")
        if self.X.dtype != torch.float32:
            raise ValueError(f"{self.id}: X must be float32, got {self.X.dtype}")
        if len(self.g) != n or (self.y is not None and len(self.y) != n):
            raise ValueError(f"{self.id}: X, y and g must have one row per sample")
        if any(len(v) != n for v in self.attributes.values()):
            raise ValueError(f"{self.id}: every attribute must have one value per sample")

    def __len__(self) -> int:
        return len(self.X)

    @property
    def is_image(self) -> bool:
        return self.X.dim() == 4

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.X.shape[1:]))

    def subset(self, index: np.ndarray, keep_splits: bool = False) -> "BiasedDataset":
        """The same dataset restricted to index.

        Splits are dropped unless keep_splits, which keeps each split's members that are in index
        (renumbered to positions in the subset; index must not repeat samples).
        """
        index = np.asarray(index, dtype=np.int64)
        splits = {}
        if keep_splits:
            position = np.full(len(self), -1, dtype=np.int64)
            position[index] = np.arange(len(index))
            splits = {name: np.sort(position[s][position[s] >= 0]) for name, s in self.splits.items()}
        return BiasedDataset(
            id=self.id, X=self.X[torch.from_numpy(index)], y=None if self.y is None else self.y[index], g=self.g[index],
            group_names=self.group_names, class_names=self.class_names, n_clusters=self.n_clusters,
            info=self.info, options=self.options, splits=splits,
            attributes={k: v[index] for k, v in self.attributes.items()}, row_id=self.row_id[index],
            feature_names=self.feature_names, unscale=self.unscale,
        )

    def split(self, name: str) -> "BiasedDataset":
        """The named split, or an error naming the splits this dataset has."""
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise ValueError(f"dataset {self.id} has no '{name}' split (it has: {have})")
        return self.subset(self.splits[name])

    def summary(self) -> dict:
        return {
            "id": self.id, "n": len(self), "shape": list(self.X.shape[1:]), "n_classes": None if self.class_names is None else len(self.class_names),
            "n_groups": self.n_groups, "group_counts": np.bincount(self.g, minlength=self.n_groups).tolist(), "n_clusters": self.n_clusters,
            "group_names": list(self.group_names), "class_names": None if self.class_names is None else list(self.class_names),
        }


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset family: its options and how to build it.

    load(options, data_dir) returns a BiasedDataset; options were already validated against `options`.
    available(data_dir) says whether it can be built now without the network.
    needs(data_dir) says, when it cannot, which files to put where (empty when nothing is missing).
    """

    id: str
    name: str
    summary: str
    load: Callable[[dict, Path | None], BiasedDataset]
    options: tuple[Param, ...] = ()
    available: Callable[[Path | None], bool] = lambda data_dir: True
    size: str = ""  # e.g. "6,797 images, 2 groups"
    offline: bool = True  # built without any download
    needs: Callable[[Path | None], str] = lambda data_dir: ""
    # Built from this machine's app home (an upload, a run's embedding), which another node cannot read: a sweep sends
    # the dataset it built to its workers instead of letting each node build its own.
    local: bool = False


def display_image(image) -> np.ndarray:
    """One image (C × H × W or H × W, values in [0, 1]) as H × W (grey) or H × W × 3 uint8, ready to show."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)
