"""StatDEC and IDEC: the target, the statistics pooling and the losses on hand-computed cases; short real runs."""
import math
import re

import numpy as np
import pytest
import torch

from dashboard_lib.jobs import RunConfig
from dashboard_lib.methods.dec import dec_target
from dashboard_lib.methods.statdec import (StatAutoencoder, cluster_frequency, idec_loss, label_change, matched_class_recall,
                                           sample_frequency, statdec_loss, statdec_target, statistics_pooling)

Q = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]], dtype=torch.float64)


def test_cluster_frequency_is_the_soft_share():
    # u_0 = (0.8 + 0.6 + 0.1) / 3 = 0.5, u_1 = (0.2 + 0.4 + 0.9) / 3 = 0.5
    assert cluster_frequency(Q).tolist() == pytest.approx([0.5, 0.5])


def test_sample_frequency_by_hand():
    # argmax: samples 0 and 1 in cluster 0 (N_0 = 2), sample 2 in cluster 1 (N_1 = 1), N = 3, γ = 2.
    # focal_00 = 0.2²·(−ln 0.8) = 0.04·0.223144 = 0.0089257; focal_10 = 0.4²·(−ln 0.6) = 0.16·0.510826 = 0.0817321
    # v_0 = √(3/2)·(0.0089257 + 0.0817321)/3 = 1.224745·0.0302193 = 0.0370109
    # focal_21 = 0.1²·(−ln 0.9) = 0.01·0.105361 = 0.0010536; v_1 = √3·0.0010536/3 = 0.0006083
    v = sample_frequency(Q, gamma=2.0)
    assert v.tolist() == pytest.approx([0.0370109, 0.0006083], abs=1e-7)


def test_statdec_target_by_hand_and_normalised():
    # p_i0 ∝ q_i0²/(u_0 + v_0) = q_i0²/0.5370109, p_i1 ∝ q_i1²/(u_1 + v_1) = q_i1²/0.5006083, rows normalised:
    # sample 0: 0.64/0.5370109 = 1.191782, 0.04/0.5006083 = 0.079903 → 0.937168, 0.062832
    p = statdec_target(Q, gamma=2.0)
    assert p[0].tolist() == pytest.approx([0.937168, 0.062832], abs=1e-6)
    assert p[1].tolist() == pytest.approx([0.677157, 0.322843], abs=1e-6)
    assert p[2].tolist() == pytest.approx([0.011378, 0.988622], abs=1e-6)
    assert p.sum(1).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_statdec_target_without_the_sample_term_is_decs():
    # (1 − q)^γ → 0 as γ grows, so v → 0 and P = DEC's q²/f normalised (the ÷ N of u cancels per row).
    q = torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 1)
    assert torch.allclose(statdec_target(q, gamma=500.0), dec_target(q), atol=1e-9)
    assert not torch.allclose(statdec_target(q, gamma=2.0), dec_target(q), atol=1e-4)


def test_statistics_pooling_by_hand():
    h = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    # Two hard clusters of one sample each: μ_k = h_k, σ_k = 0, N_k / B = 1/2.
    out = statistics_pooling(h, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert out.tolist() == [[1, 2, 1, 2, 0, 0, 0.5], [3, 4, 3, 4, 0, 0, 0.5]]
    # One cluster: μ = (2, 3), σ = ((1−2)² + (3−2)²)/2 = 1 per feature, N / B = 1.
    out = statistics_pooling(h, torch.ones(2, 1))
    assert out.tolist() == [[1, 2, 2, 3, 1, 1, 1], [3, 4, 2, 3, 1, 1, 1]]


def test_losses_by_hand():
    l_c, l_r = torch.tensor(2.0), torch.tensor(1.0)
    assert float(statdec_loss(l_c, l_r, 0.1)) == pytest.approx(0.1 * 2 + 0.9 * 1)  # 1.1
    assert float(idec_loss(l_c, l_r, 0.1)) == pytest.approx(1 + 0.1 * 2)  # 1.2
    assert float(label_change(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))) == 0.25


def test_matched_class_recall_by_hand():
    # class × cluster table: class 0 → {cluster 1: 2, cluster 0: 1}; class 1 → {cluster 0: 2}; class 2 → {cluster 2: 1}
    # Hungarian: 0↔1, 1↔0, 2↔2 → recall 2/3, 2/2, 1/1. A fourth class with no cluster left gets 0.
    y, pred = [0, 0, 0, 1, 1, 2], [1, 1, 0, 0, 0, 2]
    assert matched_class_recall(y, pred).tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    assert matched_class_recall(y + [3], pred + [2]).tolist() == pytest.approx([2 / 3, 1.0, 1.0, 0.0])


def test_autoencoder_shapes_and_ablation():
    model = StatAutoencoder(784, 10)
    x = torch.rand(6, 784)
    z = model.encode(x)
    q = torch.softmax(torch.randn(6, 3), 1)
    assert z.shape == (6, 10) and model.decode(z, q).shape == (6, 784) and model.decode(z).shape == (6, 784)
    assert model.decoder_tail[0].in_features == 3 * 500 + 1  # statistics pooling on the second hidden layer (500)
    assert StatAutoencoder(784, 10, stat_pool=False).decoder_tail[0].in_features == 500
    assert [m.out_features for m in model.encoder if hasattr(m, "out_features")] == [500, 500, 1000, 10]


def test_pooling_block_joins_at_the_clustering_stage_without_changing_the_decoder():
    model = StatAutoencoder(20, 4, hidden=(8, 8, 16))
    x = torch.rand(5, 20)
    z = model.encode(x)
    q = torch.softmax(torch.randn(5, 3), 1)
    # At the switch (pooling weights still at their zero start) the clusters' statistics change nothing ...
    assert torch.allclose(model.decode(z, q), model.decode(z))
    # ... and pretraining (q = None) leaves those weights at zero: their inputs are zero, so is their gradient.
    torch.nn.functional.mse_loss(model.decode(z), x).backward()
    assert model.decoder_tail[0].weight.grad[:, 8:].abs().max() == 0
    assert model.decoder_tail[0].weight.grad[:, :8].abs().max() > 0



SHORT = {"pretrain_epochs": 2, "iterations": 20, "update_interval": 5, "batch_size": 64, "eval_every": 10, "n_init": 2}


@pytest.mark.parametrize("method", ["statdec", "idec"])
def test_short_real_run(registry, method):
    hparams = {**SHORT, "tol" if method == "idec" else "delta": 0.0}  # 0: no early stop, all iterations run
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method=method, dataset_options={"n": 300}, hparams=hparams, seed=1))
    assert registry.wait(run_id, 60)
    run = registry.store.get_run(run_id)
    assert run.status == "finished", run.error
    assert 0 < run.metrics["acc"] <= 1 and "nmi" in run.metrics and "ari" in run.metrics
    evaluations = registry.store.evaluations(run_id)
    assert [e["epoch"] for e in evaluations] == [0, 10, 20]
    assert all(0 <= e["metrics"]["min_class_recall"] <= e["metrics"]["tail_recall"] <= 1 for e in evaluations)
    names = set(registry.store.scalars(run_id)["name"])
    assert {"L_rec", "L_clu", "L_total", "changed"} <= names


def test_idec_stops_at_tolerance(registry):
    # tol = 1: fewer than 100% of the samples always change, so IDEC stops at the first check (iteration T = 5).
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="idec", dataset_options={"n": 200},
                                      hparams={**SHORT, "tol": 1.0, "eval_every": 0}))
    assert registry.wait(run_id, 60)
    assert [e["epoch"] for e in registry.store.evaluations(run_id)] == [0, 5]


@pytest.mark.parametrize("rule, delta, updates, last_epoch", [
    ("interval", 0.0, [1.0, 1.0, 1.0, 1.0], 20),  # P every T = 5 iterations, never converged
    ("interval", 1.0, [1.0], 5),  # fewer than 100 % always change: converged at the first check
    ("stable", 0.0, [0.0, 0.0, 0.0, 0.0], 20),  # §III-A literally: P kept unless fewer than δ changed
])
def test_statdec_target_update_rules(registry, rule, delta, updates, last_epoch):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="statdec", dataset_options={"n": 200},
                                      hparams={**SHORT, "eval_every": 0, "target_update": rule, "delta": delta}))
    assert registry.wait(run_id, 60)
    series = registry.store.scalars(run_id, ["target_updated"])
    assert series["value"].tolist() == updates
    assert registry.store.evaluations(run_id)[-1]["epoch"] == last_epoch


@pytest.mark.parametrize("hparams, message", [
    ({"gamma": -1}, "γ (gamma) = -1 is outside its range [0, 100]"),
    ({"lam": 1.5}, "λ (lam) = 1.5 is outside its range [0, 1]"),
    ({"delta": -0.1}, "δ (delta) = -0.1 is outside its range [0, 1]"),
    ({"n_clusters": -2}, "K (n_clusters) = -2 is outside its range"),
])
def test_bad_settings_are_refused(registry, hparams, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        registry.start(RunConfig(dataset="mnist_optdigits", method="statdec", hparams=hparams))


def test_k_larger_than_data_fails_with_reason(registry):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="statdec", dataset_options={"n": 100},
                                      hparams={**SHORT, "n_clusters": 500}))
    assert registry.wait(run_id, 30)
    run = registry.store.get_run(run_id)
    assert run.status == "failed" and "K = 500 clusters is more than the" in run.error


def test_focal_weight_matches_its_formula_on_random_assignments():
    q = torch.softmax(torch.randn(40, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64), 1)
    labels = q.argmax(1)
    expected = []
    for j in range(5):
        members = q[labels == j, j]
        n_j = max(len(members), 1)
        expected.append(math.sqrt(40 / n_j) * float(((1 - members) ** 2 * -torch.log(members)).sum()) / 40)
    assert sample_frequency(q, 2.0).tolist() == pytest.approx(expected)
    assert np.isfinite(statdec_target(q).numpy()).all()
