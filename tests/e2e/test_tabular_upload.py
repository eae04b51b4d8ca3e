"""A user's census table in a real browser: a CSV with string columns and '?' for missing values, uploaded on the Data
page, its labels chosen, the missing values imputed, saved, then FCMI trained on it to the end and its clusters'
profiles shown."""
import re

from playwright.sync_api import expect

from dashboard_lib.store import RunStore
from tests.e2e.helpers import choose, idle
from tests.tabular_data import census_like


def test_upload_a_census_csv_impute_save_and_train_fcmi(app_server, page, tmp_path):
    table = census_like(600, seed=3, missing=0.08)
    path = tmp_path / "adult.csv"
    table.to_csv(path, index=False, na_rep="?")  # as UCI Adult marks them
    n_missing = int(table.isna().any(axis=1).sum())

    page.goto(f"{app_server.url}/data")
    page.get_by_role("tab", name="Upload your own").click()
    page.locator("input[type=file]").first.set_input_files(str(path))
    expect(page.get_by_text("600 rows × 16 columns")).to_be_visible(timeout=30_000)
    idle(page)
    choose(page, "Sensitive column (the group)", "sex")
    choose(page, "Class column (optional, for ACC/NMI)", "income")
    # The missing values are counted before saving, with what each choice would do.
    expect(page.get_by_text(f"{n_missing:,} of 600 rows")).to_be_visible()
    page.get_by_text("Impute: median of a numeric column").click()
    idle(page)
    page.get_by_label("Save as").fill("adult")
    page.get_by_label("Save as").press("Tab")
    idle(page)
    page.screenshot(path=str(tmp_path / "upload_form.png"), full_page=True)
    page.get_by_role("button", name="Save dataset").click()
    expect(page.get_by_text(re.compile(r"Saved adult: 600 rows"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("upload:adult").first).to_be_visible()

    page.goto(f"{app_server.url}/train")
    expect(page.get_by_role("heading", name="Train a method")).to_be_visible()
    idle(page)
    choose(page, "Dataset", "Your own data (upload)")
    expect(page.get_by_role("combobox", name="Upload")).to_have_value("adult")  # the only upload: chosen already
    choose(page, "Method", "FCMI")
    # FCMI's own form must be the one on screen: a click on the previous method's Train button, still shown while the
    # rerun starts, is a click on a form that no longer exists and is lost.
    expect(page.get_by_role("spinbutton", name="β (beta)")).to_be_visible()
    idle(page)
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
    expect(page.get_by_text("finished", exact=True).first).to_be_visible(timeout=180_000)
    expect(page.get_by_text("Final metrics").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "upload_monitor.png"), full_page=True)
    # On a table the Embeddings page also says what the clusters mean within each sex.
    page.get_by_role("link", name="Embeddings").first.click()
    expect(page.get_by_role("heading", name="What the clusters mean in each group")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Profile agreement")).to_be_visible()

    (run,) = RunStore(app_server.home / "store").list_runs()
    assert run.status == "finished" and run.method == "fcmi" and run.dataset_label == "upload:adult"
    assert run.hparams["epochs"] == 10  # the quick preset
    assert 0.0 <= run.metrics["mnce"] <= 1.0
