"""The auditor's flow in a real browser: upload a table with a cluster column, see the bars and the metrics with
intervals, download the report, and open the downloaded file from disk with the network blocked."""
import numpy as np
import pandas as pd
from playwright.sync_api import expect


def test_upload_audit_download_and_open_the_report_offline(app_server, page, browser, tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    sex = rng.choice(["female", "male"], n, p=[0.35, 0.65])
    table = pd.DataFrame({"customer": [f"c{i:04d}" for i in range(n)], "segment": np.where(sex == "male", rng.integers(0, 3, n), 3),
                          "sex": sex, "region": rng.choice(["north", "south", "east"], n), "churn": rng.integers(0, 2, n)})
    path = tmp_path / "segments.csv"
    table.to_csv(path, index=False)

    page.goto(f"{app_server.url}/audit")
    expect(page.get_by_role("heading", name="Audit a clustering")).to_be_visible()
    page.locator("input[type=file]").first.set_input_files(str(path))
    expect(page.get_by_text("500 rows × 5 columns")).to_be_visible()
    page.get_by_role("button", name="Audit").click()
    expect(page.get_by_text("Audited and saved as run")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("group shares per cluster against the population").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    expect(page.get_by_text("Balance ceiling").first).to_be_visible()
    # A metric with its interval, as the table shows it: value [low, high].
    expect(page.get_by_text("Hand it over")).to_be_visible()

    with page.expect_download() as info:
        page.get_by_role("button", name="Report (HTML)").click()
    report = tmp_path / "report.html"
    info.value.save_as(report)
    text = report.read_text()
    assert "segments.csv" in text and "<svg" in text and "sex" in text

    # Opened from disk in a fresh context that refuses every network request: it must render completely.
    offline = browser.new_context(offline=True)
    requests = []
    offline.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()
                                         if route.request.url.startswith("file:") else route.abort()))
    view = offline.new_page()
    view.goto(report.as_uri())
    expect(view.get_by_role("heading", name="Audit of segments.csv")).to_be_visible()
    expect(view.locator("svg").first).to_be_visible()
    assert view.locator("svg rect").count() > 5  # the stacked bars are drawn
    expect(view.get_by_text("Cluster × group counts").first).to_be_visible()
    assert all(url.startswith("file:") for url in requests), requests
    offline.close()
