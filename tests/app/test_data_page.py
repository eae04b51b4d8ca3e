"""The Data page: dataset facts from the real registry, and uploads validated before anything is saved."""
import pytest

from dashboard_lib.data import upload
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
    at.selectbox(key="upload.class").set_value("label")
    at.multiselect(key="upload.features").set_value(["f1", "f2"])
    at.button[0].click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Saved **table**" in at.success[0].value
    assert upload.list_uploads() == ["table"] and upload.upload_meta("table")["group_counts"] == [2, 2]


@pytest.mark.parametrize("content, sensitive, features, message", [
    (b"", "site", ["f1"], None),  # unreadable: caught when reading
    (b"f1,site\n0.1,a\n0.2,a\n", "site", ["f1"], "has only one group"),
    (b"f1,site\n0.1,a\n,b\n", "site", ["f1"], "missing or infinite values"),
    (b"f1,site\nabc,a\ndef,b\n", "site", ["f1"], "are not numeric"),
])
def test_bad_uploads_are_explained_and_nothing_is_saved(fclab_home, content, sensitive, features, message):
    at = _upload(open_app("pages/data.py"), content)
    if message is None:
        assert at.error and "Could not read table.csv" in at.error[0].value
    else:
        at.selectbox(key="upload.sensitive").set_value(sensitive)
        at.multiselect(key="upload.features").set_value(features)
        at.button[0].click().run()
        assert at.error and at.error[0].value.startswith("Not saved:") and message in at.error[0].value
    assert upload.list_uploads() == []


def test_the_categorical_column_is_offered_as_the_group(fclab_home):
    rows = "".join(f"{i},{100 + i},{'ab'[i % 2]}\n" for i in range(40))  # 'bp' has 40 values, 'site' 2
    at = _upload(open_app("pages/data.py"), ("age,bp,site\n" + rows).encode())
    assert at.selectbox(key="upload.sensitive").value == "site"
    assert at.multiselect(key="upload.features").value == ["age", "bp"]
    at.selectbox(key="upload.sensitive").set_value("bp")
    at.multiselect(key="upload.features").set_value(["age"])
    at.button[0].click().run()
    assert "looks continuous" in at.warning[0].value  # saved all the same: it may be what the user wants
    assert upload.list_uploads() == ["table"]
