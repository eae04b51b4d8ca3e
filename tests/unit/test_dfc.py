"""DFC: its losses against hand-computed cases, gradient reversal, the networks, a short real run, bad settings."""
import math

import numpy as np
import pytest
import torch

from dashboard_lib.methods.dfc import (DFC, Discriminator, dfc_clustering_loss, dfc_fairness_loss, dfc_lr, dfc_structural_loss,
                                       dfc_target, discriminator_accuracy)
from dashboard_lib.nn import DFCAutoencoder, GroupCycler, grad_reverse, grl_coefficient, student_t_assignment
from tests.unit.test_dec import FIT, evaluated, run_job, single_thread, synthetic  # noqa: F401 (autouse fixture)


def test_gradient_reversal_flips_the_sign():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)  # identity forward
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-0.5, -1.0, -1.5]  # −coeff × the gradient of the identity


def test_grl_coefficient_ramp():
    # 2/(1 + e^0) − 1 = 0; 2/(1 + e^−10) − 1 = 0.999909; at t = 0.1: 2/(1 + e^−1) − 1 = 0.462117.
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(1.0) == pytest.approx(0.999909, abs=1e-6)
    assert grl_coefficient(0.1) == pytest.approx(0.462117, abs=1e-6)


def test_lr_schedule():
    # lr (1 + 10t)^(−0.75): t = 1 → 0.01 · 11^(−0.75) = 0.01 · 0.165560.
    assert dfc_lr(0.01, 0.0) == 0.01
    assert dfc_lr(0.01, 1.0) == pytest.approx(0.00165560, rel=1e-5)


def test_student_t_rows_sum_to_one():
    q = student_t_assignment(torch.randn(64, 8) * 5, torch.randn(10, 8))
    assert torch.allclose(q.sum(1), torch.ones(64), atol=1e-6) and bool((q > 0).all())


def test_group_wise_target_differs_from_the_global_one():
    q = torch.tensor([[0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    groups = torch.tensor([0, 0, 1])
    # group 0: f = (0.8, 1.2) → rows as DEC's: (0.771429, 0.228571), (0.085714, 0.914286)
    # group 1 alone: f = (0.5, 0.5) → (0.25/0.5, 0.25/0.5) normalised = (0.5, 0.5)
    # (a global target would give row 2: f = (1.3, 1.7) → (0.192308, 0.147059) / 0.339367 = (0.566667, 0.433333))
    p = dfc_target(q, groups, 2)
    assert p[0].tolist() == pytest.approx([0.771429, 0.228571], abs=1e-6)
    assert p[1].tolist() == pytest.approx([0.085714, 0.914286], abs=1e-6)
    assert p[2].tolist() == pytest.approx([0.5, 0.5], abs=1e-6)


def test_clustering_loss_sums_over_the_batch_and_averages_groups():
    # target (1, 0) against q = (0.5, 0.5): 1·ln(1/0.5) = ln 2 per such row; two rows summed = 2 ln 2; M = 2 → ln 2.
    q = torch.full((2, 2), 0.5)
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(dfc_clustering_loss(q, target, 2)) == pytest.approx(math.log(2), abs=1e-6)
    assert float(dfc_clustering_loss(q, target, 1)) == pytest.approx(2 * math.log(2), abs=1e-6)


def test_structural_loss_hand_case():
    # Q = I: QQᵀ = I; Q̂ = [[1, 0], [1, 0]]: Q̂Q̂ᵀ = all ones; difference [[0, 1], [1, 0]] → squared sum 2.
    assert float(dfc_structural_loss(torch.eye(2), torch.tensor([[1.0, 0.0], [1.0, 0.0]]))) == pytest.approx(2.0)
    # Q̂ = Q → 0; Q = (0.5, 0.5) rows against Q̂ = I: QQᵀ = all 0.5, I − 0.5 = ±0.5 → 4 × 0.25 = 1.
    assert float(dfc_structural_loss(torch.eye(2), torch.eye(2))) == 0.0
    assert float(dfc_structural_loss(torch.full((2, 2), 0.5), torch.eye(2))) == pytest.approx(1.0)


def test_fairness_loss_and_discriminator_accuracy():
    # Uniform logits over M = 2 groups: cross-entropy ln 2 whatever the labels.
    groups = torch.tensor([0, 1, 1, 0])
    assert float(dfc_fairness_loss(torch.zeros(4, 2), groups)) == pytest.approx(math.log(2), abs=1e-6)
    # logits favour group 1 for samples 0–2 and group 0 for sample 3: right on samples 1, 2, 3 → 0.75.
    logits = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert float(discriminator_accuracy(logits, groups)) == 0.75


def test_adversarial_gradients_point_opposite_ways():
    # D descends α_f·L_f; through the reversal, the assignment ascends it.
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(8, 3), 1).requires_grad_(True)
    groups = torch.tensor([0, 1] * 4)
    critic = Discriminator(3, 2, dropout=0.0)
    dfc_fairness_loss(critic(q), groups).backward()
    plain = q.grad.clone()
    q.grad = None
    dfc_fairness_loss(critic(grad_reverse(q, 1.0)), groups).backward()
    assert torch.allclose(q.grad, -plain)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 16, 16), (20,)])
def test_autoencoder_shapes(shape):
    ae = DFCAutoencoder(shape, latent_dim=5)
    x = ae.prepare(torch.rand(4, *shape))
    assert x.shape[1:] == ((shape[0], 32, 32) if len(shape) == 3 else (20,))
    z, mu, logvar = ae.encode(x)
    assert z.shape == mu.shape == logvar.shape == (4, 5)
    assert ae.decode(z).shape == x.shape
    ae.eval()
    assert torch.equal(ae.encode(x)[0], ae.encode(x)[1])  # evaluation uses μ


def test_group_cycler_gives_b_per_group_in_order():
    groups = np.array([0] * 10 + [1] * 3)
    cycler = GroupCycler(groups, 2, 2, np.random.default_rng(0))
    for _ in range(5):
        index = cycler.next()
        assert groups[index].tolist() == [0, 0, 1, 1]


def test_dfc_fits_colour_images_and_many_groups():
    data = synthetic((3, 28, 28), n=90, n_groups=3)
    method = DFC(pretrain_steps=6, pretrain_batch_size=16, group_pretrain_epochs=1, group_dec_epochs=1, iterations=4, eval_every=2,
                 batch_per_group=8, latent_dim=6, n_init=2, **FIT)
    method.check_data(data)
    method.fit(data)
    assert method.labels_.shape == (90,)
    assert evaluated(method) == [0, 2, 4]
    assert method.history_["evaluations"][-1]["metrics"]["disc_chance"] == pytest.approx(1 / 3)
    assert {"L_rec", "L_kl", "L_c", "L_f", "L_s", "L_total", "disc_acc", "disc_chance"} <= set(method.history_["scalars"])


def test_dfc_run_through_jobs(tmp_path):
    store, run = run_job(tmp_path, "dfc", {"pretrain_steps": 4, "pretrain_batch_size": 64, "group_pretrain_epochs": 1, "group_dec_epochs": 1,
                                           "iterations": 6, "eval_every": 3, "batch_per_group": 32, "n_init": 2})
    assert run.status == "finished", run.error
    assert {"acc", "nmi", "balance", "mnce", "probe_acc"} <= set(run.metrics)
    names = set(store.scalars(run.id)["name"])
    assert {"L_rec", "L_c", "L_f", "L_s", "L_total", "disc_acc", "disc_chance"} <= names
    evaluations = store.evaluations(run.id)
    assert [e["epoch"] for e in evaluations] == [0, 3, 6]
    assert 0 <= evaluations[-1]["metrics"]["disc_acc"] <= 1 and evaluations[-1]["metrics"]["disc_chance"] == 0.5


def test_dfc_bad_settings(tmp_path):
    for bad in ({"alpha_f": -1}, {"alpha_s": -0.5}, {"alpha": 0}, {"lr": 0}):
        with pytest.raises(ValueError, match="outside its range"):
            DFC(**bad)
    one_group = synthetic(n_groups=1)
    with pytest.raises(ValueError, match="needs at least two groups"):
        DFC().check_data(one_group)
    with pytest.raises(ValueError, match="K = 50 clusters is more than the 40 samples of group g0"):
        DFC(n_clusters=50, batch_per_group=8, pretrain_batch_size=8).check_data(synthetic())
    # Through the app: the smallest group of the 599 digits (optdigits) has 159 samples.
    _, run = run_job(tmp_path, "dfc", {"batch_per_group": 512})
    assert run.status == "failed"
    assert ("batch per group 512 is larger than the 159 samples of its smallest group (UCI optdigits); lower "
            "batch_per_group to at most 159") in run.error
