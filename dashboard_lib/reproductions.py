"""Reproduction records: one JSON file per run of bench/reproduce.py, read here for the Train page and for the
renderer of docs/REPRODUCTIONS.md (one reader, one summary, so both show the same numbers). Knows nothing of Streamlit.

A record is named `<method>__<dataset>__<schedule>__seed<S>.json` (its key) and holds (SCHEMA 1):

    schema, method, method_name, dataset (the benchmark dataset's name), data {id, options}, schedule, seed,
    paper {metrics {key: fraction or null}, source, note (why it cannot be matched) or null},
    metrics {key: number} (the run's final metrics), columns {metrics: [...], curve: [...]} (what to show),
    budget {n, n_samples, n_train, seeds, precision, dtype, schedule {length settings}, hparams, overrides, unit},
    device {type, name, threads}, wall_s, git {commit, dirty}, date (ISO 8601, UTC),
    curve [{step, metric: value, ...}] (every evaluation of the run), curve_unit, analysis {...} (optional)

Metrics are fractions (ACC 0.825), shown in % with one decimal.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .metrics import METRIC_DEFINITIONS
from .outputs import write_atomic

SCHEMA = 1
DOC = "docs/REPRODUCTIONS.md"  # the rendered table, one section per method (anchor #<method id>)
SUFFIX = ".json"
KEY_PART = re.compile(r"[a-z0-9_]+")  # method ids, dataset and schedule names: safe in a file name, never '__'-ambiguous
ERR_MALFORMED = "{path}: not a reproduction record: {problem}. Fix or delete the file, or rerun the command that made it."
ERR_OTHER_RECORD = ("{path} holds another run's record ({other}), not {key}'s: refusing to replace it. Move it away, "
                    "or write to another --out folder.")
ERR_KEY_PART = "{what} {value!r} cannot name a record: use lower-case letters, digits and single underscores"

# DFC's settings of the stages a run from the released models skips (not its budget)
RELEASED_SKIPS = ("pretrain_steps", "pretrain_batch_size", "group_pretrain_epochs", "group_dec_epochs", "n_init")
# field → type(s) it must have; nested dicts are checked below
_FIELDS = {"schema": int, "method": str, "method_name": str, "dataset": str, "data": dict, "schedule": str, "seed": int,
           "paper": dict, "metrics": dict, "columns": dict, "budget": dict, "device": dict, "wall_s": (int, float),
           "git": dict, "date": str, "curve": list, "curve_unit": str}


class RecordError(ValueError):
    """A file that is not a valid reproduction record, or a write that would replace another run's record."""


def record_name(method: str, dataset: str, schedule: str, seed: int) -> str:
    """The file name of a record: its key. ValueError for a part that cannot name a file unambiguously."""
    for what, value in (("method", method), ("dataset", dataset), ("schedule", schedule)):
        if not isinstance(value, str) or not KEY_PART.fullmatch(value) or "__" in value:
            raise RecordError(ERR_KEY_PART.format(what=what, value=value))
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RecordError(ERR_KEY_PART.format(what="seed", value=seed))
    return f"{method}__{dataset}__{schedule}__seed{seed}{SUFFIX}"


def key_of(record: dict) -> str:
    return record_name(record["method"], record["dataset"], record["schedule"], record["seed"])[:-len(SUFFIX)]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _problem(record) -> str | None:
    """What makes `record` invalid, or None."""
    if not isinstance(record, dict):
        return f"the JSON is a {type(record).__name__}, not an object"
    for name, kind in _FIELDS.items():
        if name not in record:
            return f"field '{name}' is missing"
        if not isinstance(record[name], kind) or isinstance(record[name], bool):
            return f"field '{name}' is a {type(record[name]).__name__}"
    if record["schema"] != SCHEMA:
        return f"schema {record['schema']} (this version reads schema {SCHEMA})"
    try:
        record_name(record["method"], record["dataset"], record["schedule"], record["seed"])
    except RecordError as exc:
        return str(exc)
    paper = record["paper"]
    if not isinstance(paper.get("metrics"), dict) or not isinstance(paper.get("source"), str):
        return "paper needs metrics (an object) and source (text)"
    if any(v is not None and not _number(v) for v in paper["metrics"].values()):
        return "a paper metric is neither a number nor null"
    if paper.get("note") is not None and not isinstance(paper["note"], str):
        return "paper note is not text"
    bad = next((k for k, v in record["metrics"].items() if not _number(v)), None)
    if bad is not None:
        return f"metric '{bad}' is not a finite number"
    columns = record["columns"]
    for part in ("metrics", "curve"):
        if not isinstance(columns.get(part), list) or not all(isinstance(c, str) for c in columns[part]):
            return f"columns.{part} is not a list of metric names"
    if not isinstance(record["budget"].get("n_samples"), int):
        return "budget.n_samples is not a whole number"
    if not isinstance(record["device"].get("type"), str):
        return "device.type is missing"
    if not isinstance(record["git"].get("commit"), str) or not isinstance(record["git"].get("dirty"), bool):
        return "git needs commit (text) and dirty (true or false)"
    if not _number(record["wall_s"]) or record["wall_s"] < 0:
        return "wall_s is not a duration"
    for point in record["curve"]:
        if not isinstance(point, dict) or not isinstance(point.get("step"), int):
            return "a curve point has no whole-number step"
        if any(v is not None and not _number(v) for k, v in point.items() if k != "step"):
            return "a curve value is neither a number nor null"
    return None


def validate(record, where: str | Path = "record") -> dict:
    """record itself when it is a valid reproduction record; RecordError (ERR_MALFORMED) naming what is wrong."""
    problem = _problem(record)
    if problem is not None:
        raise RecordError(ERR_MALFORMED.format(path=where, problem=problem))
    return record


def read_record(path: str | Path) -> dict:
    """The record in path, validated; its file name must be its key. RecordError (ERR_MALFORMED) otherwise."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(ERR_MALFORMED.format(path=path, problem=f"unreadable JSON ({exc})")) from None
    validate(record, path)
    if key_of(record) + SUFFIX != path.name:
        raise RecordError(ERR_MALFORMED.format(path=path, problem=f"its content is {key_of(record)}'s record"))
    return record


def load_records(folder: str | Path) -> tuple[list[dict], list[str]]:
    """Every valid record in folder (sorted by key) and one message per file that is not one. A missing folder
    holds no records."""
    folder = Path(folder)
    records, problems = [], []
    for path in sorted(folder.glob("*" + SUFFIX)) if folder.is_dir() else []:
        try:
            records.append(read_record(path))
        except RecordError as exc:
            problems.append(str(exc))
    return records, problems


def write_record(record: dict, folder: str | Path) -> tuple[Path, dict | None]:
    """Write record atomically as folder/<its key>.json; returns the path and the record it replaced (None if new).

    A rerun of the same key replaces the earlier record (that is what a rerun is for; the caller says so). A file at
    that path that is not a valid record of the same key is never replaced (RecordError)."""
    validate(record)
    path = Path(folder) / (key_of(record) + SUFFIX)
    previous = None
    if path.exists():
        try:
            previous = read_record(path)
        except RecordError as exc:
            raise RecordError(ERR_OTHER_RECORD.format(path=path, other=str(exc), key=key_of(record))) from None
    write_atomic(path, json.dumps(record, indent=1, sort_keys=False) + "\n", flag="--out", replace=True)
    return path, previous


# --- summaries: what the renderer and the Train page show ---------------------------------------------------------
def label(metric: str) -> str:
    return METRIC_DEFINITIONS.get(metric, {}).get("label", metric)


def percent(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _budget_signature(record: dict) -> str:
    """Runs whose numbers may be averaged: same data size and settings (the seed and the device aside)."""
    budget = record["budget"]
    return json.dumps({k: budget.get(k) for k in ("n", "n_samples", "n_train", "hparams")}, sort_keys=True, default=str)


@dataclass
class Summary:
    """The records of one method on one dataset with one schedule and one budget, over seeds."""

    records: list[dict]  # sorted by seed

    @property
    def first(self) -> dict:
        return self.records[0]

    @property
    def method(self) -> str:
        return self.first["method"]

    @property
    def dataset(self) -> str:
        return self.first["dataset"]

    @property
    def schedule(self) -> str:
        return self.first["schedule"]

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.records]

    @property
    def paper(self) -> dict:
        return self.first["paper"]

    def ours(self, metric: str) -> tuple[float, float | None, int] | None:
        """(mean, sd, how many seeds) of a final metric; None where no record has it."""
        values = [r["metrics"][metric] for r in self.records if metric in r["metrics"]]
        return (*mean_sd(values), len(values)) if values else None

    def ours_text(self, metric: str) -> str:
        stats = self.ours(metric)
        if stats is None:
            return "–"
        mean, sd, n = stats
        return percent(mean) if sd is None else f"{percent(mean)} ± {100 * sd:.1f} ({n} seeds)"

    def rows(self) -> list[dict]:
        """One row per metric the record shows: {metric (label), paper, ours} as text, paper first."""
        return [{"metric": label(m), "paper": percent(self.paper["metrics"].get(m)), "ours": self.ours_text(m)}
                for m in self.first["columns"]["metrics"]]

    def budget_text(self) -> str:
        """n samples, the schedule's length settings, the precision, the seeds and any --set overrides."""
        b = self.first["budget"]
        parts = [f"n = {b['n_samples']:,} samples" + (f" ({b['n_train']:,} training)" if b.get("n_train") else "")]
        schedule = b.get("schedule") or {}
        if schedule.get("init") == "released":  # DFC from the authors' files: its own stages 1–2 never ran
            schedule = {k: v for k, v in schedule.items() if k not in RELEASED_SKIPS}
        parts += [", ".join(f"{k} {v}" for k, v in schedule.items())]
        parts += [f"{b.get('precision', 'fp32')}", "seed " + ", ".join(map(str, self.seeds)) if len(self.seeds) == 1
                  else "seeds " + ", ".join(map(str, self.seeds))]
        if b.get("overrides"):
            parts.append("set " + ", ".join(f"{k}={v}" for k, v in b["overrides"].items()))
        return "; ".join(p for p in parts if p)

    def device_text(self) -> str:
        return ", ".join(sorted({r["device"].get("name") or r["device"]["type"] for r in self.records}))

    def wall_text(self) -> str:
        walls = [r["wall_s"] for r in self.records]
        mean = sum(walls) / len(walls)
        return f"{mean / 60:.1f} min" if mean >= 120 else f"{mean:.0f} s"

    def commit_text(self) -> str:
        return ", ".join(sorted({r["git"]["commit"][:10] + (" (dirty)" if r["git"]["dirty"] else "") for r in self.records}))

    def date_text(self) -> str:
        return max(r["date"] for r in self.records)[:10]


def summarize(records: list[dict], method: str | None = None) -> list[Summary]:
    """Records (of one method, if named) grouped by dataset, schedule and budget, each group sorted by seed; groups
    in a stable order (dataset, schedule, size)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if method is None or r["method"] == method:
            groups.setdefault((r["method"], r["dataset"], r["schedule"], _budget_signature(r)), []).append(r)
    out = [Summary(sorted(rs, key=lambda r: r["seed"])) for rs in groups.values()]
    return sorted(out, key=lambda s: (s.method, s.dataset, s.schedule, s.first["budget"]["n_samples"]))


def anchor(method: str) -> str:
    """Where a method's section is: docs/REPRODUCTIONS.md#<method id> (the heading is the id itself)."""
    return f"{DOC}#{method}"


def make_command(method: str, schedule: str = "reduced") -> str:
    """The command that makes a record for method (its default dataset, from a checkout's root)."""
    return f"python bench/reproduce.py --method {method} --schedule {schedule}"
