"""SENet / Inv-SENnet as their public code runs them: the kNN affinity by hand, the spectral embedding, the whole-set
dictionary in blocks, the shared bias classifier's losses by hand, the learning-rate schedules, and a short run of
each public-code variant through the job registry."""
import math

import numpy as np
import pytest
import torch
from scipy import sparse
from torch import nn

from dashboard_lib.jobs import RunConfig
from dashboard_lib.methods import get_method
from dashboard_lib.methods import senet as S
from tests.conftest import wait_for_run


# --- the kNN affinity --------------------------------------------------------------------------------------------

def test_knn_affinity_of_a_hand_made_C():
    # Two groups of rows; rows 1 and 5 are scaled (×2, ×5): the rows are L2-normalised first, so scale is ignored.
    C = sparse.csr_matrix(np.array([
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # e1
        [2.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # e0 after normalisation
        [0.6, 0.8, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],  # e4
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0],  # e3
        [0.0, 0.0, 0.0, 4.0, 3.0, 0.0],  # 0.8·e3 + 0.6·e4 after normalisation
    ]))
    # Squared distances of unit rows: 2 − 2·cos. Row 0: to 2 (cos 0.8) 0.4, to every other row 2 → nearest 2.
    # Row 1: to 2 (cos 0.6) 0.8 → 2. Row 2: to 0 0.4, to 1 0.8 → 0. Row 3: to 5 (cos 0.6) 0.8 → 5. Row 4: to 5
    # (cos 0.8) 0.4 → 5. Row 5: to 4 0.4, to 3 0.8 → 4. Each row links to its one nearest row (weight 1, itself
    # excluded: with k = 1 it would otherwise be its own neighbour), G = rows 0→2, 1→2, 2→0, 3→5, 4→5, 5→4, and
    # A = (G + Gᵀ)/2: mutual pairs (0, 2) and (4, 5) weigh 1, one-way links (1, 2) and (3, 5) 0.5.
    expected = np.array([
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.5, 0.0, 0.0, 0.0],
        [1.0, 0.5, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.5, 1.0, 0.0],
    ])
    A = S.build_affinity(C, "knn", n_neighbors=1)
    assert isinstance(A, sparse.csr_matrix) and np.array_equal(A.toarray(), expected)
    # The paper-text affinity stays |C| + |Cᵀ| of the normalised rows.
    Cn = np.abs(C.toarray()) / np.linalg.norm(C.toarray(), axis=1, keepdims=True)
    assert np.allclose(S.build_affinity(C).toarray(), Cn + Cn.T)


# --- the spectral embedding --------------------------------------------------------------------------------------

def _blocks(sizes):
    """Complete graphs on consecutive blocks of the given sizes, no self-loops, nothing between blocks."""
    n = sum(sizes)
    A = np.zeros((n, n))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    A[labels[:, None] == labels[None, :]] = 1.0
    np.fill_diagonal(A, 0.0)
    return sparse.csr_matrix(A), labels


def test_spectral_embedding_has_the_asked_dimension_unit_rows_and_separates_blocks():
    A, truth = _blocks([3, 4, 5])
    E = S.spectral_embedding(A, 3)
    # Eigenvalue 1 of D^−1/2 A D^−1/2 three times (one per block), its eigenvectors constant on each block: after
    # the rows are normalised, rows of one block coincide and rows of two blocks are orthogonal.
    assert E.shape == (12, 3)
    assert np.allclose(E @ E.T, (truth[:, None] == truth[None, :]).astype(float), atol=1e-8)
    E5 = S.spectral_embedding(A, 5)
    assert E5.shape == (12, 5) and np.allclose(np.linalg.norm(E5, axis=1), 1.0)
    for dim in (3, 5):
        labels = S.spectral_embedding_labels(A, 3, dim, n_init=20, seed=0)
        assert len(set(zip(labels, truth))) == 3  # one cluster per block
    assert S.spectral_embedding(A, 50).shape == (12, 12)  # never more dimensions than samples


def test_spectral_embedding_refuses_what_it_cannot_embed():
    with pytest.raises(ValueError, match="no links"):
        S.spectral_embedding(sparse.csr_matrix((4, 4)), 2)
    with pytest.raises(ValueError, match="not symmetric"):
        S.spectral_embedding(sparse.csr_matrix(np.triu(np.ones((4, 4)), 1)), 2)
    with pytest.raises(ValueError, match="K = 5 clusters is more than the 4 samples"):
        S.spectral_embedding_labels(_blocks([2, 2])[0], 5, 2)


def test_the_arpack_path_agrees_with_the_dense_one(monkeypatch):
    rng = np.random.default_rng(0)
    W = rng.random((60, 60)) * (rng.random((60, 60)) < 0.2)  # a random weighted graph: distinct eigenvalues
    A = sparse.csr_matrix(W + W.T)
    dense = S.spectral_embedding(A, 4)
    monkeypatch.setattr(S, "DENSE_EIGEN_AT_MOST", 10)
    arpack = S.spectral_embedding(A, 4)
    # The same eigenvectors up to their signs and order, which the rows' Gram matrix does not see.
    assert np.allclose(dense @ dense.T, arpack @ arpack.T, atol=1e-6)


# --- the whole-set dictionary ------------------------------------------------------------------------------------

def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_whole_set_dictionary_in_blocks_equals_the_unblocked_computation():
    torch.manual_seed(0)
    model = S.SelfExpressiveNet(5, width=8, depth=2)
    with torch.no_grad():
        model.threshold.fill_(0.01)
    data = torch.nn.functional.normalize(torch.randn(11, 5), dim=1)
    batch = torch.tensor([7, 2, 3, 10])
    x = data[batch]
    results = {}
    for block in (100, 11, 4, 3, 1):  # one block; exactly the set; uneven last blocks; one atom at a time
        model.zero_grad(set_to_none=True)
        v = model.query(x)
        to_backward, l_se, l_rec, nonzero = S.whole_set_self_expression(model, x, v, batch, data, block, 200.0, 0.9)
        to_backward.backward()
        results[block] = (l_se, l_rec, nonzero, _grads(model))
    # The reference: L_SE with the whole dictionary at once and c_ii masked by hand.
    model.zero_grad(set_to_none=True)
    c = model.coefficients(model.query(x), model.key(data))
    c = c.masked_fill(torch.nn.functional.one_hot(batch, 11).bool(), 0.0)
    reference, rec = S.self_expression_loss(x, c, data, 200.0, 0.9)
    reference.backward()
    expected = _grads(model)
    for block, (l_se, l_rec, nonzero, grads) in results.items():
        assert l_se.item() == pytest.approx(reference.item(), rel=1e-5), block
        assert l_rec.item() == pytest.approx(rec.item(), rel=1e-5), block
        assert nonzero.item() == pytest.approx((c != 0).float().mean().item()), block
        for got, want in zip(grads, expected):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), block


# --- the bias classifiers ----------------------------------------------------------------------------------------

def test_shared_bias_classifier_is_the_public_codes_architecture():
    head = S.SharedBiasClassifier(1024, 3)
    assert [m.out_features for m in head.modules() if isinstance(m, nn.Linear)] == [512, 512, 3]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in head.modules()) == 1  # one BatchNorm, used twice
    assert head(torch.randn(6, 1024)).shape == (6, 3)


def _identity_head():
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    return head


def test_bias_losses_entropy_and_reversal_by_hand():
    # Identity heads: logits are the embeddings. Key u = (ln 3, 0): softmax (3/4, 1/4), label 0, CE ln(4/3).
    # Query v = (0, 0): (1/2, 1/2), label 1, CE ln 2.
    u = torch.tensor([[math.log(3.0), 0.0]], requires_grad=True)
    v = torch.tensor([[0.0, 0.0]], requires_grad=True)
    g_u, g_v = torch.tensor([0]), torch.tensor([1])
    ce_u, ce_v = math.log(4 / 3), math.log(2)
    neg_u, neg_v = 0.75 * math.log(0.75) + 0.25 * math.log(0.25), -math.log(2)

    shared = (_identity_head(),)
    loss, l_key, l_query, logits_k, logits_q = S.bias_losses(shared, u, v, g_u, g_v, reversal=0.1)
    assert loss.item() == pytest.approx((ce_u + ce_v) / 2)  # the mean over the stacked 2B rows
    assert (l_key.item(), l_query.item()) == pytest.approx((ce_u, ce_v))
    assert logits_k.shape == logits_q.shape == (1, 2)
    loss.backward()
    # ∂loss/∂u = (softmax − one-hot)/2 = (−1/8, 1/8); reversed and scaled by 0.1 on the way to u.
    assert u.grad[0].tolist() == pytest.approx([0.0125, -0.0125])
    assert v.grad[0].tolist() == pytest.approx([-0.025, 0.025])  # (1/2, −1/2)/2, reversed × 0.1
    assert shared[0].weight.grad is not None and shared[0].weight.grad.abs().sum() > 0  # the classifier learns plainly
    assert S.bias_entropy(shared, u, v).item() == pytest.approx((neg_u + neg_v) / 2)

    separate = (_identity_head(), _identity_head())
    u.grad = v.grad = None
    loss, l_key, l_query, *_ = S.bias_losses(separate, u, v, g_u, g_v, reversal=10.0)
    assert loss.item() == pytest.approx(ce_u + ce_v)  # g and g' summed (paper)
    loss.backward()
    assert u.grad[0].tolist() == pytest.approx([2.5, -2.5])  # (−1/4, 1/4) reversed × 10
    entropy = S.bias_entropy(separate, u, v)
    assert entropy.item() == pytest.approx(neg_u + neg_v)
    for head in separate:
        head.weight.grad = None
    u.grad = None
    entropy.backward()
    assert u.grad.abs().sum() > 0 and all(h.weight.grad is None for h in separate)  # classifiers held fixed

    # Monitors (SENet): no reversal, nothing reaches the embeddings.
    u.grad = v.grad = None
    S.bias_losses(separate, u, v, g_u, g_v, reversal=None)[0].backward()
    assert u.grad is None and v.grad is None


# --- learning-rate schedules -------------------------------------------------------------------------------------

def test_lr_schedules_match_pytorchs_cosine_annealing_stepped_per_epoch_or_per_step():
    epochs, steps_per_epoch = 4, 3
    for schedule, per_step in (("cosine", False), ("cosine_per_step", True)):
        optimiser = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs, eta_min=0.0)
        step = 0
        for epoch in range(epochs):
            for _ in range(steps_per_epoch):
                got = S.lr_factor(schedule, epoch, step, epochs)
                assert got == pytest.approx(optimiser.param_groups[0]["lr"], abs=1e-12), (schedule, epoch, step)
                optimiser.step()
                if per_step:
                    scheduler.step()
                step += 1
            if not per_step:
                scheduler.step()
    assert S.lr_factor("constant", 3, 99, 4) == 1.0
    # Per step with T_max = epochs: back at the full rate after 2·epochs steps (the public Inv-SENnet code's cycles).
    assert S.lr_factor("cosine_per_step", 0, 8, 4) == pytest.approx(1.0)


# --- the public-code variants, run --------------------------------------------------------------------------------

TINY = {"width": 16, "depth": 1, "pca_dim": 10, "epochs": 2, "batch_size": 40, "dict_block": 64, "top_k": 30,
        "eval_every": 0, "log_every": 1, "embed_dim": 4}


@pytest.mark.parametrize("method", ["senet", "inv_senet"])
def test_public_code_variant_runs_with_its_settings(registry, method):
    cls = get_method(method)
    hparams = {**cls.settings("public code", "quick"), **TINY}
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method=method, dataset_options={"n": 200}, seed=0,
                                      hparams=hparams))
    run = wait_for_run(registry, run_id)
    assert run.status == "finished", run.error
    assert run.hparams["dict_size"] == 0 and run.hparams["affinity"] == "knn"
    series = registry.store.scalars(run_id)
    factors = series[series["name"] == "lr_factor"]["value"]
    assert factors.min() < 1.0 and factors.max() == pytest.approx(1.0)
    if method == "inv_senet":
        assert set(series[series["name"] == "lambda_eff"]["value"].round(6)) == {0.1}  # no ramp
    assert 0 < run.metrics["acc"] <= 1
