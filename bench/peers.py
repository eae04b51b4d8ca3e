"""Ours side by side with the libraries a user would pick instead, in one process, alternating ours and the peer.

    /tmp/peers-venv/bin/python bench/peers.py [--n 10000] [--epochs 3] [--cluster-epochs 2] [--device cpu|cuda]
                                              [--precision fp32,bf16]
                                              [--data-dir ../shared/data] [--only kmeans,deep,fair,umap] [--profile]

Set-up (a separate virtual environment; the app's requirements stay as they are):
    python -m venv --system-site-packages /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -c <(echo torch==2.13.0) -r bench/requirements-peers.txt
    /tmp/peers-venv/bin/pip install --no-deps --no-build-isolation -e .

Pairs, on MNIST-USPS (--n stratified subset, 0 = all 67,291):
  1. scikit-learn KMeans(n_init=10) on the raw pixels  vs  our torch `kmeans` (n_init=10).
  2. ClustPy FeedforwardAutoencoder 784-500-500-2000-10 (ReLU, as ours), batch 256, Adam 1e-3, --epochs epochs,
     then k-means on its embedding; ClustPy DEC and IDEC on that pretrained network for --cluster-epochs epochs
       vs  our `ae_kmeans` (same network, batch, optimiser, epochs) and our `dec` with encoder=mlp (its own pretraining
     of --epochs epochs, then --cluster-epochs epochs of clustering iterations, tol 0 so it runs the whole budget).
     The clustering stage uses the same optimiser on both sides: DEC's SGD lr 0.01, momentum 0.9 (ours' default;
     ClustPy's default would be Adam 1e-4). ClustPy's DEC labels are its `dec_labels_` (not the k-means re-clustering).
     We have no IDEC: its row has no "ours". Ours runs once per --precision: fp32 (the peers' arithmetic) and bf16
     (our declared mixed-precision option: bfloat16 matrix products under torch.autocast, fp32 weights and losses).
  2b. Ours only, no peer (no peer library clusters fairly): `fcmi` and `dfc` at the same budget (--epochs of
     autoencoder training, then --cluster-epochs of the fair objective), their ACC/NMI/Balance/MNCE to read against
     ClustPy's DEC (Balance and MNCE 0: every unfair method gives USPS clusters of their own).
  3. umap-learn with its defaults on the raw pixels  vs  our embedding view's UMAP path (`umap_2d`: PCA to 50, then
     UMAP with the view's settings), on 10,000 points: the first call in a fresh process (numba compiling; each in its
     own subprocess, so neither inherits the other's compilation) and warm (in this process, after both).

Times: wall-clock seconds (torch synchronised on CUDA). Memory: the peak resident set size during a phase above the
RSS at its start, sampled by psutil every 5 ms (tracemalloc misses torch's allocations; getrusage's maxrss is a
process-lifetime high-water mark, so its deltas read 0 once an earlier phase went higher). With --device cuda ours
runs on the GPU (peak GPU memory from torch.cuda.max_memory_allocated) and the peers stay on the CPU.
Metrics: dashboard_lib.metrics.evaluate on both sides (ACC, NMI, Balance, MNCE against digit and MNIST/USPS group);
"mixed" = how many of the non-empty clusters hold both MNIST and USPS images (Balance and MNCE are minima over the
clusters: a single cluster without USPS makes both 0).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import threading
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch

from dashboard_lib.data import load_dataset
from dashboard_lib.methods import ae_kmeans as ae_kmeans_module
from dashboard_lib.methods.ae_kmeans import AEKMeans
from dashboard_lib.methods.dec import DEC as OurDEC
from dashboard_lib.methods.dfc import DFC
from dashboard_lib.methods.fcmi import FCMI
from dashboard_lib.methods.kmeans import kmeans
from dashboard_lib.metrics import evaluate
from dashboard_lib.projection import cluster_group_counts

ROOT = Path(__file__).resolve().parents[1]


def _install_torchvision_stub() -> None:
    """BENCHMARK-ONLY SHIM. ClustPy imports torchvision at module level (clustpy.deep._data_utils: `import torchvision`;
    the conv/ResNet autoencoders: `from torchvision.models._api import Weights, WeightsEnum`), but the code paths
    measured here (FeedforwardAutoencoder, DEC, IDEC, default DataLoaders) never call it. The only torchvision wheel
    available here is built for another torch and fails to load ("operator torchvision::nms does not exist"), and a
    CUDA torch must not be installed; so an empty stand-in with just those names goes into sys.modules before ClustPy
    is imported. Anything that did use torchvision would fail loudly (AttributeError), not silently."""
    tv = types.ModuleType("torchvision")
    tv.__path__ = []
    models = types.ModuleType("torchvision.models")
    models.__path__ = []
    api = types.ModuleType("torchvision.models._api")
    api.Weights = type("Weights", (), {})
    api.WeightsEnum = type("WeightsEnum", (), {})
    tv.models, models._api = models, api
    sys.modules.update({"torchvision": tv, "torchvision.models": models, "torchvision.models._api": api})


# ----------------------------------------------------------------------------------------------------------------
# Measurement helpers
# ----------------------------------------------------------------------------------------------------------------

class PeakRSS:
    """Peak RSS (MB) above the RSS at entry, sampled every 5 ms by a thread (psutil)."""

    def __init__(self, device: torch.device | None = None):
        import psutil

        self.process = psutil.Process()
        self.device = device

    def __enter__(self) -> "PeakRSS":
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.mb = (self.peak - self.start) / 2 ** 20
        self.gpu_mb = (torch.cuda.max_memory_allocated(self.device) / 2 ** 20
                       if self.device is not None and self.device.type == "cuda" else None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Ctx:
    """The RunContext a method talks to (base.RunContext), minus the run store: log and progress are no-ops,
    evaluate only keeps the assignment (metrics are computed after the clock stops, the same way for both sides)."""

    def __init__(self, device: torch.device, seed: int = 0):
        self.device, self.seed = device, seed
        self.evaluations: list[tuple[int, np.ndarray]] = []

    def log(self, step, **scalars) -> None:
        pass

    def progress(self, fraction, stage="") -> None:
        pass

    def check_stop(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def evaluate(self, epoch, embedding, assignment, extra=None, split=None) -> dict:
        a = assignment.detach().cpu().numpy() if isinstance(assignment, torch.Tensor) else np.asarray(assignment)
        self.evaluations.append((epoch, a))
        return {}


ROWS: list[dict] = []


def record(task: str, impl: str, *, wall: float, pre: float | None = None, clu: float | None = None,
           mem: PeakRSS | None = None, labels=None, data=None, note: str = "") -> dict:
    row = {"task": task, "impl": impl, "pre_s_ep": pre, "clu_s_ep": clu, "wall_s": wall,
           "peak_mb": None if mem is None else mem.mb, "gpu_mb": None if mem is None else mem.gpu_mb, "note": note}
    if labels is not None:
        m = evaluate(np.asarray(labels), data.y, data.g)
        row.update({k: m.get(k) for k in ("acc", "nmi", "balance", "mnce")})
        row["mixed"] = mixed_clusters(np.asarray(labels), data.g)
    ROWS.append(row)
    print(f"  {task:<14} {impl:<26} wall {wall:8.2f} s" + (f"  pre {pre:.3f} s/ep" if pre else "")
          + (f"  clu {clu:.3f} s/ep" if clu else "") + (f"  ACC {row['acc']:.3f} NMI {row['nmi']:.3f}" if labels is not None else ""),
          flush=True)
    return row


def mixed_clusters(labels: np.ndarray, groups: np.ndarray) -> str:
    """"m/k": how many of the k non-empty clusters hold samples of every group. Balance and MNCE are minima over the
    clusters, so one cluster without USPS makes both 0; this count says whether that is one cluster or all of them."""
    _, counts = cluster_group_counts(labels, groups)  # the clusters present only
    return f"{int((counts > 0).all(1).sum())}/{len(counts)}"


def fit_ours(method, data, device: torch.device, seed: int) -> tuple[float, "PeakRSS"]:
    """Fit one of our methods from a fixed torch seed; (wall seconds, synchronised on CUDA; its peak memory)."""
    torch.manual_seed(seed)
    method.check_data(data)
    with PeakRSS(device) as mem:
        t = time.perf_counter()
        method.train(data, Ctx(device, seed))
        sync(device)
        wall = time.perf_counter() - t
    return wall, mem


# ----------------------------------------------------------------------------------------------------------------
# 1. k-means on raw pixels
# ----------------------------------------------------------------------------------------------------------------

def bench_kmeans(data, device: torch.device, seed: int) -> None:
    from sklearn.cluster import KMeans as SKKMeans

    k = data.n_clusters
    X_np = data.X.flatten(1).numpy().astype(np.float32)
    # ours
    X = data.X.flatten(1).to(device)
    sync(device)
    with PeakRSS(device) as mem:
        t = time.perf_counter()
        result = kmeans(X, k, n_init=10, seed=seed)
        sync(device)
        wall = time.perf_counter() - t
    record("kmeans", f"ours (torch, {device.type})", wall=wall, mem=mem, labels=result.labels.cpu().numpy(), data=data)
    # peer
    with PeakRSS() as mem:
        t = time.perf_counter()
        peer = SKKMeans(n_clusters=k, n_init=10, random_state=seed).fit(X_np)
        wall = time.perf_counter() - t
    record("kmeans", "scikit-learn KMeans", wall=wall, mem=mem, labels=peer.labels_, data=data)


# ----------------------------------------------------------------------------------------------------------------
# 2. Autoencoder pretraining, DEC and IDEC
# ----------------------------------------------------------------------------------------------------------------

def bench_deep(data, device: torch.device, seed: int, epochs: int, cluster_epochs: int,
               precisions: list[str]) -> None:
    _install_torchvision_stub()
    import clustpy.deep.dec as clustpy_dec
    from clustpy.deep import DEC as PeerDEC, IDEC as PeerIDEC
    from clustpy.deep import encode_batchwise, get_dataloader
    from clustpy.deep.neural_networks import FeedforwardAutoencoder
    from sklearn.cluster import KMeans as SKKMeans

    k, n, batch = data.n_clusters, len(data), 256
    steps_per_epoch = -(-n // batch)
    X_np = data.X.flatten(1).numpy().astype(np.float32)
    layers = [X_np.shape[1], 500, 500, 2000, 10]

    # Time ClustPy's clustering loop itself (its _DEC_Module.fit: the clustering epochs, nothing else).
    clustpy_fit = clustpy_dec._DEC_Module.fit
    clustering_seconds: list[float] = []

    def timed_fit(self, *args, **kwargs):
        t = time.perf_counter()
        out = clustpy_fit(self, *args, **kwargs)
        clustering_seconds.append(time.perf_counter() - t)
        return out

    clustpy_dec._DEC_Module.fit = timed_fit

    # Time our pretraining end: ae_kmeans calls kmeans right after its last epoch (eval_every=0).
    marks: dict[str, float] = {}
    our_kmeans = ae_kmeans_module.kmeans

    def marked_kmeans(*args, **kwargs):
        sync(device)
        marks["pretrained"] = time.perf_counter()
        return our_kmeans(*args, **kwargs)

    ae_kmeans_module.kmeans = marked_kmeans

    # Warm-up, untimed: the first torch work in a process pays one-off costs (oneDNN primitives, allocator pools;
    # measured 2.6 s for a 1-epoch run that takes 0.9 s warm), which would otherwise land on whichever side runs first.
    warm = data.subset(np.arange(min(len(data), 2 * batch)))
    for precision in precisions:
        fit_ours(AEKMeans(n_clusters=k, latent_dim=10, epochs=1, batch_size=batch, eval_every=0, n_init=1,
                          precision=precision), warm, device, seed)
    FeedforwardAutoencoder(layers=layers, activation_fn=torch.nn.ReLU, random_state=seed).fit(
        n_epochs=1, batch_size=batch, data=X_np[: 2 * batch])

    # --- ours: autoencoder + k-means, in each precision asked for
    for precision in precisions:
        method = AEKMeans(n_clusters=k, latent_dim=10, epochs=epochs, batch_size=batch, lr=1e-3, eval_every=0, n_init=10,
                          precision=precision)
        t = time.perf_counter()
        wall, mem = fit_ours(method, data, device, seed)
        # the pretraining span starts before fit (model construction included: ~0.1 s) and ends before the embedding/k-means
        record("AE pretrain", f"ours ae_kmeans ({device.type}, {precision})", wall=wall,
               pre=(marks["pretrained"] - t) / epochs, mem=mem, labels=method.labels_, data=data,
               note="wall = pretraining + embedding + k-means (n_init 10)")

    # --- peer: ClustPy pretraining, then k-means on the embedding
    torch.manual_seed(seed)
    ae = FeedforwardAutoencoder(layers=layers, activation_fn=torch.nn.ReLU, random_state=seed)
    with PeakRSS() as mem:
        t = time.perf_counter()
        ae.fit(n_epochs=epochs, optimizer_params={"lr": 1e-3}, batch_size=batch, data=X_np)
        t_pre = time.perf_counter() - t
        testloader = get_dataloader(X_np, batch, shuffle=False)
        z = encode_batchwise(testloader, ae)
        labels = SKKMeans(n_clusters=k, n_init=10, random_state=seed).fit(z).labels_
        wall = time.perf_counter() - t
    record("AE pretrain", "ClustPy FeedforwardAE", wall=wall, pre=t_pre / epochs, mem=mem, labels=labels, data=data,
           note="wall = pretraining + embedding + sklearn k-means (n_init 10)")
    pretrained = copy.deepcopy(ae)  # ClustPy's DEC/IDEC skip pretraining on a fitted network

    # --- ours: DEC (encoder=mlp: the same feed-forward network), same pretraining budget, then clustering
    for precision in precisions:
        method = OurDEC(n_clusters=k, encoder="mlp", latent_dim=10, pretrain_epochs=epochs, pretrain_lr=1e-3,
                        batch_size=batch, lr=0.01, momentum=0.9, iterations=cluster_epochs * steps_per_epoch, tol=0.0,
                        n_init=10, eval_every=0, precision=precision)
        wall, mem = fit_ours(method, data, device, seed)
        timings = method.timings_
        record("DEC", f"ours dec ({device.type}, {precision})", wall=wall, pre=timings["pretrain_s_per_epoch"],
               clu=timings["train_s_per_epoch"], mem=mem, labels=method.labels_, data=data,
               note=f"wall includes its own {epochs}-epoch pretraining")

    # --- peer: ClustPy DEC on the pretrained network (wall: k-means init + clustering + final predictions)
    # DEC: the same clustering optimiser as ours (DEC's SGD 0.01, momentum 0.9). IDEC (no counterpart of ours; its
    # reconstruction term diverges under that SGD on raw pixels): ClustPy's defaults, Adam 1e-4, weight 0.1.
    for name, cls, opt in (("DEC", PeerDEC, {"optimizer_class": torch.optim.SGD,
                                             "clustering_optimizer_params": {"lr": 0.01, "momentum": 0.9}}),
                           ("IDEC", PeerIDEC, {})):
        torch.manual_seed(seed)
        clustering_seconds.clear()
        peer = cls(n_clusters=k, batch_size=batch, pretrain_epochs=0, clustering_epochs=cluster_epochs, **opt,
                   neural_network=copy.deepcopy(pretrained), embedding_size=10, device="cpu", random_state=seed)
        with PeakRSS() as mem:
            t = time.perf_counter()
            try:
                peer.fit(X_np)
            except ValueError as error:  # e.g. sklearn's final k-means on a NaN embedding: the peer diverged
                ROWS.append({"task": name, "impl": f"ClustPy {name}", "wall_s": None,
                             "note": f"failed: {str(error).splitlines()[0]}"})
                print(f"  {name}: ClustPy failed: {str(error).splitlines()[0]}", flush=True)
                continue
            wall = time.perf_counter() - t
        wall_with_pre = wall + t_pre
        record(name, f"ClustPy {name}", wall=wall_with_pre, pre=t_pre / epochs,
               clu=clustering_seconds[0] / cluster_epochs, mem=mem, labels=peer.dec_labels_, data=data,
               note="wall = the pretraining above + its own fit")

    clustpy_dec._DEC_Module.fit = clustpy_fit
    ae_kmeans_module.kmeans = our_kmeans


# ----------------------------------------------------------------------------------------------------------------
# 2a. Where a pretraining step's time goes (--profile)
# ----------------------------------------------------------------------------------------------------------------

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul")


def profile_pretraining(data, seed: int, steps: int = 40) -> None:
    """torch.profiler over `steps` autoencoder pretraining steps on each side (batch 256, the 784-500-500-2000-10
    network, Adam 1e-3): ours is AEKMeans.fit's step (whole-data tensor, index gather, fused Adam), ClustPy's is
    FeedforwardAutoencoder.fit over the same rows (its DataLoader and Adam). Prints ms per step, the matrix
    products' share, and each side's top operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    _install_torchvision_stub()
    from clustpy.deep.neural_networks import FeedforwardAutoencoder

    from dashboard_lib.methods.ae_kmeans import reconstruction_loss
    from dashboard_lib.nn import MLPAutoencoder, minibatches

    X = data.X.flatten(1)[: steps * 256].contiguous()

    def ours() -> None:
        model = MLPAutoencoder(X.shape[1], 10)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        for index in minibatches(len(X), 256, torch.Generator().manual_seed(seed), X.device):
            x = X[index]
            _, x_hat = model(x)
            loss = reconstruction_loss(x, x_hat)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

    def clustpy() -> None:
        ae = FeedforwardAutoencoder(layers=[X.shape[1], 500, 500, 2000, 10], activation_fn=torch.nn.ReLU, random_state=seed)
        ae.fit(n_epochs=1, optimizer_params={"lr": 1e-3}, batch_size=256, data=X.numpy())

    print(f"\nProfile: {steps} pretraining steps of batch 256 on each side (torch {torch.get_num_threads()} thread(s))")
    per_step = {}
    for name, fn in (("ours", ours), ("ClustPy", clustpy)):
        fn()  # warm-up: allocator, oneDNN primitives
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t = time.perf_counter()
            fn()
            per_step[name] = (time.perf_counter() - t) / steps * 1000
        averages = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in averages)
        matmul = sum(e.self_cpu_time_total for e in averages if e.key in MATMUL_OPS)
        print(f"  {name}: {per_step[name]:.1f} ms/step (profiled), matrix products {100 * matmul / total:.0f} % of the "
              f"operators' self time ({matmul / 1000 / steps:.1f} ms/step)")
        print(averages.table(sort_by="self_cpu_time_total", row_limit=8))
    print(f"  ratio ours / ClustPy per step: {per_step['ours'] / per_step['ClustPy']:.2f}")


# ----------------------------------------------------------------------------------------------------------------
# 2b. The fair methods at the same budget (no peer library clusters fairly: their rows read against ClustPy's DEC)
# ----------------------------------------------------------------------------------------------------------------

def bench_fair(data, device: torch.device, seed: int, epochs: int, cluster_epochs: int) -> None:
    """Our FCMI and DFC with the deep pair's budget: `epochs` epochs of autoencoder training, then `cluster_epochs`
    epochs of the fair objective, batch 256 (FCMI: warm-up = the pretraining epochs; DFC: 128 per group, its per-group
    own models `epochs` of pretraining and at most `cluster_epochs` of DEC each, counted in its wall time). Everything else: the
    methods' defaults (the papers' public-code networks: conv encoders, not the 784-500-500-2000-10 MLP)."""
    steps_per_epoch = -(-len(data) // 256)
    runs = (
        ("FCMI", FCMI(n_clusters=data.n_clusters, epochs=epochs + cluster_epochs, warmup_epochs=epochs, batch_size=256,
                      eval_every=0), "warmup_s_per_epoch"),
        ("DFC", DFC(n_clusters=data.n_clusters, pretrain_steps=epochs * steps_per_epoch, pretrain_batch_size=256,
                    batch_per_group=128, iterations=cluster_epochs * steps_per_epoch, group_pretrain_epochs=epochs,
                    group_dec_epochs=cluster_epochs, eval_every=0), "pretrain_s"),
    )
    for name, method, pre_key in runs:
        wall, mem = fit_ours(method, data, device, seed)
        timings = method.timings_
        record(f"fair: {name}", f"ours {name.lower()} ({device.type})", wall=wall, pre=timings[pre_key] / (epochs if pre_key == "pretrain_s" else 1),
               clu=timings["train_s_per_epoch"], mem=mem, labels=method.labels_, data=data,
               note=f"{epochs} + {cluster_epochs} epochs, as DEC's rows; no peer library has a fair method")


# ----------------------------------------------------------------------------------------------------------------
# 3. UMAP
# ----------------------------------------------------------------------------------------------------------------

def umap_once(which: str, X: np.ndarray, seed: int) -> np.ndarray:
    if which == "ours":
        from dashboard_lib.projection import umap_2d

        return umap_2d(X, seed=seed)
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return umap.UMAP(random_state=seed).fit_transform(X)  # umap-learn's defaults (random_state for repeatability)


def umap_cold_child(which: str, n: int, data_dir: str, seed: int) -> None:
    """--umap-cold: one first call in this fresh process; prints a JSON line for the parent."""
    data = load_dataset("mnist_usps", {"n": n}, data_dir=data_dir)
    X = data.X.flatten(1).numpy().astype(np.float32)
    with PeakRSS() as mem:
        t = time.perf_counter()
        umap_once(which, X, seed)
        wall = time.perf_counter() - t
    print("RESULT " + json.dumps({"wall": wall, "mb": mem.mb}))


def bench_umap(data, data_dir: str, seed: int) -> None:
    n = min(len(data), 10_000)
    X = data.X.flatten(1).numpy().astype(np.float32)[:n]
    if len(data) != 10_000:
        print(f"  (UMAP on the first {n:,} points of the {len(data):,})")
    labels = {"ours": "ours umap_2d (PCA50+UMAP)", "peer": "umap-learn defaults"}
    for which in ("ours", "peer"):  # first call, each in a fresh process
        out = subprocess.run([sys.executable, __file__, "--umap-cold", which, "--n", "10000", "--data-dir", data_dir,
                              "--seed", str(seed)], capture_output=True, text=True, check=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
        result = json.loads(line[7:])
        ROWS.append({"task": "UMAP first call", "impl": labels[which], "wall_s": result["wall"], "peak_mb": result["mb"],
                     "note": "fresh process: numba compile (and its on-disk cache) included"})
        print(f"  UMAP first     {labels[which]:<26} wall {result['wall']:8.2f} s", flush=True)
    for which in ("ours", "peer"):  # compile once in this process, untimed
        umap_once(which, X[:5000], seed)  # > 4,096 points: NN-descent compiled too
    for which in ("ours", "peer"):
        with PeakRSS() as mem:
            t = time.perf_counter()
            umap_once(which, X, seed)
            wall = time.perf_counter() - t
        record("UMAP warm", labels[which], wall=wall, mem=mem, note="after a compile in this process")


# ----------------------------------------------------------------------------------------------------------------
# Table
# ----------------------------------------------------------------------------------------------------------------

def fmt(v, spec=".3f") -> str:
    return "—" if v is None else format(v, spec)


def print_table() -> None:
    cols = ("task", "impl", "pre s/ep", "clu s/ep", "wall s", "peak MB", "ACC", "NMI", "Balance", "MNCE", "mixed")
    widths = (15, 27, 9, 9, 9, 8, 6, 6, 8, 6, 6)
    print()
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in ROWS:
        mb = fmt(r.get("peak_mb"), ".0f") + (f" (GPU {r['gpu_mb']:.0f})" if r.get("gpu_mb") is not None else "")
        cells = (r["task"], r["impl"], fmt(r.get("pre_s_ep")), fmt(r.get("clu_s_ep")), fmt(r.get("wall_s"), ".2f"), mb,
                 fmt(r.get("acc")), fmt(r.get("nmi")), fmt(r.get("balance")), fmt(r.get("mnce")),
                 r.get("mixed") or "—")
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))
    # ratios ours / peer, per task
    print("\nRatio ours / peer (< 1: ours faster)")
    pairs = [("kmeans", "kmeans", "wall_s"), ("AE pretrain", "AE pretrain", "pre_s_ep"), ("AE pretrain", "AE pretrain", "wall_s"),
             ("DEC", "DEC", "pre_s_ep"), ("DEC", "DEC", "clu_s_ep"), ("DEC", "DEC", "wall_s"),
             ("DEC", "IDEC", "clu_s_ep"), ("UMAP first call", "UMAP first call", "wall_s"), ("UMAP warm", "UMAP warm", "wall_s")]
    for ours_task, peer_task, key in pairs:
        peer = next((r for r in ROWS if r["task"] == peer_task and not r["impl"].startswith("ours")), None)
        for ours in (r for r in ROWS if r["task"] == ours_task and r["impl"].startswith("ours")):  # one per precision
            if peer and ours.get(key) and peer.get(key):
                print(f"  {ours['impl']:<27} vs {peer['impl']:<24} {key:<9} {ours[key] / peer[key]:6.2f}")
    for r in ROWS:
        if r.get("note"):
            print(f"  note · {r['task']} / {r['impl']}: {r['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="stratified subset size (0 = all 67,291)")
    parser.add_argument("--epochs", type=int, default=3, help="autoencoder pretraining epochs (both sides)")
    parser.add_argument("--cluster-epochs", type=int, default=2, help="DEC/IDEC clustering epochs (both sides)")
    parser.add_argument("--device", default="cpu", help="device for ours (cpu or cuda); the peers run on the CPU")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both sides (0 = the libraries' defaults: all cores). The app trains with "
                             "all cores but one (jobs.training_threads); on a loaded 2-core machine 2 OpenMP threads "
                             "stall at every parallel region (measured 10× slower per step than 1 thread)")
    parser.add_argument("--precision", default="fp32,bf16",
                        help="our methods' precision hyperparameter, one row each (fp32: the peers' arithmetic; bf16: "
                             "mixed precision, a declared option of ours)")
    parser.add_argument("--only", default="kmeans,deep,fair,umap", help="comma-separated subset of kmeans,deep,fair,umap")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the autoencoder pretraining step of both sides (where the time goes)")
    parser.add_argument("--umap-cold", choices=("ours", "peer"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.umap_cold:
        umap_cold_child(args.umap_cold, args.n, args.data_dir, args.seed)
        return
    if args.threads:  # both sides: torch (ours, ClustPy) and the OpenMP/BLAS pools of scikit-learn and numpy
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    data = load_dataset("mnist_usps", {"n": args.n}, data_dir=args.data_dir)
    print(f"MNIST-USPS: {len(data):,} samples × {data.n_features} features, K = {data.n_clusters}; "
          f"ours on {device} ({'GPU: ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"peers on the CPU; torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
          f"pretraining {args.epochs} epochs, clustering {args.cluster_epochs} epochs, batch 256", flush=True)
    only = set(args.only.split(","))
    if "kmeans" in only:
        bench_kmeans(data, device, args.seed)
    if "deep" in only:
        bench_deep(data, device, args.seed, args.epochs, args.cluster_epochs, args.precision.split(","))
    if args.profile:
        profile_pretraining(data, args.seed)
    if "fair" in only:
        bench_fair(data, device, args.seed, args.epochs, args.cluster_epochs)
    if "umap" in only:
        bench_umap(data, args.data_dir, args.seed)
    print_table()


if __name__ == "__main__":
    main()
