"""Repair of an audited clustering: the nearest fair assignment (classic.repair) for one sensitive attribute or the
intersection of several, audited exactly as the original was, with what it cost; recorded as a run of its own.

Bounds: Bera et al.'s (2019) proportional bounds, every cluster's share of group g within [(1 − δ) r_g, r_g / (1 − δ)],
r_g the data's share of g; any group's [lower, upper] may be set by hand instead. The repair keeps every cluster's size
and is the exact optimum of its LP (classic/repair.py): the fewest points moved, or the least total distance of the
points to the original clusters' centres (means on the features or embedding). The price of fairness is that sum
(Euclidean, not squared) after the repair over the same sum before, both against the original centres.

Every problem a user can cause raises ValueError with one line saying what to do; nothing is saved then.
Knows nothing of Streamlit.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import classic
from .auditing import INTERSECTION, AuditResult, Estimate, cluster_codes, group_codes
from .external import NAME_MAX, AuditTable, audit_table, record_external
from .metrics import METRIC_DEFINITIONS
from .store import RunStore

DEFAULT_DELTA = 0.2
COSTS = {"moves": "fewest points moved", "distance": "least added distance"}
SOLVER = ("exact optimum of the repair's linear program (HiGHS dual simplex through scipy.optimize.linprog; its "
          "constraint matrix is totally unimodular, so the optimum is a whole assignment); every cluster keeps its size")
DISTANCE = "Σ over the points of the Euclidean distance to their cluster's centre, the original clusters' means"
GUARANTEE = ("Exact: no assignment with the same cluster sizes meets these bounds with fewer points moved (or, for "
             "least added distance, a smaller total distance to the original centres). Cluster sizes are kept.")

ERR_UNKNOWN_ATTRIBUTE = "no sensitive attribute {name!r} to repair for: choose one of {have}"
ERR_UNKNOWN_GROUP = "the bounds name group {group!r}, which {attribute!r} does not have: its groups are {have}"
ERR_BOUNDS_TEXT = ("bounds {text!r}: give δ (a number in [0, 1), e.g. 0.2), or GROUP=LOWER:UPPER shares separated by "
                   "commas (e.g. F=0.3:0.7,M=0.3:0.7), or both (0.1,F=0.3:0.7)")
ERR_SHARE = "group {group!r}: its share bounds [{lower}, {upper}] must satisfy 0 <= lower <= upper <= 1"
ERR_DELTA = "δ must be a number in [0, 1) (0.2: each group's share within [0.8 r, r / 0.8]), got {value!r}"
ERR_COST = "the repair's cost must be one of {costs}, got {value!r}"
ERR_DISTANCE_NO_FEATURES = ("least added distance needs features or an embedding, and this clustering has none saved: "
                            "repair for the fewest points moved (a table audited with its embedding or feature columns "
                            "has them)")
NOTE_NO_FEATURES = ("no features or embedding: the change in cost (Σ distance to the cluster centres, the price of "
                    "fairness) cannot be computed")
NOTE_NO_CLASS = "no class column: no change in ACC or NMI to show"


@dataclass
class Bounds:
    """Each group's share bounds for one attribute, groups in the audit's order."""

    attribute: str
    groups: list[str]
    population: list[float]  # r_g, the data's share of each group
    lower: list[float]
    upper: list[float]
    delta: float
    by_hand: list[str]  # groups whose bounds were set by hand, not from δ

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "delta": self.delta,
                "groups": {g: {"population": r, "lower": lo, "upper": hi, "by_hand": g in self.by_hand}
                           for g, r, lo, hi in zip(self.groups, self.population, self.lower, self.upper)}}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"group": self.groups, "share of the data": self.population, "lower": self.lower,
                             "upper": self.upper, "set": ["by hand" if g in self.by_hand else f"δ = {self.delta:g}"
                                                          for g in self.groups]})


@dataclass
class Repair:
    """A repaired clustering beside its original: both audits, the bounds, the moves and the price."""

    prepared: AuditTable  # the original's inputs
    original: AuditResult
    repaired: AuditResult
    assignment: pd.Series  # the repaired cluster of each row, in the original's cluster ids
    bounds: Bounds
    cost: str  # a key of COSTS
    moved: np.ndarray  # boolean, per row
    cost_before: float | None
    cost_after: float | None
    seconds: float  # the solver's time

    @property
    def n_moved(self) -> int:
        return int(self.moved.sum())

    @property
    def cost_ratio(self) -> float | None:
        if self.cost_before is None:
            return None
        return self.cost_after / self.cost_before if self.cost_before > 0 else math.inf

    def provenance(self, original_run: str | None) -> dict:
        """What the repaired run records of how it was made."""
        return {"repaired_run": original_run, "attribute": self.bounds.attribute, "bounds": self.bounds.to_dict(),
                "cost": self.cost, "n_moved": self.n_moved, "n": self.original.n, "cost_before": self.cost_before,
                "cost_after": self.cost_after, "cost_ratio": self.cost_ratio,
                "distance": DISTANCE if self.cost_before is not None else None, "solver": SOLVER,
                "seconds": round(self.seconds, 3)}

    def moves(self) -> pd.DataFrame:
        """One row per moved point: its row id, its group, its original and its repaired cluster."""
        codes, names = cluster_codes(self.prepared.assignment, "cluster")
        new_codes, _ = cluster_codes(self.assignment, "cluster")
        names = np.asarray(names, dtype=object)
        rows = np.flatnonzero(self.moved)
        return pd.DataFrame({"row_id": np.asarray(self.prepared.row_id)[rows],
                             self.bounds.attribute: attribute_labels(self.prepared, self.bounds.attribute)[rows],
                             "cluster": names[codes[rows]], "repaired_cluster": names[new_codes[rows]]})

    def comparison(self) -> pd.DataFrame:
        """Every metric of both audits in one table: before and after with their intervals, and the change; the
        quality metrics first, then the attribute repaired for, then the others."""
        rows = [_row("quality", key, e, self.repaired.quality[key]) for key, e in self.original.quality.items()]
        for a in sorted(self.original.attributes, key=lambda a: a.name != self.bounds.attribute):
            after = self.repaired.attribute(a.name).metrics
            rows += [_row(a.name, key, e, after[key]) for key, e in a.metrics.items() if key in after]
        return pd.DataFrame(rows)

    def summary_lines(self, repaired_run: str | None = None) -> list[str]:
        """The repair in a few lines of text: moves, price, ACC/NMI and the repaired attribute's fairness."""
        b = self.bounds
        lines = [f"repair for {b.attribute} ({COSTS[self.cost]}), bounds: "
                 + "; ".join(f"{g} [{lo:.3f}, {hi:.3f}]" for g, lo, hi in zip(b.groups, b.lower, b.upper)),
                 f"  points moved: {self.n_moved:,} of {self.original.n:,} ({self.n_moved / self.original.n:.1%})"]
        if self.cost_before is None:
            lines.append(f"  cost: {NOTE_NO_FEATURES}")
        else:
            lines.append(f"  cost (Σ distance to the centres): {self.cost_before:.4g} before, {self.cost_after:.4g} "
                         f"after, ratio {self.cost_ratio:.3f}")
        table = self.comparison()
        shown = table[(table["part"] == "quality") & table["key"].isin(["acc", "nmi"])]
        shown = pd.concat([shown, table[table["part"] == b.attribute]])
        if not len(table[table["part"] == "quality"]):
            lines.append(f"  {NOTE_NO_CLASS}")
        for _, r in shown.iterrows():
            where = "" if r["part"] == "quality" else f" ({r['part']})"
            lines.append(f"  {r['metric']}{where}: {r['before']} → {r['after']} (change {r['change']})")
        if repaired_run:
            lines.append(f"repaired clustering recorded as run {repaired_run}")
        return lines


def _row(part: str, key: str, before: Estimate, after: Estimate) -> dict:
    d = METRIC_DEFINITIONS.get(key, {})
    change = round(after.value - before.value, 3) + 0.0  # + 0.0: no "-0.000"
    return {"part": part, "key": key, "metric": d.get("label", key), "before": before.text(), "after": after.text(),
            "change": f"{change:+.3f}" if math.isfinite(change) else "n/a",
            "better": {True: "higher", False: "lower"}.get(d.get("higher_is_better"), "")}


def attributes(prepared: AuditTable) -> list[str]:
    """What a repair can be for: each sensitive column, and their intersection where there are two or more."""
    names = list(prepared.sensitive)
    return names + [INTERSECTION.join(names)] * (len(names) > 1)


def attribute_labels(prepared: AuditTable, attribute: str) -> np.ndarray:
    """Each row's group for one attribute or the intersection, as the audit names it (exact labels, ' × ' joined)."""
    if attribute not in attributes(prepared):
        raise ValueError(ERR_UNKNOWN_ATTRIBUTE.format(name=attribute, have=attributes(prepared)))
    columns = list(prepared.sensitive) if INTERSECTION in attribute and attribute not in prepared.sensitive else [attribute]
    n = len(prepared.assignment)
    parts = []
    for column in columns:
        codes, names, _ = group_codes(prepared.sensitive[column], column, n)
        parts.append(np.asarray(names, dtype=object)[codes])
    labels = parts[0]
    for part in parts[1:]:
        labels = np.asarray([f"{a}{INTERSECTION}{b}" for a, b in zip(labels, part)], dtype=object)
    return labels


def parse_bounds(text: str) -> tuple[float, dict[str, tuple[float, float]]]:
    """`0.2`, `F=0.3:0.7,M=0.3:0.7` or `0.1,F=0.3:0.7` as (δ, {group: (lower, upper)}); δ is DEFAULT_DELTA unless
    given. A group name is read exactly (spaces kept); it may hold '=' (the last one splits) but not ','."""
    delta, shares = DEFAULT_DELTA, {}
    for item in str(text).split(","):
        if "=" not in item:
            delta = _number(item, text)
            continue
        group, _, span = item.rpartition("=")
        lower, sep, upper = span.partition(":")
        if not sep or not group:
            raise ValueError(ERR_BOUNDS_TEXT.format(text=text))
        shares[group] = (_number(lower, text), _number(upper, text))
    return delta, shares


_NUMBER = re.compile(r"\s*[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?\s*")


def _number(item: str, text: str) -> float:
    if not _NUMBER.fullmatch(item):
        raise ValueError(ERR_BOUNDS_TEXT.format(text=text))
    return float(item)


def repair_bounds(labels: np.ndarray, attribute: str, groups: list[str], delta: float = DEFAULT_DELTA,
                  shares: dict[str, tuple[float | None, float | None]] | None = None) -> Bounds:
    """Bera et al.'s proportional bounds [(1 − δ) r_g, min(1, r_g / (1 − δ))] for each group, except where a group's
    lower or upper share is given by hand (None: that one from δ)."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < 1:
        raise ValueError(ERR_DELTA.format(value=delta))
    shares = dict(shares or {})
    for group in shares:
        if group not in groups:
            raise ValueError(ERR_UNKNOWN_GROUP.format(group=group, attribute=attribute, have=groups))
    counts = pd.Series(labels).value_counts()
    population = [float(counts.get(g, 0) / len(labels)) for g in groups]
    lower, upper = [], []
    for g, r in zip(groups, population):
        low, high = shares.get(g, (None, None))
        lower.append(float((1 - delta) * r if low is None else low))
        upper.append(float(min(1.0, r / (1 - delta)) if high is None else high))
        if g in shares and not 0 <= lower[-1] <= upper[-1] <= 1:
            raise ValueError(ERR_SHARE.format(group=g, lower=f"{lower[-1]:.4g}", upper=f"{upper[-1]:.4g}"))
    return Bounds(attribute, list(groups), population, lower, upper, float(delta), [g for g in groups if g in shares])


def repair_clustering(prepared: AuditTable, original: AuditResult, *, attribute: str | None = None,
                      delta: float = DEFAULT_DELTA, shares: dict[str, tuple[float, float]] | None = None,
                      cost: str = "moves") -> Repair:
    """The nearest fair clustering to the audited one (`original`, the audit of `prepared`), audited with the same
    settings. `attribute` is a sensitive column or the intersection (default: the first column)."""
    if cost not in COSTS:
        raise ValueError(ERR_COST.format(costs=list(COSTS), value=cost))
    attribute = attribute or attributes(prepared)[0]
    labels = attribute_labels(prepared, attribute)
    bounds = repair_bounds(labels, attribute, original.attribute(attribute).group_names, delta, shares)
    if cost == "distance" and prepared.embedding is None:
        raise ValueError(ERR_DISTANCE_NO_FEATURES)
    order = {g: i for i, g in enumerate(bounds.groups)}
    present = np.unique(labels)  # classic.repair's order of the groups
    lower = np.asarray([bounds.lower[order[g]] for g in present])
    upper = np.asarray([bounds.upper[order[g]] for g in present])
    codes, _ = cluster_codes(prepared.assignment, "cluster")
    features = None if prepared.embedding is None else np.asarray(prepared.embedding, dtype=np.float64).reshape(len(codes), -1)
    start = time.perf_counter()
    result = classic.repair(codes, labels, lower, upper, features=features, cost=cost)
    seconds = time.perf_counter() - start
    # Each code back to a value the original column holds for that cluster, so the ids keep their type.
    values = prepared.assignment.to_numpy()
    _, first = np.unique(codes, return_index=True)
    assignment = pd.Series(values[first[result.labels]], name=prepared.assignment.name)
    repaired = audit_table(dataclasses.replace(prepared, assignment=assignment),
                           resamples=original.settings["resamples"], confidence=original.settings["confidence"],
                           seed=original.settings["seed"])
    return Repair(prepared, original, repaired, assignment, bounds, cost, np.asarray(result.moved, dtype=bool),
                  result.cost_before, result.cost_after, seconds)


def record_repair(store: RunStore, repair: Repair, *, name: str, original_run: str | None = None,
                  dataset: str | None = None) -> str:
    """Save the repaired clustering as a new finished run (the original run is never touched): its audit, and in its
    config the repair's provenance (the run repaired, the bounds, the cost, the number moved, the solver)."""
    provenance = repair.provenance(original_run)
    prepared = dataclasses.replace(repair.prepared, assignment=repair.assignment,
                                   provenance={**repair.prepared.provenance, "repair": provenance})
    return record_external(store, prepared, repair.repaired, f"{name[:NAME_MAX - 9]} repaired", dataset=dataset,
                           config={"repair": provenance})
