"""DEC: the target and loss against hand-computed cases, the Student-t kernel, a short real run, bad settings."""
import math

import numpy as np
import pytest
import torch

from dashboard_lib.data import BiasedDataset, DatasetInfo
from dashboard_lib.jobs import JobRegistry, RunConfig
from dashboard_lib.methods.dec import DEC, dec_clustering_loss, dec_soft_assignment, dec_target
from dashboard_lib.store import RunStore

TINY = {"n": 600}  # the same options in every method's tests: the dataset is built once per process (cached)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one thread, and spinning OpenMP threads slow a shared 2-core machine; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fraction_in_range(fraction, stage=""):
    assert -1e-9 <= fraction <= 1 + 1e-9, fraction


# The estimator keywords the methods' tests fit with: on the CPU, seeded, every progress fraction checked.
FIT = {"random_state": 0, "device": "cpu", "progress": fraction_in_range}


def evaluated(method) -> list[int]:
    """The epochs (or iterations) a fitted estimator evaluated at."""
    return [e["epoch"] for e in method.history_["evaluations"]]


def synthetic(shape=(3, 28, 28), n=80, n_groups=2, seed=0) -> BiasedDataset:
    """Random data of any shape (3-channel images, vectors) with balanced classes and groups."""
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(rng.random((n, *shape), dtype=np.float32))
    return BiasedDataset(id="synthetic", X=X, y=np.arange(n) % 4, g=(np.arange(n) // 4) % n_groups,
                         group_names=[f"g{i}" for i in range(n_groups)], class_names=list("abcd"), n_clusters=4,
                         info=DatasetInfo(name="synthetic", source="test"))


def run_job(tmp_path, method, hparams, dataset_options=TINY):
    """Start a run through the job registry on the built-in digits, wait for it; (store, record)."""
    store = RunStore(tmp_path / "store")
    jobs = JobRegistry(store)
    run_id = jobs.start(RunConfig(dataset="mnist_optdigits", method=method, dataset_options=dataset_options,
                                  hparams=hparams, device="cpu"))
    assert jobs.wait(run_id, timeout=120)
    return store, store.get_run(run_id)


def test_student_t_rows_sum_to_one_and_hand_case():
    # z = (0, 0); centres (1, 0) and (0, 2): ‖z − μ‖² = 1 and 4; α = 1 → kernels 1/2 and 1/5;
    # q = (0.5, 0.2) / 0.7 = (0.714286, 0.285714).
    q = dec_soft_assignment(torch.zeros(1, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), alpha=1.0)
    assert q[0].tolist() == pytest.approx([0.5 / 0.7, 0.2 / 0.7], abs=1e-6)
    # α = 3: kernels (1 + d²/3)^(−2) = (4/3)^(−2) = 0.5625 and (7/3)^(−2) = 0.183673 → q = 0.753846, 0.246154.
    q3 = dec_soft_assignment(torch.zeros(1, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), alpha=3.0)
    assert q3[0].tolist() == pytest.approx([0.5625 / 0.746173, 0.183673 / 0.746173], abs=1e-5)
    q_rand = dec_soft_assignment(torch.randn(50, 5), torch.randn(7, 5))
    assert torch.allclose(q_rand.sum(1), torch.ones(50), atol=1e-6)


def test_dec_target_formula():
    # q = [[0.6, 0.4], [0.2, 0.8]]: f = (0.8, 1.2).
    # row 0: (0.36/0.8, 0.16/1.2) = (0.45, 0.133333) → / 0.583333 = (0.771429, 0.228571)
    # row 1: (0.04/0.8, 0.64/1.2) = (0.05, 0.533333) → / 0.583333 = (0.085714, 0.914286)
    p = dec_target(torch.tensor([[0.6, 0.4], [0.2, 0.8]]))
    assert p.tolist() == [pytest.approx([0.771429, 0.228571], abs=1e-6), pytest.approx([0.085714, 0.914286], abs=1e-6)]
    p_rand = dec_target(torch.softmax(torch.randn(30, 6), 1))
    assert torch.allclose(p_rand.sum(1), torch.ones(30), atol=1e-6)


def test_dec_clustering_loss_hand_case():
    # p = [[1, 0], [0.5, 0.5]], q = uniform: row 0: 1·ln(1/0.5) = ln 2; row 1: 0 → batch mean ln 2 / 2 = 0.346574.
    loss = dec_clustering_loss(torch.full((2, 2), 0.5), torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    assert float(loss) == pytest.approx(math.log(2) / 2, abs=1e-6)
    assert float(dec_clustering_loss(torch.tensor([[0.3, 0.7]]), torch.tensor([[0.3, 0.7]]))) == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize("shape", [(3, 28, 28), (20,)])
def test_dec_fits_colour_images_and_vectors(shape):
    data = synthetic(shape)
    method = DEC(pretrain_epochs=1, iterations=4, update_interval=2, eval_every=2, batch_size=16, n_init=2, latent_dim=3,
                 tol=0, **FIT)
    method.check_data(data)
    method.fit(data)
    assert method.labels_.shape == (80,) and method.embedding_.shape == (80, 3)
    assert evaluated(method) == [0, 2, 4]
    assert {"L_rec", "L_clu", "L_total"} <= set(method.history_["scalars"])


def test_dec_run_through_jobs(tmp_path):
    store, run = run_job(tmp_path, "dec", {"pretrain_epochs": 1, "iterations": 12, "update_interval": 5, "eval_every": 6,
                                           "batch_size": 64, "n_init": 2, "tol": 0})
    assert run.status == "finished", run.error
    assert {"acc", "nmi", "balance", "mnce", "probe_acc"} <= set(run.metrics)
    names = set(store.scalars(run.id)["name"])
    assert {"L_rec", "L_clu", "L_total"} <= names
    assert [e["epoch"] for e in store.evaluations(run.id)] == [0, 6, 12]


def test_dec_stops_when_assignments_settle():
    # With a learning rate of ~0 nothing moves between target updates: 0 changed < tol → stop at the first update.
    method = DEC(pretrain_epochs=0, iterations=50, update_interval=5, eval_every=0, batch_size=16, n_init=1, lr=1e-12,
                 momentum=0, tol=0.01, **FIT)
    method.fit(synthetic((20,)))
    assert evaluated(method) == [0, 5]
    assert method.history_["scalars"]["changed"]["value"] == [0.0]


def test_dec_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        DEC(alpha=0)
    with pytest.raises(ValueError, match="batch_size"):
        DEC(batch_size=1)
    with pytest.raises(ValueError, match="larger than the 80 samples"):
        DEC(batch_size=100).check_data(synthetic())
    with pytest.raises(ValueError, match="K = 90 clusters is more than the 80 samples"):
        DEC(n_clusters=90).check_data(synthetic())
    with pytest.raises(ValueError, match="conv' needs images"):
        DEC(encoder="conv", batch_size=16).check_data(synthetic((20,)))
    _, run = run_job(tmp_path, "dec", {"batch_size": 5000})
    assert run.status == "failed" and "batch size 5000 is larger than the 599 samples" in run.error


def test_mixed_precision_context():
    from dashboard_lib.nn import mixed_precision

    layer = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)
    with mixed_precision(torch.device("cpu"), "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with mixed_precision(torch.device("cpu"), "fp32"):
        assert layer(x).dtype == torch.float32


@pytest.mark.parametrize("method", ["ae_kmeans", "dec"])
def test_bf16_runs_train_close_to_fp32(registry, method):
    short = ({"epochs": 2, "eval_every": 0, "n_init": 2} if method == "ae_kmeans" else
             {"encoder": "mlp", "pretrain_epochs": 2, "iterations": 20, "eval_every": 0, "n_init": 2, "tol": 0.0})
    losses = {}
    for precision in ("fp32", "bf16"):
        run_id = registry.start(RunConfig(dataset="mnist_optdigits", method=method, dataset_options={"n": 300},
                                          hparams={**short, "precision": precision}, seed=3))
        assert registry.wait(run_id, 120)
        run = registry.store.get_run(run_id)
        assert run.status == "finished", run.error
        losses[precision] = registry.store.scalars(run_id, ["L_rec"])["value"].to_numpy()
    # The same seed and data: the first reconstruction loss agrees to bf16's precision, and is not bit-identical.
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=2e-2)
    assert losses["bf16"][0] != losses["fp32"][0]
