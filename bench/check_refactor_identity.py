"""Check that a refactor of the methods leaves their numbers bit-identical (CPU, one thread, fixed seed).

    python bench/check_refactor_identity.py save /tmp/before     # on the old code
    python bench/check_refactor_identity.py save /tmp/after      # on the new code
    python bench/check_refactor_identity.py compare /tmp/before /tmp/after

`save` trains every method of the registry (and a few variants that take other code paths) on tiny schedules of the
built-in dataset and of a small random table, recording every logged scalar, every evaluation (assignment, embedding,
extra metrics), every progress message, saved tables and the fitted labels_ and embedding_. `compare` reports every
difference, exactly (NaN equals NaN), except in wall-clock times (SENet's `seconds`). Run from the repository root
with the package installed (`pip install -e .`) or `PYTHONPATH=.`. A few minutes on one CPU thread.
"""
from __future__ import annotations

import pickle
import random
import sys
from pathlib import Path

import numpy as np
import torch

from dashboard_lib.data import BiasedDataset, DatasetInfo, load_dataset
from dashboard_lib.methods import REGISTRY

SEED = 3
WALL_CLOCK = {"seconds"}  # extra metrics that time the run: never identical

# (name, method id, hyperparameters over the quick preset, dataset): tiny schedules, each code path once.
CASES = [
    ("kmeans", "kmeans", {"n_init": 2}, "digits"),
    ("ae_kmeans", "ae_kmeans", {"epochs": 2, "eval_every": 1, "n_init": 2}, "digits"),
    ("ae_kmeans_bf16", "ae_kmeans", {"epochs": 1, "n_init": 2, "precision": "bf16"}, "digits"),
    ("dec_conv", "dec", {"pretrain_epochs": 2, "iterations": 30, "eval_every": 10, "update_interval": 7, "n_init": 2}, "digits"),
    ("dec_mlp", "dec", {"encoder": "mlp", "pretrain_epochs": 1, "iterations": 20, "eval_every": 0, "update_interval": 5,
                        "n_init": 2, "batch_size": 100}, "digits"),
    ("dec_table", "dec", {"pretrain_epochs": 1, "iterations": 20, "update_interval": 5, "n_init": 2, "batch_size": 97},
     "table"),
    ("dfc", "dfc", {"pretrain_steps": 7, "group_pretrain_epochs": 1, "group_dec_epochs": 2, "iterations": 12,
                    "eval_every": 5, "batch_per_group": 32, "n_init": 2, "pretrain_batch_size": 128}, "digits"),
    ("dfc_table", "dfc", {"pretrain_steps": 5, "group_pretrain_epochs": 1, "group_dec_epochs": 1, "iterations": 6,
                          "eval_every": 3, "batch_per_group": 30, "n_init": 2, "variational": False}, "table"),
    ("fcmi", "fcmi", {"epochs": 3, "warmup_epochs": 1, "eval_every": 2, "batch_size": 128, "kmeans_n_init": 2}, "digits"),
    ("fcmi_table", "fcmi", {"epochs": 2, "warmup_epochs": 1, "batch_size": 64, "kmeans_n_init": 2,
                            "group_decoders": False}, "table"),
    ("idec", "idec", {"pretrain_epochs": 1, "iterations": 20, "eval_every": 10, "update_interval": 6, "n_init": 2}, "digits"),
    ("statdec", "statdec", {"pretrain_epochs": 1, "iterations": 20, "eval_every": 10, "update_interval": 6, "n_init": 2,
                            "lr_step": 8}, "digits"),
    ("statdec_stable", "statdec", {"pretrain_epochs": 1, "iterations": 12, "update_interval": 4, "n_init": 2,
                                   "target_update": "stable", "delta": 0.5, "optimizer": "adam"}, "digits"),
    ("erm", "erm", {"ae_epochs": 1, "epochs": 2}, "digits"),
    ("clusterfix", "clusterfix", {"ae_epochs": 1, "epochs": 2, "clusters_per_class": 3}, "digits"),
    ("clusterfix_code", "clusterfix", {"ae_epochs": 1, "epochs": 1, "clusters_per_class": 2, "cluster_features": "code"},
     "digits"),
    ("clusterfix_table", "clusterfix", {"ae_epochs": 1, "epochs": 1, "clusters_per_class": 2}, "table"),
    ("senet", "senet", {"epochs": 2, "eval_every": 1, "width": 32, "pca_dim": 20, "dict_size": 100, "log_every": 1,
                        "top_k": 50}, "digits"),
    ("inv_senet", "inv_senet", {"epochs": 2, "eval_every": 0, "width": 32, "pca_dim": 20, "dict_size": 100,
                                "log_every": 2, "top_k": 50}, "digits"),
    ("inv_senet_public", "inv_senet", {"variant": "public code", "epochs": 2, "width": 32, "pca_dim": 20,
                                       "dict_block": 256, "top_k": 50, "log_every": 1}, "digits"),
    ("kmeans_table", "kmeans", {"n_init": 2}, "table"),
    ("ae_kmeans_table", "ae_kmeans", {"epochs": 2, "n_init": 2}, "table"),
    ("statdec_table", "statdec", {"pretrain_epochs": 1, "iterations": 10, "update_interval": 4, "n_init": 2}, "table"),
    ("idec_table", "idec", {"pretrain_epochs": 1, "iterations": 10, "update_interval": 4, "n_init": 2}, "table"),
    ("erm_table", "erm", {"ae_epochs": 1, "epochs": 1}, "table"),
    ("senet_table", "senet", {"epochs": 1, "width": 32, "pca_dim": 8, "dict_size": 100, "top_k": 50}, "table"),
    ("inv_senet_table", "inv_senet", {"epochs": 1, "width": 32, "pca_dim": 8, "dict_size": 100, "top_k": 50}, "table"),
    ("senet_public", "senet", {"variant": "public code", "epochs": 1, "width": 32, "pca_dim": 20, "top_k": 50,
                               "features": "pca"}, "digits"),
]


def digits() -> BiasedDataset:
    return load_dataset("mnist_optdigits", {"n": 600})


def table() -> BiasedDataset:
    """A random table: 300 rows, 12 columns on another scale than [−1, 1], 3 groups, 4 classes."""
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 4, n)
    X = (rng.normal(size=(n, 12)) * 3 + y[:, None]).astype(np.float32)
    return BiasedDataset(id="upload", X=torch.from_numpy(X), y=y, g=rng.integers(0, 3, n),
                         group_names=["a", "b", "c"], class_names=list("wxyz"), n_clusters=4,
                         info=DatasetInfo(name="table", source="check_refactor_identity"))


def _array(a):
    if a is None:
        return None
    if torch.is_tensor(a):
        return a.detach().cpu().numpy().copy()
    return np.asarray(a).copy()


class Recorder:
    """A RunContext that records everything a method tells it."""

    def __init__(self, seed: int):
        self.device, self.seed = torch.device("cpu"), seed
        self.events: list = []

    def log(self, step, **scalars):
        self.events.append(("log", int(step), {k: float(v) for k, v in scalars.items()}))

    def evaluate(self, epoch, embedding, assignment, extra=None, split=None):
        self.events.append(("evaluate", int(epoch), _array(embedding), _array(assignment),
                            {k: float(v) for k, v in (extra or {}).items()}, split))
        return {}

    def check_stop(self):
        pass

    def progress(self, fraction, stage=""):
        self.events.append(("progress", float(fraction), stage))

    def save_table(self, name, rows):
        self.events.append(("table", name, rows))

    def save_weights(self, state_dict, name="weights.pt"):
        self.events.append(("weights", name, {k: _array(v) for k, v in state_dict.items()}))


def run_case(name: str, method_id: str, hparams: dict, dataset: str) -> dict:
    cls = REGISTRY[method_id]
    hparams = dict(hparams)
    variant = hparams.pop("variant", None)
    data = digits() if dataset == "digits" else table()
    settings = {**cls.settings(variant, "quick", data.id), **hparams}
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    method = cls(**settings)
    method.check_data(data)
    ctx = Recorder(SEED)
    getattr(method, "train", method.fit)(data, ctx)  # the training entry (fit(data, ctx) before the estimators)
    return {"events": ctx.events, "labels_": _array(method.labels_), "embedding_": _array(method.embedding_)}


def differences(a, b, path: str = "") -> list[str]:
    """Every place where a and b differ (exactly; NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a if k not in WALL_CLOCK for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape or a.dtype != b.dtype:
            return [f"{path}: arrays of other shape or type"]
        return [] if np.array_equal(a, b, equal_nan=a.dtype.kind == "f") else [f"{path}: arrays differ"]
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return []
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    if argv[:1] == ["save"] and len(argv) >= 2:
        out = Path(argv[1])
        out.mkdir(parents=True, exist_ok=True)
        only = set(argv[2:])
        for name, method_id, hparams, dataset in CASES:
            if only and name not in only:
                continue
            result = run_case(name, method_id, hparams, dataset)
            (out / f"{name}.pkl").write_bytes(pickle.dumps(result))
            print(f"{name}: {sum(e[0] == 'log' for e in result['events'])} log calls, "
                  f"{sum(e[0] == 'evaluate' for e in result['events'])} evaluations", flush=True)
        return 0
    if argv[:1] == ["compare"] and len(argv) == 3:
        before, after = Path(argv[1]), Path(argv[2])
        failed = 0
        for name, *_ in CASES:
            if not (before / f"{name}.pkl").exists() or not (after / f"{name}.pkl").exists():
                print(f"{name}: missing")
                continue
            diffs = differences(pickle.loads((before / f"{name}.pkl").read_bytes()),
                                pickle.loads((after / f"{name}.pkl").read_bytes()))
            failed += bool(diffs)
            print(f"{name}: {'identical' if not diffs else f'{len(diffs)} differences, first: ' + '; '.join(diffs[:3])}")
        return 1 if failed else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
