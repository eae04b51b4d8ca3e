"""Values read exactly or refused with the row named (issue #32, class 2): cluster ids as labels, near-duplicate group
values flagged and merged only on request, duplicate headers refused, an embedding file's id column joined on,
float32's range, the group limit shared by upload and audit; and a property-based test of the readers and the audit."""
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
    result = external.run_audit(prepared, resamples=10)
    assert len(result.clusters) == 4 and result.clusters[0] == "10000000000000000000"
    store = RunStore(fclab_home / "store")
    run_id = external.record_external(store, prepared, result, "huge")
    arrays = store.load_arrays(run_id, 0)
    assert arrays["assignment"].dtype == np.int64 and arrays["cluster_labels"].tolist() == result.clusters
    again = external.audit_run(store, run_id, resamples=10)
    assert again.clusters == result.clusters and again.cluster_sizes == [5, 5, 5, 5]
    rows = pd.read_csv(io.StringIO(report.assignments_csv(arrays, result)), dtype=str)
    assert rows["cluster"].tolist()[:4] == result.clusters


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
