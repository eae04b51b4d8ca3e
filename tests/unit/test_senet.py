"""SENet and Inv-SENnet: the coefficient map, the losses by hand, affinity and spectral clustering, gradient reversal,
bad settings, and short real runs through the job registry that leave the live signals in the store."""
import numpy as np
import pytest
import torch

from dashboard_lib import metrics
from dashboard_lib.data import BiasedDataset, DatasetInfo
from dashboard_lib.jobs import RunConfig
from dashboard_lib.methods import get_method
from dashboard_lib.methods import senet as S
from dashboard_lib.nn import grad_reverse
from tests.conftest import SHARED_DATA
from tests.conftest import wait_for_run

HAVE_NPZ = (SHARED_DATA / "mnist_usps.npz").exists()
TINY_NET = {"width": 32, "depth": 2, "pca_dim": 20, "epochs": 2, "batch_size": 50, "dict_size": 100, "top_k": 30,
            "eval_every": 1, "log_every": 1, "embed_dim": 8}
BIAS_SIGNALS = {"L_SE", "L_bias_key", "L_bias_query", "acc_bias_key", "acc_bias_query", "bias_chance"}


# --- the coefficient map -----------------------------------------------------------------------------------------

def test_soft_threshold_by_hand():
    t = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    # T_1(t) = sign(t)·max(0, |t| − 1): −3 → −2, −1 → 0, ±0.5 → 0, 0 → 0, 3 → 2
    assert S.soft_threshold(t, 1.0).tolist() == [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]
    # b learnable: the gradient reaches it (d T_b / d b = −sign(t) where |t| > b)
    b = torch.tensor(0.5, requires_grad=True)
    S.soft_threshold(torch.tensor([2.0, 3.0, -0.1]), b).sum().backward()
    assert b.grad.item() == -2.0  # −Σ sign(t) over |t| > 0.5: −(1 + 1)


def test_coefficients_are_alpha_times_thresholded_inner_products():
    torch.manual_seed(0)
    net = S.SelfExpressiveNet(5, width=8, depth=2)
    assert net.alpha == 1 / 8  # public code: 1 / out_dims
    with torch.no_grad():
        net.threshold.fill_(0.3)
        v, u = net.query(torch.randn(4, 5)), net.key(torch.randn(6, 5))
        assert (v.abs() <= 1).all() and (u.abs() <= 1).all()  # tanh outputs
        expected = torch.sign(v @ u.T) * torch.clamp((v @ u.T).abs() - 0.3, min=0) / 8
        assert torch.allclose(net.coefficients(v, u), expected)


def test_no_sample_expresses_itself():
    torch.manual_seed(0)
    v, u = torch.randn(7, 4), torch.randn(7, 4)
    C = S.sparse_coefficients(v, u, threshold=-1.0, alpha=1.0, top_k=6, chunk_elements=14)  # 2 rows per block
    assert np.all(C.diagonal() == 0)
    assert C.nnz == 7 * 6  # b < 0 keeps every off-diagonal coefficient


# --- the losses by hand ------------------------------------------------------------------------------------------

def test_self_expression_and_elastic_net_on_a_3x2_case():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    C = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5], [0.5, 0.5, 0.0]])
    # C X = [[.5, .5], [.5, .5], [.5, .5]]; residuals [.5, −.5], [−.5, .5], [.5, .5]: squared norms 0.5 each, sum 1.5.
    # Elastic net, λ_en = 0.9: Σ|c| = 4 × 0.5 = 2, Σc² = 4 × 0.25 = 1 → 0.9 × 2 + (0.1 / 2) × 1 = 1.85.
    assert S.elastic_net(C, 0.9).item() == pytest.approx(1.85)
    # γ = 2: L_SE = [(2/2) × 1.5 + 1.85] / 3 = 3.35 / 3; reconstruction part 1.5 / 3 = 0.5.
    loss, rec = S.self_expression_loss(X, C, X, gamma=2.0, lambda_en=0.9)
    assert rec.item() == pytest.approx(0.5) and loss.item() == pytest.approx(3.35 / 3)
    # Public defaults γ = 200: [100 × 1.5 + 1.85] / 3 = 151.85 / 3.
    assert S.self_expression_loss(X, C, X, 200.0, 0.9)[0].item() == pytest.approx(151.85 / 3)
    # λ_en = 0: pure ridge, Σc²/2 = 0.5 → [1.5 + 0.5] / 3.
    assert S.self_expression_loss(X, C, X, 2.0, 0.0)[0].item() == pytest.approx(2.0 / 3)


def test_negative_entropy_is_zero_when_sure_and_minus_ln2_when_uniform():
    assert S.negative_entropy(torch.tensor([[0.0, 0.0]])).item() == pytest.approx(-np.log(2))
    assert S.negative_entropy(torch.tensor([[50.0, -50.0]])).item() == pytest.approx(0.0, abs=1e-6)


# --- affinity and spectral clustering ----------------------------------------------------------------------------

def _two_subspaces(n_per=30, dim=10, seed=0):
    rng = np.random.default_rng(seed)
    bases = [np.linalg.qr(rng.normal(size=(dim, 2)))[0] for _ in range(2)]
    X = np.concatenate([(b @ rng.normal(size=(2, n_per))).T for b in bases])
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.repeat([0, 1], n_per)


def test_affinity_is_symmetric_nonnegative_and_keeps_top_k():
    torch.manual_seed(1)
    v, u = torch.randn(12, 3), torch.randn(12, 3)
    C = S.sparse_coefficients(v, u, threshold=0.0, alpha=1.0, top_k=3)
    assert all(C.getrow(i).nnz <= 3 for i in range(12))
    dense = (torch.sign(v @ u.T) * (v @ u.T).abs()).numpy()
    np.fill_diagonal(dense, 0)
    for i in range(12):  # the kept entries are the row's three largest magnitudes
        assert set(C.getrow(i).indices) == set(np.argsort(-np.abs(dense[i]))[:3])
    A = S.build_affinity(C)
    assert (A != A.T).nnz == 0 and A.min() >= 0 and np.all(A.diagonal() == 0)
    K = S.build_affinity(C, "knn", n_neighbors=2)
    assert (K != K.T).nnz == 0


def test_same_group_share_by_hand():
    from scipy import sparse
    # 4 samples, groups 0 0 1 1; |c| mass: same-group links 0.5 + 1 + 0.5 = 2, cross-group -1 + 2 = 3 (signs ignored)
    C = sparse.csr_matrix(np.array([[0, 0.5, -1, 0], [1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0.5, 0]]))
    assert S.same_group_share(C, np.array([0, 0, 1, 1])) == pytest.approx(2 / 5)
    assert np.isnan(S.same_group_share(sparse.csr_matrix((4, 4)), np.array([0, 0, 1, 1])))
    # group-blind links: p = (3/4, 1/4) → 9/16 + 1/16
    assert S.group_blind_share(np.array([0, 0, 0, 1])) == pytest.approx(10 / 16)


def test_spectral_clustering_separates_two_obvious_subspaces():
    X, y = _two_subspaces()
    # Ridge self-expression C = (XXᵀ + 0.01 I)⁻¹ XXᵀ, diagonal removed: block-diagonal up to noise.
    G = X @ X.T
    C = np.linalg.solve(G + 0.01 * np.eye(len(X)), G)
    np.fill_diagonal(C, 0)
    from scipy import sparse
    A = S.build_affinity(sparse.csr_matrix(C))
    labels = S.spectral_labels(A, 2, seed=0)
    assert metrics.clustering_accuracy(y, labels) == 1.0
    assert metrics.clustering_accuracy(y, S.spectral_labels(A, 2, "cluster_qr", seed=0)) == 1.0


def test_spectral_failures_are_clear_value_errors(monkeypatch):
    from scipy import sparse
    from scipy.sparse.linalg import ArpackNoConvergence
    with pytest.raises(ValueError, match="spectral clustering failed on the 4-sample affinity .*no links"):
        S.spectral_labels(sparse.csr_matrix((4, 4)), 2)
    with pytest.raises(ValueError, match="NaN"):
        S.spectral_labels(sparse.csr_matrix(np.array([[0, np.nan], [np.nan, 0]])), 2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        S.sparse_coefficients(torch.full((3, 2), float("nan")), torch.ones(3, 2), 0.0, 1.0, 2)

    def no_convergence(self, A, y=None):
        raise ArpackNoConvergence("ARPACK error -1: No convergence", np.zeros(0), np.zeros((0, 0)))
    monkeypatch.setattr("sklearn.cluster.SpectralClustering.fit_predict", no_convergence)
    X, _ = _two_subspaces()
    A = S.build_affinity(sparse.csr_matrix(np.abs(X @ X.T)))
    with pytest.raises(ValueError, match="spectral clustering failed .*ArpackNoConvergence.*Try a larger top_k"):
        S.spectral_labels(A, 2)


# --- gradient reversal and the bias classifiers ------------------------------------------------------------------

def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)  # identity forward
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-0.5, -1.0, -1.5]


def test_bias_classifier_gradients_reach_the_embedding_reversed_and_the_classifier_straight():
    torch.manual_seed(0)
    head = S.bias_classifier(8, 2)
    assert [m.out_features for m in head if isinstance(m, torch.nn.Linear)] == [512, 256, 2]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in head)
    u = torch.randn(16, 8, requires_grad=True)
    g = torch.randint(0, 2, (16,))
    torch.nn.functional.cross_entropy(head(u), g).backward()
    plain, head_grad = u.grad.clone(), head[0].weight.grad.clone()
    u.grad = None
    head.zero_grad()
    torch.nn.functional.cross_entropy(head(grad_reverse(u, 3.0)), g).backward()
    assert torch.allclose(u.grad, -3.0 * plain, atol=1e-6)
    assert torch.allclose(head[0].weight.grad, head_grad, atol=1e-6)
    # The entropy term moves the embedding only, never the classifier.
    head.zero_grad()
    u.grad = None
    S.negative_entropy(S.frozen_forward(head, u)).backward()
    assert u.grad.abs().sum() > 0 and all(p.grad is None or p.grad.abs().sum() == 0 for p in head.parameters())


# --- features ----------------------------------------------------------------------------------------------------

def test_scattering_has_217_maps_of_4x4_and_zero_channels_stay_zero():
    scat = S.Scattering2D(28, 28)
    assert scat.n_maps == 217 and scat.n_features == 3472  # SENet's MNIST scattering size
    X = torch.zeros(2, 3, 28, 28)
    X[0, 0, 10:18, 12:16] = 1.0  # a red bar
    X[1, 1, 10:18, 12:16] = 1.0  # the same bar in green
    f = S.scattering_features(X)
    assert f.shape == (2, 3 * 3472)
    assert torch.all(f[0, 3472:] == 0) and torch.all(f[1, :3472] == 0)
    assert torch.allclose(f[0, :3472], f[1, 3472:6944])  # per channel: same shape, other block
    assert torch.all(f >= 0)


def test_row_std_is_the_unbiased_std_of_the_chosen_rows_in_any_chunking():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]])
    expected = torch.tensor([8 ** 0.5, 2 ** 0.5])  # rows 0 and 2: [1, 5] and [2, 0]
    for chunk in (1, 2, 4096):
        assert torch.allclose(S.row_std(x, torch.tensor([0, 2]), chunk=chunk), expected)


def test_features_are_fitted_on_the_training_rows_only_and_have_unit_norm():
    torch.manual_seed(0)
    X = torch.rand(40, 1, 8, 8)
    train = np.arange(20)
    a = S.extract_features("pca", X, train, 5, seed=0)
    X2 = X.clone()
    X2[20:] = torch.rand(20, 1, 8, 8)  # other test rows: the training rows' features do not move
    b = S.extract_features("pca", X2, train, 5, seed=0)
    assert torch.allclose(a[:20], b[:20], atol=1e-5)
    assert torch.allclose(a.norm(dim=1), torch.ones(40), atol=1e-5)


# --- bad settings ------------------------------------------------------------------------------------------------

def _dataset(n_groups=2, splits=None, image=True, n=60):
    rng = np.random.default_rng(0)
    X = torch.rand(n, 1, 8, 8) if image else torch.rand(n, 5)
    return BiasedDataset(id="toy", X=X, y=rng.integers(0, 2, n), g=np.arange(n) % n_groups,
                         group_names=[f"g{i}" for i in range(n_groups)], class_names=["a", "b"], n_clusters=2,
                         info=DatasetInfo("toy", "test"), splits=splits or {})


def test_bad_settings_give_clear_messages():
    with pytest.raises(ValueError, match=r"λ \(lambda_adv\) = -1 is outside its range"):
        get_method("inv_senet")(lambda_adv=-1)
    with pytest.raises(ValueError, match=r"γ \(gamma\) = 0 is outside its range \(0"):
        get_method("senet")(gamma=0)
    with pytest.raises(ValueError, match="unknown hyperparameter 'lambda_adv' for method senet"):
        get_method("senet")(lambda_adv=1)
    with pytest.raises(ValueError, match="needs at least two groups"):
        get_method("inv_senet")().check_data(_dataset(n_groups=1))
    get_method("senet")(batch_size=10).check_data(_dataset(n_groups=1))  # SENet itself needs no groups
    with pytest.raises(ValueError, match="protocol ood needs the dataset's 'train' .* and 'test' .* splits"):
        get_method("senet")(protocol="ood").check_data(_dataset())
    with pytest.raises(ValueError, match="scattering features need images"):
        get_method("senet")(batch_size=10, features="scattering").check_data(_dataset(image=False))
    vectors = get_method("senet")(batch_size=10)  # auto: PCA for vectors, scattering for images
    vectors.check_data(_dataset(image=False))
    assert vectors.features(_dataset(image=False)) == "pca" and vectors.features(_dataset()) == "scattering"
    with pytest.raises(ValueError, match="batch size 100 is larger than the 30 training samples"):
        get_method("senet")().check_data(_dataset(splits={"train": np.arange(30), "test": np.arange(30, 60)}))
    one_colour_train = _dataset(splits={"train": np.arange(0, 60, 2), "test": np.arange(1, 60, 2)})  # train: group 0 only
    with pytest.raises(ValueError, match="two groups among its training samples"):
        get_method("inv_senet")(batch_size=10).check_data(one_colour_train)


def test_protocols_pick_the_rows():
    data = _dataset(splits={"train": np.arange(40), "test": np.arange(40, 60)})
    protocol, train, cluster, split = S.protocol_rows(data, "auto")
    assert protocol == "ood" and len(train) == 40 and cluster.tolist() == list(range(40, 60)) and split == "test"
    protocol, train, cluster, split = S.protocol_rows(data, "mixed")
    assert len(train) == len(cluster) == 60 and split is None
    assert S.protocol_rows(_dataset(), "auto")[0] == "all"


# --- real runs through the job registry --------------------------------------------------------------------------



def test_senet_run_on_data_without_splits_logs_every_signal(registry):
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="senet", dataset_options={"n": 300}, seed=0,
                                      hparams=TINY_NET))
    run = wait_for_run(registry, run_id)
    assert run.status == "finished", run.error
    names = set(registry.store.scalars(run_id)["name"])
    assert BIAS_SIGNALS | {"L_rec", "threshold", "nonzero"} <= names
    chance = registry.store.scalars(run_id, ["bias_chance"])["value"]
    assert 0.5 <= chance.iloc[0] < 1
    evaluations = registry.store.evaluations(run_id)
    assert [e["epoch"] for e in evaluations] == [1, 2]
    final = evaluations[-1]["metrics"]
    assert {"acc", "nmi_geometric", "ari", "balance", "probe_acc", "same_group_share", "same_group_chance"} <= set(final)
    assert 0 <= final["same_group_share"] <= 1 and 0.5 <= final["same_group_chance"] < 1  # two groups
    arrays = registry.store.load_arrays(run_id, 2)
    assert arrays["assignment"].shape == (run.dataset_info["n"],) and arrays["embedding"].shape[1] == 8
    assert 0 < run.metrics["acc"] <= 1


@pytest.mark.skipif(not HAVE_NPZ, reason=f"mnist_usps.npz not in {SHARED_DATA}")
def test_inv_senet_out_of_distribution_run_trains_on_train_and_clusters_test(registry):
    run_id = registry.start(RunConfig(dataset="colored_mnist", method="inv_senet", dataset_options={"n": 500}, seed=0,
                                      hparams={**TINY_NET, "protocol": "ood"}, data_dir=str(SHARED_DATA)))
    run = wait_for_run(registry, run_id)
    series = registry.store.scalars(run_id)
    assert BIAS_SIGNALS <= set(series["name"])
    steps = series[series["name"] == "acc_bias_key"]["step"]
    assert len(steps) >= 4 and steps.is_monotonic_increasing
    evaluations = registry.store.evaluations(run_id)
    assert [e["epoch"] for e in evaluations] == [1, 2]
    n_test = len(registry.store.load_arrays(run_id, 2)["assignment"])
    assert 50 < n_test < 150  # the unbiased split of ~500 (1/6), not the training rows
    assert run.status == "finished", run.error
    assert run.metrics["acc"] == evaluations[-1]["metrics"]["acc"]  # the final metrics are the test split's


def test_nan_features_fail_the_run_with_the_divergence_message(registry, monkeypatch):
    def nan_features(*args, **kwargs):
        n = len(args[1])
        return torch.full((n, 4), float("nan"))
    monkeypatch.setattr(S, "extract_features", nan_features)
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="senet", dataset_options={"n": 200},
                                      hparams=TINY_NET))
    run = wait_for_run(registry, run_id)
    assert run.status == "failed" and "training diverged" in run.error


def test_spectral_failure_fails_the_run_with_its_reason(registry, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError(S.ERR_SPECTRAL.format(n=1, links=0, reason="test"))
    monkeypatch.setattr(S, "spectral_labels", fail)
    run_id = registry.start(RunConfig(dataset="mnist_optdigits", method="senet", dataset_options={"n": 200},
                                      hparams={**TINY_NET, "epochs": 1}))
    run = wait_for_run(registry, run_id)
    assert run.status == "failed" and "spectral clustering failed" in run.error
    assert not registry.store.scalars(run_id, ["L_SE"]).empty  # what was logged before is kept
