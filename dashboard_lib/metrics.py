"""Clustering, fairness and debiasing metrics as the fair-clustering papers define them.

Every metric is a pure function of integer label arrays (cluster, class, group).
Labels may be any integers; they are re-coded to 0..n-1, so cluster ids that are
never used are ignored. One kernel, ``count_table``, builds the count tables (one
``np.bincount`` pass; a stack of tables for a bootstrap's weightings), and every
count-based metric is a function of them: ``*_from_tables`` takes one table or a
stack, so a metric and its bootstrap resamples are one formula. The projections'
heatmaps and the audit build their tables with the same kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.special import xlogy
from sklearn.linear_model import LogisticRegression
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
ERR_LEVELS = "{name} must hold codes 0 to {levels} - 1, found {found}: pass codes, or leave levels out to re-code labels"
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


# --- the count-table kernel: every metric, the projections' heatmaps and the audit build their tables here ----------
@dataclass(frozen=True)
class LabelCodes:
    """Each sample's label as a code into `uniques`: the sorted distinct labels, or 0..levels-1 for labels that are
    codes already (label_codes)."""

    codes: np.ndarray  # int64, one per sample
    uniques: np.ndarray

    @property
    def n_labels(self) -> int:
        return len(self.uniques)


@dataclass(frozen=True)
class CountTable:
    """n[i, j]: the samples whose row label is rows.uniques[i] and column label columns.uniques[j] (or the sum of
    their weights); counts has shape (rows, columns), or (weightings, rows, columns) for a stack of weightings."""

    counts: np.ndarray
    rows: LabelCodes
    columns: LabelCodes


def _recode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def label_codes(labels, *, levels: int | None = None, name: str = "labels") -> LabelCodes:
    """Validated integer labels as codes: re-coded to their sorted distinct values (an id no sample has gets no code),
    or, with `levels`, read as codes 0..levels-1 already (a level no sample has still gets its row or column in a
    count table). ValueError (ERR_LEVELS) for a code outside 0..levels-1."""
    x = _labels(labels, name)
    if levels is None:
        return LabelCodes(*_recode(x))
    low, high = int(x.min()), int(x.max())
    if low < 0 or high >= levels:
        raise ValueError(ERR_LEVELS.format(name=name, levels=levels, found=low if low < 0 else high))
    return LabelCodes(x, np.arange(levels))


def count_table(a, b, *, weights=None, names: tuple[str, str] = ("a", "b")) -> CountTable:
    """The cross-table of two label arrays (or LabelCodes): rows a's labels, columns b's, in one bincount pass.

    weights: one per sample (sums of weights instead of counts), or a stack (W, n) of weightings of the same samples
    (a bootstrap's resampled cell counts), which gives W tables at once through one sparse product. `names` name the
    two arrays in error messages.
    """
    rows = a if isinstance(a, LabelCodes) else label_codes(a, name=names[0])
    columns = b if isinstance(b, LabelCodes) else label_codes(b, name=names[1])
    _check_lengths(names[0], rows.codes, names[1], columns.codes)
    n_a, n_b = rows.n_labels, columns.n_labels
    cells = rows.codes * n_b + columns.codes
    if weights is None or np.ndim(weights) == 1:
        counts = np.bincount(cells, weights=weights, minlength=n_a * n_b).reshape(n_a, n_b)
    else:
        stack = np.asarray(weights)
        indicator = sparse.csr_matrix((np.ones(len(cells)), (np.arange(len(cells)), cells)),
                                      shape=(len(cells), n_a * n_b))
        counts = np.asarray((indicator.T @ stack.T).T).reshape(len(stack), n_a, n_b)
    return CountTable(counts, rows, columns)


def _two_groups(coded: LabelCodes) -> LabelCodes:
    """The group codes; ERR_SINGLE_GROUP unless they hold two groups or more."""
    if coded.n_labels < 2:
        raise ValueError(ERR_SINGLE_GROUP.format(name="groups", group=coded.uniques[0]))
    return coded


def _class_cluster_table(y_true, y_pred) -> np.ndarray:
    """Class x cluster counts (scikit-learn's orientation, so NMI sums in the same order)."""
    return count_table(y_true, y_pred, names=("y_true", "y_pred")).counts


def _cluster_group_table(y_pred, groups) -> np.ndarray:
    """Cluster x group counts over non-empty clusters; needs two groups or more."""
    table = count_table(y_pred, groups, names=("y_pred", "groups"))
    _two_groups(table.columns)
    return table.counts


# --- metrics of count tables: each takes one table (..., R, C) or a stack of them and returns one value per table (or
# per table and group); classes and clusters with no sample (a bootstrap resample can empty one) are ignored, as the
# label-array functions ignore ids never used -------------------------------------------------------------------------
def accuracy_from_tables(tables) -> np.ndarray:
    """ACC from class x cluster tables: the share of samples on the best one-to-one class-cluster matching
    (Hungarian algorithm); in a rectangular table the extra clusters (or classes) stay unmatched."""
    t = np.asarray(tables)
    flat = t.reshape((-1,) + t.shape[-2:])
    out = np.empty(len(flat))
    for i, table in enumerate(flat):
        rows, cols = linear_sum_assignment(table, maximize=True)
        out[i] = table[rows, cols].sum() / max(table.sum(), 1)
    return out.reshape(t.shape[:-2])


def _sum_occupied(terms: np.ndarray, occupied: np.ndarray, axes: int) -> np.ndarray:
    """Each table's terms summed over its occupied entries alone (the last `axes` axes, in row-major order), as
    scikit-learn sums its non-zero entries: zeros in between would change numpy's pairwise summation, and the last
    bit, so that one table would not give the same NMI alone and in a stack."""
    shape = terms.shape[:terms.ndim - axes]
    size = int(np.prod(terms.shape[terms.ndim - axes:]))
    terms, occupied = terms.reshape(-1, size), occupied.reshape(-1, size)
    sums = np.empty(len(terms))
    # Tables that share their occupied cells (most resamples of one table) are summed together, row by row; the
    # masks are grouped as packed bytes, since np.unique(axis=0) sorts whole rows (docs/METRICS_NOTES.md).
    packed = np.ascontiguousarray(np.packbits(occupied, axis=-1))
    _, first, which = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True,
                                return_inverse=True)
    which = which.ravel()
    for row, rows in zip(first, np.split(np.argsort(which, kind="stable"), np.cumsum(np.bincount(which))[:-1])):
        sums[rows] = terms[np.ix_(rows, np.flatnonzero(occupied[row]))].sum(-1)
    return sums.reshape(shape)


def _entropy_of_counts(counts: np.ndarray, total: np.ndarray) -> np.ndarray:
    """-sum_i (c_i / n) (ln c_i - ln n) over the non-zero counts of the last axis, as scikit-learn's entropy sums it."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (counts / total[..., None]) * (np.log(np.where(counts > 0, counts, 1)) - np.log(total)[..., None])
    return 0.0 - _sum_occupied(terms, counts > 0, 1)


def nmi_from_tables(tables, average: str = "arithmetic") -> np.ndarray:
    """NMI = I(Y; C) / mean(H(Y), H(C)) from class x cluster tables, arithmetic or geometric mean, term by term as
    scikit-learn's normalized_mutual_info_score: two single-label partitions agree perfectly (1), a single label on
    one side gives 0."""
    _check_average(average)
    t = np.asarray(tables)
    if t.dtype.kind not in "iu":
        t = t.astype(np.float64, copy=False)
    n = t.sum((-2, -1))
    pi, pj = t.sum(-1), t.sum(-2)
    occupied = t > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_n = np.log(n.astype(np.float64))[..., None, None]
        share = t / n[..., None, None]
        # scikit-learn's mutual_info_score, over the occupied cells: p (ln n_ij - ln n) + p (ln n + ln n - ln(n_i n_j))
        log_outer = -np.log(np.where(occupied, pi[..., :, None] * pj[..., None, :], 1)) + log_n + log_n
        terms = share * (np.log(np.where(occupied, t, 1)) - log_n) + share * log_outer
    terms = np.where(np.abs(terms) >= np.finfo(np.float64).eps, terms, 0.0)
    mi = np.clip(_sum_occupied(terms, occupied, 2), 0.0, None)
    n_rows, n_cols = (pi > 0).sum(-1), (pj > 0).sum(-1)
    mi = np.where((n_rows <= 1) | (n_cols <= 1), 0.0, mi)
    h_true, h_pred = _entropy_of_counts(pi, n), _entropy_of_counts(pj, n)
    normalizer = (h_true + h_pred) / 2 if average == "arithmetic" else np.sqrt(h_true * h_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(mi == 0, 0.0, mi / normalizer)
    return np.where((n_rows <= 1) & (n_cols <= 1), 1.0, out)


def ari_from_tables(tables) -> np.ndarray:
    """ARI from class x cluster tables, as scikit-learn's adjusted_rand_score: 2 (tp tn - fn fp) / ((tp + fn)(fn + tn)
    + (tp + fp)(fp + tn)) over the pair confusion counts, 1 when no pair disagrees. Counts (integers, or floats that
    are whole) are multiplied exactly as Python integers: tp tn reaches 1e24 at 1e6 samples, beyond int64."""
    t = np.asarray(tables)
    if t.dtype.kind == "f" and np.array_equal(t, np.trunc(t)):
        t = t.astype(np.int64)
    shape = t.shape[:-2]
    t = t.reshape((-1,) + t.shape[-2:])
    n = t.sum((-2, -1))
    sum_squares = (t * t).sum((-2, -1))
    fp = (t * t.sum(-2)[:, None, :]).sum((-2, -1)) - sum_squares
    fn = (t * t.sum(-1)[:, :, None]).sum((-2, -1)) - sum_squares
    tp = sum_squares - n
    tn = n * n - fp - fn - sum_squares
    out = np.ones(len(t))
    for i, (tp_i, tn_i, fp_i, fn_i) in enumerate(zip(tp.tolist(), tn.tolist(), fp.tolist(), fn.tolist())):
        if fn_i != 0 or fp_i != 0:
            out[i] = 2.0 * (tp_i * tn_i - fn_i * fp_i) / ((tp_i + fn_i) * (fn_i + tn_i) + (tp_i + fp_i) * (fp_i + tn_i))
    return out.reshape(shape)


def f_beta_from_scores(nmi_values, mnce_values, beta: float = 1.0) -> np.ndarray:
    """F_beta = (1 + b^2) NMI MNCE / (b^2 NMI + MNCE) elementwise, 0 where both are 0 (FCMI)."""
    nmi_values, mnce_values = np.asarray(nmi_values, dtype=np.float64), np.asarray(mnce_values, dtype=np.float64)
    b2 = beta * beta
    denom = b2 * nmi_values + mnce_values
    return np.divide((1 + b2) * nmi_values * mnce_values, denom, out=np.zeros(denom.shape), where=denom > 0)


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


def balance_per_cluster_from_tables(tables) -> np.ndarray:
    """min_g n_cg / max_g n_cg per cluster of cluster x group tables, shape (..., K); inf for a cluster with no sample."""
    t = np.asarray(tables, dtype=np.float64)
    return np.where(t.sum(-1) > 0, _safe_divide(t.min(-1), t.max(-1)), np.inf)


def balance_from_tables(tables) -> np.ndarray:
    """Balance (DFC, FCMI): min over non-empty clusters of min_g n_cg / max_g n_cg."""
    return balance_per_cluster_from_tables(tables).min(-1)


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


def _check_average(average) -> None:
    """Raise ERR_AVERAGE unless average is 'arithmetic' or 'geometric'."""
    if average not in _AVERAGES:
        raise ValueError(ERR_AVERAGE.format(average=average))


def _check_beta(beta) -> None:
    """Raise ERR_BETA unless beta is a finite number > 0."""
    if not (isinstance(beta, (int, float, np.number)) and math.isfinite(beta) and beta > 0):
        raise ValueError(ERR_BETA.format(beta=beta))


def clustering_accuracy(y_true, y_pred) -> float:
    """ACC: share of samples matched by the best one-to-one cluster-to-class map (Hungarian; DFC, FCMI)."""
    return float(accuracy_from_tables(_class_cluster_table(y_true, y_pred)))


def nmi(y_true, y_pred, average: str = "arithmetic") -> float:
    """NMI = I(Y; C) / mean(H(Y), H(C)), arithmetic (DFC, FCMI) or geometric (SENet) mean, as scikit-learn."""
    _check_average(average)
    return float(nmi_from_tables(_class_cluster_table(y_true, y_pred), average))


def ari(y_true, y_pred) -> float:
    """ARI: Rand index adjusted for chance, equal to scikit-learn's adjusted_rand_score."""
    return float(ari_from_tables(_class_cluster_table(y_true, y_pred)))


def balance(y_pred, groups) -> float:
    """Balance = min over non-empty clusters of min_g n_cg / max_g n_cg, raw counts (DFC, FCMI)."""
    return float(balance_from_tables(_cluster_group_table(y_pred, groups)))


def balance_ceiling(groups) -> float:
    """Best Balance any clustering can reach: min_g n_g / max_g n_g (DFC Table 1, 'Max of Bal.')."""
    sizes = np.bincount(_two_groups(label_codes(groups, name="groups")).codes)
    return float(sizes.min() / sizes.max())


def entropy(y_pred, groups) -> EntropyResult:
    """Per-group H(C | G=g) = -sum_c p(c|g) ln p(c|g) (DFC) and their mean (FCMI)."""
    per_group = entropy_from_tables(_cluster_group_table(y_pred, groups))
    per_group.setflags(write=False)
    return EntropyResult(per_group=per_group, mean=float(per_group.mean()))


def mnce(y_pred, groups) -> float:
    """MNCE = min over non-empty clusters of H(G | C=c) / H(G) (FCMI)."""
    return float(mnce_from_tables(_cluster_group_table(y_pred, groups)))


def balance_per_cluster(y_pred, groups, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster present: (cluster ids, group counts, ratio min_g n_cg / max_g n_cg). Balance is the minimum ratio;
    the cluster that sets it is clusters[ratio.argmin()] (named beside Balance on the Monitor and in the lesson)."""
    table = count_table(y_pred, label_codes(groups, levels=n_groups, name="groups"), names=("y_pred", "groups"))
    return table.rows.uniques, table.counts, balance_per_cluster_from_tables(table.counts)


def cluster_balance(y_pred, groups) -> float:
    """Cluster balance (HolisticAI), any number of groups: min_{c,g} min(r, 1/r), r = (n_cg / n_c) / (n_g / n)."""
    return float(cluster_balance_from_tables(_cluster_group_table(y_pred, groups)))


def min_cluster_ratio(y_pred, groups) -> float:
    """Minimum cluster ratio (HolisticAI): min over clusters of n_c,a / n_c,b, a the smallest group, b the largest."""
    table = _cluster_group_table(y_pred, groups)
    minority, majority = minority_majority(table.sum(axis=0))
    return float(min_cluster_ratio_from_tables(table, minority, majority))


def minority_majority(group_sizes) -> tuple[int, int]:
    """Positions of the smallest and the largest group; two different ones even when all sizes tie."""
    order = np.argsort(np.asarray(group_sizes), kind="stable")
    return int(order[0]), int(order[-1])


def cluster_distribution_tv(y_pred, groups) -> np.ndarray:
    """Per group (sorted label order): TV(P(C | g), P(C)) = 1/2 sum_c |p(c|g) - p(c)|."""
    return cluster_tv_from_tables(_cluster_group_table(y_pred, groups))


def cluster_distribution_kl(y_pred, groups) -> np.ndarray:
    """Per group (sorted label order): KL(P(C | g) || P(C)), natural log."""
    return cluster_kl_from_tables(_cluster_group_table(y_pred, groups))


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
    coded = label_codes(pred)
    codes = coded.codes
    centres = np.zeros((coded.n_labels, x.shape[1]))
    np.add.at(centres, codes, x)
    centres /= np.bincount(codes)[:, None]
    return np.sqrt(((x - centres[codes]) ** 2).sum(1))


def social_fairness_ratio(features, y_pred, groups) -> tuple[float, np.ndarray]:
    """(max_g d_g / min_g d_g, d per group), d_g = mean distance of group g's samples to their assigned centre."""
    pred = _labels(y_pred, "y_pred")
    g = _labels(groups, "groups")
    _check_lengths("y_pred", pred, "groups", g)
    codes = _two_groups(label_codes(g)).codes
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
    coded = _two_groups(label_codes(g))
    codes, uniques = coded.codes, coded.uniques
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
    table = count_table(g, pred)
    g_codes = table.rows.codes
    n_g, n_c = table.counts.shape
    cell = g_codes * n_c + table.columns.codes
    counts = table.counts.astype(np.float64)
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
    return agreement_from_profiles(cluster_profiles(features, pred, groups), np.bincount(label_codes(pred).codes))


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
    return float(f_beta_from_scores(nmi_value, mnce_value, beta))


def group_accuracies(y_true, y_pred, bias) -> dict[tuple[int, int], float]:
    """Accuracy within each (class y, bias b) group present (ClusterFix, BPA, GroupDRO), keyed (y, b)."""
    y = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    b = _labels(bias, "bias")
    _check_lengths("y_true", y, "y_pred", pred)
    _check_lengths("y_true", y, "bias", b)
    table = count_table(y, b, names=("y_true", "bias"))
    correct = count_table(table.rows, table.columns, weights=pred == y).counts
    return {
        (int(table.rows.uniques[i]), int(table.columns.uniques[j])): float(correct[i, j] / table.counts[i, j])
        for i, j in zip(*np.nonzero(table.counts))
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
    coded = _two_groups(label_codes(g))
    codes, uniques = coded.codes, coded.uniques
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
    pred = label_codes(y_pred, name="y_pred")
    scores: dict[str, float] = {}
    if y_true is not None:
        true = label_codes(y_true, name="y_true")
        _check_lengths("y_pred", pred.codes, "y_true", true.codes)
        table = count_table(true, pred).counts
        scores["acc"] = float(accuracy_from_tables(table))
        scores["nmi"] = float(nmi_from_tables(table, "arithmetic"))
        scores["ari"] = float(ari_from_tables(table))
    if groups is not None:
        table = count_table(pred, groups, names=("y_pred", "groups"))
        if table.columns.n_labels >= 2:
            scores["balance"] = float(balance_from_tables(table.counts))
            scores["entropy"] = float(entropy_from_tables(table.counts).mean())
            scores["mnce"] = float(mnce_from_tables(table.counts))
    if "nmi" in scores and "mnce" in scores:
        scores["f_beta"] = f_beta(scores["nmi"], scores["mnce"], beta)
    return scores
