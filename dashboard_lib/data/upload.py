"""The user's own data: read a CSV, Parquet or NPZ table, let the user pick columns, validate, and save it as dataset `upload`.

Saved under settings.uploads_dir()/<name>/ as data.npz (X float32, g, and y when there is a class column)
plus meta.json; runs refer to it as dataset id "upload" with option name=<name>. Every problem a user can
cause raises ValueError with one of the ERR_* messages, and then nothing is saved.
"""
from __future__ import annotations

import io
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
from ..params import Param
from .base import BiasedDataset, DatasetInfo, DatasetSpec
from .transforms import stratified_subset

DATASET_ID = "upload"
MAX_BYTES = 200 * 1024 * 1024
MAX_ROWS = 2_000_000
FORMATS = ("csv", "parquet", "npz")
DEFAULT_K = 2  # clusters asked for when there is no class column and no n_clusters option
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

ERR_EMPTY = "the file is empty: it has no data rows"
ERR_UNPARSEABLE = "the file could not be read as {fmt}: {reason}"
ERR_FORMAT = "unsupported file type '{ext}': upload a .csv, .parquet or .npz file"
ERR_TOO_LARGE = "the file is {size:,.0f} MB, over the {limit:,.0f} MB limit"
ERR_TOO_MANY_ROWS = "the table has {rows:,} rows, over the {limit:,} row limit"
ERR_NPZ_SHAPES = "the arrays in the .npz file must all have the same number of rows; got {shapes}"
ERR_UNKNOWN_COLUMNS = "unknown column(s) {names}; the table has: {have}"
ERR_NO_FEATURES = "choose at least one feature column"
ERR_OVERLAP = "column {name!r} cannot be both a feature and the {role} column"
ERR_NON_NUMERIC = "feature column(s) {names} are not numeric (e.g. {example!r}); choose numeric columns only"
ERR_NAN = "feature column(s) {names} have missing or infinite values in {rows:,} row(s); clean them or leave those columns out"
ERR_MISSING_LABEL = "the {role} column {name!r} has missing values in {rows:,} row(s)"
ERR_ONE_GROUP = "the sensitive column {name!r} has only one group ({value!r}); fair clustering needs 2 or more groups"
ERR_ONE_CLASS = "the class column {name!r} has only one class ({value!r}); choose another column or none"
ERR_BAD_NAME = "dataset name {name!r} is not allowed: use 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit"
ERR_EXISTS = "an uploaded dataset named {name!r} already exists; choose another name or replace it"
ERR_NOT_FOUND = "no uploaded dataset named {name!r}; saved uploads: {have}"
ERR_NO_NAME = "choose which uploaded dataset to use (option name); saved uploads: {have}"


def _size_check(n_bytes: int) -> None:
    if n_bytes > MAX_BYTES:
        raise ValueError(ERR_TOO_LARGE.format(size=n_bytes / 2**20, limit=MAX_BYTES / 2**20))


def read_table(source: bytes | str | Path, filename: str | None = None) -> pd.DataFrame:
    """A DataFrame from CSV, Parquet or NPZ, given as bytes (with filename for its type) or a path.

    NPZ: each 1-D array is a column; an N × D array `a` becomes columns a_0 … a_{D−1} (images are flattened).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        filename = filename or path.name
        _size_check(path.stat().st_size)
        data = path.read_bytes()
    else:
        data = bytes(source)
        _size_check(len(data))
    ext = Path(filename or "").suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(ERR_FORMAT.format(ext=ext or "(none)"))
    if not data.strip():
        raise ValueError(ERR_EMPTY)
    try:
        if ext == "csv":
            table = pd.read_csv(io.BytesIO(data))
        elif ext == "parquet":
            table = pd.read_parquet(io.BytesIO(data))
        else:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
    except pd.errors.EmptyDataError:
        raise ValueError(ERR_EMPTY) from None
    except Exception as exc:  # parsers raise many types (ParserError, ArrowInvalid, BadZipFile, UnicodeDecodeError, …)
        raise ValueError(ERR_UNPARSEABLE.format(fmt=ext.upper(), reason=_reason(exc))) from None
    if ext == "npz":
        table = _npz_table(arrays)
    if len(table) == 0 or table.shape[1] == 0:
        raise ValueError(ERR_EMPTY)
    table.columns = [str(c) for c in table.columns]
    return table


def _reason(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _npz_table(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    lengths = {k: (len(a) if a.ndim else 0) for k, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(ERR_NPZ_SHAPES.format(shapes={k: arrays[k].shape for k in arrays}))
    columns = {}
    for key, a in arrays.items():
        if a.ndim <= 1:
            columns[key] = a
        else:
            flat = a.reshape(len(a), -1)
            columns.update({f"{key}_{j}": flat[:, j] for j in range(flat.shape[1])})
    return pd.DataFrame(columns)


def inspect_table(table: pd.DataFrame) -> dict:
    """Rows and, per column, its type and what it can be used for, so a form can offer sensible choices."""
    columns = []
    for name in table.columns:
        col = table[name]
        numeric = pd.api.types.is_numeric_dtype(col)
        n_unique = int(col.nunique(dropna=True))
        columns.append({
            "name": str(name), "dtype": str(col.dtype), "kind": "numeric" if numeric else "categorical",
            "n_unique": n_unique, "n_missing": int(col.isna().sum()),
            "examples": [_plain(v) for v in col.dropna().unique()[:3]],
            "can_be_feature": numeric, "can_be_group": 2 <= n_unique <= max(2, min(100, len(col) // 2)),
        })
    return {"n_rows": len(table), "n_columns": table.shape[1], "columns": columns}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _codes(col: pd.Series, role: str) -> tuple[np.ndarray, list[str]]:
    missing = int(col.isna().sum())
    if missing:
        raise ValueError(ERR_MISSING_LABEL.format(role=role, name=col.name, rows=missing))
    plain = col.to_numpy() if pd.api.types.is_numeric_dtype(col) else col.astype(str).to_numpy()
    values, codes = np.unique(plain, return_inverse=True)
    return codes.astype(np.int64), [str(_plain(v)) for v in values]


@dataclass
class Validated:
    X: np.ndarray
    g: np.ndarray
    group_names: list[str]
    y: np.ndarray | None
    class_names: list[str] | None


def validate(table: pd.DataFrame, feature_columns: list[str], sensitive_column: str,
             class_column: str | None = None) -> Validated:
    """Check the choice of columns (ValueError with an ERR_* message) and return the arrays to save."""
    if len(table) == 0:
        raise ValueError(ERR_EMPTY)
    if len(table) > MAX_ROWS:
        raise ValueError(ERR_TOO_MANY_ROWS.format(rows=len(table), limit=MAX_ROWS))
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
    features = table[feature_columns]
    non_numeric = [c for c in feature_columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        example = features[non_numeric[0]].dropna().iloc[0] if features[non_numeric[0]].notna().any() else None
        raise ValueError(ERR_NON_NUMERIC.format(names=non_numeric, example=_plain(example)))
    X = features.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        names = [c for c, b in zip(feature_columns, bad.any(axis=0)) if b]
        raise ValueError(ERR_NAN.format(names=names, rows=int(bad.any(axis=1).sum())))
    g, group_names = _codes(table[sensitive_column], "sensitive")
    if len(group_names) < 2:
        raise ValueError(ERR_ONE_GROUP.format(name=sensitive_column, value=group_names[0]))
    y = class_names = None
    if class_column:
        y, class_names = _codes(table[class_column], "class")
        if len(class_names) < 2:
            raise ValueError(ERR_ONE_CLASS.format(name=class_column, value=class_names[0]))
    return Validated(X.astype(np.float32), g, group_names, y, class_names)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(ERR_BAD_NAME.format(name=name))
    return name


def build_upload(table: pd.DataFrame | bytes | str | Path, feature_columns: list[str], sensitive_column: str,
                 class_column: str | None = None, name: str = "my_data", filename: str | None = None,
                 overwrite: bool = False) -> dict:
    """Validate the chosen columns and save the dataset as upload <name>; returns its metadata. Nothing is saved on error."""
    check_name(name)
    if not isinstance(table, pd.DataFrame):
        filename = filename or (Path(table).name if isinstance(table, (str, Path)) else None)
        table = read_table(table, filename)
    valid = validate(table, feature_columns, sensitive_column, class_column)
    final = settings.uploads_dir() / name
    if final.exists() and not overwrite:
        raise ValueError(ERR_EXISTS.format(name=name))
    meta = {
        "name": name, "source_file": filename, "n": len(valid.X), "feature_columns": list(feature_columns),
        "sensitive_column": sensitive_column, "class_column": class_column, "group_names": valid.group_names,
        "class_names": valid.class_names, "group_counts": np.bincount(valid.g).tolist(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    # Write into a temporary folder and rename it into place, so a failure never leaves half a dataset.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=settings.uploads_dir()))  # mkdtemp: owner-only (0700)
    try:
        arrays = {"X": valid.X, "g": valid.g} | ({"y": valid.y} if valid.y is not None else {})
        np.savez(tmp / "data.npz", **arrays)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from . import forget_cached  # a replaced upload must not be served from the in-process cache

    forget_cached(DATASET_ID)
    return meta


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
    from . import forget_cached

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
    """A saved upload; features z-scored per column when standardize is on."""
    if not options["name"]:
        raise ValueError(ERR_NO_NAME.format(have=", ".join(list_uploads()) or "none"))
    meta = upload_meta(options["name"])
    with np.load(settings.uploads_dir() / meta["name"] / "data.npz") as npz:
        X, g = npz["X"], npz["g"]
        y = npz["y"] if "y" in npz.files else None
    if options["standardize"]:
        std = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    strata = g if y is None else y * len(meta["group_names"]) + g
    index = stratified_subset(options["n"], strata, options["seed"])
    subset = f"; stratified subset of {len(index):,} (seed {options['seed']})" if options["n"] else ""
    return BiasedDataset(
        id=DATASET_ID, X=torch.from_numpy(np.ascontiguousarray(X[index], dtype=np.float32)),
        y=None if y is None else y[index], g=g[index], group_names=meta["group_names"], class_names=meta["class_names"],
        n_clusters=options["n_clusters"] or (len(meta["class_names"]) if meta["class_names"] else DEFAULT_K), options=dict(options),
        row_id=index,  # the row of the uploaded table
        info=DatasetInfo(
            name=f"Upload: {meta['name']}", source=f"uploaded file {meta['source_file'] or '(table)'} on {meta['created']}",
            licence="the uploader's", citation="",
            built=(f"features {meta['feature_columns']} as float32"
                   + (", z-scored per column" if options["standardize"] else ", unscaled")
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
    summary="A CSV, Parquet or NPZ table you uploaded on the Data page (or with the CLI): chosen feature columns, "
            "a sensitive column (2+ groups) and optionally a class column.",
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
)
