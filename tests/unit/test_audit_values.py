"""Values read exactly or refused with the row named (issue #32, class 2): cluster ids as labels, near-duplicate group
values flagged and merged only on request, duplicate headers refused, an embedding file's id column joined on,
float32's range, the group limit shared by upload and audit; and a property-based test of the readers and the audit."""
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard_lib import auditing as A
from dashboard_lib import external, report
from dashboard_lib.data import tables as T
from dashboard_lib.store import RunStore


def _csv(text: str) -> pd.DataFrame:
    return T.read_table(text.encode(), "t.csv")


# --- cluster ids are labels ---------------------------------------------------------------------------------------
def test_cluster_ids_written_with_leading_zeros_stay_three_clusters():
    table = _csv("c,g\n" + "01,a\n1,b\n001,a\n" * 4)
    codes, labels = A.cluster_codes(table["c"], "c")
    assert labels == ["001", "01", "1"]  # numerically equal: ties sorted by their text
    assert codes.tolist()[:3] == [1, 2, 0]
    result = A.audit(table["c"], {"g": table["g"]}, resamples=10)
    assert result.clusters == ["001", "01", "1"] and result.cluster_sizes == [4, 4, 4]


def test_a_column_of_plain_numbers_is_still_read_as_numbers():
    table = _csv("c,x\n1,0.5\n2,1.5\n10,2\n")
    assert table["c"].dtype.kind == "i" and table["x"].dtype.kind == "f"


def test_numbers_written_with_leading_zeros_are_text_as_labels_and_numbers_as_a_feature(fclab_home):
    from dashboard_lib.data import upload

    table = _csv("hour,s\n" + "".join(f"{i % 24:02d},{'ab'[i % 2]}\n" for i in range(48)))
    assert table["hour"].tolist()[:3] == ["00", "01", "02"]
    assert T.column_kind(table["hour"]) == "numeric" and "hour" in T.default_features(table, "s", None)
    meta = upload.build_upload(table, ["hour"], "s", name="hours")
    assert meta["encodings"] == {"hour": "numeric"} and meta["feature_mean"] == [11.5]


@pytest.mark.parametrize("values, labels", [
    (np.array([1e19, 2e19, 3e19] * 3), ["10000000000000000000", "20000000000000000000", "30000000000000000000"]),
    (np.array([2**64, 2**70, 1] * 2, dtype=object), ["1", "18446744073709551616", "1180591620717411303424"]),
    (np.array([2**64 - 1, 2**64 - 2, 5], dtype=np.uint64), ["5", "18446744073709551614", "18446744073709551615"]),
    (np.array([True, False, True]), ["False", "True"]),
    (pd.Series(["b", "a", "10"]), ["10", "a", "b"]),  # not all numbers: sorted as text
    (pd.Series(["3", "10", "2"]), ["2", "3", "10"]),  # all numbers: sorted numerically
])
def test_cluster_ids_keep_every_digit_and_booleans_are_two_labels(values, labels):
    codes, found = A.cluster_codes(values, "c")
    assert found == labels
    assert len(np.unique(codes)) == len(labels)


def test_huge_cluster_ids_from_a_csv_stay_apart_in_the_audit_and_the_store(fclab_home):
    rows = "".join(f"{c},{g}\n" for c, g in zip(["1e19", "2e19", "3e19", "4e19"] * 5, "ab" * 10))
    table = _csv("cluster,g\n" + rows)
    prepared = external.prepare(table, clusters="cluster", sensitive=["g"])
    result = external.audit_table(prepared, resamples=10)
    assert len(result.clusters) == 4 and result.clusters[0] == "10000000000000000000"
    store = RunStore(fclab_home / "store")
    run_id = external.record_external(store, prepared, result, "huge")
    arrays = store.load_arrays(run_id, 0)
    assert arrays["assignment"].dtype == np.int64 and arrays["cluster_labels"].tolist() == result.clusters
    again = external.audit_stored_run(store, run_id, resamples=10)
    assert again.clusters == result.clusters and again.cluster_sizes == [5, 5, 5, 5]
    rows = pd.read_csv(io.StringIO(report.assignments_csv(arrays, result)), dtype=str)
    assert rows["cluster"].tolist()[:4] == result.clusters


def test_other_pages_name_a_cluster_by_its_label_not_its_stored_code(fclab_home):
    """Monitor's Balance note and Compare's heatmap name the cluster as the audit does ("01", not code 0)."""
    from dashboard_lib.ui import reference_notes

    table = _csv("cluster,g\n" + "".join(f"{c},{g}\n" for c, g in zip(["01", "1", "001"] * 6, "aab" * 6)))
    prepared = external.prepare(table, clusters="cluster", sensitive=["g"])
    result = external.audit_table(prepared, resamples=10)
    store = RunStore(fclab_home / "store")
    run_id = external.record_external(store, prepared, result, "zeros")
    arrays = store.load_arrays(run_id, 0)
    assert A.saved_cluster_names(arrays, [0, 1, 2]) == result.clusters == ["001", "01", "1"]
    assert A.saved_cluster_names({"assignment": np.array([4, 9])}, [4, 9]) == ["4", "9"]
    from dashboard_lib.projection import load_epoch_points

    assert load_epoch_points(store, store.get_run(run_id), 0, with_features=False).cluster_names == result.clusters
    note = reference_notes(store, store.get_run(run_id), store.evaluations(run_id))["balance"]
    assert f"set by cluster {result.attribute('g').balance_cluster} (" in note

def test_integer_cluster_ids_are_stored_as_themselves():
    arrays = external.assignment_arrays(pd.Series([7, -3, 7, 2**62], name="c"))
    assert arrays["assignment"].tolist() == [7, -3, 7, 2**62] and "cluster_labels" not in arrays


@pytest.mark.parametrize("values, message", [
    (np.array([0.0, 1.0, np.inf, 1.0]), A.ERR_CLUSTER_INFINITE.format(name="c", found=np.inf, row=2)),
    (np.array([0.0, -np.inf, 1.0]), A.ERR_CLUSTER_INFINITE.format(name="c", found=-np.inf, row=1)),
    (pd.Series([0, 1, 1.5], dtype=object), A.ERR_CLUSTER_LABELS.format(name="c", found=1.5, row=2)),
    (np.array([0.0, 1.0, 2.25]), A.ERR_CLUSTER_LABELS.format(name="c", found=2.25, row=2)),
])
def test_infinite_or_fractional_cluster_ids_are_refused_naming_the_row(values, message):
    with pytest.raises(ValueError) as info:
        A.cluster_codes(values, "c")
    assert str(info.value) == message


def test_a_boolean_cluster_column_from_a_csv_is_audited():
    table = _csv("c,g\n" + "True,a\nFalse,b\nTrue,b\nFalse,a\n" * 3)
    result = A.audit(table["c"], {"g": table["g"]}, resamples=10)
    assert result.clusters == ["False", "True"]


# --- duplicate headers ---------------------------------------------------------------------------------------------
def test_a_duplicated_csv_header_is_refused_naming_it_and_its_positions():
    with pytest.raises(ValueError) as info:
        _csv("race,c, race\nA,1,B\nB,2,A\n")
    assert str(info.value) == T.ERR_DUPLICATE_HEADER.format(name="race", count=2, positions="1, 3")


def test_a_duplicated_parquet_field_is_refused():
    buffer = io.BytesIO()
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["g", "g"]), buffer)
    with pytest.raises(ValueError) as info:
        T.read_table(buffer.getvalue(), "t.parquet")
    assert str(info.value) == T.ERR_DUPLICATE_HEADER.format(name="g", count=2, positions="1, 2")


def test_an_expanded_npz_array_colliding_with_another_is_refused():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros((3, 2)), a_0=np.ones(3))
    with pytest.raises(ValueError) as info:
        T.read_table(buffer.getvalue(), "t.npz")
    assert str(info.value) == T.ERR_DUPLICATE_HEADER.format(name="a_0", count=2, positions="1, 3")


# --- near-duplicate group values ------------------------------------------------------------------------------------
SPELLINGS = ["Male", "Male ", "male", "Ｍａｌｅ", "Female", "Fe  male"]


def _sexes(n=60):
    return pd.Series(["Male"] * (n // 2) + ["Male "] * 6 + ["male"] * 3 + ["Ｍａｌｅ"] * 1 + ["Female"] * (n // 2 - 10),
                     name="sex")


def test_near_duplicates_are_found_by_whitespace_case_and_unicode_form():
    assert A.near_duplicates(pd.Series(SPELLINGS)) == [["Male", "Male ", "male", "Ｍａｌｅ"]]
    assert A.near_duplicates(pd.Series(["Female", "Fe  male", "Fe male"])) == [["Fe  male", "Fe male"]]
    assert A.near_duplicates(pd.Series(["a", "b", 1, 1.0])) == []


def test_the_audit_warns_of_near_duplicates_and_never_merges_them():
    sex = _sexes()
    result = A.audit(np.arange(len(sex)) % 2, {"sex": sex}, y=pd.Series(["Yes", "yes "] * 30, name="label"), resamples=10)
    assert result.attributes[0].group_names == ["Female", "Male", "Male ", "male", "Ｍａｌｅ"]  # five groups, as given
    listed = "'Male' / 'Male ' / 'male' / 'Ｍａｌｅ'"
    assert A.WARN_NEAR_DUPLICATES.format(role="sensitive", name="sex", listed=listed, kinds="groups") in result.warnings
    assert A.WARN_NEAR_DUPLICATES.format(role="class", name="label", listed="'Yes' / 'yes '", kinds="classes") in result.warnings
    assert result.to_dict()["warnings"] == result.warnings  # the JSON and the report carry them


def test_merge_near_duplicates_keeps_the_most_frequent_spelling_and_says_what_it_merged():
    merged, merges = A.merge_near_duplicates(_sexes())
    assert merges == {"Male": ["Male ", "male", "Ｍａｌｅ"]}
    assert sorted(merged.unique()) == ["Female", "Male"] and (merged == "Male").sum() == 40


def test_prepare_merges_only_on_request_and_records_it(fclab_home):
    table = pd.DataFrame({"c": np.arange(60) % 3, "sex": _sexes()})
    plain = external.prepare(table, clusters="c", sensitive=["sex"])
    assert plain.provenance["near_duplicates"] == {"sex": [["Male", "Male ", "male", "Ｍａｌｅ"]]}
    assert "merged_near_duplicates" not in plain.provenance and plain.sensitive["sex"].nunique() == 5
    merged = external.prepare(table, clusters="c", sensitive=["sex"], merge_near_duplicates=True)
    assert merged.provenance["merged_near_duplicates"] == {"sex": {"Male": ["Male ", "male", "Ｍａｌｅ"]}}
    result = external.audit_table(merged, resamples=10)
    assert result.attributes[0].group_names == ["Female", "Male"] and not result.warnings
    note = external.NOTE_MERGED.format(name="sex", listed="'Male ' / 'male' / 'Ｍａｌｅ' → 'Male'")
    assert result.caveats[0] == note
    run_id = external.record_external(RunStore(fclab_home / "store"), merged, result, "merged")
    assert RunStore(fclab_home / "store").get_run(run_id).config["provenance"]["merged_near_duplicates"]["sex"]


def test_cli_audit_warns_then_merges_with_its_flag(fclab_home, tmp_path, capsys):
    from dashboard_lib.cli import main

    path = tmp_path / "t.csv"
    pd.DataFrame({"c": np.arange(60) % 3, "sex": _sexes()}).to_csv(path, index=False)
    assert main(["audit", str(path), "--clusters", "c", "--sensitive", "sex", "--resamples", "10", "--no-store"]) == 0
    assert "note: the sensitive column 'sex' holds values that differ only in spaces" in capsys.readouterr().out
    assert main(["audit", str(path), "--clusters", "c", "--sensitive", "sex", "--resamples", "10", "--no-store",
                 "--merge-near-duplicates"]) == 0
    out = capsys.readouterr().out
    assert "differ only in spaces" not in out and "near-duplicate values merged on request" in out


# --- an embedding file's id column, float32's range ----------------------------------------------------------------
def _audit_table(n=40):
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "c": np.arange(n) % 2, "g": np.arange(n) // 2 % 2})


def test_an_embedding_files_id_column_joins_rows_instead_of_being_a_dimension():
    table = _audit_table()
    embedding = pd.DataFrame({"id": table["id"][::-1].to_numpy(), "e0": np.arange(40.0)[::-1], "e1": np.ones(40)})
    prepared = external.prepare(table, clusters="c", sensitive=["g"], id_column="id", embedding=embedding)
    assert prepared.embedding.shape == (40, 2) and prepared.embedding[:, 0].tolist() == list(np.arange(40.0))


@pytest.mark.parametrize("rows, problem, count, example", [
    (slice(0, 39), "missing", 1, "r39"),
    (list(range(40)) + [3], "repeated", 1, "r3"),
])
def test_an_embedding_file_with_missing_or_repeated_ids_is_refused(rows, problem, count, example):
    table = _audit_table()
    embedding = pd.DataFrame({"id": table["id"], "e0": np.arange(40.0)}).iloc[rows]
    with pytest.raises(ValueError) as info:
        external.prepare(table, clusters="c", sensitive=["g"], id_column="id", embedding=embedding)
    assert str(info.value) == external._ids_error("id", problem, count, example)
    assert external.EMBEDDING_ID_PROBLEMS[problem].format(count=count) in str(info.value)


def test_an_embedding_file_with_ids_not_in_the_table_is_refused():
    table = _audit_table()
    embedding = pd.DataFrame({"id": [f"r{i}" for i in range(1, 41)], "e0": np.arange(40.0)})
    with pytest.raises(ValueError) as info:
        external.prepare(table, clusters="c", sensitive=["g"], id_column="id", embedding=embedding)
    assert "lacks 1 of the table's row id(s) (e.g. 'r0')" in str(info.value)
    table["id"] = [f"r{i}" for i in range(1, 41)]
    embedding["id"] = [f"r{i}" for i in range(1, 40)] + ["x"]
    with pytest.raises(ValueError, match="lacks 1 of the table's row id"):
        external.prepare(table, clusters="c", sensitive=["g"], id_column="id", embedding=embedding)
    embedding = pd.DataFrame({"id": list(table["id"]) + ["extra"], "e0": np.arange(41.0)})
    with pytest.raises(ValueError) as info:
        external.prepare(table, clusters="c", sensitive=["g"], id_column="id", embedding=embedding)
    assert str(info.value) == external._ids_error("id", "extra", 1, "extra")


@pytest.mark.parametrize("column, values, message", [
    ("row_id", np.arange(40), external.ERR_EMBEDDING_ID_COLUMN.format(name="row_id")),
    ("index", np.arange(40), external.ERR_EMBEDDING_ID_COLUMN.format(name="index")),
    ("Unnamed: 0", np.arange(40), external.ERR_EMBEDDING_ID_COLUMN.format(name="Unnamed: 0")),
    ("name", [f"n{i}" for i in range(40)], external.ERR_EMBEDDING_FILE_COLUMN.format(name="name", example="n0")),
])
def test_an_id_like_or_text_column_in_an_embedding_file_is_never_a_dimension(column, values, message):
    embedding = pd.DataFrame({column: values, "e0": np.arange(40.0)})
    with pytest.raises(ValueError) as info:
        external.prepare(_audit_table(), clusters="c", sensitive=["g"], embedding=embedding)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [1e308, -1e308, np.inf, 3.5e38])
def test_embedding_values_beyond_float32_are_refused_before_anything_is_stored(value, fclab_home):
    embedding = pd.DataFrame({"e0": np.zeros(40), "e1": np.zeros(40)})
    embedding.loc[7, "e1"] = value
    with pytest.raises(ValueError) as info:
        external.prepare(_audit_table(), clusters="c", sensitive=["g"], embedding=embedding)
    assert str(info.value) == external.ERR_EMBEDDING_RANGE.format(name="e1", value=value, row=7)
    table = _audit_table().assign(e0=embedding["e1"])
    with pytest.raises(ValueError, match="embedding column 'e0' holds .* at row 7 .* beyond float32's range"):
        external.prepare(table, clusters="c", sensitive=["g"], embedding_columns=["e0"])
    assert not (fclab_home / "store").exists() or not RunStore(fclab_home / "store").list_runs()


# --- the group limit is the audit's, in uploads too -----------------------------------------------------------------
def test_upload_refuses_more_groups_than_the_audit_allows_with_the_same_message(fclab_home):
    from dashboard_lib.data import upload

    n = A.MAX_GROUPS + 1
    table = pd.DataFrame({"x": np.arange(2.0 * n), "s": [f"p{i}" for i in range(n)] * 2})
    message = A.ERR_TOO_MANY_GROUPS.format(name="s", count=n, max=A.MAX_GROUPS)
    with pytest.raises(ValueError) as info:
        upload.build_upload(table, ["x"], "s", name="many")
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        A.audit(np.arange(2 * n) % 2, {"s": table["s"]}, resamples=0)
    assert str(info.value) == message
    assert upload.list_uploads() == []


# --- property-based: arbitrary files and tables give a result or a clear error, never a traceback -------------------

PROPERTY = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


# Bytes near real files too (a valid file cut short or with a byte changed), not only noise.
_VALID = {"csv": b"c,g,x\n1,a,0.5\n2,b,1.5\n1,b,2\n", "npz": _npz_bytes({"c": np.arange(4), "x": np.zeros((4, 2))}),
          "parquet": _parquet_bytes(pd.DataFrame({"c": [1, 2, 1], "g": ["a", "b", "a"]}))}


@st.composite
def _file_bytes(draw):
    ext = draw(st.sampled_from(sorted(_VALID)))
    how = draw(st.sampled_from(["noise", "cut", "flip"]))
    valid = _VALID[ext]
    if how == "noise":
        data = draw(st.binary(max_size=300))
    elif how == "cut":
        data = valid[:draw(st.integers(0, len(valid)))]
    else:
        at = draw(st.integers(0, len(valid) - 1))
        data = valid[:at] + bytes([draw(st.integers(0, 255))]) + valid[at + 1:]
    return ext, data


@PROPERTY
@given(_file_bytes())
def test_any_bytes_give_a_table_or_a_value_error(case):
    ext, data = case
    try:
        table = T.read_table(data, f"t.{ext}")
    except ValueError:
        return
    assert isinstance(table, pd.DataFrame) and len(table) > 0


_CELLS = st.one_of(
    st.integers(-3, 3), st.integers(-2**70, 2**70), st.sampled_from([1e19, 2e19, np.inf, -np.inf, np.nan, 0.5, 1e308]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.sampled_from(["Male", "Male ", "male", "Ｍａｌｅ", "01", "1", "001", "", " ", "=1+1", "a,b", 'q"uote', "é", "NA", "?"]),
    st.text(max_size=6),
)


_ROLE_CELLS = {
    "c": st.one_of(st.integers(0, 2), st.sampled_from([1e19, 2e19, 3e19, 2**64, "01", "1", "001", True, False])),
    "g": st.sampled_from(["Male", "Male ", "male", "Ｍａｌｅ", "Female", "x"]),
    "h": st.sampled_from(["a", "b", "A", " b", 0, 1]),
    "y": st.sampled_from(["yes", "no", "Yes "]),
    "e": st.floats(-1e6, 1e6),
}


@st.composite
def _tables(draw):
    n = draw(st.integers(2, 16))
    names = ["c", "g"] + draw(st.lists(st.sampled_from(["h", "y", "e", "id"]), max_size=4, unique=True))
    # Each column mostly of the kind its role expects (so that many tables get as far as an audit), or any cells.
    return pd.DataFrame({name: draw(st.lists(_ROLE_CELLS.get(name, _CELLS) if draw(st.integers(0, 3)) else _CELLS,
                                             min_size=n, max_size=n)) for name in names})


@PROPERTY
@given(_tables(), st.booleans())
def test_any_small_table_audits_or_says_why(frame, merge):
    present = lambda name: name if name in frame.columns else None  # noqa: E731
    try:
        table = T.read_table(frame.to_csv(index=False).encode(), "t.csv")
        prepared = external.prepare(table, clusters="c", sensitive=[c for c in ("g", "h") if present(c)],
                                    class_column=present("y"), embedding_columns=[c for c in ("e",) if present(c)],
                                    id_column=present("id"), merge_near_duplicates=merge)
        result = external.audit_table(prepared, resamples=5, random_draws=5, probe=False)
    except ValueError:
        return
    assert isinstance(result, A.AuditResult) and result.n == len(table) and len(result.clusters) >= 2


@pytest.mark.parametrize("text, kind", [
    ('c;x\n1;"-007"\n2;3\n', "text"),  # quoted and signed, semicolon-separated
    ("c,x\n1,1e-05\n2,2e-05\n", "number"),  # an exponent's zero is no leading zero
    ("c,x\n1,0\n2,10\n", "number"),
    ("c\tx\n1\t00\n2\t1\n", "text"),
])
def test_leading_zeros_are_found_wherever_a_field_starts(text, kind):
    column = _csv(text)["x"]
    assert (column.dtype.kind in "iuf") == (kind == "number")


def test_assignments_with_a_boolean_row_column_are_refused():
    table = pd.DataFrame({"g": ["a", "b"]})
    assignments = pd.DataFrame({"row": [True, False], "cluster": [0, 1]})
    with pytest.raises(ValueError) as info:
        external.with_assignments(table, assignments, "cluster", "row")
    assert str(info.value) == external.ERR_ROWS_OUTSIDE.format(name="row", value=True, n=2)


def test_a_missing_class_value_names_the_class_column():
    with pytest.raises(ValueError) as info:
        A.audit([0, 1, 0, 1], {"g": ["a", "b", "b", "a"]}, y=pd.Series(["x", None, "y", "x"], name="income"), resamples=0)
    assert str(info.value) == A.ERR_MISSING.format(what="class", name="income", count=1, row=1)


def test_cli_upload_refuses_a_sensitive_column_of_ten_thousand_values(fclab_home, tmp_path, capsys):
    from dashboard_lib.cli import main

    path = tmp_path / "people.csv"
    pd.DataFrame({"x": np.arange(10_000) % 7, "person": [f"p{i}" for i in range(10_000)]}).to_csv(path, index=False)
    assert main(["upload", str(path), "--sensitive", "person", "--features", "x", "--name", "people"]) == 2
    err = capsys.readouterr().err
    assert A.ERR_TOO_MANY_GROUPS.format(name="person", count=10_000, max=A.MAX_GROUPS) in err
    assert "Traceback" not in err
