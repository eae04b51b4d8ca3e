"""Clusterings made elsewhere, and the audit of any run: read the auditor's table, check the chosen columns, audit it,
and record it as a run (method `external`) so Monitor, Embeddings and Compare show it beside trained runs.

Every problem a user can cause raises ValueError with one line naming the column and what to do; nothing is saved then.
Knows nothing of Streamlit.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .auditing import (DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, AuditResult, audit, cluster_codes, exact_label,
                       group_codes, near_duplicates)
from .auditing import merge_near_duplicates as merge_near_duplicates_of, saved_cluster_ids
from .data.tables import FLOAT32_MAX, ID_NAME, MAX_ROWS, read_file, read_table
from .store import RunStore

METHOD_ID = "external"
AUDIT_FILE = "audit.json"
NAME_MAX = 64

ERR_UNKNOWN_COLUMN = "no {role} column {name!r} in the table; its columns: {have}"
ERR_NO_CLUSTER = "choose the cluster column: the one holding each row's cluster id"
ERR_ROLE_TWICE = "column {name!r} cannot be both the {first} and the {second} column"
ERR_TOO_MANY_ROWS = "the table has {rows:,} rows, over the {limit:,}-row limit: audit a sample, or split the table"
ERR_EMBEDDING_COLUMNS = "embedding column(s) {names} are not numeric (e.g. {example!r}): choose numeric columns only"
ERR_EMBEDDING_BOTH = "give the embedding either as columns of the table or as a separate file, not both"
ERR_DUPLICATE_IDS = "the row-id column {name!r} repeats {count:,} value(s) (e.g. {example!r}): a row id must be unique"
ERR_ROWS_OUTSIDE = "the row column {name!r} holds {value!r}, not a row of the upload (0 to {n} − 1): give each row's number"
ERR_ASSIGNMENT_ROWS = ("the assignments have {n:,} rows but the upload has {m:,}: give one cluster per row in the same order, "
                       "or a row column that says which row each belongs to")
ERR_EMBEDDING_FILE_COLUMN = ("the embedding file's column {name!r} is not numeric (e.g. {example!r}): an embedding "
                             "holds numbers only; remove that column, or give the table's row-id column if it is the id")
ERR_EMBEDDING_ID_COLUMN = ("the embedding file's column {name!r} looks like a row id, not a dimension: choose the table's "
                           "row-id column of the same name (--id) to match rows on it, or remove the column")
ERR_EMBEDDING_NO_TABLE_ID = ("the embedding file's rows are to be matched on its column {name!r}: choose the table's row-id "
                             "column (--id) too")
ERR_EMBEDDING_IDS = ("the embedding file's id column {name!r} {problem} (e.g. {example!r}): give exactly one embedding "
                     "row per row of the table, with its id")
EMBEDDING_ID_PROBLEMS = {"repeated": "repeats {count:,} id(s)", "missing": "lacks {count:,} of the table's row id(s)",
                         "extra": "holds {count:,} id(s) that are not in the table"}
ERR_EMBEDDING_RANGE = ("embedding column {name!r} holds {value:.3g} at row {row:,} (0 = the first row), beyond float32's "
                       "range (±3.4e38) in which embeddings are stored: rescale that column (e.g. divide it by 1e30) or "
                       "leave it out")
NOTE_MERGED = "{name}: near-duplicate values merged on request before the audit: {listed}"
CLUSTER_COLUMN, ROW_COLUMN = "cluster", "row"  # what a saved upload joined with its assignments calls them
ERR_NO_AUDIT = "run {run_id} saved no assignments (it ended before its first evaluation): there is nothing to audit"


@dataclass
class AuditTable:
    """The chosen columns of an auditor's table, checked, with where they came from."""

    assignment: pd.Series
    sensitive: dict[str, pd.Series]
    y: pd.Series | None
    embedding: np.ndarray | None
    row_id: np.ndarray
    provenance: dict


def _plain(value):
    """A numpy scalar as the Python value it holds, so a message quotes 3, not np.int64(3)."""
    return value.item() if isinstance(value, np.generic) else value


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_audit_file(source: bytes | str | Path, filename: str | None = None) -> tuple[pd.DataFrame, dict]:
    """The table and its provenance (file name, size, SHA-256, when it was read).

    A path is checked (exists, a regular file, within the size limit) before a byte is read, then read with a hard
    cap (tables.read_file): a file over the limit never takes more memory than the limit."""
    if isinstance(source, (str, Path)):
        data, filename = read_file(source, filename)
    else:
        data = bytes(source)
    filename = filename or "table"
    table = read_table(data, filename)
    return table, {"file": filename, "bytes": len(data), "sha256": file_sha256(data),
                   "read": time.strftime("%Y-%m-%d %H:%M:%S")}


def prepare(table: pd.DataFrame, *, clusters: str, sensitive: list[str], class_column: str | None = None,
            embedding_columns: list[str] | None = None, embedding: np.ndarray | pd.DataFrame | None = None,
            id_column: str | None = None, provenance: dict | None = None, embedding_id_column: str | None = None,
            merge_near_duplicates: bool = False) -> AuditTable:
    """Check the auditor's choice of columns (ValueError naming the column) and return them ready to audit.

    An embedding given as a separate table is matched to the rows on its `embedding_id_column` (by default the
    column named like `id_column`, where it has one) and is otherwise taken row by row; an id-like or non-numeric
    column in it is refused, never used as a dimension. Embedding values beyond float32's range (in which the
    store keeps them) are refused naming the row and column. Near-duplicate sensitive or class values (auditing.
    near_duplicates) are listed in the provenance and, only with merge_near_duplicates, merged (and what was
    merged recorded there)."""
    if not clusters:
        raise ValueError(ERR_NO_CLUSTER)
    if len(table) > MAX_ROWS:
        raise ValueError(ERR_TOO_MANY_ROWS.format(rows=len(table), limit=MAX_ROWS))
    sensitive = [str(c) for c in sensitive]
    embedding_columns = [str(c) for c in (embedding_columns or [])]
    roles = [("cluster", clusters)] + [("sensitive", c) for c in sensitive] + ([("class", class_column)] if class_column else []) \
        + [("row-id", id_column)] * bool(id_column) + [("embedding", c) for c in embedding_columns]
    have = list(table.columns)
    seen: dict[str, str] = {}
    for role, name in roles:
        if name not in table.columns:
            raise ValueError(ERR_UNKNOWN_COLUMN.format(role=role, name=name, have=have[:30]))
        if name in seen:
            raise ValueError(ERR_ROLE_TWICE.format(name=name, first=seen[name], second=role))
        seen[name] = role
    if not sensitive:
        from .auditing import ERR_NO_SENSITIVE

        raise ValueError(ERR_NO_SENSITIVE)
    if embedding_columns and embedding is not None:
        raise ValueError(ERR_EMBEDDING_BOTH)
    x, dimensions = None, embedding_columns
    if embedding_columns:
        block = table[embedding_columns]
        bad = [c for c in embedding_columns if not pd.api.types.is_numeric_dtype(block[c])]
        if bad:
            raise ValueError(ERR_EMBEDDING_COLUMNS.format(names=bad, example=_plain(block[bad[0]].dropna().iloc[0])))
        x = block.to_numpy(dtype=np.float64)
    elif isinstance(embedding, pd.DataFrame):
        x, dimensions = _embedding_table(embedding, table, id_column, embedding_id_column)
    elif embedding is not None:
        x = np.asarray(embedding)
    if x is not None:
        _check_float32(x, dimensions)
    row_id = np.arange(len(table), dtype=np.int64)
    if id_column:
        ids = table[id_column]
        duplicated = ids[ids.duplicated()]
        if len(duplicated):
            raise ValueError(ERR_DUPLICATE_IDS.format(name=id_column, count=int(duplicated.nunique()), example=_plain(duplicated.iloc[0])))
        # Unicode, not object, so the run folder's .npz loads without pickle.
        row_id = ids.to_numpy() if pd.api.types.is_integer_dtype(ids) else np.asarray(ids.astype(str).to_numpy(), dtype=str)
    labels = {c: table[c] for c in sensitive + ([class_column] if class_column else [])}
    near, merged = {}, {}
    for column, values in labels.items():
        if merge_near_duplicates:
            labels[column], merges = merge_near_duplicates_of(values)
            if merges:
                merged[column] = merges
        elif found := near_duplicates(values):
            near[column] = found
    notes = {"near_duplicates": near} if near else {}
    notes |= {"merged_near_duplicates": merged} if merged else {}
    return AuditTable(
        assignment=table[clusters].rename(clusters), sensitive={c: labels[c] for c in sensitive},
        y=labels[class_column] if class_column else None, embedding=x, row_id=row_id,
        provenance={**(provenance or {}), "columns": {"clusters": clusters, "sensitive": sensitive, "class": class_column,
                                                       "embedding": embedding_columns or ("separate file" if embedding is not None else None),
                                                       "row_id": id_column}, "n_rows": len(table), **notes},
    )


EMBEDDING_ID_NAME = re.compile(r"^(unnamed: ?0|rows?|row_?(id|num|number)|rowid|idx|n|no|sample(_?id)?)$", re.IGNORECASE)


def _embedding_table(embedding: pd.DataFrame, table: pd.DataFrame, id_column: str | None,
                     embedding_id_column: str | None) -> tuple[np.ndarray, list[str]]:
    """An embedding file's dimensions as rows of the table: matched on its id column, else in the table's order."""
    key = embedding_id_column or (id_column if id_column and id_column in embedding.columns else None)
    if key is not None:
        if key not in embedding.columns:
            raise ValueError(ERR_UNKNOWN_COLUMN.format(role="embedding row-id", name=key, have=list(embedding.columns)[:30]))
        if not id_column:
            raise ValueError(ERR_EMBEDDING_NO_TABLE_ID.format(name=key))
        mine, theirs = _id_labels(table[id_column]), _id_labels(embedding[key])
        repeated = theirs[theirs.duplicated()]
        if len(repeated):
            raise ValueError(_ids_error(key, "repeated", int(repeated.nunique()), repeated.iloc[0]))
        position = pd.Series(np.arange(len(theirs)), index=theirs.to_numpy())
        missing, extra = mine[~mine.isin(position.index)], theirs[~theirs.isin(set(mine))]
        if len(missing):
            raise ValueError(_ids_error(key, "missing", len(missing), missing.iloc[0]))
        if len(extra):
            raise ValueError(_ids_error(key, "extra", len(extra), extra.iloc[0]))
        embedding = embedding.drop(columns=[key]).iloc[position[mine.to_numpy()].to_numpy()]
    dimensions = [str(c) for c in embedding.columns]
    for column in dimensions:
        values = embedding[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            present = values.dropna()
            raise ValueError(ERR_EMBEDDING_FILE_COLUMN.format(name=column, example=_plain(present.iloc[0]) if len(present) else None))
        if pd.api.types.is_integer_dtype(values) and (EMBEDDING_ID_NAME.match(column) or ID_NAME.search(column)):
            raise ValueError(ERR_EMBEDDING_ID_COLUMN.format(name=column))
    return embedding.to_numpy(dtype=np.float64), dimensions


def _ids_error(name: str, problem: str, count: int, example) -> str:
    return ERR_EMBEDDING_IDS.format(name=name, problem=EMBEDDING_ID_PROBLEMS[problem].format(count=count), example=example)


def _id_labels(ids: pd.Series) -> pd.Series:
    """Row ids as exact text, so the table's 7 and an embedding file's 7 (or "7") match and 01 and 1 do not."""
    return pd.Series([exact_label(v) for v in ids], dtype=object)


def _check_float32(x: np.ndarray, dimensions: list[str] | None) -> None:
    values = np.asarray(x, dtype=np.float64)
    outside = np.isinf(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
    if outside.any():
        row, col = (int(i) for i in np.argwhere(outside.reshape(len(values), -1))[0])
        name = dimensions[col] if dimensions and col < len(dimensions) else f"dimension {col}"
        raise ValueError(ERR_EMBEDDING_RANGE.format(name=name, value=values.reshape(len(values), -1)[row, col], row=row))


def upload_table(name: str) -> tuple[pd.DataFrame, dict]:
    """A saved upload (Data page) back as a table: its feature columns, its sensitive column and its class column
    (values by name), one row per row of the uploaded file; and its metadata."""
    from . import settings
    from .data.upload import upload_meta

    meta = upload_meta(name)
    with np.load(settings.uploads_dir() / meta["name"] / "data.npz") as npz:
        table = pd.DataFrame(npz["X"], columns=meta["feature_columns"])
        table[meta["sensitive_column"]] = np.asarray(meta["group_names"], dtype=object)[npz["g"]]
        if "y" in npz.files:
            table[meta["class_column"]] = np.asarray(meta["class_names"], dtype=object)[npz["y"]]
    return table, meta


def with_assignments(table: pd.DataFrame, assignments: pd.DataFrame, cluster_column: str,
                     row_column: str | None = None) -> pd.DataFrame:
    """The table with a cluster column added from a separate assignments table: row by row in order, or, with
    row_column, matched on it (the table's row numbers, 0 first)."""
    if cluster_column not in assignments.columns:
        raise ValueError(ERR_UNKNOWN_COLUMN.format(role="cluster", name=cluster_column, have=list(assignments.columns)[:30]))
    out = table.copy()
    if row_column:
        if row_column not in assignments.columns:
            raise ValueError(ERR_UNKNOWN_COLUMN.format(role="row", name=row_column, have=list(assignments.columns)[:30]))
        rows = pd.to_numeric(assignments[row_column], errors="coerce")
        if pd.api.types.is_bool_dtype(assignments[row_column]):
            rows = pd.Series(np.nan, index=assignments.index)  # True is not row 1
        bad = rows.isna() | (rows < 0) | (rows >= len(table)) | (rows != rows.round())
        if bad.any():
            raise ValueError(ERR_ROWS_OUTSIDE.format(name=row_column, value=_plain(assignments[row_column][bad].iloc[0]), n=len(table)))
        if rows.duplicated().any():
            raise ValueError(ERR_DUPLICATE_IDS.format(name=row_column, count=int(rows[rows.duplicated()].nunique()),
                                                      example=_plain(rows[rows.duplicated()].iloc[0])))
        out = out.iloc[rows.astype(np.int64).to_numpy()].reset_index(names=ROW_COLUMN)
        out[CLUSTER_COLUMN] = assignments[cluster_column].to_numpy()
        return out
    if len(assignments) != len(table):
        raise ValueError(ERR_ASSIGNMENT_ROWS.format(n=len(assignments), m=len(table)))
    out.insert(0, ROW_COLUMN, np.arange(len(table)))
    out[CLUSTER_COLUMN] = assignments[cluster_column].to_numpy()
    return out


INT64_TEXT = re.compile(r"-?(0|[1-9][0-9]{0,18})")


def assignment_arrays(assignment: pd.Series) -> dict[str, np.ndarray]:
    """The cluster ids to save: `assignment` holds the ids themselves as int64 (like a trained run's) when every
    label is an int64 written plainly; otherwise (text such as "01", booleans, ids beyond int64) it holds codes
    0 … K−1 and `cluster_labels` the labels, so nothing is cast and merged on the way to the store."""
    codes, labels = cluster_codes(assignment, str(assignment.name))
    if all(INT64_TEXT.fullmatch(label) and -2**63 <= int(label) < 2**63 for label in labels):
        return {"assignment": np.asarray([int(label) for label in labels], dtype=np.int64)[codes]}
    return {"assignment": codes, "cluster_labels": np.asarray(labels, dtype=str)}  # Unicode: loads without pickle


def audit_table(prepared: AuditTable, **options) -> AuditResult:
    """The audit of a prepared table; near-duplicate values merged on request are named among its caveats."""
    result = audit(prepared.assignment, prepared.sensitive, y=prepared.y, embedding=prepared.embedding,
                   cluster_name=str(prepared.assignment.name), **options)
    for column, merges in (prepared.provenance.get("merged_near_duplicates") or {}).items():
        listed = "; ".join(f"{' / '.join(repr(v) for v in variants)} → {kept!r}" for kept, variants in merges.items())
        result.caveats.insert(0, NOTE_MERGED.format(name=column, listed=listed))
    return result


def record_external(store: RunStore, prepared: AuditTable, result: AuditResult, name: str, *,
                    dataset: str | None = None, config: dict | None = None) -> str:
    """Save an audited external clustering as a finished run (method `external`); returns its id. `dataset` (default
    `external:NAME`) and the entries of `config` (a repair's provenance, say) go into the run's record.

    Everything stored (arrays, metrics, dataset info, the audit) is computed before the run is created, so a value the
    store cannot take raises with no run recorded; a failure after that (a full disk, say) finishes the run as failed,
    with the error, and raises: no run is left running."""
    from .jobs import environment

    name = (name or Path(prepared.provenance.get("file", "table")).stem)[:NAME_MAX]
    dataset = dataset or f"external:{name}"
    first = result.attributes[0]
    config = {"dataset": dataset, "method": METHOD_ID, "dataset_options": {}, "hparams": {},
              "seed": result.settings["seed"], "device": "cpu", "audit": result.settings, "provenance": prepared.provenance,
              **(config or {})}
    info = {
        "name": name, "source": prepared.provenance.get("file"), "sha256": prepared.provenance.get("sha256"),
        "n": result.n, "n_groups": len(first.group_names), "group_names": first.group_names,
        "group_counts": first.group_counts, "class_names": result.class_names,
        "n_classes": None if result.class_names is None else len(result.class_names),
        "sensitive_columns": [a.name for a in result.attributes if not a.is_intersection],
        "built": f"an external clustering from {prepared.provenance.get('file')}; sensitive attribute shown: {first.name}",
    }
    arrays = {**assignment_arrays(prepared.assignment), "row_id": prepared.row_id}
    n = len(arrays["assignment"])
    for i, attribute in enumerate(a for a in result.attributes if not a.is_intersection):
        arrays[f"sensitive_{i}"] = group_codes(prepared.sensitive[attribute.name], attribute.name, n)[0]
    arrays["g"] = arrays["sensitive_0"]  # the group every other page draws: the first attribute's
    if prepared.y is not None:
        arrays["y"] = pd.factorize(pd.Series(prepared.y).reset_index(drop=True), sort=True)[0].astype(np.int64)
    if prepared.embedding is not None:
        arrays["embedding"] = np.asarray(prepared.embedding, dtype=np.float32)
    metrics = result.headline()
    audit_text = json.dumps(result.to_dict(), indent=1)
    json.dumps([config, info, metrics])  # what the store writes as JSON: a value it cannot take fails here, not half-way
    run_id = store.create_run(dataset=dataset, method=METHOD_ID, config=config, seed=result.settings["seed"],
                              device="cpu", environment=environment(torch.device("cpu")))
    try:
        store.set_dataset_info(run_id, info)
        store.add_evaluation(run_id, 0, metrics, arrays)
        save_audit(store, run_id, result, audit_text)
        store.finish(run_id, "finished", metrics=metrics)
    except BaseException as exc:  # KeyboardInterrupt too: the run must not stay "running"
        store.finish(run_id, "failed", error=f"recording the external clustering failed: {exc}"[:500])
        raise
    return run_id


def save_audit(store: RunStore, run_id: str, result: AuditResult, text: str | None = None) -> Path:
    path = store.run_dir(run_id) / AUDIT_FILE
    path.write_text(text if text is not None else json.dumps(result.to_dict(), indent=1))
    return path


def audit_stored_run(store: RunStore, run_id: str, *, resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> AuditResult:
    """The audit of any run from its last saved evaluation: a trained run's assignments on its data, or an external
    run's own columns (every sensitive attribute and their intersection)."""
    return audit_table(stored_table(store, run_id), resamples=resamples, confidence=confidence, seed=seed)


def stored_table(store: RunStore, run_id: str) -> AuditTable:
    """A run's last saved evaluation as an audit's inputs: its cluster ids, its sensitive columns (an external run's
    every column, a trained run's one group), its classes, its embedding and its rows' ids."""
    run = store.get_run(run_id)
    epoch = evaluation_epoch(store, run_id)
    if epoch is None:
        raise ValueError(ERR_NO_AUDIT.format(run_id=run_id))
    arrays = store.load_arrays(run_id, epoch)
    info = run.dataset_info or {}
    if run.method == METHOD_ID:
        stored = json.loads((store.run_dir(run_id) / AUDIT_FILE).read_text())
        columns = [a for a in stored["attributes"] if len(a["columns"]) == 1]
        groups = {a["name"]: np.asarray(a["group_names"], dtype=object)[arrays[f"sensitive_{i}"]] for i, a in enumerate(columns)}
        names = stored["class_names"]
    else:
        group_names = info.get("group_names") or [str(i) for i in range(int(arrays["g"].max()) + 1)]
        groups = {"group": np.asarray(group_names, dtype=object)[arrays["g"]]}
        names = info.get("class_names")
    y = None
    if "y" in arrays:
        y = np.asarray(names, dtype=object)[arrays["y"]] if names and len(names) > arrays["y"].max() else arrays["y"]
    ids = saved_cluster_ids(arrays)
    n = len(ids)
    provenance = {"run": run.id, "dataset": run.dataset,
                  **{k: v for k, v in info.items() if k in ("name", "source", "sha256", "built")}}
    return AuditTable(assignment=pd.Series(ids, name="cluster"), sensitive={k: pd.Series(v) for k, v in groups.items()},
                      y=None if y is None else pd.Series(y), embedding=arrays.get("embedding"),
                      row_id=arrays.get("row_id", np.arange(n, dtype=np.int64)), provenance=provenance)


def evaluation_epoch(store: RunStore, run_id: str) -> int | None:
    """The epoch whose arrays an audit of the run reads (its last saved evaluation)."""
    saved = [e["epoch"] for e in store.evaluations(run_id) if e["has_arrays"]]
    return saved[-1] if saved else None
