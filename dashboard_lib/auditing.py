"""Audit any clustering: every fairness metric for each sensitive attribute and for their intersection, each with a
bootstrap interval and the value a group-blind random assignment with the same cluster sizes gets.

    from dashboard_lib import audit
    result = audit(kmeans.labels_, {"sex": df.sex, "race": df.race}, y=df.income)

- Bootstrap, vectorised: the metrics are functions of the count table of (cluster, class, sensitive values), so a
  resample of the N rows is a multinomial draw of that table's cells (Efron's bootstrap, exactly): 1,000 resamples
  cost 1,000 draws over the occupied cells, not 1,000 passes over the rows. Intervals: the union of the basic
  (reverse-percentile) interval, which corrects the bias every metric has near no effect (NMI, TV, KL above their
  value, the minima below), and the percentile one; see BOOTSTRAP_INTERVAL, _minimum_intervals and _edge_bounds,
  and docs/AUDIT_INTERVALS.md for the choice and the coverage it reaches.
  Every interval is clipped to its metric's range and contains its estimate.
- Random baseline: a group-blind assignment with the same cluster sizes is a random permutation of the cluster
  labels; its cluster × group (and cluster × class) table is drawn cluster by cluster from the multivariate
  hypergeometric law, and the baseline is the mean of each metric over those draws (ACC, NMI, fairness metrics);
  ARI's is 0 exactly.
- Embedding metrics: the social fairness ratio on all rows (distances to the assigned centre computed once, a
  bootstrap of each group's mean distance); the silhouette difference on a stratified subsample (O(n²)), which its
  Estimate.n_used discloses.
- The bias probe: held-out accuracy with a Wilson score interval over its held-out samples, beside the majority rate.

Knows nothing of Streamlit.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from scipy.special import xlogy
from scipy.stats import beta as beta_dist
from scipy.stats import norm

from . import metrics as M

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
RANDOM_DRAWS = 200  # group-blind random assignments averaged for each baseline
SMALL_GROUP = 30  # below this many samples a group's numbers are fragile: the report says so
EMBEDDING_SAMPLE = 20_000  # rows whose cost the social fairness ratio's random baseline is sized to
GROUP_RESAMPLE_ROWS = 2000  # a larger group's resampled mean distance is drawn from its normal limit
SILHOUETTE_SAMPLE = 3000  # silhouettes cost O(n²): a stratified subsample of this many rows, disclosed (n_used)
MAX_GROUPS = 100
INTERSECTION = " × "

ERR_ONE_CLUSTER = "the cluster column {name!r} holds a single cluster ({value}): an audit compares clusters, pass a clustering with 2 or more"
ERR_CLUSTER_LABELS = ("the cluster column {name!r} holds {found} at row {row:,} (0 = the first row): a cluster id is a "
                      "label (text or a whole number), not a fraction; fix that row or map the ids to labels")
ERR_CLUSTER_INFINITE = ("the cluster column {name!r} holds {found} at row {row:,} (0 = the first row): an infinite cluster "
                        "id is not a label; fix that row")
ERR_MISSING = "the {what} column {name!r} has {count:,} missing value(s) (first at row {row}): drop or fill those rows first"
ERR_ONE_GROUP = "the sensitive column {name!r} holds a single group ({value}): an audit compares groups, pick a column with 2 or more"
ERR_TOO_MANY_GROUPS = ("the sensitive column {name!r} has {count:,} distinct values (at most {max} groups): it looks "
                       "like an id or a continuous column; bin it or pick another")
ERR_LENGTHS = "{what} has {n_other:,} rows but the clustering has {n:,}: pass one row per clustered sample, in the same order"
ERR_EMBEDDING = "the embedding {problem}: {fix}"
ERR_NO_SENSITIVE = "pick at least one sensitive column"
ERR_CONFIDENCE = "confidence must be in (0, 1), got {value!r}"
ERR_RESAMPLES = "resamples must be a whole number from 0 to 100,000, got {value!r}"
WARN_NEAR_DUPLICATES = ("the {role} column {name!r} holds values that differ only in spaces, letter case or Unicode form: "
                        "{listed}; they are audited as separate {kinds}. If each set is one, merge them "
                        "(Merge near-duplicate values on the Audit page, or audit --merge-near-duplicates)")
WARN_CONTINUOUS = ("the sensitive column {name!r} has {count} distinct numeric values: it looks continuous; "
                   "bin it into a few groups for a meaningful audit")

# What each headline metric is compared with, in words.
RANDOM_BASELINE = "random assignment, same cluster sizes"  # the report explains: mean of `random_draws` draws


@dataclass
class Estimate:
    """A metric's value with its bootstrap interval and the reference a reader should compare it with."""

    value: float
    low: float | None = None
    high: float | None = None
    baseline: float | None = None
    baseline_label: str = ""
    n_used: int | None = None  # rows the value was computed on when a subsample; None = all rows

    def sample_text(self) -> str:
        """`on 3,000 rows (a subsample)` where the value comes from a subsample, else empty."""
        return "" if self.n_used is None else f"on {self.n_used:,} rows (a subsample)"

    def text(self, digits: int = 3) -> str:
        """`0.430 [0.400, 0.460]`, or the value alone without an interval."""
        if not math.isfinite(self.value):
            return "∞" if self.value > 0 else "n/a"
        main = f"{self.value:.{digits}f}"
        if self.low is None or self.high is None:
            return main
        return f"{main} [{_fmt(self.low, digits)}, {_fmt(self.high, digits)}]"

    def baseline_text(self, digits: int = 3) -> str:
        return "" if self.baseline is None else f"{_fmt(self.baseline, digits)} ({self.baseline_label})"


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "∞"


@dataclass
class AttributeAudit:
    """One sensitive attribute (or the intersection of several): its groups, the cluster × group table, its metrics."""

    name: str
    group_names: list[str]
    group_counts: list[int]
    table: np.ndarray  # n_clusters × n_groups counts, clusters in AuditResult.clusters order
    metrics: dict[str, Estimate]
    per_group: dict[str, list[float]]  # metric key -> one value per group
    balance_cluster: str  # the cluster that sets Balance (the minimum)
    ceiling: float  # the best Balance this group mix allows
    columns: list[str]  # the sensitive columns it is made of
    empty_combinations: list[str] = field(default_factory=list)  # intersections with no sample at all

    @property
    def is_intersection(self) -> bool:
        return len(self.columns) > 1

    def small_groups(self) -> list[tuple[str, int]]:
        return [(n, c) for n, c in zip(self.group_names, self.group_counts) if c < SMALL_GROUP]


@dataclass
class AuditResult:
    n: int
    clusters: list[str]
    cluster_sizes: list[int]
    quality: dict[str, Estimate]  # acc, nmi, nmi_geometric, ari (with a class column)
    attributes: list[AttributeAudit]
    class_names: list[str] | None
    caveats: list[str]
    warnings: list[str]
    settings: dict  # resamples, confidence, seed, random draws

    def attribute(self, name: str) -> AttributeAudit:
        return next(a for a in self.attributes if a.name == name)

    def headline(self) -> dict[str, float]:
        """Flat metrics for the run store: the quality metrics and the first attribute's fairness metrics."""
        out = {k: e.value for k, e in self.quality.items()}
        first = self.attributes[0]
        out.update({k: e.value for k, e in first.metrics.items()})
        out["entropy_per_group"] = first.per_group["entropy"]
        return {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in out.items()}

    def to_dict(self) -> dict:
        """Plain JSON types: every number with its interval and baseline."""
        def est(e: Estimate) -> dict:
            return {k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
                    for k, v in asdict(e).items()}

        return {
            "n": self.n, "clusters": self.clusters, "cluster_sizes": self.cluster_sizes, "class_names": self.class_names,
            "quality": {k: est(e) for k, e in self.quality.items()},
            "attributes": [{
                "name": a.name, "columns": a.columns, "group_names": a.group_names, "group_counts": a.group_counts,
                "balance_ceiling": a.ceiling, "balance_cluster": a.balance_cluster,
                "cluster_group_counts": a.table.tolist(), "empty_combinations": a.empty_combinations,
                "metrics": {k: est(e) for k, e in a.metrics.items()}, "per_group": a.per_group,
            } for a in self.attributes],
            "caveats": self.caveats, "warnings": self.warnings, "settings": self.settings,
            "definitions": {k: M.METRIC_DEFINITIONS[k]["definition"] for k in metric_keys(self) if k in M.METRIC_DEFINITIONS},
        }


def metric_keys(result: AuditResult) -> list[str]:
    keys = list(result.quality)
    for a in result.attributes:
        keys += [k for k in a.metrics if k not in keys]
    return keys


# --- input ----------------------------------------------------------------------------------------------------------
def _number_text(value) -> str | None:
    """An integral number as its exact decimal text (any size: 1e19 is "10000000000000000000"), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == math.trunc(value):
        return str(int(value))  # int() of a float is exact, however large
    return None


def exact_label(value) -> str:
    """One value as the label it is: text as it is, booleans as False/True, integral numbers exactly in decimal."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    number = _number_text(value)
    return number if number is not None else str(value)


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def label_order(labels) -> list[str]:
    """Labels sorted numerically when every one is a decimal number (ties, such as "01" and "1", by their text),
    else as text."""
    labels = list(labels)
    if labels and all(_DECIMAL.fullmatch(t) for t in labels):
        return sorted(labels, key=lambda t: (Decimal(t), t))
    return sorted(labels)


def _check_cluster_value(value, row: int, name: str) -> None:
    if isinstance(value, (float, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if not math.isfinite(value):
            raise ValueError(ERR_CLUSTER_INFINITE.format(name=name, found=float(value), row=row))
        if value != math.trunc(value):
            raise ValueError(ERR_CLUSTER_LABELS.format(name=name, found=repr(float(value)), row=row))


def cluster_codes(assignment, name: str) -> tuple[np.ndarray, list[str]]:
    """Each row's cluster as a code 0 … K−1 into the cluster labels, read exactly: text stays text ("01", "1" and
    "001" are three clusters), booleans are the labels False and True, whole numbers of any size keep every digit
    (1e19 and 2e19 stay apart; nothing is cast to int64). A fractional or infinite id is refused, naming its row
    (0 = the first). Labels sort numerically when all are numbers, else as text."""
    series = assignment if isinstance(assignment, pd.Series) else pd.Series(np.asarray(assignment).ravel())
    series = series.reset_index(drop=True)
    _check_missing(series, "cluster", name)
    values = series.to_numpy()
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.trunc(np.where(np.isfinite(values), values, 0)))
        if bad.any():
            row = int(np.argmax(bad))
            _check_cluster_value(values[row], row, name)
    if values.dtype.kind != "O":
        codes, uniques = pd.factorize(values)
    else:
        # Python objects: 1, 1.0 and True hash alike, so label every row (text fast, anything else one by one).
        if pd.api.types.infer_dtype(values, skipna=False) == "string":
            labels_per_row = values
        else:
            for row, value in enumerate(values):
                _check_cluster_value(value, row, name)
            labels_per_row = np.array([exact_label(v) for v in values], dtype=object)
        codes, uniques = pd.factorize(labels_per_row)
    labels = [exact_label(u) for u in uniques]
    # Distinct values with the same label (an int 1 and an int64 1) are one cluster.
    order = label_order(set(labels))
    if len(order) < 2:
        raise ValueError(ERR_ONE_CLUSTER.format(name=name, value=order[0] if order else "none"))
    position = {label: i for i, label in enumerate(order)}
    remap = np.array([position[label] for label in labels], dtype=np.int64)
    return remap[codes], order


def saved_cluster_ids(arrays: dict) -> np.ndarray:
    """Each row's cluster id as a run saved it: `assignment` itself, or, where an external run's ids are not all
    int64 (external.assignment_arrays), its codes into `cluster_labels`."""
    if "cluster_labels" in arrays:
        return np.asarray(arrays["cluster_labels"])[arrays["assignment"]]
    return arrays["assignment"]


def saved_cluster_names(arrays: dict, ids) -> list[str]:
    """The labels of cluster ids as the pages count them (the saved `assignment` values): the ids themselves, or an
    external run's `cluster_labels` where it saved codes, so every page names a cluster as the audit does."""
    if "cluster_labels" in arrays:
        return [str(label) for label in np.asarray(arrays["cluster_labels"])[np.asarray(ids, dtype=np.int64)]]
    return [str(i) for i in ids]


def _check_missing(series: pd.Series, what: str, name: str) -> None:
    missing = series.isna().to_numpy()
    if missing.any():
        raise ValueError(ERR_MISSING.format(what=what, name=name, count=int(missing.sum()), row=int(np.argmax(missing))))


def _near_key(value: str) -> str:
    """What two spellings of one group share: Unicode NFKC form, case folded, whitespace runs as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def near_duplicates(values) -> list[list[str]]:
    """Sets of distinct text values that differ only in surrounding or internal whitespace, letter case or Unicode
    normal form (e.g. "Male", "Male ", "male", "Ｍａｌｅ"), each set sorted, most frequent first among sets."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    counts = series.dropna().value_counts(sort=False)
    found: dict[str, list[str]] = {}
    for value in counts.index:
        if isinstance(value, str):
            found.setdefault(_near_key(value), []).append(value)
    return sorted((sorted(v) for v in found.values() if len(v) > 1), key=lambda v: -int(counts[v].sum()))


def merge_near_duplicates(values) -> tuple[pd.Series, dict[str, list[str]]]:
    """The values with each set of near-duplicates (near_duplicates) replaced by its most frequent spelling (ties: the
    first in sorted order), and what was merged: {kept spelling: [the spellings it replaced]}. Only on request:
    the audit never merges by itself."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    counts = series.value_counts()
    mapping, merges = {}, {}
    for group in near_duplicates(series):
        keep = max(group, key=lambda v: (int(counts[v]), -group.index(v)))
        merges[keep] = [v for v in group if v != keep]
        mapping.update({v: keep for v in merges[keep]})
    if not mapping:
        return series, {}
    return series.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v).astype(series.dtype), merges


def near_duplicate_warning(values, role: str, name: str) -> str | None:
    groups = near_duplicates(values)
    if not groups:
        return None
    listed = "; ".join(" / ".join(repr(v) for v in g) for g in groups[:10]) + (" …" if len(groups) > 10 else "")
    return WARN_NEAR_DUPLICATES.format(role=role, name=name, listed=listed, kinds="classes" if role == "class" else "groups")


def group_codes(values, name: str, n: int) -> tuple[np.ndarray, list[str], str | None]:
    """Each row's group as a code into the sorted group names, and a warning (or None) for a column that looks
    continuous or holds near-duplicate values (those stay separate groups: merge_near_duplicates merges on request)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    if len(series) != n:
        raise ValueError(ERR_LENGTHS.format(what=f"the sensitive column {name!r}", n_other=len(series), n=n))
    _check_missing(series, "sensitive", name)
    codes, uniques = pd.factorize(series, sort=True)
    if len(uniques) < 2:
        raise ValueError(ERR_ONE_GROUP.format(name=name, value=uniques[0]))
    if len(uniques) > MAX_GROUPS:
        raise ValueError(ERR_TOO_MANY_GROUPS.format(name=name, count=len(uniques), max=MAX_GROUPS))
    warnings = []
    if series.dtype.kind == "f" and len(uniques) > 10 and not np.all(np.asarray(uniques) == np.trunc(np.asarray(uniques))):
        warnings.append(WARN_CONTINUOUS.format(name=name, count=len(uniques)))
    near = near_duplicate_warning(pd.Series(np.asarray(uniques, dtype=object)), "sensitive", name)
    if near:
        warnings.append(near)
    return codes.astype(np.int64), [str(u) for u in uniques], " ".join(warnings) or None


def _sensitive(groups) -> dict[str, object]:
    if isinstance(groups, pd.DataFrame):
        return {str(c): groups[c] for c in groups.columns}
    if isinstance(groups, dict):
        return {str(k): v for k, v in groups.items()}
    if isinstance(groups, pd.Series) and groups.name is not None:
        return {str(groups.name): groups}
    return {"group": groups}


def _embedding(embedding, n: int) -> np.ndarray:
    x = np.asarray(embedding, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(ERR_EMBEDDING.format(problem=f"must be a table of numbers (rows × dimensions), got shape {x.shape}",
                                              fix="pass one row of numbers per sample"))
    if len(x) != n:
        raise ValueError(ERR_LENGTHS.format(what="the embedding", n_other=len(x), n=n))
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(ERR_EMBEDDING.format(problem=f"holds {int(bad.sum()):,} NaN or infinite value(s) (first at row {row}, "
                                                      f"dimension {col})", fix="drop or impute those rows first"))
    return x


# --- the audit's metrics over stacks of tables ------------------------------------------------------------------------
def _fairness_batch(tables: np.ndarray, minority: int, majority: int) -> dict[str, np.ndarray]:
    """Every table-based fairness metric for a batch of cluster × group tables."""
    return {
        "balance": M.balance_from_tables(tables),
        "entropy": M.entropy_from_tables(tables).mean(-1),
        "mnce": M.mnce_from_tables(tables),
        "cluster_balance": M.cluster_balance_from_tables(tables),
        "min_cluster_ratio": M.min_cluster_ratio_from_tables(tables, minority, majority),
        "cluster_tv": M.cluster_tv_from_tables(tables).max(-1),
        "cluster_kl": M.cluster_kl_from_tables(tables).max(-1),
    }


# Each metric's range: an interval is clipped to it (the true value is always inside), so no interval shows an
# impossible value such as a negative NMI.
RANGES = {"acc": (0.0, 1.0), "nmi": (0.0, 1.0), "nmi_geometric": (0.0, 1.0), "ari": (-0.5, 1.0), "balance": (0.0, 1.0),
          "mnce": (0.0, 1.0), "cluster_balance": (0.0, 1.0), "min_cluster_ratio": (0.0, math.inf),
          "cluster_tv": (0.0, 1.0), "cluster_kl": (0.0, math.inf), "f_beta": (0.0, 1.0),
          "social_fairness_ratio": (1.0, math.inf), "silhouette_diff": (0.0, 2.0)}  # entropy: (0, ln K), set per audit
INTERVAL_METHODS = ("percentile", "basic", "bca", "union", "centred")
ERR_INTERVAL_METHOD = "unknown interval method {method!r}: one of {methods}"
# The bootstrap interval every metric gets: the union of the basic and the percentile intervals (the basic one
# corrects the bias most metrics have near no effect, the percentile one holds where the resamples' own bias
# misleads). TV, KL, entropy and MNCE are then extended to exact bounds on the side where their truth lies under no
# effect (_edge_bounds), and the minima over clusters (MINIMA) get exact simultaneous intervals instead
# (_minimum_intervals). Why, and the coverage each reaches: docs/AUDIT_INTERVALS.md (bench/bench_intervals.py).
BOOTSTRAP_INTERVAL = "union"
INTERVAL_NAME = ("bootstrap: the union of the basic (reverse percentile) and the percentile intervals; TV and KL "
                 "(lower end), the mean entropy and MNCE (upper end) extended to exact simultaneous bounds; for "
                 "Balance, cluster balance and the minimum cluster ratio exact simultaneous intervals "
                 "(Clopper-Pearson for every share, Bonferroni); each clipped to the metric's range and widened to "
                 "the estimate where it falls outside")


def _interval(samples: np.ndarray, estimate: float, confidence: float, bounds: tuple[float, float] = (-math.inf, math.inf),
              method: str = "basic", acceleration: float = 0.0, contain: bool = True) -> tuple[float | None, float | None]:
    """A bootstrap interval for `estimate` from its resampled values, clipped to `bounds`, then widened to reach the
    estimate where it falls outside.

    - "percentile": the tail quantiles of the resamples (Efron).
    - "basic" (reverse percentile): [2θ − q(1−α/2), 2θ − q(α/2)], the resamples' spread around θ reflected; it
      corrects a bias that has the same sign in the resamples as in the estimate (NMI, ACC, TV, KL above their
      value under no effect; Balance and MNCE, minima over clusters, below it).
    - "bca": bias-corrected and accelerated percentile (Efron 1987): z0 from the share of resamples below θ (ties
      count half), `acceleration` from a jackknife.
    - "union": the smallest interval holding both the percentile and the basic interval.
    - "centred": the basic interval of the resamples' deviations from their own mean, [θ − (q(1−α/2) − m),
      θ − (q(α/2) − m)]: the bootstrap's spread without its bias, for a statistic built to be unbiased (ARI, adjusted
      for chance) whose resamples are biased by their repeated rows (a repeated row is a pair that agrees in both
      partitions).
    Every variant can leave θ outside when the resamples lie almost all on one side of it (a biased statistic near
    its bound); the interval then ends at θ on that side, so it always contains the estimate (`contain=False` skips
    this step, for bench/bench_intervals.py to measure how often it is needed).
    None, None when most resamples are infinite (a ratio with an empty denominator): no honest interval.
    """
    finite = samples[np.isfinite(samples)]
    if len(finite) < max(10, 0.5 * len(samples)) or not math.isfinite(estimate):
        return None, None
    tail = (1 - confidence) / 2
    if method == "percentile":
        low, high = np.quantile(finite, [tail, 1 - tail])
    elif method == "basic":
        q_low, q_high = np.quantile(finite, [tail, 1 - tail])
        low, high = 2 * estimate - q_high, 2 * estimate - q_low
    elif method == "bca":
        below = (np.mean(finite < estimate) + 0.5 * np.mean(finite == estimate))
        edge = 1 / (len(finite) + 1)
        z0 = float(norm.ppf(min(max(below, edge), 1 - edge)))
        z = norm.ppf([tail, 1 - tail])
        shifted = z0 + z
        levels = norm.cdf(z0 + shifted / np.maximum(1 - acceleration * shifted, 1e-12))
        low, high = np.quantile(finite, levels)
    elif method == "centred":
        q_low, q_high = np.quantile(finite, [tail, 1 - tail])
        m = float(np.mean(finite))
        low, high = estimate - (q_high - m), estimate - (q_low - m)
    elif method == "union":
        q_low, q_high = np.quantile(finite, [tail, 1 - tail])
        low, high = min(q_low, 2 * estimate - q_high), max(q_high, 2 * estimate - q_low)
    else:
        raise ValueError(ERR_INTERVAL_METHOD.format(method=method, methods=INTERVAL_METHODS))
    low, high = min(max(float(low), bounds[0]), bounds[1]), max(min(float(high), bounds[1]), bounds[0])
    if not contain:
        return low, high
    return min(low, float(estimate)), max(high, float(estimate))


MINIMA = ("balance", "cluster_balance", "min_cluster_ratio")  # minima over clusters of ratios of counts


def _clopper_pearson(x: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) two-sided 1 - alpha bounds of binomial proportions x / n, elementwise."""
    x, n = np.asarray(x, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, beta_dist.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, beta_dist.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    return np.nan_to_num(low, nan=0.0), np.nan_to_num(high, nan=1.0)


def _minimum_intervals(table: np.ndarray, confidence: float, minority: int, majority: int) -> dict[str, tuple[float, float]]:
    """Simultaneous intervals for the minima over clusters (Balance, cluster balance, minimum cluster ratio) from
    the cluster × group table.

    Each is a minimum over clusters of a ratio of a cluster's group shares, which no bootstrap covers near its
    bound or with small groups (the resampled minimum of a few counts sits on the wrong side). Instead: exact
    Clopper-Pearson intervals for every share it depends on (p(g | c) within each cluster, and p(g) for cluster
    balance), each at level 1 - alpha / m (Bonferroni over the m shares), so that all hold at once with probability
    1 - alpha or more; each cluster's ratio then lies between the ratio of the bounds (lowest numerator over highest
    denominator, and the reverse), and the minimum between the minima of the lows and of the highs. Conservative
    by construction; it contains the estimate, since every share's estimate lies inside its own bounds.
    """
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(1) > 0]
    k, g = t.shape
    n_c = t.sum(1, keepdims=True)
    alpha = 1 - confidence
    out = {}
    lo, hi = _clopper_pearson(t, np.broadcast_to(n_c, t.shape), alpha / (k * g))
    low_c = lo.min(1) / np.maximum(hi.max(1), 1e-300)
    high_c = np.divide(hi.min(1), lo.max(1), out=np.full(k, np.inf), where=lo.max(1) > 0)
    out["balance"] = (float(low_c.min()), float(min(high_c.min(), 1.0)))
    # Minimum cluster ratio: the minority's and the majority's shares in each cluster (2K of them).
    lo2, hi2 = _clopper_pearson(t[:, [minority, majority]], np.broadcast_to(n_c, (k, 2)), alpha / (2 * k))
    low_c = lo2[:, 0] / np.maximum(hi2[:, 1], 1e-300)
    high_c = np.divide(hi2[:, 0], lo2[:, 1], out=np.full(k, np.inf), where=lo2[:, 1] > 0)
    out["min_cluster_ratio"] = (float(low_c.min()), float(high_c.min()))
    # Cluster balance: r = p(g | c) / p(g), then min(r, 1 / r), which rises to 1 at r = 1 and falls after.
    n = t.sum()
    lo_g, hi_g = _clopper_pearson(t.sum(0), np.full(g, n), alpha / (k * g + g))
    lo, hi = _clopper_pearson(t, np.broadcast_to(n_c, t.shape), alpha / (k * g + g))
    r_low = lo / hi_g
    r_high = np.divide(hi, lo_g, out=np.full(t.shape, np.inf), where=lo_g > 0)
    fold = lambda r: np.minimum(r, np.divide(1.0, r, out=np.zeros_like(r), where=r > 0))  # noqa: E731
    low_cg = np.minimum(fold(r_low), fold(r_high))
    high_cg = np.where((r_low <= 1) & (r_high >= 1), 1.0, np.maximum(fold(r_low), fold(r_high)))
    out["cluster_balance"] = (float(low_cg.min()), float(high_cg.min()))
    return out


def _neg_xlogx(p: np.ndarray) -> np.ndarray:
    return -xlogy(p, p)


def _entropy_ceiling(low: np.ndarray, high: np.ndarray, axis: int) -> np.ndarray:
    """The largest entropy -sum p ln p of a distribution p (along `axis`) with every p inside [low, high].

    Entropy is concave and symmetric, so its maximum on the box cut by sum p = 1 is p = clip(t, low, high) with the
    one t that makes the sum 1 (the KKT conditions: equal p wherever no bound binds); t is found by bisection.
    Needs sum(low) <= 1 <= sum(high), which holds when the box contains any distribution (the estimate's, here).
    """
    lo, hi = np.moveaxis(low, axis, -1), np.moveaxis(high, axis, -1)
    a, b = np.zeros(lo.shape[:-1]), np.ones(lo.shape[:-1])
    for _ in range(60):  # the sum is monotone in t; 60 halvings reach float precision
        t = (a + b) / 2
        below = np.clip(t[..., None], lo, hi).sum(-1) < 1
        a, b = np.where(below, t, a), np.where(below, b, t)
    p = np.clip(((a + b) / 2)[..., None], lo, hi)
    return _neg_xlogx(p / p.sum(-1, keepdims=True)).sum(-1)


def _edge_bounds(table: np.ndarray, confidence: float) -> dict[str, tuple[float | None, float | None]]:
    """Exact bounds that extend the bootstrap intervals of the metrics that sit at their edge under no effect.

    Near no effect the worst group's TV and KL are biased upward, the mean entropy over groups and MNCE (a minimum
    over clusters) downward, each by more than their resamples show (a small group, many clusters), so the basic
    interval misses the truth on that side. Each bound here comes from Clopper-Pearson intervals for every share it
    depends on, Bonferroni over them, so all hold at once with probability `confidence` or more:
    - TV: |p(c | g) - p(c)| is at least the gap between the two shares' intervals, so TV_g at least half the sum of
      the gaps; KL at least 2 TV² (Pinsker).
    - entropy: H(C | g) at most the largest entropy of a distribution inside the shares' intervals; their mean.
    - MNCE: H(G | c) at most its ceiling so made, H(G) at least its floor, their ratio's minimum over clusters.
    Every key maps to (a lower bound or None, an upper bound or None): the interval's lower end is taken down to
    the lower bound, its upper end up to the upper bound.
    """
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(1) > 0]
    k, g = t.shape
    alpha = 1 - confidence
    n_g, n_c = t.sum(0), t.sum(1)
    lo_cg, hi_cg = _clopper_pearson(t, np.broadcast_to(n_g, t.shape), alpha / (k * g + k))
    lo_c, hi_c = _clopper_pearson(n_c, np.full(k, t.sum()), alpha / (k * g + k))
    gap = np.maximum(0.0, np.maximum(lo_cg - hi_c[:, None], lo_c[:, None] - hi_cg))
    tv = float(0.5 * gap.sum(0).max())
    lo_cg, hi_cg = _clopper_pearson(t, np.broadcast_to(n_g, t.shape), alpha / (k * g))
    entropy = float(np.minimum(_entropy_ceiling(lo_cg, hi_cg, 0), math.log(k)).mean())
    lo_gc, hi_gc = _clopper_pearson(t, np.broadcast_to(n_c[:, None], t.shape), alpha / (k * g + g))
    lo_g, hi_g = _clopper_pearson(n_g, np.full(g, t.sum()), alpha / (k * g + g))
    h_given_c = np.minimum(_entropy_ceiling(lo_gc, hi_gc, 1), math.log(g))
    h_floor = float(np.minimum(_neg_xlogx(lo_g), _neg_xlogx(hi_g)).sum())
    mnce = min(float(h_given_c.min()) / h_floor, 1.0) if h_floor > 0 else 1.0
    return {"cluster_tv": (tv, None), "cluster_kl": (2 * tv * tv, None), "entropy": (None, entropy), "mnce": (None, mnce)}


def _jackknife_acceleration(values: np.ndarray, weights: np.ndarray) -> float:
    """BCa's acceleration from a grouped delete-one-row jackknife: `values[i]` is the metric without one row of
    occupied cell i, `weights[i]` the cell's count (every row of a cell gives the same value)."""
    ok = np.isfinite(values)
    if not ok.any():
        return 0.0
    v, w = values[ok], weights[ok].astype(np.float64)
    d = np.average(v, weights=w) - v
    denom = 6 * (w @ d ** 2) ** 1.5
    return float((w @ d ** 3) / denom) if denom > 0 else 0.0


def random_assignment_tables(cluster_sizes, group_sizes, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Cluster × group tables of group-blind random assignments with these cluster sizes (a random permutation of the
    cluster labels), drawn cluster by cluster from the multivariate hypergeometric law; shape (draws, K, G)."""
    cluster_sizes = np.asarray(cluster_sizes, dtype=np.int64)
    group_sizes = np.asarray(group_sizes, dtype=np.int64)
    out = np.zeros((draws, len(cluster_sizes), len(group_sizes)), dtype=np.int64)
    for d in range(draws):
        remaining = group_sizes.copy()
        for c, size in enumerate(cluster_sizes[:-1]):
            out[d, c] = rng.multivariate_hypergeometric(remaining, int(size))
            remaining -= out[d, c]
        out[d, -1] = remaining
    return out


def _wilson(p: float, n: int, confidence: float) -> tuple[float, float]:
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- the audit ----------------------------------------------------------------------------------------------------------
def audit(assignment, groups, y=None, embedding=None, *, resamples: int = DEFAULT_RESAMPLES,
          confidence: float = DEFAULT_CONFIDENCE, seed: int = 0, cluster_name: str = "cluster",
          random_draws: int = RANDOM_DRAWS, probe: bool = True) -> AuditResult:
    """Every metric for a clustering: quality against y (if given) and fairness for each sensitive attribute in
    `groups` (an array, a dict of name -> array, or a DataFrame) and for their intersection, with intervals and baselines.

    ValueError (one line naming the column and what to do) for a clustering, group or embedding it cannot audit.
    """
    if not 0 < confidence < 1:
        raise ValueError(ERR_CONFIDENCE.format(value=confidence))
    if not isinstance(resamples, (int, np.integer)) or not 0 <= resamples <= 100_000:
        raise ValueError(ERR_RESAMPLES.format(value=resamples))
    clusters, cluster_names = cluster_codes(assignment, cluster_name)
    n, k = len(clusters), len(cluster_names)
    sensitive = _sensitive(groups)
    if not sensitive:
        raise ValueError(ERR_NO_SENSITIVE)
    warnings: list[str] = []
    columns = []
    for name, values in sensitive.items():
        codes, names, warning = group_codes(values, name, n)
        columns.append((name, codes, names))
        if warning:
            warnings.append(warning)
    class_codes = class_names = None
    if y is not None:
        ys = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).ravel())
        if len(ys) != n:
            raise ValueError(ERR_LENGTHS.format(what="the class column", n_other=len(ys), n=n))
        _check_missing(ys, "class", str(ys.name or "class"))
        codes, uniques = pd.factorize(ys, sort=True)
        class_codes, class_names = codes.astype(np.int64), [str(u) for u in uniques]
        if near := near_duplicate_warning(pd.Series(np.asarray(uniques, dtype=object)), "class", str(ys.name or "class")):
            warnings.append(near)
    x = None if embedding is None else _embedding(embedding, n)
    rng = np.random.default_rng(seed)

    # Views: each attribute alone, then (with 2 or more) their intersection.
    views = [_View(name, [name], codes, names) for name, codes, names in columns]
    if len(columns) > 1:
        views.append(_intersection(columns))

    # One joint cell per occupied (cluster, class, every sensitive value) combination: the bootstrap's sample space.
    parts = [clusters] + ([class_codes] if class_codes is not None else []) + [c for _, c, _ in columns]
    sizes = [k] + ([len(class_names)] if class_names is not None else []) + [len(nm) for _, _, nm in columns]
    cells, first_row, cell_of_row = np.unique(_combined(parts, sizes), return_index=True, return_inverse=True)
    cell_counts = np.bincount(cell_of_row, minlength=len(cells))
    boot = rng.multinomial(n, cell_counts / n, size=resamples) if resamples else None  # (resamples, cells)

    context = _AuditContext(clusters=clusters, cluster_names=cluster_names, cluster_sizes=np.bincount(clusters, minlength=k),
                            cell_row=first_row, boot=boot, embedding=x, confidence=confidence, rng=rng,
                            random_draws=random_draws, seed=seed, probe=probe)
    quality = _quality(context, class_codes, len(class_names)) if class_codes is not None else _Quality()
    attributes = [_attribute_audit(view, context, quality) for view in views]
    caveats = _caveats(quality.estimates, attributes, quality.majority)
    return AuditResult(n=n, clusters=cluster_names, cluster_sizes=context.cluster_sizes.tolist(),
                       quality=quality.estimates, attributes=attributes, class_names=class_names, caveats=caveats,
                       warnings=warnings, settings={"resamples": int(resamples), "confidence": confidence, "seed": seed,
                                                    "random_draws": random_draws, "interval": INTERVAL_NAME})


@dataclass(frozen=True)
class _View:
    """One sensitive attribute, or the intersection of several, coded: what one AttributeAudit audits."""

    name: str
    columns: list[str]  # the sensitive columns it is made of
    codes: np.ndarray  # each row's group, 0 … len(group_names) − 1
    group_names: list[str]
    empty_combinations: list[str] = field(default_factory=list)  # intersections with no sample at all


@dataclass(frozen=True)
class _AuditContext:
    """What every part of one audit shares: the clustering, the bootstrap's resampled joint cells and the settings."""

    clusters: np.ndarray  # each row's cluster, 0 … K − 1
    cluster_names: list[str]
    cluster_sizes: np.ndarray
    cell_row: np.ndarray  # one row of each occupied joint cell (cluster, class, every sensitive value)
    boot: np.ndarray | None  # resampled counts of those cells, (resamples, cells); None without resampling
    embedding: np.ndarray | None
    confidence: float
    rng: np.random.Generator
    random_draws: int  # group-blind random assignments drawn for each baseline
    seed: int
    probe: bool

    def tables(self, a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The a × b count table of two coded columns, and its bootstrap resamples (None without resampling)."""
        table = M.count_table(M.label_codes(a, levels=n_a), M.label_codes(b, levels=n_b)).counts
        if self.boot is None:
            return table, None
        rows = self.cell_row
        return table, M.count_table(M.label_codes(a[rows], levels=n_a), M.label_codes(b[rows], levels=n_b),
                                    weights=self.boot).counts


@dataclass(frozen=True)
class _Quality:
    """The quality metrics against the class column, with what F_beta takes from them: NMI's bootstrap resamples and
    its values under random assignments; and the majority-class rate (ACC's second reference)."""

    estimates: dict[str, Estimate] = field(default_factory=dict)
    nmi_resamples: np.ndarray | None = None
    nmi_random: np.ndarray | None = None
    majority: float | None = None


def _combined(parts: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One code per row for a combination of coded columns (mixed radix: the last column varies fastest)."""
    out = np.zeros(len(parts[0]), dtype=np.int64)
    for codes, size in zip(parts, sizes):
        out = out * size + codes
    return out


def _intersection(columns):
    names = [c[0] for c in columns]
    combined = _combined([c[1] for c in columns], [len(c[2]) for c in columns])
    present, codes = np.unique(combined, return_inverse=True)
    def label(code: int) -> str:
        out = []
        for _, _, group_names in reversed(columns):
            out.append(group_names[code % len(group_names)])
            code //= len(group_names)
        return INTERSECTION.join(reversed(out))
    total = int(np.prod([len(c[2]) for c in columns]))
    present_set = set(present.tolist())
    empty = [label(c) for c in range(total) if c not in present_set] if total <= 10_000 else []
    return _View(INTERSECTION.join(names), names, codes.astype(np.int64), [label(int(c)) for c in present], empty)


def _quality(context: _AuditContext, y: np.ndarray, n_classes: int) -> _Quality:
    """ACC, NMI (both) and ARI with their intervals and random-assignment baselines."""
    table, resampled = context.tables(y, n_classes, context.clusters, len(context.cluster_names))
    values = {"acc": M.accuracy_from_tables(table), "nmi": M.nmi_from_tables(table, "arithmetic"),
              "nmi_geometric": M.nmi_from_tables(table, "geometric"), "ari": M.ari_from_tables(table)}
    majority = float(np.bincount(y).max() / len(y))
    # Class-blind assignments with the same cluster sizes: cluster × class tables, transposed to class × cluster.
    randoms = random_assignment_tables(context.cluster_sizes, table.sum(1), context.random_draws,
                                       context.rng).transpose(0, 2, 1)
    nmi_random = M.nmi_from_tables(randoms, "arithmetic")
    baselines = {"acc": (float(M.accuracy_from_tables(randoms).mean()),
                         f"{RANDOM_BASELINE}; majority-class rate {majority:.3f}"),
                 "nmi": (float(nmi_random.mean()), RANDOM_BASELINE),
                 "nmi_geometric": (float(M.nmi_from_tables(randoms, "geometric").mean()), RANDOM_BASELINE),
                 # ARI is adjusted for exactly this: its expectation over random assignments with both partitions'
                 # sizes fixed is 0 (Hubert & Arabie 1985).
                 "ari": (0.0, f"{RANDOM_BASELINE}: 0 (exact)")}
    samples = {}
    if resampled is not None:
        samples = {"acc": M.accuracy_from_tables(resampled), "nmi": M.nmi_from_tables(resampled, "arithmetic"),
                   "nmi_geometric": M.nmi_from_tables(resampled, "geometric"), "ari": M.ari_from_tables(resampled)}
    estimates = {}
    for key, value in values.items():
        low, high = (_interval(samples[key], float(value), context.confidence, RANGES[key], BOOTSTRAP_INTERVAL)
                     if samples else (None, None))
        estimates[key] = Estimate(float(value), low, high, *baselines[key])
    return _Quality(estimates, samples.get("nmi"), nmi_random, majority)


def _attribute_audit(view: _View, context: _AuditContext, quality: _Quality) -> AttributeAudit:
    """Every fairness metric of one view, with its interval and its random-assignment baseline."""
    k, g = len(context.cluster_names), len(view.group_names)
    confidence = context.confidence
    table, resampled = context.tables(context.clusters, k, view.codes, g)
    group_sizes = table.sum(0)
    minority, majority = M.minority_majority(group_sizes)
    point = {key: float(v) for key, v in _fairness_batch(table, minority, majority).items()}
    randoms = _fairness_batch(random_assignment_tables(context.cluster_sizes, group_sizes, context.random_draws,
                                                       context.rng), minority, majority)
    boots = _fairness_batch(resampled, minority, majority) if resampled is not None else {}
    if "nmi" in quality.estimates:
        point["f_beta"] = float(M.f_beta_from_scores(quality.estimates["nmi"].value, point["mnce"]))
        # Both halves random: the class and the group tables of random assignments (drawn independently).
        randoms["f_beta"] = M.f_beta_from_scores(quality.nmi_random, randoms["mnce"])
        if boots:
            boots["f_beta"] = M.f_beta_from_scores(quality.nmi_resamples, boots["mnce"])
    blind = RANDOM_BASELINE
    estimates = {}
    bounds = dict(RANGES, entropy=(0.0, math.log(k)))
    minima = _minimum_intervals(table, confidence, minority, majority) if boots else {}
    edges = _edge_bounds(table, confidence) if boots else {}
    for key, value in point.items():
        if key in minima and math.isfinite(value):
            low, high = minima[key]
            low, high = min(max(low, bounds[key][0]), value), max(min(high, bounds[key][1]), value)
        else:
            low, high = _interval(boots[key], value, confidence, bounds[key], BOOTSTRAP_INTERVAL) if boots else (None, None)
            if key in edges and low is not None:
                floor, ceiling = edges[key]
                low = low if floor is None else min(low, floor)
                high = high if ceiling is None else max(high, ceiling)
        estimates[key] = Estimate(value, low, high, float(np.mean(randoms[key])), blind)
    ceiling = float(group_sizes.min() / group_sizes.max())
    estimates["balance"].baseline_label = f"{blind}; ceiling {ceiling:.3f}"
    per_group = {"entropy": M.entropy_from_tables(table).tolist(), "cluster_tv": M.cluster_tv_from_tables(table).tolist(),
                 "cluster_kl": M.cluster_kl_from_tables(table).tolist()}
    if context.embedding is not None:
        _embedding_metrics(estimates, per_group, context, view.codes, g)
    balance_cluster = context.cluster_names[int(np.argmin(M.balance_per_cluster_from_tables(table)))]
    return AttributeAudit(name=view.name, group_names=view.group_names, group_counts=group_sizes.tolist(), table=table,
                          metrics=estimates, per_group=per_group, balance_cluster=balance_cluster, ceiling=ceiling,
                          columns=view.columns, empty_combinations=view.empty_combinations)


def _spread(means: np.ndarray, op) -> np.ndarray:
    """op(max, min) over the groups of each resample's group means; NaN for a resample in which no group has a row
    (a resample can leave a group empty: its mean is NaN and ignored)."""
    out = np.full(len(means), np.nan)
    some = np.isfinite(means).any(-1)
    out[some] = op(np.nanmax(means[some], -1), np.nanmin(means[some], -1))
    return out


def _embedding_metrics(estimates: dict[str, Estimate], per_group: dict[str, list[float]], context: _AuditContext,
                       groups: np.ndarray, n_groups: int) -> None:
    """Social fairness ratio on all rows (its bootstrap too), silhouette difference on a disclosed stratified
    subsample of SILHOUETTE_SAMPLE rows (silhouettes cost O(n²)), and the probe, added to `estimates` and
    `per_group`."""
    x, clusters, confidence, rng, seed = context.embedding, context.clusters, context.confidence, context.rng, context.seed
    n = len(clusters)
    blind = RANDOM_BASELINE
    resamples = 200

    # Social fairness ratio: the distances to the centres are fixed, each resample redraws every group's mean
    # distance. A group of up to GROUP_RESAMPLE_ROWS rows is resampled row by row (Poisson weights); a larger group's
    # resampled mean is drawn from its normal limit (mean, sd / √n), which a row-by-row bootstrap of so many rows
    # reproduces, at a cost independent of n.
    d = M.centre_distances(x, clusters)
    sfr, d_group = M.social_fairness_ratio(x, clusters, groups)
    means = np.empty((resamples, n_groups))
    for g in range(n_groups):
        dg = d[groups == g]
        if len(dg) <= GROUP_RESAMPLE_ROWS:
            w = rng.poisson(1.0, size=(resamples, len(dg))).astype(np.float64)
            counts = w.sum(1)
            means[:, g] = np.divide(w @ dg, counts, out=np.full(resamples, np.nan), where=counts > 0)
        else:
            means[:, g] = rng.normal(dg.mean(), dg.std() / math.sqrt(len(dg)), resamples)
    low, high = _interval(_spread(means, np.divide), sfr, confidence, RANGES["social_fairness_ratio"], BOOTSTRAP_INTERVAL)
    # A random permutation's ratio barely varies on many rows: fewer draws there keep the cost near that of 20,000.
    draws = int(np.clip(20 * EMBEDDING_SAMPLE // n, 3, 20))
    shuffled = [M.social_fairness_ratio(x, rng.permutation(clusters), groups)[0] for _ in range(draws)]
    estimates["social_fairness_ratio"] = Estimate(sfr, low, high, float(np.mean(shuffled)), blind)
    per_group["social_fairness_distance"] = d_group.tolist()

    diff, s_group = M.silhouette_by_group(x, clusters, groups, max_samples=SILHOUETTE_SAMPLE, random_state=seed)
    sub = np.arange(n)
    if n > SILHOUETTE_SAMPLE:  # the same stratified subsample silhouette_by_group takes
        from sklearn.model_selection import train_test_split
        strat = groups if np.bincount(groups).min() >= 2 else None
        sub, _ = train_test_split(sub, train_size=SILHOUETTE_SAMPLE, stratify=strat, random_state=seed)
    n_used = len(sub) if n > SILHOUETTE_SAMPLE else None
    from sklearn.metrics import silhouette_samples
    if len(np.unique(clusters[sub])) >= 2:
        s = silhouette_samples(x[sub], clusters[sub])
        oh = np.eye(n_groups)[groups[sub]]
        w = rng.poisson(1.0, size=(resamples, len(sub))).astype(np.float64)
        sums, counts = w @ (oh * s[:, None]), w @ oh
        means = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
        low, high = _interval(_spread(means, np.subtract), diff, confidence, RANGES["silhouette_diff"], BOOTSTRAP_INTERVAL)
        if low is not None:
            # Near no effect a max - min of group means is biased upward by more than its resamples show (as TV):
            # the lower end goes down to max_g L_g - min_g U_g, from simultaneous normal intervals of the groups'
            # mean silhouettes (Bonferroni over the groups present); the truth is above it when all of them hold.
            g_sub = groups[sub]
            present = np.flatnonzero(np.bincount(g_sub, minlength=n_groups) >= 2)
            if len(present) >= 2:
                z = float(norm.ppf(1 - (1 - confidence) / (2 * len(present))))
                m = np.array([s[g_sub == g].mean() for g in present])
                se = np.array([s[g_sub == g].std(ddof=1) / math.sqrt((g_sub == g).sum()) for g in present])
                low = min(low, max(0.0, float((m - z * se).max() - (m + z * se).min())))
        shuffled = [M.silhouette_by_group(x[sub], rng.permutation(clusters[sub]), groups[sub], random_state=seed)[0]
                    for _ in range(5)]
        estimates["silhouette_diff"] = Estimate(diff, low, high, float(np.mean(shuffled)), RANDOM_BASELINE, n_used)
    else:
        estimates["silhouette_diff"] = Estimate(diff, n_used=n_used)
    per_group["silhouette"] = s_group.tolist()

    if context.probe and np.bincount(groups, minlength=n_groups).min() >= 2:
        try:
            result = M.probe_accuracy(x, groups, random_state=seed)
        except ValueError:
            return
        low, high = _wilson(result.accuracy, result.n_test, confidence)
        used = result.n_train + result.n_test
        estimates["probe_acc"] = Estimate(result.accuracy, low, high, result.majority_rate,
                                          "chance: the majority-group rate", used if used < len(groups) else None)


def _caveats(quality, attributes, majority: float | None = None) -> list[str]:
    out = []
    acc = quality.get("acc")
    if acc is not None and majority is not None and acc.value <= majority + 1e-12:
        out.append(f"ACC {acc.value:.3f} is no better than the majority-class rate {majority:.3f}: the clusters "
                   "do not recover the classes better than putting every sample in one cluster.")
    for a in attributes:
        small = a.small_groups()
        if small and not a.is_intersection:
            listed = ", ".join(f"{g} ({c})" for g, c in small)
            out.append(f"{a.name}: group(s) under {SMALL_GROUP} samples: {listed}. Their numbers are fragile; read the "
                       "intervals, which are wide.")
        if a.is_intersection:
            if small:
                listed = ", ".join(f"{g} ({c})" for g, c in small[:12]) + (" …" if len(small) > 12 else "")
                out.append(f"{a.name}: intersection(s) too small to judge (under {SMALL_GROUP} samples): {listed}.")
            if a.empty_combinations:
                listed = ", ".join(a.empty_combinations[:12]) + (" …" if len(a.empty_combinations) > 12 else "")
                out.append(f"{a.name}: {len(a.empty_combinations)} combination(s) have no sample at all and are not "
                           f"audited: {listed}.")
        bal = a.metrics["balance"]
        if bal.value == 0:
            out.append(f"{a.name}: Balance is 0 because cluster {a.balance_cluster} misses at least one group; Balance "
                       "is a minimum over clusters, so one such cluster sets it. The per-cluster shares show the rest.")
    return out
