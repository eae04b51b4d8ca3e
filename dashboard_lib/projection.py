"""2-D layouts of a run's embeddings for the Embeddings and Compare views: PCA at once, UMAP in the background.

- Subsampling: beyond SUBSAMPLE_LIMIT points a stratified (group × class), reproducible sample is drawn; the same
  sample at every epoch of a run, so a point is the same sample from one epoch to the next.
- Cache: every layout is saved under the run's folder (store.run_dir(run_id) / "projections"), one file per
  method, epoch and settings; deleting the run deletes them.
- Alignment across epochs, so points do not jump when the epoch slider moves: PCA layouts are rotated onto the
  first saved epoch's (orthogonal Procrustes); each epoch's UMAP starts from the nearest epoch's UMAP already
  computed (else from its own aligned PCA layout, Kobak & Linderman 2021), at a tenth of UMAP's learning rate so the
  start is refined rather than reshuffled, and is then Procrustes-aligned to it.
- Background: UMAP runs in one worker thread (Projector.request_umap); a warm-up (warm_up_umap) compiles
  umap-learn's numba code on a tiny array at start-up so the first real call does not wait for the compiler.

Timings and the alignment's measurements: docs/METRICS_NOTES.md.

Knows nothing of Streamlit.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import agreement_from_profiles, cluster_profiles, count_table, label_codes

# Where colorama is installed, numba colours its compiler messages by swapping sys.stdout and sys.stderr process-wide
# while it compiles (colorama init/deinit), so the UMAP worker thread would redirect every other thread's output
# (a CLI message, a test's captured stderr) for a moment. Set before umap (numba) is first imported.
os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")

SUBSAMPLE_LIMIT = 10_000  # points drawn beyond this; a browser draws 10k WebGL points smoothly and UMAP takes seconds
UMAP_NEIGHBOURS = 15
UMAP_EPOCHS = 200  # umap-learn's own default for > 10k points
UMAP_ALIGNED_EPOCHS = 120  # an epoch started from its neighbour's layout only needs to settle
# ... and at UMAP's default rate 1.0 it reshuffles the points inside each cluster; a tenth of it refines the start
# (docs/METRICS_NOTES.md, bench/bench_umap_alignment.py)
UMAP_ALIGNED_LEARNING_RATE = 0.1
UMAP_MIN_POINTS = 20  # below this a neighbour graph means little: PCA only
PCA_BEFORE_UMAP = 50  # wider features (raw pixels) are reduced to 50 principal components before UMAP
CACHE_VERSION = 2  # 2: aligned UMAP epochs at UMAP_ALIGNED_LEARNING_RATE
ERR_NO_ARRAYS = "run {run_id} saved no arrays at epoch {epoch}: pick an epoch from its saved ones"
ERR_NO_FEATURES = ("run {run_id} saved no embedding at epoch {epoch} and its {n} points do not match its dataset "
                   "({dataset}, {n_data} samples): the layout cannot be drawn")
ERR_TOO_FEW_UMAP = "UMAP needs at least {min} points, this epoch has {n}: the PCA layout is shown"

_UMAP_LOCK = threading.Lock()  # numba's default threading layer must not run parallel code from two threads at once
_warm = threading.Event()
_warm_thread: threading.Thread | None = None
_warm_guard = threading.Lock()


# --- pure helpers ----------------------------------------------------------------------------------------------
def subsample_index(strata: np.ndarray, limit: int = SUBSAMPLE_LIMIT, seed: int = 0) -> np.ndarray:
    """Sorted positions of a stratified random sample of at most `limit` points (all points when there are fewer).

    Each stratum keeps its share (largest-remainder rounding, at least one point per stratum when limit allows);
    the same strata, limit and seed always give the same sample.
    """
    strata = np.asarray(strata)
    n = len(strata)
    if n <= limit:
        return np.arange(n)
    codes = np.unique(strata, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    quota = counts * (limit / n)
    take = np.floor(quota).astype(np.int64)
    if limit >= len(counts):
        take = np.maximum(take, 1)
    short = limit - take.sum()
    if short > 0:  # largest remainders first, ties by stratum order
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        take[order[:short]] += 1
    for _ in range(-short):  # the at-least-one rule overshot: trim the largest strata, one point at a time
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    chosen = []
    permuted_codes = codes[perm]
    for s in range(len(counts)):
        chosen.append(perm[permuted_codes == s][: take[s]])
    return np.sort(np.concatenate(chosen))


def subsample_note(n_total: int, n_shown: int) -> str | None:
    """The sentence the page shows when not every point is drawn (None when all are)."""
    if n_shown >= n_total:
        return None
    return (f"Showing a stratified random sample of {n_shown:,} of {n_total:,} points (each group × class keeps its share; "
            f"the same points at every epoch). The counts in the heatmap use all {n_total:,}.")


def cluster_group_counts(assignment, groups, n_groups: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Counts per (cluster, group) for the heatmaps: (clusters present, sorted) and a len(clusters) × n_groups table,
    the groups read as codes 0 … n_groups − 1 (n_groups widened to hold every code present)."""
    assignment, groups = np.asarray(assignment).ravel(), np.asarray(groups).ravel()
    n_groups = int(max(n_groups or 0, groups.max() + 1 if len(groups) else 0))
    table = count_table(assignment, label_codes(groups, levels=n_groups, name="groups"), names=("assignment", "groups"))
    return table.rows.uniques, table.counts


def procrustes_align(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`moving` rotated (or reflected), scaled and shifted to lie closest to `reference` (same points, same order)."""
    mu_m, mu_r = moving.mean(0), reference.mean(0)
    a, b = moving - mu_m, reference - mu_r
    norm_a = np.sqrt((a ** 2).sum())
    if norm_a == 0:
        return np.broadcast_to(mu_r, moving.shape).astype(np.float32)
    u, s, vt = np.linalg.svd(a.T @ b)
    rotation = u @ vt
    scale = s.sum() / norm_a ** 2
    return (a @ rotation * scale + mu_r).astype(np.float32)


def principal_components(features: np.ndarray, k: int) -> np.ndarray:
    """Projections on the first k principal components, signs fixed (largest loading positive) so they are deterministic.

    Through the D × D covariance (one matrix product and a symmetric eigendecomposition) up to 2,048 features, a
    randomized SVD beyond.
    """
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    x = x - x.mean(0)
    n, d = x.shape
    k = min(k, d)
    if d > 2048:
        from sklearn.utils.extmath import randomized_svd

        _, _, vt = randomized_svd(x, k, random_state=0)
        components = vt.T
    else:
        cov = (x.T @ x).astype(np.float64) / max(n - 1, 1)  # a float32 product: ample for a picture
        values, vectors = np.linalg.eigh(cov)
        components = vectors[:, np.argsort(values)[::-1][:k]]
    signs = np.sign(components[np.abs(components).argmax(0), np.arange(components.shape[1])])
    signs[signs == 0] = 1
    return (x @ (components * signs).astype(np.float32)).astype(np.float32)


def pca_2d(features: np.ndarray) -> np.ndarray:
    """The first two principal components (deterministic signs); a 1-D feature is drawn on the x axis."""
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if len(x) < 2:
        return np.zeros((len(x), 2), np.float32)
    coords = principal_components(x, 2)
    if coords.shape[1] == 1:
        coords = np.column_stack([coords[:, 0], np.zeros(len(x), np.float32)])
    return coords.astype(np.float32)


def reduce_for_umap(features: np.ndarray, n_components: int = PCA_BEFORE_UMAP) -> np.ndarray:
    """Wide features (raw pixels) reduced to their first principal components: UMAP's neighbour search is then fast."""
    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if x.shape[1] <= n_components or len(x) <= n_components:
        return x
    return principal_components(x, n_components)


def umap_2d(features: np.ndarray, *, init: np.ndarray | None = None, n_neighbors: int = UMAP_NEIGHBOURS,
            n_epochs: int = UMAP_EPOCHS, learning_rate: float = 1.0, seed: int = 0) -> np.ndarray:
    """UMAP of features to 2-D (McInnes et al. 2018), started from `init` (n × 2) when given, else spectral."""
    import umap  # slow import (numba): only when a UMAP is asked for

    x = reduce_for_umap(features)
    if len(x) < UMAP_MIN_POINTS:
        raise ValueError(ERR_TOO_FEW_UMAP.format(min=UMAP_MIN_POINTS, n=len(x)))
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(x) - 1), n_epochs=n_epochs, random_state=seed,
                        learning_rate=learning_rate, n_jobs=1,
                        init="spectral" if init is None else np.asarray(init, dtype=np.float32))
    with _UMAP_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs overridden by random_state; spectral init fallbacks on tiny data
        return reducer.fit_transform(x).astype(np.float32)


def warm_up_umap(background: bool = True) -> threading.Thread | None:
    """Compile umap-learn's numba code (neighbour search included) on a tiny array, once per process.

    The first UMAP in a process otherwise waits for numba's compiler. Call at app start-up; returns the
    thread (None when background is False or the warm-up already ran or runs).
    """
    global _warm_thread

    def work():
        try:
            import umap

            rng = np.random.default_rng(0)
            x = rng.normal(size=(120, 5)).astype(np.float32)
            init = rng.normal(size=(120, 2)).astype(np.float32)
            with _UMAP_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # both neighbour searches: exact below 4,096 points, NN-descent (forced here) above
                for force in (False, True):
                    umap.UMAP(n_neighbors=5, n_epochs=5, random_state=0, init=init, force_approximation_algorithm=force,
                              n_jobs=1).fit_transform(x)
        finally:
            _warm.set()

    with _warm_guard:
        if _warm_thread is not None or _warm.is_set():
            return None
        if not background:
            _warm_thread = threading.current_thread()
        else:
            _warm_thread = threading.Thread(target=work, name="umap-warm-up", daemon=True)
    if not background:
        work()
        return None
    _warm_thread.start()
    return _warm_thread


def umap_is_warm() -> bool:
    """True once the warm-up finished (or a UMAP already ran): a new UMAP then takes seconds, not half a minute."""
    return _warm.is_set()


# --- a run's points --------------------------------------------------------------------------------------------
@dataclass
class EpochPoints:
    """What one saved evaluation holds, ready to project: features (the embedding, or the input when none was saved)."""

    assignment: np.ndarray
    g: np.ndarray
    y: np.ndarray | None
    features: np.ndarray | None  # loaded lazily by load_epoch_points(with_features=True)
    source: str  # "embedding" or "input features"
    cluster_names: list[str] | None = None  # an external run's labels where `assignment` holds codes into them


def _run_dataset(run):
    """The run's dataset rebuilt from its config (cached in-process by load_dataset), or None when it cannot be here."""
    from .data import load_dataset

    config = run.config
    try:
        return load_dataset(config["dataset"], config.get("dataset_options"), config.get("data_dir"))
    except Exception:  # the data folder moved, a download is missing…: the views then do without names and images
        return None


def dataset_for_arrays(run, n: int):
    """The run's dataset (or its split) whose rows are the n saved points, or None when it cannot be rebuilt here."""
    data = _run_dataset(run)
    if data is None:
        return None
    if len(data) == n:
        return data
    for name in data.splits:  # a method that evaluates on a split saved that split's rows
        if len(data.splits[name]) == n:
            return data.split(name)
    return None


def label_names(run) -> tuple[list[str], list[str] | None]:
    """(group names, class names) for a run: from its dataset record, else from its rebuilt dataset, else numbered."""
    info = run.dataset_info or {}
    groups, classes = info.get("group_names"), info.get("class_names")
    if groups is None:
        data = _run_dataset(run)
        if data is not None:
            groups, classes = list(data.group_names), (None if data.class_names is None else list(data.class_names))
    if groups is None:
        groups = [f"group {i}" for i in range(int(info.get("n_groups") or 0))]
    return list(groups), classes


def load_epoch_points(store, run, epoch: int, *, with_features: bool = True) -> EpochPoints:
    """A saved evaluation's arrays; with_features adds what to project (the input X when no embedding was saved)."""
    try:
        arrays = store.load_arrays(run.id, epoch)
    except FileNotFoundError:
        raise ValueError(ERR_NO_ARRAYS.format(run_id=run.id, epoch=epoch)) from None
    points = EpochPoints(assignment=arrays["assignment"], g=arrays["g"], y=arrays.get("y"), features=None,
                         source="embedding" if "embedding" in arrays else "input features",
                         cluster_names=arrays["cluster_labels"].tolist() if "cluster_labels" in arrays else None)
    if "embedding" in arrays:
        points.features = arrays["embedding"] if with_features else None
    elif with_features:
        data = dataset_for_arrays(run, len(points.assignment))
        if data is None:
            raise ValueError(ERR_NO_FEATURES.format(run_id=run.id, epoch=epoch, n=len(points.assignment),
                                                    dataset=run.config.get("dataset"), n_data=(run.dataset_info or {}).get("n", "?")))
        points.features = data.X.flatten(1).numpy()
    return points


@dataclass
class ClusterProfiles:
    """What sets each cluster apart within each group, on the run's input features (metrics.cluster_profiles)."""

    d: np.ndarray  # groups × clusters × features, in each group's standard deviations
    feature_names: list[str]
    groups: list[int]  # the group ids of d's first axis
    clusters: list[int]  # the cluster ids of d's second axis
    agreement: float  # metrics.profile_agreement
    per_cluster: np.ndarray


def input_profiles(run, points: EpochPoints) -> ClusterProfiles | None:
    """Cluster profiles of a saved evaluation on the run's input features, for vector data (tables) this machine can
    rebuild; None for images (a pixel's mean says little) and for data that cannot be rebuilt here."""
    if len((run.dataset_info or {}).get("shape", [])) == 3:
        return None
    data = dataset_for_arrays(run, len(points.assignment))
    if data is None or data.X.dim() != 2:
        return None
    d = cluster_profiles(data.X.numpy(), points.assignment, points.g)
    clusters, sizes = np.unique(points.assignment, return_counts=True)
    agreement, per_cluster = agreement_from_profiles(d, sizes)
    names = list(data.feature_names or [f"feature {j}" for j in range(d.shape[2])])
    return ClusterProfiles(d=d, feature_names=names, groups=np.unique(points.g).tolist(), clusters=clusters.tolist(),
                           agreement=agreement, per_cluster=per_cluster)


def _strata(points: EpochPoints) -> np.ndarray:
    g = points.g.astype(np.int64)
    if points.y is None:
        return g
    return points.y.astype(np.int64) * (int(g.max()) + 1) + g


# --- layouts, cached and aligned --------------------------------------------------------------------------------
@dataclass
class Layout:
    """A 2-D layout of (a sample of) an epoch's points: coords[i] is the point at position index[i] of its arrays."""

    coords: np.ndarray
    index: np.ndarray
    method: str  # "pca" or "umap"
    epoch: int
    n_total: int
    seconds: float = 0.0
    aligned_to: int | None = None  # the epoch this layout was aligned to (UMAP: started from)

    @property
    def note(self) -> str | None:
        return subsample_note(self.n_total, len(self.index))


class Projector:
    """Layouts for the runs of one store: PCA at once, UMAP in one background thread, every layout cached on disk."""

    def __init__(self, store, *, limit: int = SUBSAMPLE_LIMIT, seed: int = 0, n_neighbors: int = UMAP_NEIGHBOURS,
                 n_epochs: int = UMAP_EPOCHS, aligned_epochs: int = UMAP_ALIGNED_EPOCHS):
        self.store = store
        self.limit, self.seed, self.n_neighbors = limit, seed, n_neighbors
        self.n_epochs, self.aligned_epochs = n_epochs, aligned_epochs
        settings = dict(v=CACHE_VERSION, limit=limit, seed=seed, k=n_neighbors, e=n_epochs, ea=aligned_epochs)
        self._tag = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        self._queue: deque[tuple[str, int]] = deque()
        self._pending: set[tuple[str, int]] = set()
        self._running: tuple[str, int] | None = None
        self._errors: dict[tuple[str, int], str] = {}
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None

    # cache ------------------------------------------------------------------------------------------------------
    def cache_path(self, run_id: str, method: str, epoch: int) -> Path:
        return self.store.run_dir(run_id) / "projections" / f"{method}_e{epoch:06d}_{self._tag}.npz"

    def cached(self, run_id: str, method: str, epoch: int) -> Layout | None:
        path = self.cache_path(run_id, method, epoch)
        try:
            with np.load(path) as f:
                return Layout(coords=f["coords"], index=f["index"], method=method, epoch=epoch, n_total=int(f["n_total"]),
                              seconds=float(f["seconds"]), aligned_to=int(f["aligned_to"]) if int(f["aligned_to"]) >= 0 else None)
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return None

    def _save(self, run_id: str, layout: Layout) -> None:
        if not self.store.run_dir(run_id).exists():  # deleted while this layout was computed
            return
        path = self.cache_path(run_id, layout.method, layout.epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{threading.get_ident()}.tmp.npz")
        np.savez(tmp, coords=layout.coords, index=layout.index, n_total=layout.n_total, seconds=layout.seconds,
                 aligned_to=-1 if layout.aligned_to is None else layout.aligned_to)
        tmp.replace(path)

    def saved_epochs(self, run_id: str) -> list[int]:
        return [e["epoch"] for e in self.store.evaluations(run_id) if e["has_arrays"]]

    def _points(self, run_id: str, epoch: int) -> tuple[EpochPoints, np.ndarray]:
        run = self.store.get_run(run_id)
        points = load_epoch_points(self.store, run, epoch)
        return points, subsample_index(_strata(points), self.limit, self.seed)

    # PCA --------------------------------------------------------------------------------------------------------
    def pca(self, run_id: str, epoch: int) -> Layout:
        """The PCA layout (cached), rotated onto the first saved epoch's so the slider does not flip it."""
        layout = self.cached(run_id, "pca", epoch)
        if layout is not None:
            return layout
        start = time.perf_counter()
        points, index = self._points(run_id, epoch)
        coords = pca_2d(points.features[index])
        epochs = self.saved_epochs(run_id)
        reference = epochs[0] if epochs else epoch
        aligned_to = None
        if reference != epoch:
            ref = self.pca(run_id, reference)
            if np.array_equal(ref.index, index):
                coords = procrustes_align(coords, ref.coords)
                aligned_to = reference
        layout = Layout(coords=coords, index=index, method="pca", epoch=epoch, n_total=len(points.assignment),
                        seconds=time.perf_counter() - start, aligned_to=aligned_to)
        self._save(run_id, layout)
        return layout

    # UMAP -------------------------------------------------------------------------------------------------------
    def _nearest_cached_umap(self, run_id: str, epoch: int) -> Layout | None:
        others = sorted((e for e in self.saved_epochs(run_id) if e != epoch), key=lambda e: (abs(e - epoch), e))
        for other in others:
            layout = self.cached(run_id, "umap", other)
            if layout is not None:
                return layout
        return None

    def compute_umap(self, run_id: str, epoch: int) -> Layout:
        """The UMAP layout now (cached): started from the nearest epoch's UMAP if one exists, else from this epoch's PCA."""
        layout = self.cached(run_id, "umap", epoch)
        if layout is not None:
            return layout
        start = time.perf_counter()
        points, index = self._points(run_id, epoch)
        neighbour = self._nearest_cached_umap(run_id, epoch)
        if neighbour is not None and np.array_equal(neighbour.index, index):
            reference, aligned_to = neighbour.coords, neighbour.epoch
            n_epochs, learning_rate = self.aligned_epochs, UMAP_ALIGNED_LEARNING_RATE
        else:
            reference, aligned_to = self.pca(run_id, epoch).coords, None
            n_epochs, learning_rate = self.n_epochs, 1.0
        coords = umap_2d(points.features[index], init=reference, n_neighbors=self.n_neighbors, n_epochs=n_epochs,
                         learning_rate=learning_rate, seed=self.seed)
        _warm.set()  # numba has compiled now
        coords = procrustes_align(coords, reference)
        layout = Layout(coords=coords, index=index, method="umap", epoch=epoch, n_total=len(points.assignment),
                        seconds=time.perf_counter() - start, aligned_to=aligned_to)
        self._save(run_id, layout)
        return layout

    def request_umap(self, run_id: str, epoch: int, *, prefetch: bool = True) -> Layout | None:
        """The UMAP layout if cached; else queue it first in the background (and, with prefetch, the run's other
        saved epochs after it, nearest first) and return None. umap_status says how it goes."""
        layout = self.cached(run_id, "umap", epoch)
        if layout is not None:
            return layout
        key = (run_id, epoch)
        with self._cond:
            if key in self._errors:
                return None
            if key != self._running:
                if key in self._pending:
                    self._queue.remove(key)
                self._queue.appendleft(key)
                self._pending.add(key)
            if prefetch:
                epochs = sorted(self.saved_epochs(run_id), key=lambda e: (abs(e - epoch), e))
                for other in epochs:
                    other_key = (run_id, other)
                    if other_key not in self._pending and other_key != self._running and other_key not in self._errors \
                            and not self.cache_path(run_id, "umap", other).exists():
                        self._queue.append(other_key)
                        self._pending.add(other_key)
            self._ensure_worker()
            self._cond.notify()
        return None

    def umap_status(self, run_id: str, epoch: int) -> str:
        """'ready', 'computing', 'queued', 'failed: <why>' or 'not requested'."""
        if self.cache_path(run_id, "umap", epoch).exists():
            return "ready"
        key = (run_id, epoch)
        with self._cond:
            if key in self._errors:
                return "failed: " + self._errors[key]
            if key == self._running:
                return "computing"
            if key in self._pending:
                return "queued"
        return "not requested"

    def busy(self) -> bool:
        with self._cond:
            return self._running is not None or bool(self._queue)

    def forget_run(self, run_id: str) -> None:
        """Drop a run's queued work and errors (before deleting it)."""
        with self._cond:
            for key in [k for k in self._queue if k[0] == run_id]:
                self._queue.remove(key)
                self._pending.discard(key)
            for key in [k for k in self._errors if k[0] == run_id]:
                del self._errors[key]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the queue is empty and nothing computes (tests, benchmarks); True if it got there in time."""
        deadline = None if timeout is None else time.time() + timeout
        with self._cond:
            while self._running is not None or self._queue:
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 1.0)
        return True

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="umap-worker", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                key = self._queue.popleft()
                self._pending.discard(key)
                self._running = key
            try:
                if self.store.run_dir(key[0]).exists():
                    self.compute_umap(*key)
            except Exception as exc:  # shown on the page beside the PCA view, which stays usable
                with self._cond:
                    self._errors[key] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()


_projectors: dict[str, Projector] = {}
_projectors_lock = threading.Lock()


def projector_for(store) -> Projector:
    """One Projector (one background worker) per run store root in this process."""
    key = str(Path(store.root).resolve())
    with _projectors_lock:
        if key not in _projectors:
            _projectors[key] = Projector(store)
        return _projectors[key]
