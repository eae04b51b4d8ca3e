"""Clustering, fairness and debiasing metrics as the fair-clustering papers define them.

Every metric is a pure function of integer label arrays (cluster, class, group).
Labels may be any integers; they are re-coded to 0..n-1, so cluster ids that are
never used are ignored. Count tables are built once with ``np.bincount`` and
every number is derived from them, which keeps ``evaluate`` fast on 1e6 samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.special import xlogy
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ERR_NOT_1D = (
    "{name} must be a 1-D array with one label per sample, got shape {shape}: "
    "flatten it, or take the argmax of soft assignments first"
)
ERR_EMPTY = "{name} is empty: pass at least one sample"
ERR_NAN = "{name} contains NaN or infinite values: drop or impute those samples first"
ERR_NOT_INTEGER = (
    "{name} must hold integer labels, found {found}: map categories to integers "
    "first, e.g. np.unique(labels, return_inverse=True)[1]"
)
ERR_LENGTH = (
    "{first} and {second} have different lengths ({n_first} vs {n_second}): "
    "pass one label per sample"
)
ERR_SINGLE_GROUP = (
    "{name} holds a single group ({group}): fairness metrics compare groups, "
    "so pass at least two distinct group labels"
)
ERR_AVERAGE = "average must be 'arithmetic' or 'geometric', got {average!r}"
ERR_BETA = "beta must be a finite number > 0, got {beta!r}"
ERR_SCORE = (
    "{name} must be a score in [0, 1], got {value!r}: pass fractions, not percentages"
)
ERR_EMBEDDING_SHAPE = (
    "embedding must be a 2-D array (n_samples, n_features), got shape {shape}: "
    "reshape a 1-D feature with embedding[:, None]"
)
ERR_TEST_SIZE = "test_size must be in (0, 1), got {test_size!r}"
ERR_PROBE_GROUP_SIZE = (
    "group {group} has only 1 sample: a stratified held-out split needs at least "
    "2 per group; drop or merge rare groups"
)
ERR_PROBE_TOO_FEW = (
    "max_samples={max_samples} and test_size={test_size} leave {n_train} training "
    "and {n_test} held-out samples for {n_groups} groups: each split needs one "
    "sample per group; raise max_samples or test_size"
)

_AVERAGES = ("arithmetic", "geometric")


@dataclass(frozen=True)
class EntropyResult:
    """Per-group H(C | G=g) (ordered by sorted group label) and their mean."""

    per_group: np.ndarray
    mean: float


@dataclass(frozen=True)
class ProbeResult:
    """Held-out accuracy of a group probe beside the held-out majority-group rate."""

    accuracy: float
    majority_rate: float
    n_train: int
    n_test: int


METRIC_DEFINITIONS: dict[str, dict] = {
    "acc": {
        "label": "ACC",
        "definition": "share of samples whose cluster is mapped to their class by the "
        "best one-to-one cluster-to-class matching (Hungarian algorithm); unmatched "
        "clusters count as wrong; DFC, FCMI, Inv-SENnet",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "nmi": {
        "label": "NMI (arithmetic)",
        "definition": "I(Y; C) / ((H(Y) + H(C)) / 2), scikit-learn "
        "normalized_mutual_info_score with average_method='arithmetic'; DFC, FCMI",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "nmi_geometric": {
        "label": "NMI (geometric)",
        "definition": "I(Y; C) / sqrt(H(Y) H(C)), scikit-learn "
        "normalized_mutual_info_score with average_method='geometric'; SENet, Inv-SENnet",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "ari": {
        "label": "ARI",
        "definition": "Rand index over sample pairs, adjusted for chance "
        "(scikit-learn adjusted_rand_score); 0 = random labelling; Inv-SENnet",
        "higher_is_better": True,
        "range": "[-0.5, 1]",
    },
    "balance": {
        "label": "Balance",
        "definition": "min over clusters of (smallest group count / largest group "
        "count) in the cluster, raw counts; DFC/FCMI definition; 0 when a cluster "
        "misses a group, 1 = perfectly balanced, ceiling set by the data's group mix",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "balance_ceiling": {
        "label": "Balance ceiling",
        "definition": "smallest group size / largest group size in the data, the "
        "best Balance any clustering can reach (DFC Table 1 'Max of Bal.'; "
        "MNIST-USPS 7291/60000 = 0.12)",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "entropy": {
        "label": "Entropy (mean over groups)",
        "definition": "mean over groups g of H(C | G=g) = -sum_c p(c|g) ln p(c|g), "
        "natural log; FCMI definition; maximum ln K when every group spreads evenly "
        "over K clusters",
        "higher_is_better": True,
        "range": "[0, ln K]",
    },
    "entropy_per_group": {
        "label": "Entropy per group",
        "definition": "H(C | G=g) = -sum_c p(c|g) ln p(c|g) for each group g, "
        "natural log; DFC definition; maximum ln K",
        "higher_is_better": True,
        "range": "[0, ln K]",
    },
    "mnce": {
        "label": "MNCE",
        "definition": "min over clusters c of H(G | C=c) / H(G) (minimal normalised "
        "conditional entropy); FCMI; 1 = every cluster mirrors the population's "
        "group mix, 0 = some cluster holds a single group",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "profile_agreement": {
        "label": "Profile agreement",
        "definition": "size-weighted mean over clusters c of the mean over pairs of groups (g, h) of the cosine "
        "similarity of c's profiles in g and in h; a profile d_gcj = (mean of feature j over group g's samples in c "
        "− its mean over g's samples in the other clusters) / sd of j within g. 1 = each cluster stands apart on the "
        "same features, in the same direction, in every group; near 0 = the clusters mean different things in "
        "different groups (which Balance and MNCE, counts only, cannot see); this lab's diagnostic, not a paper's",
        "higher_is_better": True,
        "range": "[-1, 1]",
    },
    "f_beta": {
        "label": "F_beta",
        "definition": "(1 + beta^2) NMI MNCE / (beta^2 NMI + MNCE), beta = 1 by "
        "default, NMI arithmetic; FCMI's trade-off between cluster quality and fairness",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "probe_acc": {
        "label": "Bias-probe accuracy",
        "definition": "held-out accuracy of a freshly trained logistic regression "
        "predicting the group from the embedding, shown beside the majority-group "
        "rate (chance); DFC Table 4; lower = the embedding hides the group better",
        "higher_is_better": False,
        "range": "[0, 1]; chance = the majority rate",
    },
    "disc_acc": {
        "label": "DFC discriminator accuracy",
        "definition": "share of the training batches' samples (b of each group) whose group DFC's "
        "discriminator predicts correctly from the soft assignment q, averaged since the last evaluation; "
        "chance is 1/M (disc_chance); DFC Eq. 2; a fair run keeps it near chance",
        "higher_is_better": False,
        "range": "[0, 1]; chance = 1/M",
    },
    "acc_bias_key": {
        "label": "Key bias-classifier accuracy",
        "definition": "accuracy of the bias classifier g(u) reading the key embedding on its last "
        "training batch, predicting the group; chance is the majority-group rate (bias_chance); "
        "Inv-SENnet Eq. 9-12; Inv-SENnet pushes it toward chance, SENet's watching classifier stays high",
        "higher_is_better": False,
        "range": "[0, 1]; chance = the majority-group rate",
    },
    "acc_bias_query": {
        "label": "Query bias-classifier accuracy",
        "definition": "accuracy of the bias classifier g'(v) reading the query embedding on its last "
        "training batch, predicting the group; chance is the majority-group rate (bias_chance); "
        "Inv-SENnet Eq. 9-12",
        "higher_is_better": False,
        "range": "[0, 1]; chance = the majority-group rate",
    },
    "same_group_share": {
        "label": "Same-group link share",
        "definition": "share of the self-expression coefficient mass sum |c_ij| of the clustered "
        "samples that links two samples of the same group (g_i = g_j), shown beside its chance "
        "value sum_g p_g^2 (links blind to the group); SENet, Inv-SENnet; Inv-SENnet aims for "
        "coefficients invariant to the group, i.e. chance",
        "higher_is_better": False,
        "range": "[0, 1]; chance = sum over groups of the squared group share",
    },
    "min_class_recall": {
        "label": "Worst-class recall",
        "definition": "min over classes of the share of the class's samples in the cluster "
        "matched to it by ACC's Hungarian one-to-one map; StatDEC (imbalanced data: the "
        "small classes are the point)",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "tail_recall": {
        "label": "Tail-class recall",
        "definition": "mean over the smaller half of the classes (by sample count) of the "
        "recall of the cluster matched to each by ACC's Hungarian map; StatDEC",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "cluster_balance": {
        "label": "Cluster balance (representation ratio)",
        "definition": "min over clusters c and groups g of min(r, 1/r), r = (n_cg / n_c) / (n_g / n): "
        "each group's share of the cluster against its share of the data; HolisticAI's "
        "cluster_balance, extended from 2 groups to any number; 1 = every cluster mirrors the "
        "population's group mix, 0 = some cluster misses a group",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "min_cluster_ratio": {
        "label": "Minimum cluster ratio",
        "definition": "min over clusters c holding the largest group b of n_ca / n_cb, a = the "
        "smallest group of the data, b = the largest; HolisticAI's min_cluster_ratio with "
        "group_a the minority; at most n_a / n_b in a clustering that mirrors the data",
        "higher_is_better": True,
        "range": "[0, inf); mirror of the data = n_a / n_b",
    },
    "cluster_tv": {
        "label": "Cluster-distribution total variation (worst group)",
        "definition": "max over groups g of TV(P(C | g), P(C)) = 1/2 sum_c |p(c|g) - p(c)|: how "
        "differently a group spreads over the clusters than the whole population; HolisticAI's "
        "cluster_dist_l1 compares two groups with each other, here each group with the population",
        "higher_is_better": False,
        "range": "[0, 1]",
    },
    "cluster_kl": {
        "label": "Cluster-distribution KL divergence (worst group)",
        "definition": "max over groups g of KL(P(C | g) || P(C)) = sum_c p(c|g) ln(p(c|g) / p(c)), "
        "natural log; HolisticAI's cluster_dist_kl, each group against the population (finite, "
        "since p(c) >= p(g) p(c|g))",
        "higher_is_better": False,
        "range": "[0, ln(1 / min_g p(g))]",
    },
    "social_fairness_ratio": {
        "label": "Social fairness ratio",
        "definition": "max over groups / min over groups of the group's mean Euclidean distance "
        "from each sample to the centre (mean embedding) of its assigned cluster; HolisticAI's "
        "social_fairness_ratio (d_a / d_b) made symmetric for any number of groups; 1 = every "
        "group is served by its centres equally well",
        "higher_is_better": False,
        "range": "[1, inf)",
    },
    "silhouette_diff": {
        "label": "Silhouette difference",
        "definition": "max over groups minus min over groups of the group's mean silhouette "
        "(b - a) / max(a, b) of its samples, Euclidean, on a stratified subsample of at most 3,000 "
        "rows; HolisticAI's silhouette_diff made symmetric for any number of groups; 0 = every group "
        "is clustered equally cleanly",
        "higher_is_better": False,
        "range": "[0, 2]",
    },
    "avg_acc": {
        "label": "Average accuracy",
        "definition": "share of all samples classified correctly, so large groups "
        "weigh more; ClusterFix, BPA, GroupDRO report it beside the group metrics",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "unbiased_acc": {
        "label": "Unbiased accuracy",
        "definition": "mean over the (class y, bias b) groups present of the "
        "accuracy within the group, every group weighted equally; ClusterFix, BPA",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
    "worst_group_acc": {
        "label": "Worst-group accuracy",
        "definition": "min over the (class y, bias b) groups present of the "
        "accuracy within the group; ClusterFix, BPA, GroupDRO",
        "higher_is_better": True,
        "range": "[0, 1]",
    },
}


def _labels(x, name: str) -> np.ndarray:
    """Validate one label array and return it as int64."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(ERR_NOT_1D.format(name=name, shape=arr.shape))
    if arr.size == 0:
        raise ValueError(ERR_EMPTY.format(name=name))
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(ERR_NAN.format(name=name))
        fractional = arr != np.trunc(arr)
        if fractional.any():
            found = f"fractional values such as {arr[fractional][0].item()!r}"
            raise ValueError(ERR_NOT_INTEGER.format(name=name, found=found))
    elif arr.dtype.kind not in "biu":
        found = f"dtype {arr.dtype}"
        raise ValueError(ERR_NOT_INTEGER.format(name=name, found=found))
    return arr.astype(np.int64, copy=False)


def _check_lengths(first: str, a: np.ndarray, second: str, b) -> None:
    """Raise ERR_LENGTH unless both arrays hold the same number of samples."""
    if len(a) != len(b):
        raise ValueError(
            ERR_LENGTH.format(first=first, second=second, n_first=len(a), n_second=len(b))
        )


def _codes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map int labels to codes 0..n-1 in sorted label order; return (codes, unique labels)."""
    lo, hi = int(x.min()), int(x.max())
    # A bincount lookup table beats np.unique's sort when the label range is compact.
    if hi - lo < 2 * x.size + 1024:
        shifted = x - lo if lo else x
        present = np.bincount(shifted, minlength=hi - lo + 1) > 0
        uniques = np.flatnonzero(present) + lo
        if present.all():
            return shifted, uniques
        return (np.cumsum(present) - 1)[shifted], uniques
    uniques, codes = np.unique(x, return_inverse=True)
    return codes, uniques


def _table(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> np.ndarray:
    """Count table n[a, b] from two code arrays, in one bincount pass."""
    return np.bincount(a * n_b + b, minlength=n_a * n_b).reshape(n_a, n_b)


def _pair_table(a, name_a: str, b, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate two label arrays; return their count table and b's unique labels."""
    a = _labels(a, name_a)
    b = _labels(b, name_b)
    _check_lengths(name_a, a, name_b, b)
    a_codes, a_uniques = _codes(a)
    b_codes, b_uniques = _codes(b)
    return _table(a_codes, len(a_uniques), b_codes, len(b_uniques)), b_uniques


def _fairness_table(y_pred, groups) -> np.ndarray:
    """Cluster x group count table over non-empty clusters; needs two groups or more."""
    table, group_uniques = _pair_table(y_pred, "y_pred", groups, "groups")
    if len(group_uniques) < 2:
        raise ValueError(ERR_SINGLE_GROUP.format(name="groups", group=group_uniques[0]))
    return table


def _label_entropy(counts: np.ndarray) -> float:
    """Entropy of a labelling from its counts, computed exactly as scikit-learn does."""
    if counts.size == 1:
        return 0.0
    total = counts.sum()
    return float(-np.sum((counts / total) * (np.log(counts) - math.log(total))))


def _accuracy_from_table(table: np.ndarray) -> float:
    """Hungarian-matched share of samples; rectangular tables leave clusters unmatched."""
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def _nmi_from_table(table: np.ndarray, average: str) -> float:
    """NMI from a class x cluster table, reproducing normalized_mutual_info_score."""
    n_classes, n_clusters = table.shape
    # scikit-learn's convention: two single-label partitions agree perfectly.
    if n_classes == n_clusters == 1:
        return 1.0
    mi = mutual_info_score(None, None, contingency=table)
    if mi == 0:
        return 0.0
    h_true = _label_entropy(table.sum(axis=1))
    h_pred = _label_entropy(table.sum(axis=0))
    if average == "arithmetic":
        normalizer = np.mean([h_true, h_pred])
    else:
        normalizer = np.sqrt(h_true * h_pred)
    return float(mi / normalizer)


def _ari_from_table(table: np.ndarray) -> float:
    """ARI from a class x cluster table via scikit-learn's pair confusion counts."""
    n = int(table.sum())
    sum_squares = int((table**2).sum())
    fp = int((table @ table.sum(axis=0)).sum()) - sum_squares
    fn = int((table.T @ table.sum(axis=1)).sum()) - sum_squares
    tp = sum_squares - n
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    # Python ints: tp * tn reaches 1e24 at 1e6 samples, beyond int64.
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


# --- cluster x group tables, batched: shape (..., K, G); clusters with no sample (a bootstrap resample can empty
# one) are ignored, as the label-array functions ignore cluster ids never used --------------------------------------
def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


def balance_from_tables(tables: np.ndarray) -> np.ndarray:
    """Balance (DFC, FCMI): min over non-empty clusters of min_g n_cg / max_g n_cg."""
    t = np.asarray(tables, dtype=np.float64)
    ratio = np.where(t.sum(-1) > 0, _safe_divide(t.min(-1), t.max(-1)), np.inf)
    return ratio.min(-1)


def entropy_from_tables(tables: np.ndarray) -> np.ndarray:
    """H(C | G=g) = -sum_c p(c|g) ln p(c|g) per group (DFC), shape (..., G); a group with no sample gets 0."""
    t = np.asarray(tables, dtype=np.float64)
    p = _safe_divide(t, t.sum(-2, keepdims=True))
    return 0.0 - xlogy(p, p).sum(-2)  # 0.0 - x, not -x: no -0.0


def mnce_from_tables(tables: np.ndarray) -> np.ndarray:
    """MNCE (FCMI): min over non-empty clusters of H(G | C=c) / H(G)."""
    t = np.asarray(tables, dtype=np.float64)
    p_g = _safe_divide(t.sum(-2), t.sum((-2, -1))[..., None])
    h_g = -xlogy(p_g, p_g).sum(-1)
    p_g_given_c = _safe_divide(t, t.sum(-1, keepdims=True))
    h_g_given_c = np.where(t.sum(-1) > 0, -xlogy(p_g_given_c, p_g_given_c).sum(-1), np.inf)
    return _safe_divide(h_g_given_c.min(-1), h_g) + 0.0  # + 0.0 turns the -0.0 of an empty sum into 0.0


def cluster_balance_from_tables(tables: np.ndarray) -> np.ndarray:
    """HolisticAI's cluster balance for any number of groups: min over non-empty clusters c and groups g present of
    min(r, 1/r), r = (n_cg / n_c) / (n_g / n)."""
    t = np.asarray(tables, dtype=np.float64)
    share_in_cluster = _safe_divide(t, t.sum(-1, keepdims=True))
    share_overall = _safe_divide(t.sum(-2, keepdims=True), t.sum((-2, -1), keepdims=True)[..., :1])
    r = _safe_divide(share_in_cluster, share_overall)
    both = np.minimum(r, _safe_divide(np.ones_like(r), r))
    valid = (t.sum(-1, keepdims=True) > 0) & (share_overall > 0)
    return np.where(valid, both, np.inf).min((-2, -1))


def min_cluster_ratio_from_tables(tables: np.ndarray, minority: int, majority: int) -> np.ndarray:
    """HolisticAI's minimum cluster ratio: min over clusters holding the majority group of n_c,minority / n_c,majority."""
    t = np.asarray(tables, dtype=np.float64)
    a, b = t[..., minority], t[..., majority]
    return np.where(b > 0, _safe_divide(a, b), np.inf).min(-1)


def cluster_tv_from_tables(tables: np.ndarray) -> np.ndarray:
    """TV(P(C | g), P(C)) = 1/2 sum_c |p(c|g) - p(c)| per group, shape (..., G)."""
    t = np.asarray(tables, dtype=np.float64)
    p_c_given_g = _safe_divide(t, t.sum(-2, keepdims=True))
    p_c = _safe_divide(t.sum(-1), t.sum((-2, -1))[..., None])[..., None]
    return 0.5 * np.abs(p_c_given_g - p_c).sum(-2)


def cluster_kl_from_tables(tables: np.ndarray) -> np.ndarray:
    """KL(P(C | g) || P(C)) = sum_c p(c|g) ln(p(c|g) / p(c)) per group, natural log, shape (..., G)."""
    t = np.asarray(tables, dtype=np.float64)
    p_c_given_g = _safe_divide(t, t.sum(-2, keepdims=True))
    p_c = _safe_divide(t.sum(-1), t.sum((-2, -1))[..., None])[..., None]
    return (xlogy(p_c_given_g, p_c_given_g) - xlogy(p_c_given_g, np.broadcast_to(p_c, p_c_given_g.shape))).sum(-2) + 0.0


def _balance_from_table(table: np.ndarray) -> float:
    """Balance from a cluster x group table."""
    return float(balance_from_tables(table))


def _entropy_from_table(table: np.ndarray) -> EntropyResult:
    """H(C | G=g) per column of a cluster x group table, natural log."""
    per_group = entropy_from_tables(table)
    per_group.setflags(write=False)
    return EntropyResult(per_group=per_group, mean=float(per_group.mean()))


def _mnce_from_table(table: np.ndarray) -> float:
    """min_c H(G | C=c) / H(G) from a cluster x group table with two groups or more."""
    return float(mnce_from_tables(table))


def _check_beta(beta) -> None:
    """Raise ERR_BETA unless beta is a finite number > 0."""
    if not (isinstance(beta, (int, float, np.number)) and math.isfinite(beta) and beta > 0):
        raise ValueError(ERR_BETA.format(beta=beta))


def clustering_accuracy(y_true, y_pred) -> float:
    """ACC: share of samples matched by the best one-to-one cluster-to-class map (Hungarian; DFC, FCMI)."""
    table, _ = _pair_table(y_true, "y_true", y_pred, "y_pred")
    return _accuracy_from_table(table)


def nmi(y_true, y_pred, average: str = "arithmetic") -> float:
    """NMI = I(Y; C) / mean(H(Y), H(C)), arithmetic (DFC, FCMI) or geometric (SENet) mean, as scikit-learn."""
    if average not in _AVERAGES:
        raise ValueError(ERR_AVERAGE.format(average=average))
    table, _ = _pair_table(y_true, "y_true", y_pred, "y_pred")
    return _nmi_from_table(table, average)


def ari(y_true, y_pred) -> float:
    """ARI: Rand index adjusted for chance, equal to scikit-learn's adjusted_rand_score."""
    table, _ = _pair_table(y_true, "y_true", y_pred, "y_pred")
    return _ari_from_table(table)


def balance(y_pred, groups) -> float:
    """Balance = min over non-empty clusters of min_g n_cg / max_g n_cg, raw counts (DFC, FCMI)."""
    return _balance_from_table(_fairness_table(y_pred, groups))


def balance_ceiling(groups) -> float:
    """Best Balance any clustering can reach: min_g n_g / max_g n_g (DFC Table 1, 'Max of Bal.')."""
    g = _labels(groups, "groups")
    codes, uniques = _codes(g)
    if len(uniques) < 2:
        raise ValueError(ERR_SINGLE_GROUP.format(name="groups", group=uniques[0]))
    sizes = np.bincount(codes)
    return float(sizes.min() / sizes.max())


def entropy(y_pred, groups) -> EntropyResult:
    """Per-group H(C | G=g) = -sum_c p(c|g) ln p(c|g) (DFC) and their mean (FCMI)."""
    return _entropy_from_table(_fairness_table(y_pred, groups))


def mnce(y_pred, groups) -> float:
    """MNCE = min over non-empty clusters of H(G | C=c) / H(G) (FCMI)."""
    return _mnce_from_table(_fairness_table(y_pred, groups))


def balance_per_cluster(y_pred, groups, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster present: (cluster ids, group counts, ratio min_g n_cg / max_g n_cg). Balance is the minimum ratio;
    the cluster that sets it is clusters[ratio.argmin()] (named beside Balance on the Monitor and in the lesson)."""
    assignment = np.asarray(y_pred, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    clusters, codes = np.unique(assignment, return_inverse=True)
    counts = np.zeros((len(clusters), n_groups), dtype=np.int64)
    np.add.at(counts, (codes, groups), 1)
    ratio = counts.min(1) / np.maximum(counts.max(1), 1)
    return clusters, counts, ratio


def cluster_balance(y_pred, groups) -> float:
    """Cluster balance (HolisticAI), any number of groups: min_{c,g} min(r, 1/r), r = (n_cg / n_c) / (n_g / n)."""
    return float(cluster_balance_from_tables(_fairness_table(y_pred, groups)))


def min_cluster_ratio(y_pred, groups) -> float:
    """Minimum cluster ratio (HolisticAI): min over clusters of n_c,a / n_c,b, a the smallest group, b the largest."""
    table = _fairness_table(y_pred, groups)
    minority, majority = minority_majority(table.sum(axis=0))
    return float(min_cluster_ratio_from_tables(table, minority, majority))


def minority_majority(group_sizes) -> tuple[int, int]:
    """Positions of the smallest and the largest group; two different ones even when all sizes tie."""
    order = np.argsort(np.asarray(group_sizes), kind="stable")
    return int(order[0]), int(order[-1])


def cluster_distribution_tv(y_pred, groups) -> np.ndarray:
    """Per group (sorted label order): TV(P(C | g), P(C)) = 1/2 sum_c |p(c|g) - p(c)|."""
    return cluster_tv_from_tables(_fairness_table(y_pred, groups))


def cluster_distribution_kl(y_pred, groups) -> np.ndarray:
    """Per group (sorted label order): KL(P(C | g) || P(C)), natural log."""
    return cluster_kl_from_tables(_fairness_table(y_pred, groups))


def _features(features, n: int) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(ERR_EMBEDDING_SHAPE.format(shape=x.shape))
    if not np.isfinite(x).all():
        raise ValueError(ERR_NAN.format(name="embedding"))
    if len(x) != n:
        raise ValueError(ERR_LENGTH.format(first="embedding", second="y_pred", n_first=len(x), n_second=n))
    return x


def centre_distances(features, y_pred) -> np.ndarray:
    """Each sample's Euclidean distance to the centre (mean) of its assigned cluster."""
    pred = _labels(y_pred, "y_pred")
    x = _features(features, len(pred))
    codes, uniques = _codes(pred)
    centres = np.zeros((len(uniques), x.shape[1]))
    np.add.at(centres, codes, x)
    centres /= np.bincount(codes)[:, None]
    return np.sqrt(((x - centres[codes]) ** 2).sum(1))


def social_fairness_ratio(features, y_pred, groups) -> tuple[float, np.ndarray]:
    """(max_g d_g / min_g d_g, d per group), d_g = mean distance of group g's samples to their assigned centre."""
    pred = _labels(y_pred, "y_pred")
    g = _labels(groups, "groups")
    _check_lengths("y_pred", pred, "groups", g)
    codes, uniques = _codes(g)
    if len(uniques) < 2:
        raise ValueError(ERR_SINGLE_GROUP.format(name="groups", group=uniques[0]))
    d = centre_distances(features, pred)
    per_group = np.bincount(codes, weights=d) / np.bincount(codes)
    return float(_safe_divide(per_group.max(), per_group.min())), per_group


def silhouette_by_group(features, y_pred, groups, *, max_samples: int = 3000, random_state: int = 0) -> tuple[float, np.ndarray]:
    """(max_g - min_g of the group's mean silhouette, mean silhouette per group), on a stratified subsample of at most
    max_samples rows (silhouettes cost O(n^2)); 0 per group where the subsample holds a single cluster."""
    from sklearn.metrics import silhouette_samples

    pred = _labels(y_pred, "y_pred")
    g = _labels(groups, "groups")
    _check_lengths("y_pred", pred, "groups", g)
    x = _features(features, len(pred))
    codes, uniques = _codes(g)
    if len(uniques) < 2:
        raise ValueError(ERR_SINGLE_GROUP.format(name="groups", group=uniques[0]))
    index = np.arange(len(pred))
    if len(pred) > max_samples:
        index, _ = train_test_split(index, train_size=max_samples, stratify=codes if np.bincount(codes).min() >= 2 else None,
                                    random_state=random_state)
    if len(np.unique(pred[index])) < 2:
        return 0.0, np.zeros(len(uniques))
    s = silhouette_samples(x[index], pred[index])
    sums = np.bincount(codes[index], weights=s, minlength=len(uniques))
    counts = np.bincount(codes[index], minlength=len(uniques))
    per_group = _safe_divide(sums, counts.astype(np.float64))
    present = counts > 0
    return float(per_group[present].max() - per_group[present].min()), per_group


def cluster_profiles(features, y_pred, groups) -> np.ndarray:
    """d[g, c, j]: within group g, (mean of feature j over g's samples in cluster c − its mean over g's samples in the
    other clusters) / the feature's standard deviation over g's samples (population sd). What sets cluster c apart
    within group g, in that group's standard deviations; groups and clusters in sorted label order. NaN where g has
    no sample in c or none outside it; 0 for a feature constant within g."""
    pred = _labels(y_pred, "y_pred")
    g = _labels(groups, "groups")
    _check_lengths("y_pred", pred, "groups", g)
    x = _features(features, len(pred))
    c_codes, clusters = _codes(pred)
    g_codes, group_ids = _codes(g)
    n_g, n_c = len(group_ids), len(clusters)
    cell = g_codes * n_c + c_codes
    counts = np.bincount(cell, minlength=n_g * n_c).reshape(n_g, n_c).astype(np.float64)
    ones = np.ones(len(x))
    members = sparse.csr_matrix((ones, (cell, np.arange(len(x)))), shape=(n_g * n_c, len(x)))  # cell × sample
    sums = (members @ x).reshape(n_g, n_c, -1)
    group_n, group_sum = counts.sum(1), sums.sum(1)
    centred = x - (group_sum / group_n[:, None])[g_codes]  # two passes: exact for features far from 0
    in_group = sparse.csr_matrix((ones, (g_codes, np.arange(len(x)))), shape=(n_g, len(x)))
    sd = np.sqrt((in_group @ centred ** 2) / group_n[:, None])
    inside, outside = counts, group_n[:, None] - counts
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = sums / inside[:, :, None]
        mean_out = (group_sum[:, None, :] - sums) / outside[:, :, None]
        d = np.where(sd[:, None, :] > 0, (mean_in - mean_out) / sd[:, None, :], 0.0)
    d[(inside == 0) | (outside == 0)] = np.nan
    return d


def profile_agreement(features, y_pred, groups) -> tuple[float, np.ndarray]:
    """(agreement, per cluster): for each cluster c, the mean over pairs of groups (g, h) of the cosine similarity of
    the profiles d[g, c, :] and d[h, c, :] (cluster_profiles), leaving out pairs where either is undefined or all 0;
    the agreement is the mean over the clusters that have a value, weighted by cluster size. 1: every cluster differs
    from the others in the same features, in the same direction, within every group; near 0: the clusters mean
    different things in different groups, which Balance and MNCE (counts only) cannot see. NaN when no cluster has
    a value."""
    pred = _labels(y_pred, "y_pred")
    return agreement_from_profiles(cluster_profiles(features, pred, groups), np.bincount(_codes(pred)[0]))


def agreement_from_profiles(d: np.ndarray, cluster_sizes) -> tuple[float, np.ndarray]:
    """profile_agreement from profiles already computed (cluster_profiles) and each cluster's size."""
    d = np.asarray(d, dtype=np.float64)
    n_g, n_c = d.shape[:2]
    norms = np.linalg.norm(d, axis=2)
    usable = np.isfinite(norms) & (norms > 0)
    per_cluster = np.full(n_c, np.nan)
    for c in range(n_c):
        cosines = [float(d[a, c] @ d[b, c] / (norms[a, c] * norms[b, c]))
                   for a in range(n_g) for b in range(a + 1, n_g) if usable[a, c] and usable[b, c]]
        if cosines:
            per_cluster[c] = float(np.mean(cosines))
    has = np.isfinite(per_cluster)
    if not has.any():
        return float("nan"), per_cluster
    return float(np.average(per_cluster[has], weights=np.asarray(cluster_sizes, dtype=np.float64)[has])), per_cluster


def f_beta(nmi_value: float, mnce_value: float, beta: float = 1.0) -> float:
    """F_beta = (1 + b^2) NMI MNCE / (b^2 NMI + MNCE), 0 when both are 0 (FCMI)."""
    _check_beta(beta)
    for name, value in (("nmi_value", nmi_value), ("mnce_value", mnce_value)):
        if not (isinstance(value, (int, float, np.number)) and 0 <= value <= 1):
            raise ValueError(ERR_SCORE.format(name=name, value=value))
    if nmi_value == 0 and mnce_value == 0:
        return 0.0
    b2 = beta * beta
    return float((1 + b2) * nmi_value * mnce_value / (b2 * nmi_value + mnce_value))


def group_accuracies(y_true, y_pred, bias) -> dict[tuple[int, int], float]:
    """Accuracy within each (class y, bias b) group present (ClusterFix, BPA, GroupDRO), keyed (y, b)."""
    y = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    b = _labels(bias, "bias")
    _check_lengths("y_true", y, "y_pred", pred)
    _check_lengths("y_true", y, "bias", b)
    y_codes, y_uniques = _codes(y)
    b_codes, b_uniques = _codes(b)
    cells = y_codes * len(b_uniques) + b_codes
    size = len(y_uniques) * len(b_uniques)
    totals = np.bincount(cells, minlength=size)
    correct = np.bincount(cells, weights=pred == y, minlength=size)
    return {
        (int(y_uniques[i // len(b_uniques)]), int(b_uniques[i % len(b_uniques)])): float(
            correct[i] / totals[i]
        )
        for i in np.flatnonzero(totals)
    }


def average_accuracy(y_true, y_pred) -> float:
    """Average accuracy: share of all samples classified correctly (ClusterFix's 'average')."""
    y = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    _check_lengths("y_true", y, "y_pred", pred)
    return float(np.mean(pred == y))


def unbiased_accuracy(y_true, y_pred, bias) -> float:
    """Unbiased accuracy: mean over the (y, b) groups present of the group accuracy (ClusterFix, BPA)."""
    return float(np.mean(list(group_accuracies(y_true, y_pred, bias).values())))


def worst_group_accuracy(y_true, y_pred, bias) -> float:
    """Worst-group accuracy: min over the (y, b) groups present of the group accuracy (GroupDRO)."""
    return min(group_accuracies(y_true, y_pred, bias).values())


def probe_accuracy(
    embedding, groups, *, test_size: float = 0.3, random_state: int = 0, max_samples: int = 20000
) -> ProbeResult:
    """Held-out accuracy of a fresh probe predicting the group from the embedding (DFC Table 4)."""
    x = np.asarray(embedding, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(ERR_EMBEDDING_SHAPE.format(shape=x.shape))
    if x.shape[0] == 0:
        raise ValueError(ERR_EMPTY.format(name="embedding"))
    if not np.isfinite(x).all():
        raise ValueError(ERR_NAN.format(name="embedding"))
    g = _labels(groups, "groups")
    _check_lengths("embedding", x, "groups", g)
    if not 0 < test_size < 1:
        raise ValueError(ERR_TEST_SIZE.format(test_size=test_size))
    codes, uniques = _codes(g)
    if len(uniques) < 2:
        raise ValueError(ERR_SINGLE_GROUP.format(name="groups", group=uniques[0]))
    sizes = np.bincount(codes)
    if sizes.min() < 2:
        raise ValueError(ERR_PROBE_GROUP_SIZE.format(group=uniques[sizes.argmin()]))
    # One stratified split both subsamples (for speed) and holds out the test set.
    n_used = min(len(g), max_samples)
    n_test = round(n_used * test_size)
    n_train = n_used - n_test
    if min(n_train, n_test) < len(uniques):
        raise ValueError(
            ERR_PROBE_TOO_FEW.format(
                max_samples=max_samples, test_size=test_size,
                n_train=n_train, n_test=n_test, n_groups=len(uniques),
            )
        )
    x_train, x_test, g_train, g_test = train_test_split(
        x, codes, train_size=n_train, test_size=n_test, stratify=codes, random_state=random_state
    )
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(x_train, g_train)
    return ProbeResult(
        accuracy=float(probe.score(x_test, g_test)),
        majority_rate=float(np.bincount(g_test).max() / n_test),
        n_train=n_train,
        n_test=n_test,
    )


def evaluate(y_pred, y_true=None, groups=None, *, beta: float = 1.0) -> dict[str, float]:
    """All metrics that apply: acc/nmi/ari need y_true, balance/entropy/mnce two groups, f_beta both."""
    _check_beta(beta)
    pred = _labels(y_pred, "y_pred")
    pred_codes, pred_uniques = _codes(pred)
    n_clusters = len(pred_uniques)
    scores: dict[str, float] = {}
    if y_true is not None:
        true = _labels(y_true, "y_true")
        _check_lengths("y_pred", pred, "y_true", true)
        true_codes, true_uniques = _codes(true)
        # Class x cluster, scikit-learn's orientation, so NMI sums in the same order.
        table = _table(true_codes, len(true_uniques), pred_codes, n_clusters)
        scores["acc"] = _accuracy_from_table(table)
        scores["nmi"] = _nmi_from_table(table, "arithmetic")
        scores["ari"] = _ari_from_table(table)
    if groups is not None:
        g = _labels(groups, "groups")
        _check_lengths("y_pred", pred, "groups", g)
        group_codes, group_uniques = _codes(g)
        if len(group_uniques) >= 2:
            table = _table(pred_codes, n_clusters, group_codes, len(group_uniques))
            scores["balance"] = _balance_from_table(table)
            scores["entropy"] = _entropy_from_table(table).mean
            scores["mnce"] = _mnce_from_table(table)
    if "nmi" in scores and "mnce" in scores:
        scores["f_beta"] = f_beta(scores["nmi"], scores["mnce"], beta)
    return scores
