"""Layouts for the Embeddings view: subsampling, counts, alignment, the on-disk cache, the background worker, Pareto fronts."""
import numpy as np
import pytest

from dashboard_lib import projection as P
from dashboard_lib.plots import pareto_front
from dashboard_lib.store import RunStore
from dashboard_lib.data.base import display_image


# --- pure helpers ----------------------------------------------------------------------------------------------
def test_subsample_keeps_everything_under_the_limit():
    assert np.array_equal(P.subsample_index(np.zeros(50), limit=100), np.arange(50))
    assert P.subsample_note(50, 50) is None


def test_subsample_is_stratified_reproducible_and_sorted():
    strata = np.repeat([0, 1, 2], [7000, 2900, 100])
    index = P.subsample_index(strata, limit=1000, seed=3)
    assert len(index) == 1000 and len(np.unique(index)) == 1000
    assert np.all(np.diff(index) > 0)
    assert np.bincount(strata[index]).tolist() == [700, 290, 10]  # each stratum keeps its share
    assert np.array_equal(index, P.subsample_index(strata, limit=1000, seed=3))
    assert not np.array_equal(index, P.subsample_index(strata, limit=1000, seed=4))


def test_subsample_keeps_a_rare_stratum_and_hits_the_limit_exactly():
    strata = np.concatenate([np.zeros(9990, int), np.arange(1, 11)])  # ten strata of one sample each
    index = P.subsample_index(strata, limit=100)
    assert len(index) == 100
    assert set(range(1, 11)) <= set(strata[index].tolist())


def test_subsample_note_says_how_many_are_drawn():
    note = P.subsample_note(25_000, 10_000)
    assert "10,000 of 25,000" in note and "heatmap" in note


def test_cluster_group_counts_by_hand():
    clusters, table = P.cluster_group_counts([5, 5, 2, 2, 2, 9], [0, 1, 1, 1, 0, 1], n_groups=3)
    assert clusters.tolist() == [2, 5, 9]
    assert table.tolist() == [[1, 2, 0], [1, 1, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="different lengths"):
        P.cluster_group_counts([0, 1], [0])


def test_procrustes_recovers_a_rotated_scaled_shifted_copy():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 2))
    angle = 1.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moving = (reference @ rotation) * 3.5 + [10, -4]
    moving[:, 0] *= -1  # and a reflection
    assert np.allclose(P.procrustes_align(moving, reference), reference, atol=1e-4)


def test_pca_matches_a_reference_up_to_sign_and_handles_one_feature():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)) * [5, 2, 1, 1, 1, 1]
    coords = P.pca_2d(x)
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    assert np.allclose(np.abs(coords), np.abs(expected), atol=1e-3)
    assert np.array_equal(coords, P.pca_2d(x))
    one = P.pca_2d(np.arange(10.0)[:, None])
    assert one.shape == (10, 2) and np.all(one[:, 1] == 0)


def test_reduce_for_umap_keeps_narrow_features_and_reduces_wide_ones():
    rng = np.random.default_rng(2)
    assert P.reduce_for_umap(rng.normal(size=(100, 10))).shape == (100, 10)
    assert P.reduce_for_umap(rng.normal(size=(100, 300)), 20).shape == (100, 20)


def test_display_image_shapes():
    assert display_image(np.ones((1, 4, 4))).shape == (4, 4)
    rgb = display_image(np.full((3, 4, 5), 0.5))
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8 and rgb[0, 0, 0] == 128


def test_pareto_front_by_hand():
    points = [[0.5, 0.1], [0.4, 0.3], [0.3, 0.2], [0.6, 0.0], [0.2, 0.3]]
    # (0.3, 0.2) is beaten by (0.4, 0.3); (0.2, 0.3) by (0.4, 0.3) too (same y, higher x)
    assert pareto_front(points).tolist() == [1, 0, 3]
    # minimising y instead: low y is good, so (0.6, 0.0) beats everything with x ≤ 0.6
    assert pareto_front(points, maximise=(True, False)).tolist() == [3]
    assert pareto_front([[np.nan, 1.0], [0.1, 0.1]]).tolist() == [1]
    assert pareto_front([[0.5, 0.5], [0.5, 0.5]]).tolist() == [0, 1]  # ties: neither dominates
    assert pareto_front(np.empty((0, 2))).tolist() == []


# --- a store with hand-made runs -------------------------------------------------------------------------------
def _clusters(n, seed, centres):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), n)
    return (centres[labels] + rng.normal(scale=0.6, size=(n, centres.shape[1]))).astype(np.float32), labels


def _fake_run(store, embeddings: dict[int, np.ndarray], labels, g):
    run_id = store.create_run(dataset="mnist_optdigits", method="ae_kmeans", config={"dataset_options": {}}, seed=0,
                              device="cpu", environment={})
    store.set_dataset_info(run_id, {"n": len(labels), "n_groups": 2, "group_names": ["a", "b"]})
    for epoch, embedding in embeddings.items():
        store.add_evaluation(run_id, epoch, {"acc": 0.5}, {"assignment": labels, "g": g, "y": labels, "embedding": embedding})
    return run_id


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "store")


def test_pca_layout_is_cached_and_aligned_to_the_first_epoch(store, monkeypatch):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5, size=(4, 8))
    x, labels = _clusters(300, 0, centres)
    g = (np.arange(300) % 2).astype(np.int64)
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    run_id = _fake_run(store, {1: x, 2: x @ rotation}, labels, g)  # epoch 2: the same geometry, rotated
    projector = P.Projector(store)
    first, second = projector.pca(run_id, 1), projector.pca(run_id, 2)
    assert second.aligned_to == 1 and first.aligned_to is None
    assert np.allclose(second.coords, first.coords, atol=1e-2 * np.abs(first.coords).max())
    assert projector.cache_path(run_id, "pca", 2).exists()

    monkeypatch.setattr(P, "pca_2d", lambda *_: pytest.fail("recomputed a cached layout"))
    again = P.Projector(store).pca(run_id, 2)  # a new projector (a new server process) reads the file
    assert np.array_equal(again.coords, second.coords) and again.aligned_to == 1


def test_subsampled_layout_uses_the_same_points_at_every_epoch(store):
    rng = np.random.default_rng(1)
    x, labels = _clusters(500, 1, rng.normal(scale=5, size=(3, 4)))
    g = (np.arange(500) % 2).astype(np.int64)
    run_id = _fake_run(store, {0: x, 5: x + 0.1}, labels, g)
    projector = P.Projector(store, limit=120)
    a, b = projector.pca(run_id, 0), projector.pca(run_id, 5)
    assert len(a.index) == 120 and np.array_equal(a.index, b.index)
    assert "120 of 500" in a.note


def test_missing_epoch_says_which_epochs_to_pick(store):
    rng = np.random.default_rng(2)
    x, labels = _clusters(50, 2, rng.normal(size=(2, 3)))
    run_id = _fake_run(store, {0: x}, labels, np.zeros(50, np.int64))
    with pytest.raises(ValueError, match="saved no arrays at epoch 7"):
        P.Projector(store).pca(run_id, 7)


# --- UMAP (numba compiles once per test process: the warm-up fixture) --------------------------------------------
@pytest.fixture(scope="module")
def warm_umap():
    P.warm_up_umap(background=False)
    assert P.umap_is_warm()


def _spread(coords):
    return float(np.sqrt(((coords - coords.mean(0)) ** 2).sum(1).mean()))


def test_umap_epochs_are_aligned_so_points_stay_close(store, warm_umap, monkeypatch):
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=6, size=(5, 10))
    x, labels = _clusters(400, 3, centres)
    drift = x + rng.normal(scale=0.15, size=x.shape).astype(np.float32)  # the next epoch: a little training later
    g = (np.arange(400) % 2).astype(np.int64)
    run_id = _fake_run(store, {1: x, 2: drift}, labels, g)
    projector = P.Projector(store)
    first = projector.compute_umap(run_id, 1)
    second = projector.compute_umap(run_id, 2)
    assert first.aligned_to is None and second.aligned_to == 1
    aligned_move = np.sqrt(((second.coords - first.coords) ** 2).sum(1)).mean() / _spread(first.coords)

    independent = P.procrustes_align(P.umap_2d(drift, seed=7), first.coords)  # no alignment but a global pose fit
    free_move = np.sqrt(((independent - first.coords) ** 2).sum(1)).mean() / _spread(first.coords)
    # Bounds from bench/bench_umap_alignment.py, 10 seeds × 2 OpenBLAS kernels (a UMAP's draw changes with the
    # processor): aligned moves of at most 0.267 (mean 0.16), at most 0.42 of the free move (mean 0.22).
    assert aligned_move < 0.3, aligned_move
    assert aligned_move < 0.5 * free_move, (aligned_move, free_move)

    monkeypatch.setattr(P, "umap_2d", lambda *a, **k: pytest.fail("recomputed a cached UMAP"))
    assert np.array_equal(P.Projector(store).compute_umap(run_id, 2).coords, second.coords)


def test_background_umap_then_the_other_epochs(store, warm_umap):
    rng = np.random.default_rng(4)
    x, labels = _clusters(200, 4, rng.normal(scale=6, size=(3, 6)))
    g = (np.arange(200) % 2).astype(np.int64)
    run_id = _fake_run(store, {0: x, 1: x + 0.05, 2: x + 0.1}, labels, g)
    projector = P.Projector(store)
    assert projector.umap_status(run_id, 2) == "not requested"
    assert projector.request_umap(run_id, 2) is None  # not cached: queued, computed in the background
    assert projector.umap_status(run_id, 2) in {"queued", "computing", "ready"}
    assert projector.wait_idle(120)
    layout = projector.request_umap(run_id, 2)
    assert layout is not None and layout.method == "umap" and layout.coords.shape == (200, 2)
    assert all(projector.umap_status(run_id, e) == "ready" for e in (0, 1))  # prefetched, nearest first
    assert projector.cached(run_id, "umap", 1).aligned_to == 2


def test_background_failure_is_reported_not_raised(store, warm_umap):
    x = np.zeros((5, 3), np.float32)  # too few points for a neighbour graph
    run_id = _fake_run(store, {0: x}, np.zeros(5, np.int64), np.array([0, 1, 0, 1, 0]))
    projector = P.Projector(store)
    projector.request_umap(run_id, 0)
    assert projector.wait_idle(60)
    assert projector.umap_status(run_id, 0).startswith("failed: UMAP needs at least")
    assert projector.pca(run_id, 0).coords.shape == (5, 2)  # the PCA view still works
