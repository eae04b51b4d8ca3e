"""The job registry with real background threads, real methods on tiny real data, and the real run store."""
import time

import numpy as np
import pytest

from dashboard_lib import methods
from dashboard_lib.jobs import ERR_DIVERGED, RunConfig
from dashboard_lib.methods.base import GENERIC_ADVICE, Method
from tests.conftest import wait_for_run

TINY = {"n": 400}




def test_kmeans_run_records_everything(registry):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options=TINY, seed=3,
                                      hparams={"n_init": 2}))
    run = wait_for_run(registry, run_id)
    assert run.status == "finished", run.error
    assert set(run.metrics) >= {"acc", "nmi", "ari", "balance", "entropy", "mnce", "f_beta", "probe_acc", "probe_majority"}
    assert 0 < run.metrics["acc"] <= 1 and run.metrics["probe_majority"] > 0.5
    assert run.seed == 3 and run.device == "cpu" and run.environment["versions"]["torch"] == "2.13.0+cpu"
    assert run.config["hparams"] == {"n_clusters": 0, "n_init": 2, "max_iter": 300, "tol": 1e-4}
    n = run.dataset_info["n"]
    assert abs(n - 400) <= 20 and sum(run.dataset_info["group_counts"]) == n
    assert not registry.store.scalars(run_id, ["inertia"]).empty
    arrays = registry.store.load_arrays(run_id, 0)
    assert arrays["assignment"].shape == (n,) and "embedding" not in arrays


def test_a_run_started_after_another_waits_for_it_and_stops_while_waiting(registry):
    """The lesson starts its fair run after k-means: it is recorded at once, says it waits, trains once the first
    ended; one stopped while it waits ends stopped without training."""
    long = registry.start(RunConfig(dataset="mnist_optdigits", method="ae_kmeans", dataset_options=TINY,
                                    hparams={"epochs": 2000, "batch_size": 32}))
    second = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options=TINY,
                                      hparams={"n_init": 1}), after=long)
    third = registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", dataset_options=TINY,
                                     hparams={"n_init": 1}), after=long)
    deadline = time.time() + 10
    while registry.store.get_run(second).stage != "waiting for the run before it to end" and time.time() < deadline:
        time.sleep(0.05)
    assert registry.store.get_run(second).status == "running" and registry.store.scalars(second).empty
    assert registry.stop(third) and wait_for_run(registry, third).status == "stopped"
    assert registry.store.scalars(third).empty and registry.is_running(long)
    registry.stop(long)
    assert wait_for_run(registry, long).status == "stopped"
    assert wait_for_run(registry, second).status == "finished"


def test_same_seed_same_numbers(registry):
    config = RunConfig(dataset="mnist_optdigits", method="ae_kmeans", dataset_options=TINY, seed=1,
                       hparams={"epochs": 2, "n_init": 2, "batch_size": 128})
    first, second = (wait_for_run(registry, registry.start(config)) for _ in range(2))
    assert first.metrics == second.metrics
    a = registry.store.scalars(first.id, ["L_rec"])["value"].tolist()
    assert a == registry.store.scalars(second.id, ["L_rec"])["value"].tolist() and len(a) == 8


def test_stop_is_quick_and_keeps_the_series(registry):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="ae_kmeans", dataset_options=TINY,
                                      hparams={"epochs": 2000, "batch_size": 32}))
    deadline = time.time() + 30
    while registry.store.scalars(run_id).empty and time.time() < deadline:
        time.sleep(0.1)
    assert registry.is_running(run_id)
    asked = time.time()
    assert registry.stop(run_id)
    run = wait_for_run(registry, run_id, timeout=5)
    assert time.time() - asked < 1.0, "stop took more than a second"
    assert run.status == "stopped" and not registry.store.scalars(run_id).empty
    assert not registry.stop(run_id)  # nothing left to stop


def test_impossible_setting_for_the_data_fails_with_its_reason(registry):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="ae_kmeans", dataset_options={"n": 100},
                                      hparams={"batch_size": 5000}))
    run = wait_for_run(registry, run_id)
    assert run.status == "failed" and "batch size 5000 is larger than the" in run.error


def test_invalid_config_is_refused_before_any_run(registry):
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        registry.start(RunConfig(dataset="mnist_optdigits", method="nope"))
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        registry.start(RunConfig(dataset="nope", method="kmeans"))
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        registry.start(RunConfig(dataset="mnist_optdigits", method="kmeans", device="cuda"))
    assert registry.store.list_runs() == []


class _Diverges(Method):
    """Logs a finite loss, evaluates, then logs NaN: the runner must fail the run and keep the last evaluation."""

    id, name, summary = "diverges", "Diverges", "test method"

    def train(self, data, ctx):
        ctx.log(1, L_total=1.0)
        ctx.evaluate(1, None, np.arange(len(data)) % 2)
        ctx.log(2, L_total=float("nan"))
        ctx.flush()
        raise AssertionError("the NaN should have stopped the run")


def test_nan_loss_fails_the_run_and_keeps_last_metrics(registry, monkeypatch):
    monkeypatch.setitem(methods.REGISTRY, _Diverges.id, _Diverges)
    run = wait_for_run(registry, registry.start(RunConfig(dataset="mnist_optdigits", method="diverges", dataset_options=TINY)))
    assert run.status == "failed"
    assert run.error == ERR_DIVERGED.format(name="L_total", value=float("nan"), step=2, advice=GENERIC_ADVICE)
    assert "acc" in run.metrics  # the last good evaluation
    assert registry.store.scalars(run.id)["value"].tolist() == [1.0]


def test_a_logged_tensor_is_its_value_at_log_time_not_at_flush_time(tmp_path):
    import threading

    import torch

    from dashboard_lib.data import load_dataset
    from dashboard_lib.jobs import Recorder
    from dashboard_lib.store import RunStore

    store = RunStore(tmp_path / "store")
    run_id = store.create_run(dataset="mnist_optdigits", method="senet", config={}, seed=0, device="cpu", environment={})
    recorder = Recorder(store, run_id, load_dataset("mnist_optdigits", TINY), torch.device("cpu"), 0, threading.Event())
    recorder._last_flush = float("inf")  # hold the buffer, as between two timed flushes
    parameter = torch.nn.Parameter(torch.zeros(1))
    for step in range(3):
        recorder.log(step, threshold=parameter.detach()[0])
        with torch.no_grad():
            parameter += 1.0  # an optimiser's in-place update
    recorder.flush()
    assert store.scalars(run_id)["value"].tolist() == [0.0, 1.0, 2.0]


def test_a_divergence_names_the_settings_to_lower_with_this_runs_values():
    from dashboard_lib.methods import get_method

    assert get_method("dfc")(lr=0.01, alpha_s=2.0).divergence_advice() == (
        "Lower lr (now 0.01), e.g. to 0.001, or alpha_s (now 2), or alpha_f (now 1)")
    assert get_method("kmeans")().divergence_advice() == GENERIC_ADVICE  # no learning rate to lower
