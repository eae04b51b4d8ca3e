"""Audit any clustering: every fairness metric for each sensitive attribute and for their intersection, each with a
bootstrap interval and the value a group-blind random assignment with the same cluster sizes gets.

    from dashboard_lib import audit
    result = audit(kmeans.labels_, {"sex": df.sex, "race": df.race}, y=df.income)

- Bootstrap, vectorised: the metrics are functions of the count table of (cluster, class, sensitive values), so a
  resample of the N rows is a multinomial draw of that table's cells (Efron's bootstrap, exactly): 1,000 resamples
  cost 1,000 draws over the occupied cells, not 1,000 passes over the rows. Percentile intervals.
- Random baseline: a group-blind assignment with the same cluster sizes is a random permutation of the cluster
  labels; its cluster × group table is drawn cluster by cluster from the multivariate hypergeometric law, and the
  baseline is the mean of each metric over those draws.
- Embedding metrics (social fairness ratio, silhouette difference): per-sample values (distance to the assigned
  centre, silhouette) computed once, then a Poisson bootstrap over the rows of a stratified subsample.
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
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.special import xlogy
from scipy.stats import norm

from . import metrics as M

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
RANDOM_DRAWS = 200  # group-blind random assignments averaged for each baseline
SMALL_GROUP = 30  # below this many samples a group's numbers are fragile: the report says so
EMBEDDING_SAMPLE = 20_000  # rows used for the embedding metrics' intervals and baselines
MAX_GROUPS = 100
INTERSECTION = " × "

ERR_ONE_CLUSTER = "the cluster column {name!r} holds a single cluster ({value}): an audit compares clusters, pass a clustering with 2 or more"
ERR_CLUSTER_LABELS = ("the cluster column {name!r} holds {found} at row {row:,} (0 = the first row): a cluster id is a "
                      "label (text or a whole number), not a fraction; fix that row or map the ids to labels")
ERR_CLUSTER_INFINITE = ("the cluster column {name!r} holds {found} at row {row:,} (0 = the first row): an infinite cluster "
                        "id is not a label; fix that row")
ERR_MISSING = "the {what} column {name!r} has {count:,} missing value(s) (first at row {row}): drop or fill those rows first"
ERR_SINGLE_GROUP = "the sensitive column {name!r} holds a single group ({value}): an audit compares groups, pick a column with 2 or more"
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
        raise ValueError(ERR_SINGLE_GROUP.format(name=name, value=uniques[0]))
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


# --- batched metrics over tables ---------------------------------------------------------------------------------------
def _entropy(p: np.ndarray, axis) -> np.ndarray:
    return -xlogy(p, p).sum(axis)


def _nmi_from_tables(tables: np.ndarray, average: str) -> np.ndarray:
    """NMI from (…, classes, clusters) tables, as metrics.nmi (scikit-learn) computes it."""
    t = np.asarray(tables, dtype=np.float64)
    n = t.sum((-2, -1), keepdims=True)
    p = t / n
    pi, pj = p.sum(-1), p.sum(-2)
    mi = (xlogy(p, p) - xlogy(p, pi[..., :, None] * pj[..., None, :] + (p == 0))).sum((-2, -1))
    h_true, h_pred = _entropy(pi, -1), _entropy(pj, -1)
    denom = (h_true + h_pred) / 2 if average == "arithmetic" else np.sqrt(h_true * h_pred)
    return np.where(mi <= 1e-15, 0.0, np.divide(mi, denom, out=np.zeros_like(mi), where=denom > 0))


def _ari_from_tables(tables: np.ndarray) -> np.ndarray:
    t = np.asarray(tables, dtype=np.float64)
    n = t.sum((-2, -1))
    index = (t * (t - 1) / 2).sum((-2, -1))
    a, b = t.sum(-1), t.sum(-2)
    sum_a, sum_b = (a * (a - 1) / 2).sum(-1), (b * (b - 1) / 2).sum(-1)
    expected = sum_a * sum_b / np.maximum(n * (n - 1) / 2, 1)
    maximum = (sum_a + sum_b) / 2
    denom = maximum - expected
    return np.where(denom == 0, 1.0, (index - expected) / np.where(denom == 0, 1, denom))


def _acc_from_tables(tables: np.ndarray) -> np.ndarray:
    out = np.empty(len(tables))
    for i, t in enumerate(tables):
        rows, cols = linear_sum_assignment(t, maximize=True)
        out[i] = t[rows, cols].sum() / max(t.sum(), 1)
    return out


def _f_beta(nmi: np.ndarray, mnce: np.ndarray, beta: float = 1.0) -> np.ndarray:
    b2 = beta * beta
    denom = b2 * nmi + mnce
    return np.divide((1 + b2) * nmi * mnce, denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)


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


def _interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    finite = samples[np.isfinite(samples)]
    if len(finite) < max(10, 0.5 * len(samples)):
        return None, None  # mostly infinite (a ratio with an empty denominator): no honest interval
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


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
    views = [(name, [name], codes, names, []) for name, codes, names in columns]
    if len(columns) > 1:
        views.append(_intersection(columns))

    # One joint cell per occupied (cluster, class, every sensitive value) combination: the bootstrap's sample space.
    parts = [clusters] + ([class_codes] if class_codes is not None else []) + [c for _, c, _ in columns]
    sizes = [k] + ([len(class_names)] if class_names is not None else []) + [len(nm) for _, _, nm in columns]
    cells, first_row, cell_of_row = np.unique(_combined(parts, sizes), return_index=True, return_inverse=True)
    cell_counts = np.bincount(cell_of_row, minlength=len(cells))
    boot = rng.multinomial(n, cell_counts / n, size=resamples) if resamples else None  # (resamples, cells)

    cluster_sizes = np.bincount(clusters, minlength=k)
    quality: dict[str, Estimate] = {}
    nmi_boot = None
    if class_codes is not None:
        quality, nmi_boot = _quality(class_codes, len(class_names), clusters, k, first_row, boot, confidence)

    attributes = []
    for name, cols, codes, names, empty in views:
        attributes.append(_attribute_audit(name, cols, codes, names, empty, clusters, cluster_names, cluster_sizes,
                                           first_row, boot, nmi_boot, quality, x, confidence, rng,
                                           random_draws, seed, probe))
    caveats = _caveats(quality, attributes)
    return AuditResult(n=n, clusters=cluster_names, cluster_sizes=cluster_sizes.tolist(), quality=quality,
                       attributes=attributes, class_names=class_names, caveats=caveats, warnings=warnings,
                       settings={"resamples": int(resamples), "confidence": confidence, "seed": seed,
                                 "random_draws": random_draws, "interval": "bootstrap percentile"})


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
    return INTERSECTION.join(names), names, codes.astype(np.int64), [label(int(c)) for c in present], empty


def _tables(boot: np.ndarray, cell_row: np.ndarray, code_a: np.ndarray, size_a: int, code_b: np.ndarray, size_b: int):
    """Resampled (a × b) tables from resampled cell counts: one sparse product."""
    index = code_a[cell_row] * size_b + code_b[cell_row]
    indicator = sparse.csr_matrix((np.ones(len(index)), (np.arange(len(index)), index)), shape=(len(index), size_a * size_b))
    return np.asarray((indicator.T @ boot.T).T).reshape(len(boot), size_a, size_b)


def _quality(y, n_classes, clusters, k, first_row, boot, confidence):
    table = M._table(y, n_classes, clusters, k)
    values = {"acc": M._accuracy_from_table(table), "nmi": M._nmi_from_table(table, "arithmetic"),
              "nmi_geometric": M._nmi_from_table(table, "geometric"), "ari": M._ari_from_table(table)}
    majority = float(np.bincount(y).max() / len(y))
    baselines = {"acc": (majority, "majority-class rate"),
                 "nmi": (0.0, "independent of the classes"), "nmi_geometric": (0.0, "independent of the classes"),
                 "ari": (0.0, "random labelling")}
    samples = {}
    if boot is not None:
        tables = _tables(boot, first_row, y, n_classes, clusters, k)
        samples = {"acc": _acc_from_tables(tables), "nmi": _nmi_from_tables(tables, "arithmetic"),
                   "nmi_geometric": _nmi_from_tables(tables, "geometric"), "ari": _ari_from_tables(tables)}
    out = {}
    for key, value in values.items():
        low, high = _interval(samples[key], confidence) if samples else (None, None)
        out[key] = Estimate(float(value), low, high, *baselines[key])
    return out, samples.get("nmi")


def _attribute_audit(name, cols, codes, names, empty, clusters, cluster_names, cluster_sizes, first_row,
                     boot, nmi_boot, quality, x, confidence, rng, random_draws, seed, probe) -> AttributeAudit:
    k, g = len(cluster_names), len(names)
    table = M._table(clusters, k, codes, g)
    group_sizes = table.sum(0)
    minority, majority = M.minority_majority(group_sizes)
    point = {key: float(v) for key, v in _fairness_batch(table, minority, majority).items()}
    randoms = _fairness_batch(random_assignment_tables(cluster_sizes, group_sizes, random_draws, rng), minority, majority)
    boots = _fairness_batch(_tables(boot, first_row, clusters, k, codes, g), minority, majority) if boot is not None else {}
    if "nmi" in quality:
        point["f_beta"] = float(_f_beta(np.float64(quality["nmi"].value), np.float64(point["mnce"])))
        randoms["f_beta"] = _f_beta(np.full(random_draws, quality["nmi"].value), randoms["mnce"])
        if boots:
            boots["f_beta"] = _f_beta(nmi_boot, boots["mnce"])
    blind = RANDOM_BASELINE
    estimates = {}
    for key, value in point.items():
        low, high = _interval(boots[key], confidence) if boots else (None, None)
        estimates[key] = Estimate(value, low, high, float(np.mean(randoms[key])), blind)
    ceiling = float(group_sizes.min() / group_sizes.max())
    estimates["balance"].baseline_label = f"{blind}; ceiling {ceiling:.3f}"
    per_group = {"entropy": M.entropy_from_tables(table).tolist(), "cluster_tv": M.cluster_tv_from_tables(table).tolist(),
                 "cluster_kl": M.cluster_kl_from_tables(table).tolist()}
    if x is not None:
        _embedding_metrics(estimates, per_group, x, clusters, codes, g, confidence, rng, seed, probe)
    ratios = np.where(table.sum(1) > 0, table.min(1) / np.maximum(table.max(1), 1), np.inf)
    return AttributeAudit(name=name, group_names=names, group_counts=group_sizes.tolist(), table=table, metrics=estimates,
                          per_group=per_group, balance_cluster=cluster_names[int(np.argmin(ratios))], ceiling=ceiling,
                          columns=cols, empty_combinations=empty)


def _embedding_metrics(estimates, per_group, x, clusters, groups, n_groups, confidence, rng, seed, probe) -> None:
    """Social fairness ratio and silhouette difference (Poisson bootstrap over a stratified subsample), and the probe."""
    index = np.arange(len(clusters))
    if len(index) > EMBEDDING_SAMPLE:
        index = np.sort(rng.choice(len(clusters), EMBEDDING_SAMPLE, replace=False))
    xs, cs, gs = x[index], clusters[index], groups[index]
    onehot = np.eye(n_groups)[gs]
    blind = RANDOM_BASELINE
    resamples = 200

    def ratio_of_means(values, weights):  # (B, n) weights -> per-group weighted means -> max / min
        sums, counts = weights @ (onehot * values[:, None]), weights @ onehot
        means = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
        return np.nanmax(means, -1) / np.nanmin(means, -1), means

    d = M.centre_distances(xs, cs)
    sfr, d_group = M.social_fairness_ratio(xs, cs, gs)
    weights = rng.poisson(1.0, size=(resamples, len(d))).astype(np.float64)
    low, high = _interval(ratio_of_means(d, weights)[0], confidence)
    shuffled = [M.social_fairness_ratio(xs, rng.permutation(cs), gs)[0] for _ in range(20)]
    estimates["social_fairness_ratio"] = Estimate(sfr, low, high, float(np.mean(shuffled)), blind)
    per_group["social_fairness_distance"] = d_group.tolist()

    diff, s_group = M.silhouette_by_group(xs, cs, gs, random_state=seed)
    sub = np.arange(len(cs))
    if len(sub) > 3000:
        from sklearn.model_selection import train_test_split
        strat = gs if np.bincount(gs).min() >= 2 else None
        sub, _ = train_test_split(sub, train_size=3000, stratify=strat, random_state=seed)
    from sklearn.metrics import silhouette_samples
    if len(np.unique(cs[sub])) >= 2:
        s = silhouette_samples(xs[sub], cs[sub])
        oh = np.eye(n_groups)[gs[sub]]
        w = rng.poisson(1.0, size=(resamples, len(sub))).astype(np.float64)
        sums, counts = w @ (oh * s[:, None]), w @ oh
        means = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
        low, high = _interval(np.nanmax(means, -1) - np.nanmin(means, -1), confidence)
        shuffled = [M.silhouette_by_group(xs[sub], rng.permutation(cs[sub]), gs[sub], random_state=seed)[0] for _ in range(5)]
        estimates["silhouette_diff"] = Estimate(diff, low, high, float(np.mean(shuffled)), RANDOM_BASELINE)
    else:
        estimates["silhouette_diff"] = Estimate(diff)
    per_group["silhouette"] = s_group.tolist()

    if probe and np.bincount(groups, minlength=n_groups).min() >= 2:
        try:
            result = M.probe_accuracy(x, groups, random_state=seed)
        except ValueError:
            return
        low, high = _wilson(result.accuracy, result.n_test, confidence)
        estimates["probe_acc"] = Estimate(result.accuracy, low, high, result.majority_rate,
                                          "chance: the majority-group rate")


def _caveats(quality, attributes) -> list[str]:
    out = []
    acc = quality.get("acc")
    if acc is not None and acc.value <= acc.baseline + 1e-12:
        out.append(f"ACC {acc.value:.3f} is no better than the majority-class rate {acc.baseline:.3f}: the clusters "
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
