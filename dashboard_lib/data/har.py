"""UCI HAR: smartphone activity recognition, 10,299 × 561, 6 activities, 30 subjects as groups (FCMI supplementary Table 1).

Built as FCMI's public code does: train and test files concatenated, the published 561 features as they
are (already scaled to [−1, 1] by the authors), activity − 1 as the class and subject − 1 as the group.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .archive import Archive
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .download import RemoteFile, all_local, fetch_all, missing_message, resolve_data_dir
from .sources import n_param, seed_param, subset_index

DATASET_ID = "har"
HAR_ZIP = RemoteFile("UCI HAR Dataset.zip",
                     "https://archive.ics.uci.edu/ml/machine-learning-databases/00240/UCI%20HAR%20Dataset.zip", "har")
EXTRACTED = "UCI HAR Dataset"  # the zip's top folder, accepted unpacked in the data folder
ERR_SHAPE = ("HAR {split} files do not match: X {x}, y {y}, subjects {s}; "
             "expected 561 features and one label and one subject per row")


def _source(data_dir: Path | None) -> Path | None:
    data_dir = resolve_data_dir(data_dir)
    if data_dir is not None:
        for folder in (data_dir / "har" / EXTRACTED, data_dir / EXTRACTED):
            if (folder / "train" / "X_train.txt").is_file():
                return folder
    return None


def _table(archive: Archive, suffix: str, dtype) -> np.ndarray:
    text = archive.read(archive.find(suffix))
    return pd.read_csv(io.BytesIO(text), sep=r"\s+", header=None, dtype=dtype).to_numpy()


def load(options: dict, data_dir: Path | None) -> BiasedDataset:
    """Train + test of UCI HAR; y = activity, g = subject; splits keep the original train/test partition."""
    path = _source(data_dir) or fetch_all("HAR", [HAR_ZIP], data_dir)[HAR_ZIP.name]
    archive = Archive(path)
    parts = {}
    for split in ("train", "test"):
        x = _table(archive, f"{split}/X_{split}.txt", np.float32)
        y = _table(archive, f"{split}/y_{split}.txt", np.int64).ravel()
        s = _table(archive, f"{split}/subject_{split}.txt", np.int64).ravel()
        if x.shape[1] != 561 or not len(x) == len(y) == len(s):
            raise ValueError(ERR_SHAPE.format(split=split, x=x.shape, y=y.shape, s=s.shape))
        parts[split] = (x, y, s)
    labels = pd.read_csv(io.BytesIO(archive.read(archive.find("activity_labels.txt"))), sep=r"\s+", header=None)
    X = np.concatenate([parts["train"][0], parts["test"][0]])
    y = np.concatenate([parts["train"][1], parts["test"][1]]) - 1
    subjects = np.concatenate([parts["train"][2], parts["test"][2]])
    split = np.repeat([0, 1], [len(parts["train"][1]), len(parts["test"][1])])
    subject_ids, g = np.unique(subjects, return_inverse=True)
    index = subset_index(options["n"], options["seed"], split, y, g)
    s = split[index]
    subset = f"; stratified subset of {len(index):,} by split × class × subject (seed {options['seed']})" if options["n"] else ""
    return BiasedDataset(
        id=DATASET_ID, X=torch.from_numpy(X[index]), y=y[index], g=g[index].astype(np.int64),
        group_names=[f"subject {i}" for i in subject_ids], class_names=[str(v) for v in labels[1]],
        n_clusters=len(labels), options=dict(options),
        splits={"train": np.flatnonzero(s == 0), "test": np.flatnonzero(s == 1)},
        info=DatasetInfo(
            name="HAR (UCI Human Activity Recognition Using Smartphones)",
            source=f"{HAR_ZIP.url} (read from {path.name})",
            licence="CC BY 4.0 (UCI Machine Learning Repository)",
            citation="Anguita, Ghio, Oneto, Parra & Reyes-Ortiz 2013, A public domain dataset for human activity "
                     "recognition using smartphones (ESANN); FCMI supplementary Table 1",
            built=f"train ({len(parts['train'][1]):,}) then test ({len(parts['test'][1]):,}) rows concatenated as FCMI's "
                  f"code does; the 561 published features unchanged; y = activity − 1; g = subject (sorted ids){subset}",
        ),
    )


def available(data_dir: Path | None) -> bool:
    return _source(data_dir) is not None or all_local([HAR_ZIP], data_dir)


def needs(data_dir: Path | None) -> str:
    if available(data_dir):
        return ""
    return missing_message("HAR", [HAR_ZIP], data_dir, "not in the data folder or the download cache") + \
        f"\n(or unpack it there, as har/{EXTRACTED}/train/X_train.txt …)"


SPEC = DatasetSpec(
    id=DATASET_ID, name="HAR (smartphone activity)",
    summary="UCI HAR: 561 accelerometer/gyroscope features per window, 6 activities; group = one of 30 subjects (FCMI).",
    load=load, options=(n_param("10,299"), seed_param()), available=available, needs=needs, offline=False, downloads=lambda options: True,
    size="10,299 vectors × 561, 6 classes, 30 groups (subjects)",
)
