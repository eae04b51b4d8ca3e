"""Tables as users bring them: read a CSV, Parquet or NPZ file completely and check it, describe its columns (with the
ones to leave out and why), and encode chosen columns into float32 features.

Used by uploads (saved datasets) and by the audit of clusterings made elsewhere. Every problem a user can cause
raises ValueError with one of the ERR_* messages, naming the column and the data row (1 = the first row after the
header) where there is one.
"""
from __future__ import annotations

import csv
import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MAX_BYTES = 200 * 1024 * 1024
MAX_ROWS = 2_000_000
FORMATS = ("csv", "parquet", "npz")
DELIMITERS = (",", ";", "\t", "|")
TEXT_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # tried in order; latin-1 reads any byte
NA_MARKERS = ["?"]  # besides pandas' defaults (empty, NA, NaN, null, …): census exports mark missing values with '?'
ENCODINGS = ("numeric", "one-hot", "ordinal")
MISSING_CHOICES = ("refuse", "drop", "impute")
MAX_LEVELS = 50  # one-hot columns per categorical column at most
FLOAT32_MAX = float(np.finfo(np.float32).max)
LEAK_LIFT = 0.9  # a feature that removes this share of the errors of guessing the majority is a leak
LEAK_BINS = 20  # numeric columns with more values are cut into this many quantile bins to measure a leak
MIXED_SHARE = 0.9  # a text column whose values are at least this share numbers is called mixed (a typo, not a category)

ERR_EMPTY = "the file is empty: it has no data rows"
ERR_UNPARSEABLE = "the file could not be read as {fmt}: {reason}"
ERR_FORMAT = "unsupported file type '{ext}': upload a .csv, .parquet or .npz file"
ERR_TOO_LARGE = "the file is {size:,.0f} MB, over the {limit:,.0f} MB limit"
ERR_GREW = "the file grew past the {limit:,.0f} MB limit while it was read"
ERR_NO_FILE = "no file {path}: check the path and the name"
ERR_FOLDER = "{path} is a folder: name the table file inside it"
ERR_NOT_REGULAR = "{path} is not a regular file (a device, pipe or socket): save the table to a file and name that"
ERR_UNREADABLE = "could not read {path}: {reason}"
ERR_NESTED = ("column {name!r} holds nested values ({kind}), not one value per cell: flatten it (one column per field) "
              "or leave it out, and export the file again")
ERR_TOO_MANY_ROWS = "the table has {rows:,} rows, over the {limit:,} row limit"
ERR_ROW_LENGTH = ("data row {row:,} (line {line:,} of the file) has {got} field(s) where the header has {want}: a short "
                  "row, a stray {sep!r} or an unquoted {sep!r} inside a value; fix that line or export the file again")
ERR_PARQUET_DAMAGED = ("the Parquet file is damaged: {what}; nothing was saved. Export it again (with page checksums if "
                       "the writer offers them)")
ERR_DUPLICATE_HEADER = ("the header names column {name!r} {count} times (at positions {positions}, counting from 1): each "
                        "column needs its own name; rename the copies and export the file again")
ERR_NPZ_SHAPES = "the arrays in the .npz file must all have the same number of rows; got {shapes}"
ERR_UNKNOWN_COLUMNS = "unknown column(s) {names}; the table has: {have}"
ERR_NO_FEATURES = "choose at least one feature column"
ERR_OVERLAP = "column {name!r} cannot be both a feature and the {role} column"
ERR_ENCODING = "encoding {encoding!r} for column {name!r} is not one of {choices}"
ERR_MISSING_CHOICE = "missing-value handling {choice!r} is not one of {choices}"
ERR_NOT_A_NUMBER = ("column {name!r} holds {value!r} in data row {row:,}, which is not a number: fix it, mark it as "
                    "missing, or encode the column as one-hot")
ERR_MISSING = ("feature column(s) {names} have missing values in {rows:,} row(s) (first: data row {first:,}); choose how "
               "to handle them: drop those rows, or impute (median / most frequent)")
ERR_MISSING_LABEL = ("the {role} column {name!r} has missing values in {rows:,} row(s) (first: data row {first:,}); "
                     "drop those rows (missing values: drop or impute) or fill them in")
ERR_INFINITE = "column {name!r} is infinite ({value}) in data row {row:,}: fix it or leave the column out"
ERR_FLOAT32 = ("column {name!r} holds {value:.3g} in data row {row:,}, beyond float32's range (±3.4e38) in which "
               "training runs: rescale that column (e.g. divide it by 1e30) or leave it out")
ERR_TOO_MANY_LEVELS = ("column {name!r} has {levels:,} distinct values, over the one-hot limit of {limit}: encode it as "
                       "ordinal, group its rare values, or leave it out")
ERR_ORDER = "the order given for ordinal column {name!r} must list each of its values once: {problem}"
ERR_ALL_DROPPED = "every row has a missing value in the chosen columns: nothing is left to save"
ERR_ONE_GROUP = "the sensitive column {name!r} has only one group ({value!r}); fair clustering needs 2 or more groups"
ERR_ONE_CLASS = "the class column {name!r} has only one class ({value!r}); choose another column or none"


class TableError(ValueError):
    """A problem with the file itself, said in one of the ERR_* messages (anything else a parser raises is reported
    as ERR_UNPARSEABLE with its first line)."""


# Reading ---------------------------------------------------------------------------------------------------------

def size_check(n_bytes: int) -> None:
    if n_bytes > MAX_BYTES:
        raise ValueError(ERR_TOO_LARGE.format(size=n_bytes / 2**20, limit=MAX_BYTES / 2**20))


READ_CHUNK = 8 * 2**20


def read_file(path: str | Path, filename: str | None = None) -> tuple[bytes, str]:
    """A table file's bytes and its name (filename, else the path's), checked before a byte is read: it exists, is a
    regular file of a supported type, is readable and is within MAX_BYTES (ValueError with ERR_NO_FILE, ERR_FOLDER,
    ERR_NOT_REGULAR, ERR_FORMAT, ERR_UNREADABLE or ERR_TOO_LARGE). Read in chunks with a hard cap, so a file that
    grows while read (or whose size the system does not report) is refused without holding more than MAX_BYTES + 1
    bytes."""
    path = check_file(path)
    filename = filename or path.name
    table_format(filename)  # before reading up to MAX_BYTES for nothing
    try:
        with open(path, "rb") as stream:
            return read_limited(stream, MAX_BYTES), filename
    except OSError as exc:
        raise ValueError(ERR_UNREADABLE.format(path=path, reason=exc.strerror or type(exc).__name__)) from None


def table_format(filename: str) -> str:
    """The file type its name says (csv, parquet or npz); ValueError (ERR_FORMAT) for any other."""
    ext = Path(filename or "").suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(ERR_FORMAT.format(ext=ext or "(none)"))
    return ext


def check_file(path: str | Path) -> Path:
    """The path, once it names an existing regular file within MAX_BYTES (ValueError otherwise; see read_file)."""
    path = Path(path)
    try:
        mode = os.stat(path)
    except FileNotFoundError:
        raise ValueError(ERR_NO_FILE.format(path=path)) from None
    except OSError as exc:
        raise ValueError(ERR_UNREADABLE.format(path=path, reason=exc.strerror or type(exc).__name__)) from None
    if stat.S_ISDIR(mode.st_mode):
        raise ValueError(ERR_FOLDER.format(path=path))
    if not stat.S_ISREG(mode.st_mode):
        raise ValueError(ERR_NOT_REGULAR.format(path=path))
    size_check(mode.st_size)
    return path


def read_limited(stream, limit: int) -> bytes:
    """Everything a binary stream holds, refused (ERR_GREW) as soon as it passes limit bytes: at most limit + 1 are
    ever read."""
    chunks, total = [], 0
    while True:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise ValueError(ERR_GREW.format(limit=limit / 2**20))


def read_table(source: bytes | str | Path, filename: str | None = None) -> pd.DataFrame:
    """A DataFrame from CSV, Parquet or NPZ, given as bytes (with filename for its type) or a path, read completely.

    A path is checked before it is read (an existing regular file within MAX_BYTES) and read with a hard cap
    (read_file). Columns with nested values (Parquet lists, structs, maps) are refused, naming the column.

    CSV: the text encoding (UTF-8, else Windows-1252, else Latin-1) and the delimiter (, ; tab |) are detected, every
    row must have the header's number of fields, blanks after a delimiter are dropped and '?' means missing.
    Parquet: every row group is read and checked against the file's own metadata (row counts, null counts, min/max,
    page checksums where written). NPZ: each 1-D array is a column; an N × D array `a` becomes columns a_0 … a_{D−1}.
    How the file was read is in table.attrs["read_as"].
    """
    if isinstance(source, (str, Path)):
        data, filename = read_file(source, filename)
    else:
        data = bytes(source)
        size_check(len(data))
    ext = table_format(filename)
    if not data.strip():
        raise ValueError(ERR_EMPTY)
    readers = {"csv": _read_csv, "parquet": _read_parquet, "npz": _read_npz}
    try:
        table, read_as = readers[ext](data)
    except TableError:
        raise
    except pd.errors.EmptyDataError:
        raise ValueError(ERR_EMPTY) from None
    except Exception as exc:  # parsers raise many types (ParserError, ArrowInvalid, BadZipFile, …)
        raise ValueError(ERR_UNPARSEABLE.format(fmt=ext.upper(), reason=_reason(exc))) from None
    if len(table) == 0 or table.shape[1] == 0:
        raise ValueError(ERR_EMPTY)
    table.columns = [str(c) for c in table.columns]
    table.attrs["read_as"] = read_as
    return table


def _reason(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _decode(data: bytes) -> tuple[str, str]:
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte")


def sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits the first lines into the most fields, the same number on every line."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    best, best_score = ",", (False, 1)
    for sep in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        if not counts or counts[0] < 2:
            continue
        score = (all(c == counts[0] for c in counts), counts[0])
        if score > best_score:
            best, best_score = sep, score
    return best


def _read_csv(data: bytes) -> tuple[pd.DataFrame, str]:
    text, encoding = _decode(data)
    sep = sniff_delimiter(text)
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    header = next(rows, None)
    if not header:
        raise TableError(ERR_EMPTY)
    # pandas pads a short row with missing values and only sometimes refuses a long one: check every row first.
    data_row = 0
    for row in rows:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank lines are skipped, as pandas does
        data_row += 1
        if len(row) != len(header):
            raise TableError(ERR_ROW_LENGTH.format(row=data_row, line=rows.line_num, got=len(row), want=len(header), sep=sep))
    if data_row == 0:
        raise TableError(ERR_EMPTY)
    _check_unique_headers([h.lstrip() for h in header])  # skipinitialspace strips a header's leading blanks too
    table = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, na_values=NA_MARKERS)
    table = _keep_written_integers(table, text, sep, data)
    names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
    return table, f"CSV, {names[sep]}-separated, {encoding.replace('-sig', '')}"


LEADING_ZERO = r"^[+-]?0[0-9]"


def _may_have_leading_zeros(data: bytes, sep: str) -> bool:
    """Whether some field may start with a zero then a digit, signed or not (a cheap scan of the bytes, so that a
    table without one is parsed once): after the start, a delimiter, a line break, a quote or a blank, a 0 then a
    digit (an exponent such as 1e-05 does not count). ASCII bytes are themselves in UTF-8, Windows-1252 and Latin-1."""
    a = np.frombuffer(b"\n\n" + data + b"\n", dtype=np.uint8)
    starts = np.zeros(256, dtype=bool)
    starts[list(f"{sep}\n\r\" ".encode())] = True
    field_start = starts[a]
    sign = (a == ord("+")) | (a == ord("-"))
    zero_digit = (a[2:-1] == ord("0")) & (a[3:] >= ord("0")) & (a[3:] <= ord("9"))
    return bool((zero_digit & (field_start[1:-2] | (sign[1:-2] & field_start[:-3]))).any())


def _keep_written_integers(table: pd.DataFrame, text: str, sep: str, data: bytes) -> pd.DataFrame:
    """Columns of whole numbers in which some value is written with leading zeros ("01", "007") kept as the text
    written: pandas reads "01", "1" and "001" all as 1, merging what may be three different ids or codes."""
    whole = [i for i, c in enumerate(table.columns)
             if table[c].dtype.kind in "iu" or (table[c].dtype.kind == "O" and len(table[c].dropna())
                                               and pd.api.types.infer_dtype(table[c], skipna=True) == "integer")
             or (table[c].dtype.kind == "f" and bool((table[c].dropna() == np.trunc(table[c].dropna())).all()))]
    if not whole or not _may_have_leading_zeros(data, sep):
        return table
    written = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, na_values=NA_MARKERS, dtype=str,
                          usecols=whole)
    for i in whole:
        name = table.columns[i]
        raw = written.iloc[:, whole.index(i)]
        if raw.str.match(LEADING_ZERO, na=False).any():
            table[name] = raw.to_numpy()  # text, like the table's other text columns
    return table


def _check_unique_headers(names: list[str]) -> None:
    """A header named twice is refused: pandas would rename the copy (race.1) and a choice of `race` would silently
    take the first."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        if str(name) != "":  # empty headers are named Unnamed: i, one by one
            positions.setdefault(str(name), []).append(i)
    for name, at in positions.items():
        if len(at) > 1:
            raise TableError(ERR_DUPLICATE_HEADER.format(name=name, count=len(at), positions=", ".join(map(str, at))))


def _read_parquet(data: bytes) -> tuple[pd.DataFrame, str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file = pq.ParquetFile(io.BytesIO(data), page_checksum_verification=True)
    _check_unique_headers(file.schema_arrow.names)
    parts = []
    _refuse_nested(file.schema_arrow)
    for r in range(file.num_row_groups):
        part, meta = file.read_row_group(r), file.metadata.row_group(r)
        if part.num_rows != meta.num_rows:
            raise TableError(ERR_PARQUET_DAMAGED.format(what=f"row group {r} holds {part.num_rows:,} rows where its "
                                                             f"metadata says {meta.num_rows:,}"))
        for c in range(meta.num_columns):
            column = meta.column(c)
            stats, name = column.statistics, column.path_in_schema
            if stats is None or name not in part.column_names:
                continue
            values = part.column(name)
            if stats.has_null_count and values.null_count != stats.null_count:
                raise TableError(ERR_PARQUET_DAMAGED.format(
                    what=f"column {name!r} in row group {r} has {values.null_count:,} missing values where its "
                         f"metadata says {stats.null_count:,}"))
            if stats.has_min_max and values.null_count < len(values):
                low, high = pc.min_max(values).values()
                if low.as_py() < stats.min or high.as_py() > stats.max:
                    raise TableError(ERR_PARQUET_DAMAGED.format(
                        what=f"column {name!r} in row group {r} holds values from {low.as_py()!r} to {high.as_py()!r} "
                             f"outside the range its metadata records ({stats.min!r} to {stats.max!r})"))
        parts.append(part)
    import pyarrow as pa

    table = pa.concat_tables(parts).to_pandas() if parts else file.schema_arrow.empty_table().to_pandas()
    return table, f"Parquet, {file.num_row_groups} row group(s) checked"


def _refuse_nested(schema) -> None:
    """Refuse a column of lists, structs or maps: pandas would hold them as objects in the cells, which no later
    check expects (ERR_NESTED, naming the column)."""
    import pyarrow as pa

    for column in schema:
        if pa.types.is_nested(column.type):
            raise TableError(ERR_NESTED.format(name=column.name, kind=str(column.type)[:80]))


def _read_npz(data: bytes) -> tuple[pd.DataFrame, str]:
    # Reading each array whole makes zipfile check its CRC-32: a damaged member raises instead of loading garbage.
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    lengths = {k: (len(a) if a.ndim else 0) for k, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise TableError(ERR_NPZ_SHAPES.format(shapes={k: arrays[k].shape for k in arrays}))
    columns, headers = {}, []
    for key, a in arrays.items():
        if a.ndim <= 1:
            names = [key]
            columns[key] = a
        else:
            flat = a.reshape(len(a), -1)
            names = [f"{key}_{j}" for j in range(flat.shape[1])]
            columns.update({name: flat[:, j] for j, name in enumerate(names)})
        headers += names  # an expanded `a` (a_0, a_1, …) may collide with a 1-D array saved as a_0
    _check_unique_headers(headers)
    return pd.DataFrame(columns), f"NPZ, {len(arrays)} array(s)"


# Describing -------------------------------------------------------------------------------------------------------

def plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def as_numbers(col: pd.Series) -> pd.Series:
    """The column as float64; values that are not numbers become NaN (booleans are 0/1)."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float)
    return pd.to_numeric(col.astype("string").str.strip(), errors="coerce").astype(float)


def column_kind(col: pd.Series) -> str:
    """numeric (numbers, or text that is all numbers), categorical, or mixed: text that is nearly all numbers (a typo
    or a stray marker, not a category)."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return "numeric"
    present = col.dropna()
    share = as_numbers(present).notna().mean() if len(present) else 0.0
    if share == 1:
        return "numeric"  # whole numbers kept as written ("08", "007"): text as labels, numbers as a feature
    if share >= MIXED_SHARE:
        return "mixed"
    return "categorical"


def first_non_number(col: pd.Series) -> tuple[Any, int] | None:
    """The first present value of col that is not a number, and its data row (1-based)."""
    bad = col.notna() & as_numbers(col).isna()
    if not bad.any():
        return None
    at = int(np.flatnonzero(bad.to_numpy())[0])
    return plain(col.iloc[at]), at + 1


def inspect_table(table: pd.DataFrame) -> dict:
    """Rows and, per column, its kind, counts, examples and what it can be used for, so a form can offer choices."""
    columns = []
    for name in table.columns:
        col = table[name]
        kind = column_kind(col)
        n_unique = int(col.nunique(dropna=True))
        entry = {
            "name": str(name), "dtype": str(col.dtype), "kind": kind, "n_unique": n_unique,
            "n_missing": int(col.isna().sum()), "examples": [plain(v) for v in col.dropna().unique()[:3]],
            "can_be_feature": kind == "numeric", "can_be_group": 2 <= n_unique <= max(2, min(100, len(col) // 2)),
        }
        if kind == "mixed":
            entry["non_number"] = first_non_number(col)
        columns.append(entry)
    return {"n_rows": len(table), "n_columns": table.shape[1], "columns": columns}


ID_NAME = re.compile(r"(^|[^a-z])(id|key|uuid|index)$|^(id|key|uuid)([^a-z]|$)", re.IGNORECASE)


def id_like(col: pd.Series) -> bool:
    """A row id, a name, a key: a different text in every row, or a different whole number in every row that is
    named like an id or sorted (a measurement may be unique per row in a small table; a float always may)."""
    present = col.dropna()
    if len(present) < 20 or present.nunique() != len(col):
        return False
    if not pd.api.types.is_numeric_dtype(col):
        return True
    if not pd.api.types.is_integer_dtype(col):
        return False
    return bool(ID_NAME.search(str(col.name))) or col.is_monotonic_increasing or col.is_monotonic_decreasing


def predictive_lift(feature: pd.Series, target: pd.Series) -> float:
    """How well the feature alone predicts the target: 1 − errors of guessing, within each of the feature's values
    (or quantile bins of a numeric feature), that value's most frequent target, over the errors of always guessing
    the overall most frequent target. 1 = the feature determines the target, 0 = it tells nothing."""
    both = pd.DataFrame({"f": feature, "t": target}).dropna()
    if len(both) == 0 or both["t"].nunique() < 2:
        return 0.0
    f = both["f"]
    if column_kind(f) != "categorical" and f.nunique() > LEAK_BINS:
        f = pd.qcut(as_numbers(f), LEAK_BINS, labels=False, duplicates="drop")
    elif f.nunique() > max(len(both) // 20, 2):
        return 0.0  # too many levels for the count to mean anything (an id or free text is flagged as such)
    counts = pd.crosstab(f.astype(str), both["t"].astype(str))
    base_errors = len(both) - counts.sum(axis=0).max()
    errors = len(both) - counts.max(axis=1).sum()
    return float(1.0 - errors / base_errors) if base_errors else 0.0


def column_notes(table: pd.DataFrame, sensitive: str | None, class_column: str | None) -> dict[str, str]:
    """Why each column should not be a default feature (the rest should): the chosen sensitive or class column, an
    id, a constant, a mixed column, too many levels for one-hot, or a near-perfect predictor of the class or the
    group (a leak: the outcome under another name, or the group itself)."""
    notes = {}
    for name in table.columns:
        col = table[name]
        kind = column_kind(col)
        if name == sensitive:
            notes[name] = "the sensitive column"
        elif name == class_column:
            notes[name] = "the class column"
        elif col.nunique(dropna=True) <= 1:
            notes[name] = "a single value: it carries no information"
        elif id_like(col):
            notes[name] = "an id: a different value in every row"
        elif kind == "mixed":
            value, row = first_non_number(col)
            notes[name] = f"mixed: numbers and text ({value!r} in data row {row:,}); fix it or choose an encoding"
        elif kind == "categorical" and col.nunique() > MAX_LEVELS:
            notes[name] = f"{col.nunique():,} distinct values, over the one-hot limit of {MAX_LEVELS}"
        else:
            for role, target in (("class", class_column), ("group", sensitive)):
                if target and target in table.columns:
                    lift = predictive_lift(col, table[target])
                    if lift >= LEAK_LIFT:
                        notes[name] = (f"a leak: it predicts the {role} ({target!r}) almost perfectly "
                                       f"({lift:.0%} of the errors of guessing removed)")
                        break
    return notes


def default_features(table: pd.DataFrame, sensitive: str | None, class_column: str | None) -> list[str]:
    notes = column_notes(table, sensitive, class_column)
    return [c for c in table.columns if c not in notes]


def default_encoding(col: pd.Series) -> str:
    return "one-hot" if column_kind(col) == "categorical" else "numeric"


# Encoding ---------------------------------------------------------------------------------------------------------

@dataclass
class Encoded:
    """Features as float64 (one column per number, per one-hot level, per ordinal column) and the rows kept."""

    X: np.ndarray
    names: list[str]
    rows: np.ndarray  # positions (0-based) of the table's rows kept
    encodings: dict[str, str]
    levels: dict[str, list[str]] = field(default_factory=dict)  # one-hot and ordinal columns: their values in order
    imputed: dict[str, int] = field(default_factory=dict)  # column: cells filled
    dropped: int = 0


def missing_counts(table: pd.DataFrame, columns: list[str]) -> dict:
    """Missing cells per chosen column and the rows with any, for the form to show before saving."""
    present = [c for c in columns if c in table.columns]
    mask = table[present].isna()
    return {"per_column": {c: int(n) for c, n in mask.sum().items() if n}, "rows": int(mask.any(axis=1).sum()),
            "n_rows": len(table)}


def level_order(col: pd.Series) -> list[str]:
    """A categorical column's values as text, numbers in numeric order, else alphabetical."""
    values = col.dropna().unique()
    numbers = pd.to_numeric(pd.Series(values).astype(str), errors="coerce")
    if numbers.notna().all():
        values = [v for _, v in sorted(zip(numbers, values))]
    else:
        values = sorted(values, key=str)
    return [str(plain(v)) for v in values]


def encode(table: pd.DataFrame, features: list[str], *, label_columns: tuple[tuple[str, str], ...] = (),
           encodings: dict[str, str] | None = None, orders: dict[str, list[str]] | None = None,
           missing: str = "refuse") -> Encoded:
    """Encode the chosen feature columns (numeric as they are, one-hot with one 0/1 column per level, ordinal as the
    position 0, 1, … in `orders[col]` or in level_order) after the declared handling of missing values: refuse,
    drop the rows with any, or impute (median of a numeric column, most frequent value of a categorical one). Rows
    missing a label column (the group, the class) are dropped under drop and impute, refused under refuse."""
    if missing not in MISSING_CHOICES:
        raise ValueError(ERR_MISSING_CHOICE.format(choice=missing, choices=list(MISSING_CHOICES)))
    encodings = {c: (encodings or {}).get(c) or default_encoding(table[c]) for c in features}
    for name, encoding in encodings.items():
        if encoding not in ENCODINGS:
            raise ValueError(ERR_ENCODING.format(encoding=encoding, name=name, choices=list(ENCODINGS)))
    orders = orders or {}
    columns = {}
    for name in features:  # numeric columns as numbers first, so a stray word is reported before missing values
        col = table[name]
        if encodings[name] == "numeric":
            found = first_non_number(col)
            if found:
                raise ValueError(ERR_NOT_A_NUMBER.format(name=name, value=found[0], row=found[1]))
            col = as_numbers(col)
        columns[name] = col
    frame = pd.DataFrame(columns, index=table.index)

    keep = np.ones(len(table), dtype=bool)
    for role, name in label_columns:
        absent = table[name].isna().to_numpy()
        if absent.any() and missing == "refuse":
            raise ValueError(ERR_MISSING_LABEL.format(role=role, name=name, rows=int(absent.sum()),
                                                      first=int(np.flatnonzero(absent)[0]) + 1))
        keep &= ~absent
    absent = frame.isna().to_numpy()
    if absent.any() and missing == "refuse":
        names = [c for c, a in zip(features, absent.any(axis=0)) if a]
        rows = absent.any(axis=1)
        raise ValueError(ERR_MISSING.format(names=names, rows=int(rows.sum()), first=int(np.flatnonzero(rows)[0]) + 1))
    if missing == "drop":
        keep &= ~absent.any(axis=1)
    if not keep.any():
        raise ValueError(ERR_ALL_DROPPED)
    rows = np.flatnonzero(keep)
    frame = frame.iloc[rows]
    imputed = {}
    if missing == "impute":
        for name in features:
            gaps = int(frame[name].isna().sum())
            if gaps:
                col = frame[name]
                fill = col.median() if encodings[name] == "numeric" else col.mode(dropna=True).iloc[0]
                frame[name] = col.fillna(fill)
                imputed[name] = gaps

    blocks, names, levels = [], [], {}
    for name in features:
        col, encoding = frame[name], encodings[name]
        if encoding == "numeric":
            values = col.to_numpy(dtype=np.float64)
            _check_range(name, values, rows)
            blocks.append(values[:, None])
            names.append(name)
            continue
        text = col.map(lambda v: str(plain(v)))
        if encoding == "one-hot":
            order = level_order(col)
            if len(order) > MAX_LEVELS:
                raise ValueError(ERR_TOO_MANY_LEVELS.format(name=name, levels=len(order), limit=MAX_LEVELS))
            blocks.append((text.to_numpy()[:, None] == np.array(order)[None, :]).astype(np.float64))
            names += [f"{name}={level}" for level in order]
        else:
            order = [str(v) for v in orders.get(name) or level_order(col)]
            have = set(level_order(col))
            problems = []
            if len(set(order)) != len(order):
                problems.append(f"repeated {sorted({v for v in order if order.count(v) > 1})}")
            if have - set(order):
                problems.append(f"missing {sorted(have - set(order))}")
            if set(order) - have:
                problems.append(f"not in the column {sorted(set(order) - have)}")
            if problems:
                raise ValueError(ERR_ORDER.format(name=name, problem="; ".join(problems)))
            position = {v: i for i, v in enumerate(order)}
            blocks.append(text.map(position).to_numpy(dtype=np.float64)[:, None])
            names.append(name)
        levels[name] = order
    X = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(rows), 0))
    return Encoded(X, names, rows, encodings, levels, imputed, dropped=len(table) - len(rows))


def _check_range(name: str, values: np.ndarray, rows: np.ndarray) -> None:
    infinite = np.isinf(values)
    if infinite.any():
        at = int(np.flatnonzero(infinite)[0])
        raise ValueError(ERR_INFINITE.format(name=name, value=values[at], row=int(rows[at]) + 1))
    huge = np.abs(values) > FLOAT32_MAX
    if huge.any():
        at = int(np.flatnonzero(huge)[0])
        raise ValueError(ERR_FLOAT32.format(name=name, value=values[at], row=int(rows[at]) + 1))
