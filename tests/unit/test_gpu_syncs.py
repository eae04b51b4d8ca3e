"""No host-device synchronisation per training step: each deep method, run for S and for 2S steps, reads tensors on
the host (or copies them with a blocking transfer) the same number of times, at the same places in its code.

On the CPU a counting hook stands in for CUDA's sync debug mode: every Tensor method that would wait for the device
(.item, .tolist, .numpy, .cpu, bool/float/int/index of a tensor, a blocking .to(device)) is counted when called from
the method's own code (dashboard_lib). What runs once per evaluation or per epoch is allowed; what grows with the
steps is not. The context here reads the logged scalars only in its batched flush at an evaluation.
"""
from __future__ import annotations

import math
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard_lib.data import BiasedDataset, DatasetInfo
from dashboard_lib.methods import get_method
from dashboard_lib.training import MemorySink, TrainingContext
from tests.unit.test_dec import single_thread  # noqa: F401 (autouse fixture)

PACKAGE = str(Path(__file__).resolve().parents[2] / "dashboard_lib")
# k-means runs between epochs and checks its convergence on the host once per Lloyd step, by design.
BETWEEN_EPOCHS = (str(Path(PACKAGE) / "methods" / "kmeans.py"),)
HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__")


def _is_device(value) -> bool:
    return isinstance(value, torch.device) or (isinstance(value, str) and value.split(":")[0] in ("cpu", "cuda", "mps"))


@contextmanager
def counting_host_syncs():
    """Count, per call site in dashboard_lib (file:line), the calls that would synchronise with a CUDA device."""
    counts: Counter = Counter()

    def note():
        frame = sys._getframe(2)
        where = frame.f_code.co_filename
        if where.startswith(PACKAGE) and not where.startswith(BETWEEN_EPOCHS):
            counts[f"{Path(where).name}:{frame.f_lineno}"] += 1

    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS + ("to",)}

    def reader(name):
        original = originals[name]

        def counted(self, *args, **kwargs):
            note()
            return original(self, *args, **kwargs)
        return counted

    def to(self, *args, **kwargs):
        if not kwargs.get("non_blocking") and any(_is_device(a) for a in (*args, kwargs.get("device"))):
            note()
        return originals["to"](self, *args, **kwargs)

    for name in HOST_READS:
        setattr(torch.Tensor, name, reader(name))
    torch.Tensor.to = to
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def silent_context(data: BiasedDataset) -> TrainingContext:
    """The in-memory RunContext with no timed flush: it reads the logged tensors only at an evaluation, in one batch,
    so that only the method's own reads grow with the steps (a timed flush would add reads as the run takes longer)."""
    return TrainingContext(MemorySink(), data, torch.device("cpu"), 0, flush_seconds=math.inf)


def _data(image: bool, n: int = 128) -> BiasedDataset:
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.random((n, 1, 28, 28) if image else (n, 20), dtype=np.float32))
    return BiasedDataset(id="toy", X=X, y=np.arange(n) % 4, g=(np.arange(n) // 4) % 2, group_names=["g0", "g1"],
                         class_names=list("abcd"), n_clusters=4, info=DatasetInfo("toy", "test"))


DEC_LIKE = {"pretrain_epochs": 1, "n_init": 1, "eval_every": 0, "update_interval": 1000, "batch_size": 32}
SENET = {"epochs": 1, "width": 16, "pca_dim": 10, "features": "pca", "dict_size": 40, "top_k": 10, "eval_every": 0,
         "log_every": 1, "embed_dim": 4}
# method: (image data?, fixed settings, the setting that doubles the steps: (S, 2S) values)
CASES = {
    "fcmi": (True, {"epochs": 2, "warmup_epochs": 1, "eval_every": 0, "kmeans_n_init": 1}, ("batch_size", (32, 16))),
    "dfc": (True, {"pretrain_steps": 4, "n_init": 1, "eval_every": 0, "batch_per_group": 16, "pretrain_batch_size": 32,
                   "group_pretrain_epochs": 1, "group_dec_epochs": 1}, ("iterations", (6, 12))),
    "dec": (True, {**DEC_LIKE, "tol": 0.0}, ("iterations", (6, 12))),
    "idec": (False, {**DEC_LIKE, "tol": 0.0}, ("iterations", (6, 12))),
    "statdec": (False, {**DEC_LIKE, "delta": 0.0}, ("iterations", (6, 12))),
    "ae_kmeans": (False, {"epochs": 1, "eval_every": 0, "n_init": 1}, ("batch_size", (32, 16))),
    "erm": (True, {"ae_epochs": 1, "epochs": 1, "eval_every": 0, "width": 8}, ("batch_size", (32, 16))),
    "clusterfix": (True, {"ae_epochs": 1, "epochs": 1, "eval_every": 0, "width": 8, "clusters_per_class": 2},
                   ("batch_size", (32, 16))),
    "senet": (False, SENET, ("batch_size", (16, 8))),
    "inv_senet": (False, SENET, ("batch_size", (16, 8))),
}


def _syncs(method_id: str, steps_setting: str, value, image: bool, fixed: dict) -> tuple[Counter, int]:
    data = _data(image)
    torch.manual_seed(0)
    ctx = silent_context(data)
    with counting_host_syncs() as counts:
        get_method(method_id)(**{**fixed, steps_setting: value}).train(data, ctx)
    ctx.flush()  # after counting: the context's own reads are not the method's
    return counts, len({step for series in ctx.sink.history["scalars"].values() for step in series["step"]})


@pytest.mark.parametrize("method_id", sorted(CASES))
def test_host_syncs_do_not_grow_with_the_steps(method_id):
    image, fixed, (setting, (short, long)) = CASES[method_id]
    few, logged_few = _syncs(method_id, setting, short, image, fixed)
    many, logged_many = _syncs(method_id, setting, long, image, fixed)
    assert logged_many > logged_few, "the longer run must take more steps"
    grown = {site: (few[site], many[site]) for site in set(few) | set(many) if many[site] > few[site]}
    assert not grown, f"{method_id}: host syncs that grow with the steps (site: S steps → 2S steps): {grown}"


def test_the_hook_catches_a_per_step_read():
    # The hook is only worth something if it fails: a loop reading .item() every step is caught, by call site.
    with counting_host_syncs() as counts:
        from dashboard_lib import metrics  # noqa: F401 (a module of the package, to attribute the call to it)
        code = compile("for _ in range(5):\n    torch.ones(()).item()\n", str(Path(PACKAGE) / "fake.py"), "exec")
        exec(code, {"torch": torch})
    assert counts == Counter({"fake.py:2": 5})


@pytest.mark.parametrize("method_id", ["senet", "inv_senet"])
def test_the_public_code_variants_add_no_host_sync_per_step(method_id):
    """The whole-set dictionary in blocks, the shared classifier's alternating steps, AdamW, the schedules, clipping."""
    fixed = {**get_method(method_id).variant("public code"), **SENET, "dict_size": 0, "dict_block": 16, "spectral_dim": 3,
             "grad_clip": 0.001}
    few, logged_few = _syncs(method_id, "batch_size", 16, False, fixed)
    many, logged_many = _syncs(method_id, "batch_size", 8, False, fixed)
    assert logged_many > logged_few
    grown = {site: (few[site], many[site]) for site in set(few) | set(many) if many[site] > few[site]}
    assert not grown, f"{method_id}: host syncs that grow with the steps (site: S steps → 2S steps): {grown}"
