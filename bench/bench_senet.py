"""SENet vs Inv-SENnet on Colored MNIST / Fashion-MNIST, both protocols, beside the paper's numbers (Tables 1–2).

    python bench/bench_senet.py [--schedule reduced|medium|paper] [--n N] [--n-train N] [--device cpu|cuda|auto]
                                [--datasets colored_mnist,colored_fashion_mnist] [--protocols ood,mixed]
                                [--methods senet,inv_senet] [--seeds 0,1,2] [--threads 1] [--set name=value ...]

reduced: a few minutes on one CPU thread (small networks, a stratified subset of both splits; the point is the gap,
not the paper's absolute numbers). medium: the same networks on 10,000 biased training images (paper Table 1's smaller
N_i) for 120 epochs, clustering the whole unbiased split (10,000 images) as the paper does, ~5 minutes per run.
paper: the paper's scale (N = 60,000 training samples for ood, 15,000 for mixed, width 1024, top-k 1,000); for a GPU.
Numbers are ACC / NMI (geometric mean, as the paper reports) / ARI in %.

Out-of-distribution (Table 1): train on the biased "train" split, cluster the unbiased "test" split.
Mixed domain (Table 2): train and cluster one set made of biased and unbiased samples in equal parts: the whole
unbiased split and as many biased samples drawn at random (stratified by class and group).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard_lib.data import load_dataset  # noqa: E402
from dashboard_lib.data.transforms import stratified_subset  # noqa: E402
from dashboard_lib.jobs import evaluation_metrics, seed_everything  # noqa: E402
from dashboard_lib.methods import get_method, resolve_device  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
# (dataset, protocol, method) → [(N_i, ACC, NMI, ARI), ...] from the paper (Tables 1 and 2); a run is printed beside
# the row whose N_i is nearest its number of training samples.
PAPER = {
    ("colored_mnist", "ood", "senet"): [(10000, 41.79, 33.34, 21.05), (60000, 36.32, 25.14, 16.14)],
    ("colored_mnist", "ood", "inv_senet"): [(10000, 68.44, 60.55, 45.23), (60000, 78.04, 67.53, 58.56)],
    ("colored_fashion_mnist", "ood", "senet"): [(10000, 38.47, 30.15, 19.51), (60000, 46.73, 42.46, 31.18)],
    ("colored_fashion_mnist", "ood", "inv_senet"): [(10000, 50.73, 42.15, 30.14), (60000, 56.91, 44.68, 34.41)],
    ("colored_mnist", "mixed", "senet"): [(15000, 12.75, 2.66, 0.13)],
    ("colored_mnist", "mixed", "inv_senet"): [(15000, 35.29, 25.84, 11.31)],
    ("colored_fashion_mnist", "mixed", "senet"): [(15000, 20.37, 13.50, 2.39)],
    ("colored_fashion_mnist", "mixed", "inv_senet"): [(15000, 33.70, 30.49, 14.75)],
}
NO_PAPER_ROW = (0, float("nan"), float("nan"), float("nan"))


def paper_row(dataset: str, protocol: str, method: str, n_train: int) -> tuple:
    rows = PAPER.get((dataset, protocol, method), [NO_PAPER_ROW])
    return min(rows, key=lambda row: abs(math.log(row[0] or 1) - math.log(max(n_train, 1))))


SCHEDULES = {
    # A few minutes in all on one CPU thread.
    "reduced": {"n": 3000, "hparams": {"width": 128, "depth": 3, "pca_dim": 200, "epochs": 40, "batch_size": 100,
                                      "dict_size": 300, "top_k": 200, "eval_every": 0, "log_every": 10}},
    # 10,000 biased training images (the paper's smaller N_i), the whole unbiased split (10,000) clustered as in the
    # paper with the public code's 1,000 coefficients per row, 3× the epochs: ~5 minutes per run on one CPU thread.
    "medium": {"n": 0, "n_train": 10000,
               "hparams": {"width": 128, "depth": 3, "pca_dim": 200, "epochs": 120, "batch_size": 100,
                           "dict_size": 300, "top_k": 1000, "eval_every": 0, "log_every": 10}},
    # The paper's scale (SENet public code settings); a GPU.
    "paper": {"n": 0, "hparams": {"width": 1024, "depth": 3, "pca_dim": 500, "epochs": 100, "batch_size": 100,
                                  "dict_size": 10000, "top_k": 1000, "eval_every": 0, "log_every": 50}},
}


class BenchContext:
    """A RunContext that keeps scalars in memory and evaluates with the runner's own metric code."""

    def __init__(self, data, device: torch.device, seed: int, verbose: bool = False):
        self.data, self.device, self.seed, self.verbose = data, device, seed, verbose
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.evaluations: list[tuple[int, dict]] = []
        self._last = ""

    def log(self, step: int, **scalars) -> None:
        for name, value in scalars.items():
            self.scalars.setdefault(name, []).append((step, float(value)))

    def evaluate(self, epoch, embedding, assignment, extra=None, split=None) -> dict:
        data = self.data.split(split) if split else self.data
        emb = None if embedding is None else (embedding.detach().cpu().numpy() if torch.is_tensor(embedding) else embedding)
        result = evaluation_metrics(data, np.asarray(assignment), emb, seed=self.seed)
        result.update(extra or {})
        self.evaluations.append((epoch, result))
        if self.verbose:
            print(f"    epoch {epoch}: acc {result['acc']:.3f} nmi_g {result['nmi_geometric']:.3f} ari {result['ari']:.3f}", flush=True)
        return result

    def check_stop(self) -> None:
        pass

    def progress(self, fraction: float, stage: str = "") -> None:
        if self.verbose and stage != self._last and not stage.startswith("epoch"):
            print(f"    {stage}", flush=True)
        self._last = stage


def with_unbiased_split(data, n_train: int, seed: int):
    """n_train biased 'train' samples (stratified by class and group) and the whole unbiased 'test' split. ood: the
    paper's N_i counts training samples only, and the clustered set stays the unbiased set whatever N_i; mixed: equal
    parts, n_train = the size of the unbiased split."""
    train, test = data.splits["train"], data.splits["test"]
    picked = train[stratified_subset(n_train, data.y[train] * data.n_groups + data.g[train], seed)]
    return data.subset(np.sort(np.concatenate([picked, test])), keep_splits=True)


def decay(series: list[tuple[int, float]]) -> str:
    """First-tenth and last-tenth mean of a logged series: the bias classifiers' accuracy early vs late."""
    if not series:
        return "-"
    values = np.array([v for _, v in series])
    tenth = max(1, len(values) // 10)
    return f"{values[:tenth].mean():.2f}→{values[-tenth:].mean():.2f}"


def run_one(dataset: str, protocol: str, method: str, n: int, n_train: int, hparams: dict, device: torch.device,
            seed: int, verbose: bool) -> dict:
    grey = method == "senet_grey"
    method = "senet" if grey else method
    data = load_dataset(dataset, {"n": n}, data_dir=DATA_DIR)
    if grey:  # the colour removed from the input: what a perfectly bias-invariant SENet could reach at this scale
        data.X = data.X.amax(1, keepdim=True)
    if protocol == "mixed":
        data = with_unbiased_split(data, len(data.splits["test"]), seed)
    elif n_train:
        data = with_unbiased_split(data, n_train, seed)
    seed_everything(seed)
    model = get_method(method)(**{**hparams, "protocol": protocol})
    model.check_data(data)
    ctx = BenchContext(data, device, seed, verbose)
    start = time.perf_counter()
    model.fit(data, ctx)
    seconds = time.perf_counter() - start
    final = ctx.evaluations[-1][1]
    return {"acc": final["acc"], "nmi": final["nmi_geometric"], "ari": final["ari"], "seconds": seconds,
            "n_train": len(model.train_index_),
            "n_cluster": len(model.cluster_index_), "acc_key": decay(ctx.scalars.get("acc_bias_key", [])),
            "acc_query": decay(ctx.scalars.get("acc_bias_query", [])), "chance": ctx.scalars.get("bias_chance", [(0, float("nan"))])[0][1],
            "probe": final.get("probe_acc", float("nan")), "share": final.get("same_group_share", float("nan")),
            "share_chance": final.get("same_group_chance", float("nan"))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="reduced")
    parser.add_argument("--n", type=int, default=None, help="dataset option n (stratified subset; 0 = all)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="ood: keep this many biased training images (stratified) and the whole unbiased split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--datasets", default="colored_mnist")
    parser.add_argument("--protocols", default="ood,mixed")
    parser.add_argument("--methods", default="senet,inv_senet",
                        help="senet, inv_senet, and senet_grey: SENet on the images with their colour removed (the "
                             "ceiling of invariance; not a method of the app)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: one row per seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="override a hyperparameter (both methods)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    schedule = SCHEDULES[args.schedule]
    n = schedule["n"] if args.n is None else args.n
    n_train = schedule.get("n_train", 0) if args.n_train is None else args.n_train
    overrides = dict(item.split("=", 1) for item in args.set)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} thread(s))"
    print(f"schedule {args.schedule}, n = {n or 'all'}, device {device_name}, hparams {schedule['hparams']} {overrides or ''}")
    header = (f"{'dataset':<22} {'protocol':<6} {'method':<10} {'seed':>4} {'N_train':>7} {'N_clu':>6} | {'ACC':>5} {'NMI':>5} {'ARI':>5} | "
              f"{'paper N':>7} {'ACC':>5} {'NMI':>5} {'ARI':>5} | {'seconds':>7} | same-group links (chance) | "
              f"bias acc key / query (chance), probe")
    print(header)
    print("-" * len(header))
    for dataset in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            for method, seed in ((m, int(s)) for m in args.methods.split(",") for s in args.seeds.split(",")):
                hp = {**schedule["hparams"], **overrides}
                if method != "inv_senet":
                    hp = {k: v for k, v in hp.items() if k not in ("lambda_adv", "mu")}
                r = run_one(dataset, protocol, method, n, n_train, hp, device, seed, args.verbose)
                paper = paper_row(dataset, protocol, method, r["n_train"])
                print(f"{dataset:<22} {protocol:<6} {method:<10} {seed:>4} {r['n_train']:>7} {r['n_cluster']:>6} | "
                      f"{100 * r['acc']:5.1f} {100 * r['nmi']:5.1f} {100 * r['ari']:5.1f} | "
                      f"{paper[0]:>7} {paper[1]:5.1f} {paper[2]:5.1f} {paper[3]:5.1f} | {r['seconds']:7.1f} | "
                      f"{r['share']:.2f} ({r['share_chance']:.2f}){'':>13} | "
                      f"{r['acc_key']} / {r['acc_query']} ({r['chance']:.2f}), {r['probe']:.2f}", flush=True)


if __name__ == "__main__":
    main()
