"""Tables as users bring them: delimiters and text encodings, broken rows and files, mixed columns, values beyond
float32, one-hot and ordinal encodings, missing-value handling, and the id and leak flags. Each message asserted."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashboard_lib.data import load_dataset
from dashboard_lib.data import tables as tb
from dashboard_lib.data import upload as up


@pytest.fixture(autouse=True)
def home(fclab_home):
    return fclab_home


def people(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sex = np.where(np.arange(n) % 3 == 0, "Female", "Male")
    return pd.DataFrame({
        "id": np.arange(1000, 1000 + n),
        "age": rng.integers(18, 80, n),
        "workclass": rng.choice(["Private", "State-gov", "Self-emp"], n),
        "education": rng.choice(["HS-grad", "Bachelors", "Masters"], n),
        "hours": rng.normal(40, 8, n).round(1),
        "title": np.where(sex == "Female", "Ms", "Mr"),  # the group under another name
        "sex": sex,
        "income": np.where(np.arange(n) % 4 == 0, ">50K", "<=50K"),
    })


# Reading ------------------------------------------------------------------------------------------------------

def test_semicolon_csv_in_windows_1252_is_read_with_blanks_and_question_marks_as_missing():
    text = "name;city;score\nAnn;Köln;1,5\nBo; Zürich;?\nCy;Paris;3\n"
    table = tb.read_table(text.encode("cp1252"), "t.csv")
    assert list(table.columns) == ["name", "city", "score"]
    assert table["city"].tolist() == ["Köln", "Zürich", "Paris"]  # the blank after ';' is dropped
    assert table["score"].isna().tolist() == [False, True, False]
    assert table.attrs["read_as"] == "CSV, semicolon-separated, cp1252"


@pytest.mark.parametrize("sep,name", [(",", "comma"), ("\t", "tab"), ("|", "pipe")])
def test_each_delimiter_is_detected(sep, name):
    table = tb.read_table(people(5).to_csv(index=False, sep=sep).encode(), "p.csv")
    assert table.shape == (5, 8) and table.attrs["read_as"] == f"CSV, {name}-separated, utf-8"


def test_a_comma_inside_quotes_does_not_fool_the_delimiter():
    table = tb.read_table(b'a,b\n"x, y",1\n"z",2\n', "q.csv")
    assert table["a"].tolist() == ["x, y", "z"]


def test_a_short_row_is_named_instead_of_read_as_missing_values():
    with pytest.raises(ValueError) as err:
        tb.read_table(b"a,b,c\n1,2,3\n\n4,5\n", "short.csv")
    assert str(err.value) == tb.ERR_ROW_LENGTH.format(row=2, line=4, got=2, want=3, sep=",")


def parquet_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf, **kwargs)
    return buf.getvalue()


def test_a_parquet_file_damaged_in_the_middle_is_refused():
    frame = pd.DataFrame({"a": np.arange(1000, dtype=np.float64), "s": ["x", "y"] * 500})
    data = bytearray(parquet_bytes(frame, compression="none"))
    at = bytes(data).index(np.float64(500.0).tobytes())
    data[at:at + 8] = np.float64(1e300).tobytes()  # a value the column's own statistics say cannot be there
    with pytest.raises(ValueError, match=r"the Parquet file is damaged: column 'a' in row group 0 holds values from "
                                         r"0.0 to 1e\+300 outside the range its metadata records \(-?0.0 to 999.0\)"):
        tb.read_table(bytes(data), "d.parquet")
    # With page checksums written, any damaged byte of a page is caught, not only out-of-range values.
    data = bytearray(parquet_bytes(frame, compression="none", write_page_checksum=True))
    at = bytes(data).index(np.float64(500.0).tobytes())
    data[at:at + 8] = np.float64(501.0).tobytes()
    with pytest.raises(ValueError, match="could not be read as PARQUET: .*CRC"):
        tb.read_table(bytes(data), "d.parquet")
    assert tb.read_table(parquet_bytes(frame), "ok.parquet").attrs["read_as"] == "Parquet, 1 row group(s) checked"


def test_a_damaged_npz_member_is_refused():
    buf = io.BytesIO()
    np.savez(buf, X=np.arange(4000, dtype=np.float64), g=np.zeros(4000))
    data = bytearray(buf.getvalue())
    at = bytes(data).index(np.float64(2000.0).tobytes())
    data[at] ^= 0xFF
    with pytest.raises(ValueError, match="could not be read as NPZ: .*CRC"):
        tb.read_table(bytes(data), "d.npz")
    assert zipfile.is_zipfile(io.BytesIO(bytes(data)))  # the archive itself still looks fine


# Describing -------------------------------------------------------------------------------------------------------

def test_a_mixed_column_is_named_with_the_offending_text_and_row():
    table = pd.DataFrame({"age": ["31", "45", "n/a", "22"] + ["40"] * 36, "sex": ["F", "M"] * 20})
    about = {c["name"]: c for c in tb.inspect_table(table)["columns"]}
    assert about["age"]["kind"] == "mixed" and about["age"]["non_number"] == ("n/a", 3)
    assert tb.column_notes(table, "sex", None)["age"].startswith("mixed: numbers and text ('n/a' in data row 3)")
    with pytest.raises(ValueError) as err:
        up.build_upload(table, ["age"], "sex", name="m")
    assert str(err.value) == tb.ERR_NOT_A_NUMBER.format(name="age", value="n/a", row=3)


def test_ids_constants_and_leaks_are_left_out_of_the_default_features_with_their_reason():
    table = people().assign(country="US")
    notes = tb.column_notes(table, "sex", "income")
    assert notes["id"] == "an id: a different value in every row"
    assert notes["country"] == "a single value: it carries no information"
    assert notes["title"].startswith("a leak: it predicts the group ('sex') almost perfectly (100% of the errors")
    assert notes["sex"] == "the sensitive column" and notes["income"] == "the class column"
    assert tb.default_features(table, "sex", "income") == ["age", "workclass", "education", "hours"]
    # The outcome under another name leaks the class; an honest feature does not.
    leaky = table.assign(high_earner=(table["income"] == ">50K").astype(int))
    assert tb.column_notes(leaky, "sex", "income")["high_earner"].startswith("a leak: it predicts the class ('income')")
    assert tb.predictive_lift(table["hours"], table["income"]) < tb.LEAK_LIFT


def test_predictive_lift_by_hand():
    # Feature a → target x, b → (y, y, x): 1 error out of 5; guessing the majority (y, 3 of 5) makes 2: lift 1 − 1/2.
    feature = pd.Series(["a", "a", "b", "b", "b"] * 4)
    target = pd.Series(["x", "x", "y", "y", "x"] * 4)
    assert tb.predictive_lift(feature, target) == pytest.approx(0.5)


# Encoding --------------------------------------------------------------------------------------------------------

def test_one_hot_and_ordinal_encodings_with_the_users_order():
    table = people()
    enc = tb.encode(table, ["age", "workclass", "education"], encodings={"education": "ordinal"},
                    orders={"education": ["HS-grad", "Bachelors", "Masters"]})
    assert enc.names == ["age", "workclass=Private", "workclass=Self-emp", "workclass=State-gov", "education"]
    assert enc.encodings == {"age": "numeric", "workclass": "one-hot", "education": "ordinal"}
    onehot = enc.X[:, 1:4]
    assert (onehot.sum(axis=1) == 1).all()
    assert [enc.levels["workclass"][i] for i in onehot.argmax(axis=1)] == table["workclass"].tolist()
    rank = {"HS-grad": 0, "Bachelors": 1, "Masters": 2}
    assert enc.X[:, 4].tolist() == [rank[v] for v in table["education"]]
    assert np.array_equal(enc.X[:, 0], table["age"].to_numpy(float))


def test_ordinal_without_an_order_uses_numeric_then_alphabetical_order():
    table = pd.DataFrame({"size": ["10", "9", "100", "9"], "grade": ["b", "a", "c", "a"]})
    enc = tb.encode(table, ["size", "grade"], encodings={"size": "ordinal", "grade": "ordinal"})
    assert enc.levels == {"size": ["9", "10", "100"], "grade": ["a", "b", "c"]}
    assert enc.X.tolist() == [[1, 1], [0, 0], [2, 2], [0, 0]]


@pytest.mark.parametrize("order,problem", [
    (["HS-grad", "Bachelors"], "missing ['Masters']"),
    (["HS-grad", "Bachelors", "Masters", "PhD"], "not in the column ['PhD']"),
    (["HS-grad", "HS-grad", "Bachelors", "Masters"], "repeated ['HS-grad']"),
])
def test_a_wrong_ordinal_order_says_what_is_wrong(order, problem):
    with pytest.raises(ValueError) as err:
        tb.encode(people(), ["education"], encodings={"education": "ordinal"}, orders={"education": order})
    assert str(err.value) == tb.ERR_ORDER.format(name="education", problem=problem)


def test_bad_encoding_and_missing_choices_and_too_many_levels():
    with pytest.raises(ValueError, match=r"encoding 'bucket' for column 'age' is not one of \['numeric', 'one-hot', 'ordinal'\]"):
        tb.encode(people(), ["age"], encodings={"age": "bucket"})
    with pytest.raises(ValueError, match=r"missing-value handling 'guess' is not one of \['refuse', 'drop', 'impute'\]"):
        tb.encode(people(), ["age"], missing="guess")
    many = pd.DataFrame({"city": [f"c{i}" for i in range(60)] * 2})
    with pytest.raises(ValueError) as err:
        tb.encode(many, ["city"])
    assert str(err.value) == tb.ERR_TOO_MANY_LEVELS.format(name="city", levels=60, limit=tb.MAX_LEVELS)
    assert tb.encode(many, ["city"], encodings={"city": "ordinal"}).X.shape == (120, 1)


def test_a_value_beyond_float32_names_its_column_and_row():
    table = people(5).astype({"hours": float})
    table.loc[3, "hours"] = 1e39  # finite in float64, inf in float32
    with pytest.raises(ValueError) as err:
        up.build_upload(table, ["age", "hours"], "sex", name="big")
    assert str(err.value) == tb.ERR_FLOAT32.format(name="hours", value=1e39, row=4)


def with_gaps() -> pd.DataFrame:
    table = people(12).astype({"hours": float})
    table.loc[[1, 5], "workclass"] = np.nan
    table.loc[[5, 7], "hours"] = np.nan
    table.loc[9, "sex"] = np.nan
    return table


def test_missing_values_refused_dropped_or_imputed_as_declared():
    table = with_gaps()
    features = ["age", "workclass", "hours"]
    assert tb.missing_counts(table, features + ["sex"]) == {"per_column": {"workclass": 2, "hours": 2, "sex": 1},
                                                              "rows": 4, "n_rows": 12}
    with pytest.raises(ValueError, match=r"the sensitive column 'sex' has missing values in 1 row\(s\) \(first: data row 10\)"):
        tb.encode(table, features, label_columns=(("sensitive", "sex"),))
    with pytest.raises(ValueError, match=r"\['workclass', 'hours'\] have missing values in 3 row\(s\) \(first: data row 2\)"):
        tb.encode(table, features)
    dropped = tb.encode(table, features, label_columns=(("sensitive", "sex"),), missing="drop")
    assert dropped.rows.tolist() == [0, 2, 3, 4, 6, 8, 10, 11] and dropped.dropped == 4 and dropped.imputed == {}
    imputed = tb.encode(table, features, label_columns=(("sensitive", "sex"),), missing="impute")
    assert imputed.dropped == 1 and imputed.imputed == {"workclass": 2, "hours": 2}  # the row missing its group goes
    kept = table.drop(index=9)
    hours = imputed.X[:, imputed.names.index("hours")]
    assert hours[[5, 7]].tolist() == [kept["hours"].median()] * 2
    common = kept["workclass"].mode().iloc[0]
    assert imputed.X[1, imputed.names.index(f"workclass={common}")] == 1


def test_the_saved_upload_records_its_encoding_and_loads_with_names_and_units():
    table = with_gaps()
    meta = up.build_upload(table, ["age", "workclass", "education", "hours"], "sex", "income", name="census",
                           encodings={"education": "ordinal"}, orders={"education": ["HS-grad", "Bachelors", "Masters"]},
                           missing="drop")
    assert meta["rows_dropped"] == 4 and meta["n"] == 8 and meta["n_table_rows"] == 12
    assert meta["encodings"]["workclass"] == "one-hot" and meta["levels"]["education"][0] == "HS-grad"
    assert up.saved_text(meta).startswith("8 rows, 6 features; groups: Female 3, Male 5; 4 row(s) with missing values dropped")
    data = load_dataset("upload", {"name": "census"})
    assert data.feature_names[:2] == ["age", "workclass=Private"] and data.X.shape == (8, 6)
    assert data.row_id.tolist() == [0, 2, 3, 4, 6, 8, 10, 11]  # the table's data rows, for joining back
    mean, sd = data.unscale
    back = data.X.numpy() * sd + mean
    assert np.allclose(back[:, 0], table["age"].to_numpy(float)[data.row_id])
    assert "workclass (one-hot)" in data.info.built and "4 row(s) dropped" in data.info.built
    assert up.label("census") == "upload:census"
