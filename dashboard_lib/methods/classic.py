"""The classic fair-clustering algorithms (dashboard_lib.classic) as methods of the registry: the same form, run store,
metrics and estimators as the deep methods. Each trains on the raw features (N × d; images flattened), in one pass
with no epochs, and reports its own objective as a logged scalar at step 0 beside the shared metrics."""
from __future__ import annotations

import numpy as np

from .. import classic
from ..classic._common import ERR_TOO_LARGE
from ..classic.assignment import MAX_VARIABLES
from ..classic.fairlets import EXACT_MAX_VARIABLES
from ..data import BiasedDataset
from ..params import Param
from .base import Method, RunContext, n_clusters_param
from .kmeans import KMeans


def _features(data: BiasedDataset) -> np.ndarray:
    """The data's features as the float64 N × d matrix the classic algorithms take."""
    return data.X.flatten(1).double().numpy()


class _Classic(Method):
    """What the four classic methods share: they need groups, train in one pass on the features and keep centres."""

    needs_groups = True
    eval_unit = "iteration"
    divergence_settings = ()
    curve_metrics = ()

    def _finish(self, ctx: RunContext, labels: np.ndarray, centres: np.ndarray, **objective: float) -> "_Classic":
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.centers_ = np.asarray(centres, dtype=np.float32)
        self.embedding_ = None  # raw features: the embedding views project X itself
        ctx.log(0, **objective)
        ctx.progress(1.0, "done")
        ctx.evaluate(0, None, self.labels_)
        return self

    # No assign(): a fair assignment is a decision over the whole fitted set (the nearest centre would undo it), so
    # predict() on new points is refused (fit_predict on all the points instead); Fair-Lloyd alone assigns by distance.


class Fairlets(_Classic):
    """Fairlet decomposition, then k-center or k-median on the fairlets (dashboard_lib.classic.fairlets)."""

    id = "fairlets"
    name = "Fairlets"
    summary = ("Splits the data into small fair groups (fairlets), then clusters the fairlets: every cluster is a union "
               "of fairlets, so its balance is at least 1/t by construction. The algorithm that defined Balance.")
    paper = ("Chierichetti, Kumar, Lattanzi and Vassilvitskii, Fair Clustering Through Fairlets, NeurIPS 2017; scalable "
             "decomposition after Backurs et al., Scalable Fair Clustering, ICML 2019")
    guarantee = "Balance ≥ 1/t in every cluster (t = ⌈largest group / smallest group⌉ by default)."
    quick_minutes = 0.1
    params = (
        n_clusters_param(),
        Param("t", 0, kind="int", low=0, high=1000, symbol="t",
              help="Each fairlet: one point of the smallest group and 1 to t points of every other group, so Balance ≥ "
                   "1/t. 0 = the smallest feasible t, ⌈largest group / smallest group⌉.",
              source="Chierichetti et al. 2017, (1, t') fairlets; extended to M groups (ours)"),
        Param("decomposition", "scalable", kind="choice", choices=("scalable", "exact"),
              help="scalable: points matched along a randomly shifted quadtree (Backurs et al.'s tree), O(N log N). "
                   "exact: the least-distance decomposition as a transportation LP (HiGHS), small data only.",
              source="Backurs et al. 2019 (tree); Chierichetti et al. 2017 (min-cost flow)"),
        Param("objective", "k-center", kind="choice", choices=("k-center", "k-median"),
              help="How the fairlets are clustered: k-center (Gonzalez's farthest-first traversal, a 2-approximation on "
                   "the anchors) or k-median (weighted by fairlet size).",
              source="Chierichetti et al. 2017, Sec. 4"),
    )

    def check_data(self, data: BiasedDataset) -> None:
        """Also refuse, before the run starts, an exact decomposition larger than its solver's limit."""
        super().check_data(data)
        if self.hparams["decomposition"] == "exact":
            sizes = np.bincount(data.g)
            pairs = int(sizes.min()) * int(sizes.sum() - sizes.min())
            if pairs > EXACT_MAX_VARIABLES:
                raise ValueError(ERR_TOO_LARGE.format(what="exact fairlet decomposition", size=pairs,
                                                      unit="anchor-point pairs", limit=EXACT_MAX_VARIABLES,
                                                      instead="decomposition 'scalable'"))

    def train(self, data: BiasedDataset, ctx: RunContext) -> "Fairlets":
        hp = self.hparams
        result = classic.fairlet_clustering(_features(data), data.g, self.n_clusters(data), t=hp["t"] or None,
                                            decomposition=hp["decomposition"], objective=hp["objective"],
                                            random_state=ctx.seed)
        self.fairlets_, self.t_ = result.fairlets, result.t
        return self._finish(ctx, result.labels, result.centres, cost=result.cost, fairlet_cost=result.fairlet_cost,
                            t=float(result.t))


class FairAssignment(_Classic):
    """k-means centres, then Bera et al.'s LP assignment with proportion bounds and its rounding
    (dashboard_lib.classic.assignment)."""

    id = "fair_assignment"
    name = "Fair assignment (Bera LP)"
    summary = ("k-means centres, then each point assigned by a linear program so that every cluster's share of every "
               "group stays within [(1 − δ)·r, r / (1 − δ)] of the data's share r, rounded to whole points.")
    paper = "Bera, Chakrabarty, Flores and Negahbani, Fair Algorithms for Clustering, NeurIPS 2019"
    guarantee = ("Each cluster's count of each group within its bounds up to fewer than 2 points (the paper's rounding), "
                 "at no more than the LP's cost.")
    quick_minutes = 0.2
    params = (
        n_clusters_param(),
        Param("delta", 0.2, low=0.0, high=0.99, symbol="δ",
              help="Each cluster's share of group g within [(1 − δ) r_g, r_g / (1 − δ)], r_g the data's share of g. "
                   "0: every cluster mirrors the data exactly; larger: looser.",
              source="Bera et al. 2019, Sec. 5 (their experiments use δ = 0.2)"),
        Param("objective", "k-median", kind="choice", choices=("k-median", "k-means"),
              help="The assignment cost: distance (k-median) or squared distance (k-means) to the centre.",
              source="Bera et al. 2019 (both objectives)"),
    )

    def check_data(self, data: BiasedDataset) -> None:
        """Also refuse, before the run starts, an LP larger than its solver's limit (N × K point-centre pairs)."""
        super().check_data(data)
        pairs = len(data) * self.n_clusters(data)
        if pairs > MAX_VARIABLES:
            raise ValueError(ERR_TOO_LARGE.format(what="fair assignment", size=pairs, unit="point-centre pairs",
                                                  limit=MAX_VARIABLES, instead="fewer points (dataset option n) or clusters"))

    def train(self, data: BiasedDataset, ctx: RunContext) -> "FairAssignment":
        hp = self.hparams
        lower, upper = classic.proportional_bounds(data.g, hp["delta"])
        result = classic.fair_assignment(_features(data), data.g, lower, upper, n_clusters=self.n_clusters(data),
                                         objective=hp["objective"], random_state=ctx.seed)
        return self._finish(ctx, result.labels, result.centres, cost=result.cost, lp_cost=result.lp_cost)


class VariationalFair(_Classic):
    """k-means + λ Σ_k KL(U ‖ P_k) by bound optimisation (dashboard_lib.classic.variational)."""

    id = "variational_fair"
    name = "Variational fair clustering"
    summary = ("k-means with a penalty λ·Σ_k KL(U ‖ P_k) that pulls each cluster's group mix P_k toward the data's U, "
               "optimised by bound updates: λ trades clustering cost for fairness continuously.")
    paper = "Ziko, Yuan, Granger and Ben Ayed, Variational Fair Clustering, AAAI 2021"
    guarantee = ("None by construction: fairness rises with λ within its useful range (λ = 0 is k-means); far past "
                 "it, with L too small, the labels oscillate and clusters empty.")
    quick_minutes = 0.5
    params = (
        n_clusters_param(),
        Param("lam", 2000.0, low=0.0, high=1e9, symbol="λ",
              help="Weight of the fairness term Σ_k KL(U ‖ P_k) against the k-means term (Eq. 3). 0 = k-means. The "
                   "fairness term does not grow with the number of samples and the k-means term does, so the useful λ "
                   "grows with N; too large a λ empties clusters (one cluster is trivially fair). Sweep it: "
                   "docs/CLASSIC.md has the curve on the built-in data.",
              source="Ziko et al. 2021, Eq. 3 (their figures sweep λ from 0 to 10,000); default ours, for the built-in "
                     "data's size"),
        Param("normalize", True, kind="bool",
              help="Standardise each feature, then scale each sample to unit length, before clustering (as the "
                   "public code does); off: the raw features, where λ's useful range depends on the data's scale.",
              source="Ziko et al.'s public code (sklearn scale, then normalizefea)"),
        Param("lipschitz", 2.0, low=1e-6, high=1e6, symbol="L",
              help="The bound's Lipschitz constant (Eqs. 8–10): larger = smaller, steadier steps.",
              source="Ziko et al. 2021 (their code's default L = 2)"),
        Param("max_iter", 50, kind="int", low=1, high=10_000, help="Outer iterations (centre updates) at most."),
        Param("bound_iter", 200, kind="int", low=1, high=100_000, help="Bound updates per outer iteration at most."),
    )

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        """x as the clustering sees it: with normalize, each feature standardised by the fitted data's mean and
        standard deviation (a constant feature becomes 0), then each row scaled to unit length (a zero row stays 0)."""
        if not self.hparams["normalize"]:
            return x
        x = (x - self.mean_) / np.where(self.scale_ > 0, self.scale_, 1.0)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms > 0, norms, 1.0)

    def train(self, data: BiasedDataset, ctx: RunContext) -> "VariationalFair":
        hp = self.hparams
        x = _features(data)
        self.mean_, self.scale_ = x.mean(0), x.std(0)
        result = classic.variational_fair_kmeans(self._prepare(x), data.g, self.n_clusters(data), lam=hp["lam"],
                                                 lipschitz=hp["lipschitz"], max_iter=hp["max_iter"],
                                                 bound_iter=hp["bound_iter"], random_state=ctx.seed)
        # Σ_k KL(U ‖ P_k) is infinite when a cluster lacks a group: logged only when finite (a logged non-finite
        # value means divergence to the run context).
        fairness = {"kl_fairness": result.fairness} if np.isfinite(result.fairness) else {}
        return self._finish(ctx, result.labels, result.centres, kmeans_cost=result.kmeans_cost,
                            iterations=float(result.iterations), **fairness)


class SociallyFairKMeans(_Classic):
    """Fair-Lloyd: the largest group-average k-means cost minimised (dashboard_lib.classic.socially_fair)."""

    id = "socially_fair_kmeans"
    name = "Socially fair k-means"
    summary = ("Lloyd's k-means whose centre step minimises the worst group's average cost, not the overall cost: "
               "fair in what each group pays, not in how groups mix across clusters.")
    paper = "Ghadiri, Samadi and Vempala, Socially Fair k-Means Clustering, FAccT 2021 (Fair-Lloyd)"
    guarantee = "The largest group-average k-means cost never increases from one iteration to the next."
    quick_minutes = 0.1
    params = (
        n_clusters_param(),
        Param("max_iter", 100, kind="int", low=1, high=10_000, help="Fair-Lloyd iterations at most."),
    )

    def train(self, data: BiasedDataset, ctx: RunContext) -> "SociallyFairKMeans":
        result = classic.socially_fair_kmeans(_features(data), data.g, self.n_clusters(data),
                                              max_iter=self.hparams["max_iter"], random_state=ctx.seed)
        return self._finish(ctx, result.labels, result.centres, worst_group_cost=float(result.group_costs.max()),
                            best_group_cost=float(result.group_costs.min()), iterations=float(result.iterations))

    assign = KMeans.assign  # Lloyd's assignment step, which Fair-Lloyd keeps: the nearest fitted centre
