"""FCMI: the mutual-information losses against hand-computed cases, the network, a short real run, bad settings."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from dashboard_lib.methods import fcmi as fcmi_module
from dashboard_lib.methods.fcmi import (FCMI, fcmi_clustering_loss, fcmi_fairness_loss, fcmi_input_squash, fcmi_joint,
                                        fcmi_reconstruction_loss, fcmi_soft_assignment)
from dashboard_lib.nn import FCMINet, group_sorted_batches
from tests.unit.test_dec import FIT, evaluated, run_job, single_thread, synthetic  # noqa: F401 (autouse fixture)

Q = torch.tensor([[0.8, 0.2], [0.4, 0.6]])


def test_soft_assignment_hand_case_and_rows():
    # h = (1, 0) (any length: it is normalised), centres (2, 0) and (0, 1): cosines 1 and 0; τ = 0.1
    # → softmax(10, 0) = (1/(1 + e^−10), e^−10/(1 + e^−10)) = (0.9999546, 0.0000454).
    q = fcmi_soft_assignment(torch.tensor([[3.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 1.0]]), tau=0.1)
    assert q[0].tolist() == pytest.approx([0.9999546, 0.0000454], abs=1e-7)
    q_rand = fcmi_soft_assignment(torch.randn(40, 10), torch.randn(10, 10), tau=0.1)
    assert torch.allclose(q_rand.sum(1), torch.ones(40), atol=1e-6)


def test_joint_hand_case():
    # One sample per group: counts c×g = [[0.8, 0.4], [0.2, 0.6]], total 2 → p(c, g) = [[0.4, 0.2], [0.1, 0.3]].
    joint = fcmi_joint(Q, torch.tensor([0, 1]), 2)
    assert joint.tolist() == [pytest.approx([0.4, 0.2]), pytest.approx([0.1, 0.3])]


def test_clustering_loss_hand_cases():
    # Confident and balanced: p(c) = (0.5, 0.5), Σ p log p = −ln 2, H(C|X) = 0 → −ln 2.
    assert float(fcmi_clustering_loss(torch.eye(2))) == pytest.approx(-math.log(2), abs=1e-6)
    # Uniform rows: −ln 2 + ln 2 = 0.
    assert float(fcmi_clustering_loss(torch.full((3, 2), 0.5))) == pytest.approx(0.0, abs=1e-6)
    # Q: p(c) = (0.6, 0.4): 0.6 ln 0.6 + 0.4 ln 0.4 = −0.306495 − 0.366516 = −0.673012;
    # row entropies 0.500402 and 0.673012, mean 0.586707 → L_clu = −0.673012 + 0.586707 = −0.086305.
    assert float(fcmi_clustering_loss(Q)) == pytest.approx(-0.086305, abs=1e-6)


def test_fairness_loss_hand_case():
    # p(c, g) = [[0.4, 0.2], [0.1, 0.3]], p(c) = (0.6, 0.4), p(g) = (0.5, 0.5):
    # 0.4 ln(0.4/0.3) + 0.2 ln(0.2/0.3) + 0.1 ln(0.1/0.2) + 0.3 ln(0.3/0.2)
    # = 0.115073 − 0.081093 − 0.069315 + 0.121640 = 0.086305.
    assert float(fcmi_fairness_loss(Q, torch.tensor([0, 1]), 2)) == pytest.approx(0.086305, abs=1e-6)


def test_mutual_information_is_zero_for_independent_assignments():
    q = torch.tensor([[0.3, 0.7]]).repeat(6, 1)
    groups = torch.tensor([0, 0, 1, 1, 1, 2])
    assert float(fcmi_fairness_loss(q, groups, 3)) == pytest.approx(0.0, abs=1e-7)


def test_mutual_information_equals_group_entropy_when_clusters_copy_groups():
    # Groups (0, 1, 1, 1), q one-hot on the group: I(C; G) = H(G) = −(0.25 ln 0.25 + 0.75 ln 0.75) = 0.562335.
    groups = torch.tensor([0, 1, 1, 1])
    q = torch.eye(2)[groups]
    assert float(fcmi_fairness_loss(q, groups, 2)) == pytest.approx(0.562335, abs=1e-6)


def test_absent_group_adds_nothing_and_keeps_gradients_finite():
    q = Q.clone().requires_grad_(True)
    loss = fcmi_fairness_loss(q, torch.tensor([0, 1]), 3)  # group 2 is not in this batch
    assert float(loss.detach()) == pytest.approx(0.086305, abs=1e-6)
    loss.backward()
    assert bool(torch.isfinite(q.grad).all())


def test_reconstruction_loss():
    # (0 − 1)² and (2 − 2)² → mean 0.5.
    assert float(fcmi_reconstruction_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 2.0]))) == 0.5


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (1, 16, 16), (30,)])
def test_network_shapes_and_group_decoders(shape):
    net = FCMINet(shape, embedding_dim=4, n_groups=3)
    x = net.prepare(torch.rand(7, *shape))
    if len(shape) == 3:
        assert x.shape[1:] == (shape[0], 28, 28) and float(x.min()) >= -1
    h = net.encode(x)
    assert h.shape == (7, 4) and torch.allclose(h.norm(dim=1), torch.ones(7), atol=1e-5)
    assert net.decode(h, [3, 1, 3]).shape == x.shape  # one sample of group 1: BatchNorm still trains


def test_input_squash_hand_cases():
    # Entries 0, 2, 4, 6: mean 3, population sd √((9 + 1 + 1 + 9) / 4) = √5.
    mean, sd = fcmi_input_squash(torch.tensor([[0.0, 2.0], [4.0, 6.0]]), is_image=False)
    assert (mean, sd) == (pytest.approx(3.0), pytest.approx(math.sqrt(5)))
    assert fcmi_input_squash(torch.tensor([[-1.0, 0.5], [1.0, 0.0]]), is_image=False) is None  # in [−1, 1], as HAR
    assert fcmi_input_squash(torch.full((2, 3, 4, 4), 255.0), is_image=True) is None  # images: scaled, not squashed
    assert fcmi_input_squash(torch.full((3, 2), 5.0), is_image=False) == (5.0, 1.0)  # constant: no division by 0


def test_squashed_vectors_are_tanh_of_the_standardised_input():
    net = FCMINet((2,), embedding_dim=2, n_groups=2, squash=(3.0, 2.0))
    x = net.prepare(torch.tensor([[3.0, 5.0], [-1.0, 47.0]]))
    # tanh((3 − 3)/2) = 0, tanh(1) = 0.761594, tanh(−2) = −0.964028, tanh(22) = 1.0
    assert x.tolist() == [[0.0, pytest.approx(0.761594, abs=1e-6)], [pytest.approx(-0.964028, abs=1e-6), pytest.approx(1.0)]]
    assert {"input_mean", "input_sd"} <= set(net.state_dict())  # saved with the weights
    with torch.no_grad():
        x_hat = net.decode(net.encode(x), [1, 1])
    assert x_hat.shape == x.shape and float(x_hat.abs().max()) <= 1.0  # Tanh output: the target's range


def test_fcmi_squashes_a_z_scored_table_and_not_har_like_vectors():
    args = dict(epochs=2, warmup_epochs=1, eval_every=0, batch_size=16, kmeans_n_init=1)
    har_like = synthetic((12,), n=40)  # values in [0, 1]
    table = dataclasses.replace(har_like, X=(har_like.X - 0.5) * 8)  # values in [−4, 4]
    net = FCMI(**args, **FIT).fit(table).model_
    assert net.squash and float(net.input_mean) == pytest.approx(float(table.X.double().mean()), abs=1e-6)
    assert float(net.input_sd) == pytest.approx(float(table.X.double().std(unbiased=False)), abs=1e-6)
    assert not FCMI(**args, **FIT).fit(har_like).model_.squash


def test_group_sorted_batches():
    groups = np.array([1, 0, 2, 1, 0, 0, 2, 1, 1])
    order, batches = group_sorted_batches(groups, 4, np.random.default_rng(0), 3)
    assert sorted(order.tolist()) == list(range(9))
    assert [end - start for start, end, _ in batches] == [4, 4]  # the last batch of 1 is dropped
    for start, end, counts in batches:
        segment = groups[order[start:end]]
        assert segment.tolist() == sorted(segment.tolist())
        assert np.bincount(segment, minlength=3).tolist() == counts


@pytest.mark.parametrize("shape,n_groups", [((3, 28, 28), 2), ((12,), 5)])
def test_fcmi_fits_colour_images_and_vectors_with_many_groups(shape, n_groups):
    data = synthetic(shape, n=60, n_groups=n_groups)
    method = FCMI(epochs=3, warmup_epochs=1, eval_every=2, batch_size=16, kmeans_n_init=1, **FIT)
    method.check_data(data)
    method.fit(data)
    assert method.labels_.shape == (60,) and method.embedding_.shape == (60, 4)
    assert evaluated(method) == [1, 2, 3]
    assert {"L_rec", "L_clu", "L_fair", "L_total"} <= set(method.history_["scalars"])
    # 60 samples in batches of 16: three full batches per epoch, the last 12 dropped (public code: drop_last).
    assert len(method.history_["scalars"]["L_rec"]["value"]) == 3 * 3


def test_fcmi_run_through_jobs(tmp_path):
    store, run = run_job(tmp_path, "fcmi", {"epochs": 2, "warmup_epochs": 1, "eval_every": 0, "batch_size": 128,
                                            "kmeans_n_init": 2})
    assert run.status == "finished", run.error
    assert {"acc", "nmi", "balance", "mnce", "f_beta", "probe_acc"} <= set(run.metrics)
    names = set(store.scalars(run.id)["name"])
    assert {"L_rec", "L_clu", "L_fair", "L_total"} <= names
    assert [e["epoch"] for e in store.evaluations(run.id)] == [1, 2]  # end of warm-up, last epoch


def test_fcmi_bad_settings(tmp_path):
    for bad in ({"tau": 0}, {"tau": -1}, {"alpha": -0.1}, {"beta": -1}):
        with pytest.raises(ValueError, match="outside its range"):
            FCMI(**bad)
    with pytest.raises(ValueError, match="needs at least two groups"):
        FCMI().check_data(synthetic(n_groups=1))
    with pytest.raises(ValueError, match="needs K ≥ 2"):
        FCMI(n_clusters=1, batch_size=8).check_data(synthetic())
    with pytest.raises(ValueError, match="warm-up epochs \\(5\\) must be fewer than epochs \\(5\\)"):
        FCMI(epochs=5, warmup_epochs=5, batch_size=8).check_data(synthetic())
    _, run = run_job(tmp_path, "fcmi", {"batch_size": 1000})
    assert run.status == "failed" and "batch size 1000 is larger than the 599 samples" in run.error


def test_nan_loss_fails_the_run_and_keeps_the_last_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(fcmi_module, "fcmi_fairness_loss", lambda q, groups, n_groups=None: q.sum() * float("nan"))
    store, run = run_job(tmp_path, "fcmi", {"epochs": 2, "warmup_epochs": 1, "eval_every": 0, "batch_size": 128,
                                            "kmeans_n_init": 1})
    assert run.status == "failed" and "diverged" in run.error and "L_fair" in run.error
    assert run.metrics and "acc" in run.metrics  # the end-of-warm-up evaluation is kept
    assert [e["epoch"] for e in store.evaluations(run.id)] == [1]
