"""ClusterFix and ERM: weights and losses on hand-computed cases, pseudo-labels, short real runs, bad settings."""
import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from dashboard_lib import cli
from dashboard_lib import data as datasets
from dashboard_lib.data import BiasedDataset, DatasetInfo, DatasetSpec
from dashboard_lib.jobs import RunConfig
from dashboard_lib.methods.clusterfix import (ERR_NO_TARGET, WEIGHTS_FILE, ClusterFix, build_classifier, cluster_head_loss,
                                              cluster_weights, clusterfix_objective, group_report, momentum_update,
                                              pseudo_labels, weight_spread, weighted_task_loss)

TINY = {"n": 300}
SHORT = {"ae_epochs": 1, "epochs": 2, "batch_size": 64, "width": 8}


def test_cluster_weights_by_hand():
    # Two clusters, N_c = (3, 1). Task-loss sums (0.6, 2.0), cluster-loss sums (0.3, 1.0), γ = 0.5:
    # mean losses (0.6 + 0.15)/3 = 0.25 and (2.0 + 0.5)/1 = 2.5; divided by N_c: 0.083333 and 2.5.
    # Normalised so that Σ N_c w_c = N = 4: mass 3·0.083333 + 1·2.5 = 2.75, scale 4/2.75 → (0.121212, 3.636364).
    w = cluster_weights(torch.tensor([0.6, 2.0]), torch.tensor([0.3, 1.0]), torch.tensor([3, 1]), gamma=0.5)
    assert w.tolist() == pytest.approx([0.121212, 3.636364], abs=1e-6)
    assert float((w * torch.tensor([3.0, 1.0])).sum()) == pytest.approx(4.0)


def test_cluster_weights_empty_cluster_and_gamma_zero():
    # γ = 0: only the task loss counts. Cluster 1 is empty → weight 0. Means 1.0 and 1.0, ÷ N_c: 0.5 and 0.25;
    # mass 2·0.5 + 4·0.25 = 2, N = 6 → scale 3 → (1.5, 0, 0.75).
    w = cluster_weights(torch.tensor([2.0, 0.0, 4.0]), torch.tensor([9.0, 0.0, 9.0]), torch.tensor([2, 0, 4]), gamma=0.0)
    assert w.tolist() == pytest.approx([1.5, 0.0, 0.75])


def test_momentum_update_by_hand():
    # m = 0.3: 0.3·(1, 1) + 0.7·(0, 3) = (0.3, 2.4); the first estimate is taken as is.
    assert momentum_update(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 3.0]), 0.3).tolist() == pytest.approx([0.3, 2.4])
    assert momentum_update(None, torch.tensor([0.0, 3.0]), 0.3).tolist() == [0.0, 3.0]


def test_cluster_head_loss_reads_the_head_of_the_samples_class():
    # 2 classes × K = 2. Sample of class 1 with pseudo-label 0: its head's logits are columns 2, 3 = (0, ln 3),
    # so p(c = 0) = 1/(1 + 3) = 0.25 and CE = ln 4 = 1.386294. Class 0's columns (10, −10) must not matter.
    logits = torch.tensor([[10.0, -10.0, 0.0, np.log(3.0)]])
    loss = cluster_head_loss(logits, torch.tensor([1]), torch.tensor([0]), per_class=2)
    assert loss.tolist() == pytest.approx([np.log(4.0)])


def test_objective_by_hand():
    # L_t = mean(0.5·1, 1.5·2) = (0.5 + 3)/2 = 1.75; L_s = mean(0.4, 0.6) = 0.5; γ = 0.5 → 1.75 + 0.25 = 2.0
    task, cluster, weights = torch.tensor([1.0, 2.0]), torch.tensor([0.4, 0.6]), torch.tensor([0.5, 1.5])
    assert float(weighted_task_loss(task, weights)) == pytest.approx(1.75)
    assert float(clusterfix_objective(task, cluster, weights, 0.5)) == pytest.approx(2.0)
    # Spread over non-empty clusters only: max 4 / min 0.5 = 8.
    assert float(weight_spread(torch.tensor([0.5, 9.0, 4.0]), torch.tensor([3, 0, 1]))) == pytest.approx(8.0)


def test_group_report_by_hand():
    # Groups (y, b): (0,0) 1/1, (0,1) 0/1, (1,0) 1/1, (1,1) 1/1 → average 3/4, unbiased mean 0.75, worst 0.
    report = group_report([0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 0, 1])
    assert report["avg_acc"] == 0.75 and report["unbiased_acc"] == 0.75 and report["worst_group_acc"] == 0.0
    assert report["groups"] == {(0, 0): 1.0, (0, 1): 0.0, (1, 0): 1.0, (1, 1): 1.0}


def test_pseudo_labels_cluster_within_each_class():
    # Class 0: two tight blobs (at 0 and 10); class 1: three points. K = 2; K = 5 is capped at the class size.
    f = torch.tensor([[0.0], [0.1], [10.0], [10.1], [5.0], [6.0], [7.0]])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    c = pseudo_labels(f, y, 2, 2, seed=0)
    assert c[0] == c[1] and c[2] == c[3] and c[0] != c[2]
    c5 = pseudo_labels(f, y, 5, 2, seed=0)
    assert sorted(c5[4:].tolist()) == [0, 1, 2] and c5.max() < 5



def _finish(registry, method, hparams, options=TINY, seed=0):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method=method, dataset_options=options, hparams=hparams, seed=seed))
    assert registry.wait(run_id, 60)
    run = registry.store.get_run(run_id)
    assert run.status == "finished", run.error
    return run


@pytest.mark.parametrize("method", ["erm", "clusterfix"])
def test_short_real_run_records_group_metrics_and_weights(registry, method):
    hparams = {**SHORT, "clusters_per_class": 2} if method == "clusterfix" else SHORT
    run = _finish(registry, method, hparams)
    for key in ("avg_acc", "unbiased_acc", "worst_group_acc"):
        assert 0 <= run.metrics[key] <= 1
    assert run.metrics["worst_group_acc"] <= run.metrics["unbiased_acc"]
    evaluations = registry.store.evaluations(run.id)
    assert [e["epoch"] for e in evaluations] == [1, 2] and all("worst_group_acc" in e["metrics"] for e in evaluations)
    names = set(registry.store.scalars(run.id)["name"])
    assert {"L_rec", "L_task", "L_total"} <= names and any(n.startswith("acc (y=") for n in names)
    if method == "clusterfix":
        assert {"L_cluster", "w_spread"} <= names
    state = torch.load(registry.store.run_dir(run.id) / WEIGHTS_FILE, weights_only=True)
    model = build_classifier(run.hparams, run.dataset_info["shape"], run.dataset_info["n_classes"], method == "clusterfix")
    model.load_state_dict(state)  # strict: the saved weights rebuild exactly this network


def test_cli_json_carries_the_group_metrics(fclab_home, capsys):
    code = cli.main(["train", "--dataset", "mnist_optdigits", "--data", "n=200", "--method", "erm", "--set", "ae_epochs=0",
                     "--set", "width=8", "--set", "batch_size=64", "--epochs", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "finished"
    assert {"avg_acc", "unbiased_acc", "worst_group_acc"} <= set(out["metrics"])


def test_the_bias_attribute_is_never_used_in_training():
    # The same data with the group labels scrambled trains the same network: only the evaluation reads g.
    data = datasets.load_dataset("mnist_optdigits", {"n": 200})
    scrambled = dataclasses.replace(data, g=np.random.default_rng(0).permutation(data.g))

    fitted = [ClusterFix(**{**SHORT, "clusters_per_class": 2}, random_state=0, device="cpu").fit(d) for d in (data, scrambled)]
    assert np.array_equal(fitted[0].labels_, fitted[1].labels_)
    assert np.array_equal(fitted[0].pseudo_labels_, fitted[1].pseudo_labels_)


@pytest.mark.parametrize("hparams, message", [
    ({"clusters_per_class": 0}, "K (clusters_per_class) = 0 is outside its range [1, 100]"),
    ({"gamma": -0.5}, "γ (gamma) = -0.5 is outside its range [0, 100]"),
    ({"momentum": 1.0}, "m (momentum) = 1.0 is outside its range [0, 1)"),
])
def test_bad_settings_are_refused_before_any_run(registry, hparams, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        registry.start(RunConfig(dataset="mnist_optdigits", method="clusterfix", hparams=hparams))
    assert registry.store.list_runs() == []


def _unlabelled(options, data_dir=None) -> BiasedDataset:
    x = torch.rand(40, 1, 8, 8)
    return BiasedDataset(id="unlabelled", X=x, y=None, g=np.arange(40) % 2, group_names=["a", "b"], class_names=None,
                         n_clusters=2, info=DatasetInfo(name="unlabelled", source="test"))


def test_a_dataset_without_target_labels_fails_with_its_reason(registry, monkeypatch):
    monkeypatch.setitem(datasets.REGISTRY, "unlabelled", DatasetSpec(id="unlabelled", name="unlabelled", summary="", load=_unlabelled))
    for method in ("clusterfix", "erm"):
        run_id = registry.start(RunConfig(dataset="unlabelled", method=method, hparams={"batch_size": 8}))
        assert registry.wait(run_id, 30)
        run = registry.store.get_run(run_id)
        name = "ClusterFix" if method == "clusterfix" else "ERM (classifier)"
        assert run.status == "failed" and run.error == ERR_NO_TARGET.format(name=name, dataset="unlabelled")


def test_batch_larger_than_the_training_split_fails_with_its_reason(registry):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="clusterfix", dataset_options={"n": 100},
                                      hparams={"batch_size": 5000}))
    assert registry.wait(run_id, 30)
    assert "batch size 5000 is larger than the" in registry.store.get_run(run_id).error
