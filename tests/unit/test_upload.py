"""The user's own data: reading, inspecting, every validation message, saving, and loading it back as dataset `upload`."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dashboard_lib import settings
from dashboard_lib.data import load_dataset, max_balance, resolve_options
from dashboard_lib.data import tables as tb
from dashboard_lib.data import upload as up


@pytest.fixture(autouse=True)
def home(fclab_home):
    return fclab_home


def table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x1": rng.normal(size=n), "x2": rng.integers(0, 5, n), "flag": rng.integers(0, 2, n).astype(bool),
        "sex": np.where(np.arange(n) % 4 == 0, "F", "M"), "label": np.arange(n) % 3, "note": ["a"] * n,
    })


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def saved() -> list[str]:
    root = settings.uploads_dir()
    return sorted(p.name for p in root.iterdir())


def test_csv_round_trip_and_load():
    df = table()
    meta = up.build_upload(csv_bytes(df), ["x1", "x2", "flag"], "sex", "label", name="people", filename="people.csv")
    assert meta["n"] == 40 and meta["group_names"] == ["F", "M"] and meta["group_counts"] == [10, 30]
    assert up.list_uploads() == ["people"] and saved() == ["people"]
    d = load_dataset("upload", {"name": "people"})
    assert d.X.shape == (40, 3) and d.class_names == ["0", "1", "2"] and d.n_clusters == 3
    assert np.allclose(d.X.mean(0).numpy(), 0, atol=1e-5)  # z-scored by default
    raw = load_dataset("upload", {"name": "people", "standardize": False})
    assert np.allclose(raw.X[:, 0].numpy(), df["x1"].to_numpy(np.float32))
    assert max_balance(d) == pytest.approx(1 / 3)
    assert "people.csv" in d.info.source and "'sex'" in d.info.built


def test_parquet_path_without_class_column(tmp_path):
    path = tmp_path / "t.parquet"
    table().to_parquet(path)
    up.build_upload(path, ["x1"], "label", name="pq")
    d = load_dataset("upload", {"name": "pq", "n_clusters": 4})
    assert d.y is None and d.class_names is None and d.n_groups == 3 and d.n_clusters == 4


def test_npz_arrays_become_columns():
    buf = io.BytesIO()
    np.savez(buf, X=np.arange(24, dtype=float).reshape(6, 2, 2), g=np.array([0, 1] * 3))
    df = tb.read_table(buf.getvalue(), "arrays.npz")
    assert list(df.columns) == ["X_0", "X_1", "X_2", "X_3", "g"]
    up.build_upload(df, ["X_0", "X_1", "X_2", "X_3"], "g", name="arr")
    assert load_dataset("upload", {"name": "arr", "n": 2}).X.shape == (2, 4)


def test_inspect_table_offers_choices():
    info = tb.inspect_table(table())
    cols = {c["name"]: c for c in info["columns"]}
    assert info["n_rows"] == 40 and info["n_columns"] == 6
    assert cols["x1"]["kind"] == "numeric" and cols["x1"]["can_be_feature"] and not cols["x1"]["can_be_group"]
    assert cols["sex"]["kind"] == "categorical" and cols["sex"]["can_be_group"] and not cols["sex"]["can_be_feature"]
    assert cols["sex"]["n_unique"] == 2 and cols["note"]["n_unique"] == 1 and not cols["note"]["can_be_group"]


def test_replacing_an_upload_needs_overwrite_and_refreshes_the_cache():
    up.build_upload(table(), ["x1"], "sex", name="r")
    first = load_dataset("upload", {"name": "r"})
    with pytest.raises(ValueError, match="already exists"):
        up.build_upload(table(), ["x1", "x2"], "sex", name="r")
    up.build_upload(table(), ["x1", "x2"], "sex", name="r", overwrite=True)
    assert load_dataset("upload", {"name": "r"}).X.shape == (40, 2) and first.X.shape == (40, 1)
    assert saved() == ["r"]  # no temporary folder left


def errors_cases():
    df = table()
    nan = df.copy()
    nan.loc[3, "x1"] = np.nan
    inf = df.assign(x2=df["x2"].astype(float))
    inf.loc[5, "x2"] = np.inf
    missing_group = df.copy()
    missing_group.loc[0, "sex"] = None
    return [
        ("empty bytes", b"", "e.csv", {}, tb.ERR_EMPTY),
        ("header only", b"a,b,c\n", "e.csv", {}, tb.ERR_EMPTY),
        ("long row", b"a,b\n1,2\n3,4,5,6\n", "bad.csv", {}, "data row 2 (line 3 of the file) has 4 field(s) where the header has 2"),
        ("unparseable csv", b'a,b\n1,"2\n', "bad.csv", {}, "could not be read as CSV"),
        ("unparseable parquet", b"not parquet at all", "bad.parquet", {}, "could not be read as PARQUET"),
        ("unparseable npz", b"PK\x03\x04 broken", "bad.npz", {}, "could not be read as NPZ"),
        ("unsupported type", b"x", "data.xlsx", {}, "unsupported file type 'xlsx'"),
        ("nan feature", nan, None, {}, "feature column(s) ['x1'] have missing values in 1 row(s) (first: data row 4); "
                                       "choose how to handle them"),
        ("inf feature", inf, None, {}, "column 'x2' is infinite (inf) in data row 6"),
        ("one group", df, None, {"sensitive_column": "note"}, tb.ERR_ONE_GROUP.format(name="note", value="a")),
        ("one class", df, None, {"class_column": "note"}, tb.ERR_ONE_CLASS.format(name="note", value="a")),
        ("missing group value", missing_group, None, {}, "the sensitive column 'sex' has missing values in 1 row(s) (first: data row 1)"),
        ("unknown column", df, None, {"feature_columns": ["x1", "x9"]}, "unknown column(s) ['x9']"),
        ("no features", df, None, {"feature_columns": []}, tb.ERR_NO_FEATURES),
        ("feature is the group", df, None, {"feature_columns": ["x1", "sex"]}, "cannot be both a feature and the sensitive"),
        ("bad name", df, None, {"name": "../evil"}, "is not allowed"),
    ]


@pytest.mark.parametrize("case", errors_cases(), ids=lambda c: c[0])
def test_each_bad_input_has_a_clear_message_and_saves_nothing(case):
    _, source, filename, overrides, message = case
    args = {"feature_columns": ["x1", "x2"], "sensitive_column": "sex", "class_column": "label", "name": "bad"} | overrides
    with pytest.raises(ValueError) as err:
        up.build_upload(source, filename=filename, **args)
    assert message in str(err.value)
    assert saved() == []


def test_size_limits(monkeypatch, tmp_path):
    monkeypatch.setattr(tb, "MAX_BYTES", 100)
    with pytest.raises(ValueError, match=r"over the 0 MB limit"):
        tb.read_table(b"x" * 101, "big.csv")
    path = tmp_path / "big.csv"
    path.write_bytes(csv_bytes(table()))
    with pytest.raises(ValueError, match="limit"):
        up.build_upload(path, ["x1"], "sex", name="big")
    monkeypatch.setattr(tb, "MAX_BYTES", 200 * 2**20)
    monkeypatch.setattr(tb, "MAX_ROWS", 39)
    with pytest.raises(ValueError, match=r"40 rows, over the 39 row limit"):
        up.build_upload(table(), ["x1"], "sex", name="big")
    assert saved() == []


def test_unknown_upload_name_lists_the_saved_ones():
    up.build_upload(table(), ["x1"], "sex", name="one")
    with pytest.raises(ValueError, match="no uploaded dataset named 'two'; saved uploads: one"):
        load_dataset("upload", {"name": "two"})
    with pytest.raises(ValueError, match="choose which uploaded dataset"):
        load_dataset("upload", {})
    with pytest.raises(ValueError, match="is not allowed"):
        resolve_options("upload", {"name": "a/b"})
