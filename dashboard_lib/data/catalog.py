"""What the Data page and the CLI show about a dataset: the class × group table and the Balance ceiling."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .base import BiasedDataset


def count_table(data: BiasedDataset) -> pd.DataFrame:
    """Samples per class (rows) and group (columns); a single row "all" when the dataset has no classes."""
    groups = np.bincount(data.g, minlength=data.n_groups)
    if data.y is None:
        return pd.DataFrame([groups], index=["all"], columns=data.group_names)
    n_classes = len(data.class_names) if data.class_names else int(data.y.max()) + 1
    table = np.zeros((n_classes, data.n_groups), dtype=np.int64)
    np.add.at(table, (data.y, data.g), 1)
    names = data.class_names or [str(c) for c in range(n_classes)]
    return pd.DataFrame(table, index=names, columns=data.group_names)


def max_balance(data: BiasedDataset) -> float:
    """The highest Balance any clustering of this data can reach: min_g n_g / max_g n_g (DFC, FCMI).

    Balance takes, over clusters, min_g n_cg / max_g n_cg; no cluster can be more balanced than the whole set.
    Each dataset's value: docs/DATA_NOTES.md.
    """
    counts = np.bincount(data.g, minlength=data.n_groups)
    return float(counts.min() / counts.max()) if counts.max() else 0.0
