"""Embeddings and Compare in a real browser, on real runs of the default dataset (tiny subset) recorded in the server's store."""
import re

from playwright.sync_api import expect

from dashboard_lib.store import RunStore
from tests.conftest import train_finished


def _point_on_screen(page, chart: int = 0) -> tuple[float, float]:
    """Page coordinates of the first point of the first trace of the chart-th plotly chart."""
    return page.evaluate("""(i) => {
        const gd = document.querySelectorAll('.js-plotly-plot')[i];
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, trace = gd._fullData[0];
        const box = gd.getBoundingClientRect();
        return [box.left + xa._offset + xa.c2p(trace.x[0]), box.top + ya._offset + ya.c2p(trace.y[0])];
    }""", chart)


def test_embeddings_then_compare_then_delete(app_server, page, tmp_path):
    store = RunStore(app_server.home / "store")
    ae = train_finished(store, "ae_kmeans", epochs=4, eval_every=2, n_init=2)
    train_finished(store, "kmeans", n_init=2)

    # Embeddings: the PCA layout at once (UMAP follows in the background), three colourings and the counts.
    page.goto(f"{app_server.url}/embeddings?run={ae}")
    expect(page.get_by_role("heading", name="Embeddings")).to_be_visible()
    expect(page.get_by_text("Epoch 4 ·")).to_be_visible()
    expect(page.get_by_text("By sensitive group")).to_be_visible()
    expect(page.get_by_text("Cluster × group counts")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(4)
    page.get_by_role("radio", name="PCA").click()
    expect(page.get_by_text("PCA of the embedding")).to_be_visible()

    # The epoch slider moves back to epoch 2; the URL keeps it, so a reload shows the same view.
    page.get_by_role("slider").press("ArrowLeft")
    expect(page.get_by_text("Epoch 2 ·")).to_be_visible()
    expect(page).to_have_url(re.compile(r"epoch=2"))

    # Clicking a point shows that sample: its image and labels.
    page.wait_for_timeout(500)
    x, y = _point_on_screen(page, 0)
    page.mouse.click(x, y)
    expect(page.get_by_text(re.compile(r"#\d+ · cluster \d+ ·")).first).to_be_visible(timeout=15_000)
    expect(page.locator("[data-testid=stImage]").first).to_be_visible()
    page.set_viewport_size({"width": 1400, "height": 2000})  # Streamlit scrolls inside the page: show all of it
    page.screenshot(path=str(tmp_path / "embeddings.png"), full_page=True)

    # Compare: the table, the bars, the trade-off plot and the heatmaps of both runs.
    page.get_by_role("link", name="Compare").click()
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    expect(page.get_by_text("2 of 2 runs.")).to_be_visible()
    expect(page.get_by_text("Metrics of the selected runs")).to_be_visible()
    expect(page.get_by_text("Pareto front (no run is better on both)")).to_be_visible()
    expect(page.get_by_role("button", name="Download table (CSV)")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download table (CSV)").click()
    csv = download.value.path().read_text()
    assert csv.startswith("run,method,dataset,status") and ae in csv
    page.set_viewport_size({"width": 1400, "height": 3000})
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

    # Delete both after confirming: the store is empty and the page says what to do next.
    page.get_by_role("button", name=re.compile(r"Delete 2 selected run")).click()
    expect(page.get_by_text("cannot be undone")).to_be_visible()
    page.get_by_role("button", name="Yes, delete 2").click()
    expect(page.get_by_text("Deleted 2 run(s) and their files.")).to_be_visible()
    expect(page.get_by_text("No runs yet")).to_be_visible()
    assert store.list_runs() == []
