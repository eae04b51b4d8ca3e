"""The repair in a real browser: upload a table on the Audit page, audit it, repair it to fair, and download the
repair report, which holds both clusterings."""
import re

import numpy as np
import pandas as pd
from playwright.sync_api import expect

from dashboard_lib.store import RunStore
from tests.e2e.helpers import idle


def test_upload_audit_repair_and_download_the_report_with_both(app_server, page, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    sex = rng.choice(["female", "male"], n, p=[0.35, 0.65])
    table = pd.DataFrame({"customer": [f"c{i:04d}" for i in range(n)], "segment": np.where(sex == "male", rng.integers(0, 3, n), 3),
                          "sex": sex, "churn": rng.integers(0, 2, n)})
    path = tmp_path / "segments.csv"
    table.to_csv(path, index=False)

    page.goto(f"{app_server.url}/audit")
    page.locator("input[type=file]").first.set_input_files(str(path))
    expect(page.get_by_text(f"{n} rows × 4 columns")).to_be_visible()
    page.get_by_role("button", name="Audit").click()
    expect(page.get_by_text("Audited and saved as run")).to_be_visible(timeout=90_000)
    idle(page, 90_000)
    expect(page.get_by_role("heading", name="Repair to fair")).to_be_visible()
    page.get_by_role("button", name="Repair", exact=True).click()
    expect(page.get_by_text("Repaired for sex and saved as run")).to_be_visible(timeout=90_000)
    idle(page, 90_000)

    store = RunStore(app_server.home / "store")
    repaired, original = store.list_runs()
    assert repaired.config["repair"]["repaired_run"] == original.id
    moved = repaired.config["repair"]["n_moved"]
    assert moved > 0  # segment 3 is women only, segments 0–2 men only

    with page.expect_download() as info:
        page.get_by_role("button", name="Repair report (HTML)").click()
    report = tmp_path / "repair.html"
    info.value.save_as(report)
    text = report.read_text()
    assert f"Original clustering (run {original.id})" in text and f"Repaired clustering (run {repaired.id})" in text
    assert f"<b>{moved:,}</b> of {n:,} points moved" in text
    assert len(re.findall("<svg", text)) >= 2  # both clusterings' bars
