"""Clusterings made elsewhere, and the audit of any run: read the auditor's table, check the chosen columns, audit it,
and record it as a run (method `external`) so Monitor, Embeddings and Compare show it beside trained runs.

Every problem a user can cause raises ValueError with one line naming the column and what to do; nothing is saved then.
Knows nothing of Streamlit.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .auditing import AuditResult, audit, cluster_codes, group_codes
from .data.tables import ERR_FORMAT, FORMATS, MAX_ROWS, check_file, read_file, read_table
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
        check_file(source)
        filename = filename or Path(source).name
        if Path(filename).suffix.lower().lstrip(".") not in FORMATS:  # before reading up to MAX_BYTES for nothing
            raise ValueError(ERR_FORMAT.format(ext=Path(filename).suffix.lower().lstrip(".") or "(none)"))
        data = read_file(source)
    else:
        data = bytes(source)
    filename = filename or "table"
    table = read_table(data, filename)
    return table, {"file": filename, "bytes": len(data), "sha256": file_sha256(data),
                   "read": time.strftime("%Y-%m-%d %H:%M:%S")}


def prepare(table: pd.DataFrame, *, clusters: str, sensitive: list[str], class_column: str | None = None,
            embedding_columns: list[str] | None = None, embedding: np.ndarray | pd.DataFrame | None = None,
            id_column: str | None = None, provenance: dict | None = None) -> AuditTable:
    """Check the auditor's choice of columns (ValueError naming the column) and return them ready to audit."""
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
    x = None
    if embedding_columns:
        block = table[embedding_columns]
        bad = [c for c in embedding_columns if not pd.api.types.is_numeric_dtype(block[c])]
        if bad:
            raise ValueError(ERR_EMBEDDING_COLUMNS.format(names=bad, example=_plain(block[bad[0]].dropna().iloc[0])))
        x = block.to_numpy(dtype=np.float64)
    elif embedding is not None:
        x = embedding.select_dtypes("number").to_numpy(np.float64) if isinstance(embedding, pd.DataFrame) else np.asarray(embedding)
    row_id = np.arange(len(table), dtype=np.int64)
    if id_column:
        ids = table[id_column]
        duplicated = ids[ids.duplicated()]
        if len(duplicated):
            raise ValueError(ERR_DUPLICATE_IDS.format(name=id_column, count=int(duplicated.nunique()), example=_plain(duplicated.iloc[0])))
        # Unicode, not object, so the run folder's .npz loads without pickle.
        row_id = ids.to_numpy() if pd.api.types.is_integer_dtype(ids) else np.asarray(ids.astype(str).to_numpy(), dtype=str)
    return AuditTable(
        assignment=table[clusters].rename(clusters), sensitive={c: table[c] for c in sensitive},
        y=table[class_column] if class_column else None, embedding=x, row_id=row_id,
        provenance={**(provenance or {}), "columns": {"clusters": clusters, "sensitive": sensitive, "class": class_column,
                                                       "embedding": embedding_columns or ("separate file" if embedding is not None else None),
                                                       "row_id": id_column}, "n_rows": len(table)},
    )


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


def run_audit(prepared: AuditTable, **options) -> AuditResult:
    return audit(prepared.assignment, prepared.sensitive, y=prepared.y, embedding=prepared.embedding,
                 cluster_name=str(prepared.assignment.name), **options)


def record_external(store: RunStore, prepared: AuditTable, result: AuditResult, name: str) -> str:
    """Save an audited external clustering as a finished run (method `external`); returns its id.

    Everything stored (arrays, metrics, dataset info, the audit) is computed before the run is created, so a value the
    store cannot take raises with no run recorded; a failure after that (a full disk, say) finishes the run as failed,
    with the error, and raises: no run is left running."""
    from .jobs import environment

    name = (name or Path(prepared.provenance.get("file", "table")).stem)[:NAME_MAX]
    first = result.attributes[0]
    config = {"dataset": f"external:{name}", "method": METHOD_ID, "dataset_options": {}, "hparams": {},
              "seed": result.settings["seed"], "device": "cpu", "audit": result.settings, "provenance": prepared.provenance}
    info = {
        "name": name, "source": prepared.provenance.get("file"), "sha256": prepared.provenance.get("sha256"),
        "n": result.n, "n_groups": len(first.group_names), "group_names": first.group_names,
        "group_counts": first.group_counts, "class_names": result.class_names,
        "n_classes": None if result.class_names is None else len(result.class_names),
        "sensitive_columns": [a.name for a in result.attributes if not a.is_intersection],
        "built": f"an external clustering from {prepared.provenance.get('file')}; sensitive attribute shown: {first.name}",
    }
    codes, ids = cluster_codes(prepared.assignment, str(prepared.assignment.name))
    n = len(codes)
    arrays = {"assignment": np.asarray(ids, dtype=np.int64)[codes],  # the cluster ids as given, like a trained run's
              "row_id": prepared.row_id}
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
    run_id = store.create_run(dataset=f"external:{name}", method=METHOD_ID, config=config, seed=result.settings["seed"],
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


def audit_run(store: RunStore, run_id: str, *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> AuditResult:
    """The audit of any run from its last saved evaluation: a trained run's assignments on its data, or an external
    run's own columns (every sensitive attribute and their intersection)."""
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
    return audit(arrays["assignment"], groups, y=y, embedding=arrays.get("embedding"), resamples=resamples,
                 confidence=confidence, seed=seed)


def evaluation_epoch(store: RunStore, run_id: str) -> int | None:
    """The epoch whose arrays an audit of the run reads (its last saved evaluation)."""
    saved = [e["epoch"] for e in store.evaluations(run_id) if e["has_arrays"]]
    return saved[-1] if saved else None
