"""Reproducible means bit-identical: every method's quick preset (its schedule cut to seconds) run twice with the same
seed, data, settings, device and thread count gives the same metrics, evaluations and assignments, to the last bit."""
import threading

import numpy as np
import pytest
import torch

from dashboard_lib import methods
from dashboard_lib.jobs import RunConfig, create_run, execute_run, training_threads
from dashboard_lib.store import RunStore

# The quick preset, then only its schedule shortened further (every weight and rate stays the preset's).
SHORTER = {
    "kmeans": {"n_init": 2},
    "ae_kmeans": {"epochs": 2, "eval_every": 1, "n_init": 2},
    "dec": {"pretrain_epochs": 1, "iterations": 30, "eval_every": 15, "n_init": 2},
    "idec": {"pretrain_epochs": 1, "iterations": 30, "eval_every": 15, "n_init": 2},
    "statdec": {"pretrain_epochs": 1, "iterations": 30, "eval_every": 15, "n_init": 2},
    "dfc": {"pretrain_steps": 5, "group_pretrain_epochs": 1, "group_dec_epochs": 1, "iterations": 30, "eval_every": 15, "batch_per_group": 32,
            "n_init": 2},
    "fcmi": {"epochs": 2, "warmup_epochs": 1, "eval_every": 1, "batch_size": 64, "kmeans_n_init": 1},
    "erm": {"ae_epochs": 1, "epochs": 2, "batch_size": 64, "width": 8},
    "clusterfix": {"ae_epochs": 1, "epochs": 2, "batch_size": 64, "width": 8, "clusters_per_class": 2},
    "senet": {"width": 32, "depth": 2, "pca_dim": 20, "epochs": 2, "batch_size": 50, "dict_size": 100, "top_k": 30,
              "eval_every": 1, "log_every": 1, "embed_dim": 8},
}
SHORTER["inv_senet"] = SHORTER["senet"]
SHORTER.update({"fairlets": {}, "fair_assignment": {"n_clusters": 4}, "variational_fair": {"max_iter": 10},
                "socially_fair_kmeans": {"max_iter": 10}})


def test_every_method_is_covered():
    assert set(SHORTER) == set(methods.REGISTRY)


def _run(store: RunStore, method: str) -> str:
    hparams = {**methods.get_method(method).preset("quick"), **SHORTER[method]}
    config = RunConfig(dataset="mnist_optdigits", method=method, dataset_options={"n": 300}, hparams=hparams, seed=7,
                       device="cpu")
    run_id, config = create_run(store, config)
    run = execute_run(store, run_id, config, threading.Event())
    assert run.status == "finished", run.error
    return run_id


def _numbers(metrics: dict) -> dict:
    """The metrics without wall-clock timings (SENet reports its clustering's seconds)."""
    return {k: v for k, v in metrics.items() if "seconds" not in k}


@pytest.mark.parametrize("method", sorted(SHORTER))
def test_same_seed_same_threads_same_bits(tmp_path, method):
    store = RunStore(tmp_path / "store")
    first, second = _run(store, method), _run(store, method)
    a, b = store.get_run(first), store.get_run(second)
    assert _numbers(a.metrics) == _numbers(b.metrics)  # floats compared exactly
    assert a.threads == b.threads == torch.get_num_threads()
    assert [_numbers(e["metrics"]) for e in store.evaluations(first)] == [_numbers(e["metrics"]) for e in store.evaluations(second)]
    epoch = store.evaluations(first)[-1]["epoch"]
    for key, array in store.load_arrays(first, epoch).items():
        assert np.array_equal(array, store.load_arrays(second, epoch)[key]), key
    series = store.scalars(first)[["step", "name", "value"]], store.scalars(second)[["step", "name", "value"]]
    assert series[0].equals(series[1])


def test_the_cli_and_the_app_train_with_the_same_threads_by_default():
    from dashboard_lib.cli import _parser

    assert _parser().parse_args(["train"]).threads is None  # None means training_threads(), as the app's registry
    assert training_threads() == max(1, (__import__("os").cpu_count() or 2) - 1)
