"""The Data page: dataset facts from the real registry, and uploads validated before anything is saved."""
import pytest

from dashboard_lib.data import upload
from dashboard_lib.text import plain
from tests.app.helpers import open_app
from tests.conftest import SHARED_DATA


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_default_dataset_facts(fclab_home):
    at = open_app("pages/data.py")
    facts = _metrics(at)
    assert facts["Samples"] == "6,797" and facts["Classes"] == "10" and facts["Groups"] == "2"
    assert facts["Max Balance"] == f"{1797 / 5000:.3f}"
    assert any("How this copy was built" in m.value for m in at.markdown)


@pytest.mark.skipif(not (SHARED_DATA / "mnist_usps.npz").exists(), reason="needs ../shared/data")
def test_mnist_usps_from_the_data_folder(fclab_home):
    at = open_app("pages/data.py", query={"dataset": "mnist_usps"}, data_dir=SHARED_DATA)
    facts = _metrics(at)
    assert facts["Samples"] == "67,291" and facts["Max Balance"] == f"{7291 / 60000:.3f}"


def test_unavailable_dataset_says_what_to_do(fclab_home, monkeypatch):
    monkeypatch.setenv("FCLAB_OFFLINE", "1")
    at = open_app("pages/data.py", query={"dataset": "har"})
    assert any("Not on this machine yet" in w.value for w in at.warning)


CSV = b"f1,f2,site,label\n0.1,1.0,a,x\n0.2,0.9,b,y\n0.3,0.8,a,x\n0.4,0.7,b,y\n"


def _upload(at, content: bytes, name="table.csv"):
    at.file_uploader(key="upload.file").set_value((name, content, "text/csv")).run()
    return at


def test_upload_saves_a_valid_table(fclab_home):
    at = _upload(open_app("pages/data.py"), CSV)
    at.selectbox(key="upload.sensitive").set_value("site")
    at.selectbox(key="upload.class").set_value("label").run()
    assert at.multiselect(key="upload.features").value == ["f1", "f2"]
    at.button(key="upload.save").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("Saved **table**: 4 rows, 2 features; groups: a 2, b 2.")
    assert "upload:table" in plain(at.success[0].value)  # names are shown escaped (text.md)
    assert upload.list_uploads() == ["table"] and upload.upload_meta("table")["group_counts"] == [2, 2]


MIXED = b"f1,site\n" + b"".join(b"%d,%s\n" % (i % 7, b"ab"[i % 2:i % 2 + 1]) for i in range(20)) + b"abc,b\n"


@pytest.mark.parametrize("content, sensitive, features, missing, message", [
    (b"", "site", ["f1"], None, "Could not read table.csv: the file is empty"),
    (b"f1,site\n0.1,a\n0.2,b,7\n", "site", ["f1"], None, "data row 2 (line 3 of the file) has 3 field(s)"),
    (b"f1,site\n0.1,a\n0.2,a\n", "site", ["f1"], None, "has only one group"),
    (b"f1,site\n0.1,a\n,b\n0.3,b\n", "site", ["f1"], "refuse", "have missing values in 1 row(s) (first: data row 2)"),
    (MIXED, "site", ["f1"], None, "column 'f1' holds 'abc' in data row 21, which is not a number"),
])
def test_bad_uploads_are_explained_and_nothing_is_saved(fclab_home, content, sensitive, features, missing, message):
    at = _upload(open_app("pages/data.py"), content)
    if message.startswith(("Could not read", "data row")):
        assert at.error and message in at.error[0].value
    else:
        at.selectbox(key="upload.sensitive").set_value(sensitive)
        at.multiselect(key="upload.features").set_value(features).run()
        if missing:
            at.radio(key="upload.missing").set_value(missing)
        at.button(key="upload.save").click().run()
        assert at.error and at.error[0].value.startswith("Not saved:") and message in at.error[0].value
    assert upload.list_uploads() == []


def test_the_categorical_column_is_offered_as_the_group(fclab_home):
    rows = "".join(f"{20 + i % 30},{100 + i * 7 % 40},{'ab'[i % 2]}\n" for i in range(40))  # 'bp' has 40 values, 'site' 2
    at = _upload(open_app("pages/data.py"), ("age,bp,site\n" + rows).encode())
    assert at.selectbox(key="upload.sensitive").value == "site"
    assert at.multiselect(key="upload.features").value == ["age", "bp"]
    at.selectbox(key="upload.sensitive").set_value("bp").run()
    assert at.multiselect(key="upload.features").value == ["age", "site"]
    at.button(key="upload.save").click().run()
    assert "looks continuous" in at.warning[0].value  # saved all the same: it may be what the user wants
    assert upload.list_uploads() == ["table"]
    assert upload.upload_meta("table")["feature_names"] == ["age", "site=a", "site=b"]


def census_csv(n: int = 80) -> bytes:
    """An id, numbers, text categories with gaps, the group under another name (title) and the class under another
    name (high_earner)."""
    lines = ["person_id,age,workclass,sex,title,income,high_earner"]
    for i in range(n):
        sex = "Female" if i % 3 == 0 else "Male"
        rich = i % 4 == 0
        work = "?" if i % 10 == 5 else ["Private", "State-gov", "Self-emp"][(i // 5) % 3]
        lines.append(f"{5000 + i},{20 + i * 13 % 50},{work},{sex},{'Ms' if sex == 'Female' else 'Mr'},"
                     f"{'>50K' if rich else '<=50K'},{int(rich)}")
    return ("\n".join(lines) + "\n").encode()


def column_notes(at) -> dict[str, str]:
    """The upload form's table of columns: column → why it is left out of the default features."""
    frame = next(d.value for d in at.dataframe if "left out of the defaults because" in d.value.columns)
    return dict(zip(frame["column"], frame["left out of the defaults because"]))


def test_the_form_follows_the_class_column_and_says_why_columns_are_left_out(fclab_home):
    at = _upload(open_app("pages/data.py"), census_csv(), name="census.csv")
    assert at.selectbox(key="upload.sensitive").value == "sex"
    assert at.multiselect(key="upload.features").value == ["age", "workclass", "income", "high_earner"]
    notes = column_notes(at)
    assert notes["person_id"] == "an id: a different value in every row"
    assert notes["title"].startswith("a leak: it predicts the group ('sex')")
    at.selectbox(key="upload.class").set_value("income").run()
    assert at.multiselect(key="upload.features").value == ["age", "workclass"]  # the class and its other name go
    notes = column_notes(at)
    assert notes["income"] == "the class column" and notes["high_earner"].startswith("a leak: it predicts the class ('income')")
    # Once the user edits the list, a new class column only leaves it, nothing else changes.
    at.multiselect(key="upload.features").set_value(["age", "workclass", "high_earner", "title"]).run()
    at.selectbox(key="upload.class").set_value("high_earner").run()
    assert at.multiselect(key="upload.features").value == ["age", "workclass", "title"]
    # 8 rows miss workclass ('?'): the form counts them and saves with the declared handling.
    assert "8 of 80 rows (10.0%) have a missing value in the chosen columns: workclass 8" in at.warning[0].value
    at.selectbox(key="upload.class").set_value("income")
    at.multiselect(key="upload.features").set_value(["age", "workclass"]).run()
    at.radio(key="upload.missing").set_value("impute")
    at.button(key="upload.save").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "8 missing cell(s) imputed" in at.success[0].value
    meta = upload.upload_meta("census")
    assert meta["n"] == 80 and meta["encodings"] == {"age": "numeric", "workclass": "one-hot"}
    assert meta["feature_names"] == ["age", "workclass=Private", "workclass=Self-emp", "workclass=State-gov"]
