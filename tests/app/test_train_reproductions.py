"""Train page: "How close is this to the paper?" reads the reproduction records of the chosen method from the records
folder (FCLAB_REPRODUCTIONS, a temporary one here, so the committed records do not matter)."""
import pytest

from dashboard_lib import reproductions as rp
from dashboard_lib.settings import REPRODUCTIONS_ENV
from dashboard_lib.text import plain
from tests.app.helpers import open_app
from tests.reproduction_data import fake_record

LABEL = "How close is this to the paper?"


@pytest.fixture
def records(tmp_path, monkeypatch, fclab_home):
    folder = tmp_path / "records"
    monkeypatch.setenv(REPRODUCTIONS_ENV, str(folder))
    return folder


def _expander(at):
    (expander,) = [e for e in at.expander if e.label == LABEL]
    return expander


def test_a_method_with_records_shows_paper_beside_ours_with_the_budget(records):
    rp.write_record(fake_record(seed=0, metrics={"acc": 0.70, "nmi": 0.60}), records)
    rp.write_record(fake_record(seed=1, metrics={"acc": 0.74, "nmi": 0.62}), records)
    at = open_app("pages/train.py")
    at.selectbox(key="method").select("dfc").run()
    assert not at.exception
    box = _expander(at)
    assert any(plain(m.value) == "**mnist_usps, reduced schedule**" for m in box.markdown)
    (table,) = box.table
    frame = table.value
    assert list(frame.columns) == ["paper (%)", "ours (%)"]
    assert [plain(v) for v in frame.loc["ACC"]] == ["82.5", "72.0 ± 2.8 (2 seeds)"]  # md escapes "82." (a list)
    assert [plain(v) for v in frame.loc["MNCE"]] == ["–", "–"]
    captions = [plain(c.value) for c in box.caption]
    assert any("Paper: DFC Table 2. Budget: n = 10,000 samples; iterations 300, batch_per_group 256; fp32; seeds 0, 1."
               in c and "commit 0123456789" in c for c in captions), captions
    assert "Every method, with the curves: docs/REPRODUCTIONS.md#dfc" in captions


def test_a_method_without_records_says_so_and_gives_the_command(records):
    rp.write_record(fake_record(), records)  # DFC's: not Inv-SENnet's
    at = open_app("pages/train.py")
    at.selectbox(key="method").select("inv_senet").run()
    box = _expander(at)
    assert any("No reproduction of Inv-SENnet" in plain(i.value) for i in box.info)
    assert [c.value for c in box.code] == ["python bench/reproduce.py --method inv_senet --schedule reduced"]
    assert len(box.table) == 0


def test_names_from_a_record_are_shown_as_text_and_a_bad_file_is_reported(records):
    note = "*not emphasis* and [a link](http://x.example)"
    rp.write_record(fake_record(paper={"metrics": {"acc": 0.8}, "source": "Table `2` <b>", "note": note}), records)
    (records / "dfc__mnist_usps__paper__seed0.json").write_text("{}")
    at = open_app("pages/train.py")
    at.selectbox(key="method").select("dfc").run()
    box = _expander(at)
    captions = [c.value for c in box.caption]
    assert any(plain(c) == f"Why it cannot be matched: {note}" and "\\*not emphasis\\*" in c for c in captions)
    assert any("Paper: Table \\`2\\` \\<b\\>." in c for c in captions)
    (warning,) = box.warning
    assert "dfc__mnist_usps__paper__seed0.json: not a reproduction record: field 'schema' is missing" in plain(warning.value)
