"""The user's own data: a table read and described by `tables`, the columns the user picks encoded into features, and
the result saved as dataset `upload`.

Saved under settings.uploads_dir()/<name>/ as data.npz (X float32 as encoded, before any standardisation; g; y when
there is a class column; row, the table's data row of each sample) plus meta.json (the choices, the encoding, the
rows dropped and cells imputed, each feature's mean and sd). Runs refer to it as dataset id "upload" with option
name=<name>, shown everywhere as upload:<name>. Every problem a user can cause raises ValueError with one of the ERR_*
messages (here or in tables), and then nothing is saved.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import settings
from ..auditing import ERR_TOO_MANY_GROUPS, MAX_GROUPS
from ..params import Param
from . import tables
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .cache import forget_cached
from .transforms import stratified_subset
from .tables import ERR_NO_FEATURES, ERR_ONE_CLASS, ERR_ONE_GROUP, ERR_OVERLAP, ERR_TOO_MANY_ROWS, ERR_UNKNOWN_COLUMNS

DATASET_ID = "upload"
DEFAULT_K = 2  # clusters asked for when there is no class column and no n_clusters option
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

ERR_BAD_NAME = "dataset name {name!r} is not allowed: use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit"
ERR_EXISTS = "an uploaded dataset named {name!r} already exists; choose another name or replace it"
ERR_NOT_FOUND = "no uploaded dataset named {name!r}; saved uploads: {have}"
ERR_NO_NAME = "choose which uploaded dataset to use (option name); saved uploads: {have}"


def label(name: str) -> str:
    """How an upload is named wherever runs are listed: upload:<name>."""
    return f"{DATASET_ID}:{name}"


def _codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    plain = col.to_numpy() if pd.api.types.is_numeric_dtype(col) else col.astype(str).to_numpy()
    values, codes = np.unique(plain, return_inverse=True)
    return codes.astype(np.int64), [str(tables.plain(v)) for v in values]


@dataclass
class Validated:
    X: np.ndarray  # float32, encoded, not standardised
    g: np.ndarray
    group_names: list[str]
    y: np.ndarray | None
    class_names: list[str] | None
    encoded: tables.Encoded


def validate(table: pd.DataFrame, feature_columns: list[str], sensitive_column: str,
             class_column: str | None = None, *, encodings: dict[str, str] | None = None,
             orders: dict[str, list[str]] | None = None, missing: str = "refuse") -> Validated:
    """Check the choice of columns, encode the features (tables.encode: encodings, ordinal orders, missing-value
    handling) and return the arrays to save (ValueError with an ERR_* message on any problem)."""
    if len(table) == 0:
        raise ValueError(tables.ERR_EMPTY)
    if len(table) > tables.MAX_ROWS:
        raise ValueError(ERR_TOO_MANY_ROWS.format(rows=len(table), limit=tables.MAX_ROWS))
    feature_columns = [str(c) for c in feature_columns]
    if not feature_columns:
        raise ValueError(ERR_NO_FEATURES)
    chosen = feature_columns + [sensitive_column] + ([class_column] if class_column else [])
    unknown = [c for c in chosen if c not in table.columns]
    if unknown:
        raise ValueError(ERR_UNKNOWN_COLUMNS.format(names=unknown, have=list(table.columns)))
    for role, column in (("sensitive", sensitive_column), ("class", class_column)):
        if column and column in feature_columns:
            raise ValueError(ERR_OVERLAP.format(name=column, role=role))
    labels = (("sensitive", sensitive_column),) + ((("class", class_column),) if class_column else ())
    encoded = tables.encode(table, feature_columns, label_columns=labels, encodings=encodings, orders=orders,
                            missing=missing)
    kept = table.iloc[encoded.rows]
    g, group_names = _codes(kept[sensitive_column])
    if len(group_names) < 2:
        raise ValueError(ERR_ONE_GROUP.format(name=sensitive_column, value=group_names[0]))
    if len(group_names) > MAX_GROUPS:  # the audit's limit and words: what trains here can be audited
        raise ValueError(ERR_TOO_MANY_GROUPS.format(name=sensitive_column, count=len(group_names), max=MAX_GROUPS))
    y = class_names = None
    if class_column:
        y, class_names = _codes(kept[class_column])
        if len(class_names) < 2:
            raise ValueError(ERR_ONE_CLASS.format(name=class_column, value=class_names[0]))
    return Validated(encoded.X.astype(np.float32), g, group_names, y, class_names, encoded)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(ERR_BAD_NAME.format(name=name))
    return name


def build_upload(table: pd.DataFrame | bytes | str | Path, feature_columns: list[str], sensitive_column: str,
                 class_column: str | None = None, name: str = "my_data", filename: str | None = None,
                 overwrite: bool = False, *, encodings: dict[str, str] | None = None,
                 orders: dict[str, list[str]] | None = None, missing: str = "refuse") -> dict:
    """Validate and encode the chosen columns and save the dataset as upload <name>; returns its metadata. Nothing
    is saved on error."""
    check_name(name)
    if not isinstance(table, pd.DataFrame):
        filename = filename or (Path(table).name if isinstance(table, (str, Path)) else None)
        table = tables.read_table(table, filename)
    valid = validate(table, feature_columns, sensitive_column, class_column, encodings=encodings, orders=orders,
                     missing=missing)
    final = settings.uploads_dir() / name
    if final.exists() and not overwrite:
        raise ValueError(ERR_EXISTS.format(name=name))
    encoded = valid.encoded
    meta = {
        "name": name, "source_file": filename, "read_as": table.attrs.get("read_as", "a table"), "n": len(valid.X),
        "n_table_rows": len(table), "feature_columns": list(feature_columns), "feature_names": encoded.names,
        "encodings": encoded.encodings, "levels": encoded.levels, "missing": missing, "rows_dropped": encoded.dropped,
        "cells_imputed": encoded.imputed, "feature_mean": encoded.X.mean(axis=0).tolist(),
        "feature_sd": encoded.X.std(axis=0).tolist(),
        "sensitive_column": sensitive_column, "class_column": class_column, "group_names": valid.group_names,
        "class_names": valid.class_names, "group_counts": np.bincount(valid.g).tolist(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    # Write into a temporary folder and rename it into place, so a failure never leaves half a dataset.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=settings.uploads_dir()))  # mkdtemp: owner-only (0700)
    try:
        arrays = {"X": valid.X, "g": valid.g, "row": encoded.rows} | ({"y": valid.y} if valid.y is not None else {})
        np.savez(tmp / "data.npz", **arrays)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    forget_cached(DATASET_ID)  # a replaced upload must not be served from the in-process cache
    return meta


def saved_text(meta: dict) -> str:
    """One sentence on what was saved: rows kept, what happened to the others, groups by name."""
    groups = ", ".join(f"{g} {n:,}" for g, n in zip(meta["group_names"], meta["group_counts"]))
    text = f"{meta['n']:,} rows, {len(meta.get('feature_names') or meta['feature_columns'])} features; groups: {groups}"
    if meta.get("rows_dropped"):
        text += f"; {meta['rows_dropped']:,} row(s) with missing values dropped"
    if meta.get("cells_imputed"):
        text += f"; {sum(meta['cells_imputed'].values()):,} missing cell(s) imputed"
    return text


def list_uploads() -> list[str]:
    """Names of the saved uploads."""
    root = settings.uploads_dir()
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file() and not p.name.startswith("."))


def delete_upload(name: str, store, *, with_runs: bool = False) -> list[str]:
    """Remove a saved upload (its folder) and, with_runs, the runs trained on it (else they stay in the store);
    returns the ids of those runs."""
    meta = upload_meta(name)
    runs = runs_of_upload(store, name)
    shutil.rmtree(settings.uploads_dir() / meta["name"])
    forget_cached(DATASET_ID)
    for run_id in runs if with_runs else []:
        store.delete_run(run_id)
    return runs


def runs_of_upload(store, name: str) -> list[str]:
    """Ids of the runs trained on the saved upload `name`."""
    return [r.id for r in store.list_runs(dataset=DATASET_ID) if (r.config.get("dataset_options") or {}).get("name") == name]


def upload_meta(name: str) -> dict:
    path = settings.uploads_dir() / check_name(name) / "meta.json"
    if not path.is_file():
        raise ValueError(ERR_NOT_FOUND.format(name=name, have=", ".join(list_uploads()) or "none"))
    return json.loads(path.read_text())


def load(options: dict, data_dir: Path | None = None) -> BiasedDataset:
    """A saved upload; features z-scored per column (with the mean and sd recorded at saving) when standardize is on."""
    if not options["name"]:
        raise ValueError(ERR_NO_NAME.format(have=", ".join(list_uploads()) or "none"))
    meta = upload_meta(options["name"])
    with np.load(settings.uploads_dir() / meta["name"] / "data.npz") as npz:
        X, g = npz["X"], npz["g"]
        y = npz["y"] if "y" in npz.files else None
        rows = npz["row"] if "row" in npz.files else np.arange(len(X))
    unscale = None
    if options["standardize"]:
        mean = np.asarray(meta.get("feature_mean") or X.mean(axis=0, dtype=np.float64))
        sd = np.asarray(meta.get("feature_sd") or X.std(axis=0, dtype=np.float64))
        sd = np.where(sd > 0, sd, 1.0)
        X = (X.astype(np.float64) - mean) / sd
        unscale = (mean, sd)
    strata = g if y is None else y * len(meta["group_names"]) + g
    index = stratified_subset(options["n"], strata, options["seed"])
    subset = f"; stratified subset of {len(index):,} (seed {options['seed']})" if options["n"] else ""
    encodings = meta.get("encodings") or {}
    encoded = ", ".join(f"{c} ({encodings.get(c, 'numeric')})" for c in meta["feature_columns"])
    handled = (f"; missing values: {meta['missing']}" + (f", {meta['rows_dropped']:,} row(s) dropped" if meta.get("rows_dropped") else "")
               + (f", {sum(meta['cells_imputed'].values()):,} cell(s) imputed" if meta.get("cells_imputed") else "")
               if meta.get("missing") else "")
    return BiasedDataset(
        id=DATASET_ID, X=torch.from_numpy(np.ascontiguousarray(X[index], dtype=np.float32)),
        y=None if y is None else y[index], g=g[index], group_names=meta["group_names"], class_names=meta["class_names"],
        n_clusters=options["n_clusters"] or (len(meta["class_names"]) if meta["class_names"] else DEFAULT_K), options=dict(options),
        row_id=rows[index].astype(np.int64),  # the data row of the uploaded table (0-based)
        feature_names=meta.get("feature_names") or list(meta["feature_columns"]), unscale=unscale,
        info=DatasetInfo(
            name=f"Upload: {meta['name']}", source=f"uploaded file {meta['source_file'] or '(table)'} "
                                                   f"({meta.get('read_as', 'a table')}) on {meta['created']}",
            licence="the uploader's", citation="",
            built=(f"features {encoded} → {len(meta.get('feature_names') or meta['feature_columns'])} float32 columns"
                   + (", z-scored per column" if options["standardize"] else ", unscaled") + handled
                   + f"; g = {meta['sensitive_column']!r} (values sorted: {meta['group_names']})"
                   + (f"; y = {meta['class_column']!r}" if meta["class_column"] else "; no class column") + subset),
        ),
    )


class NameParam(Param):
    """A text option: the name of a saved upload."""

    def coerce(self, value: Any, owner: str = "") -> str:
        value = "" if value is None else str(value).strip()
        return check_name(value) if value else ""

    def range_text(self) -> str:
        return "saved upload names"


SPEC = DatasetSpec(
    id=DATASET_ID, name="Your own data (upload)",
    summary="A CSV, Parquet or NPZ table you uploaded on the Data page (or with the CLI): chosen feature columns "
            "(numbers, one-hot or ordinal categories), a sensitive column (2+ groups) and optionally a class column.",
    load=load,
    options=(
        NameParam("name", "", kind="text", help="Name the upload was saved under."),
        Param("n", 0, kind="int", low=0, help="Stratified subset size (by class and group); 0 = all rows."),
        Param("seed", 0, kind="int", low=0, help="Seed of the subset draw."),
        Param("standardize", True, kind="bool", help="z-score each feature column (mean 0, standard deviation 1)."),
        Param("n_clusters", 0, kind="int", low=0,
              help=f"Number of clusters to look for; 0 = the number of classes (or {DEFAULT_K} without a class column)."),
    ),
    available=lambda data_dir: bool(list_uploads()),
    needs=lambda data_dir: "" if list_uploads() else "no uploads yet: upload a CSV, Parquet or NPZ file on the Data page",
    size="your table",
    local=True,
)
