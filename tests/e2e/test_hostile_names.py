"""Nothing a table contains is interpreted: a table whose file name, column names, group values, class values and
run name are Markdown, HTML, math, Streamlit directives, a spreadsheet formula, an 80-character name and a
right-to-left one is audited into the server's store (the CLI's code path), then shown on the Audit, Monitor,
Embeddings, Compare and Data pages in a real browser. Every name must be visible as the literal text it is, and no
request may leave 127.0.0.1."""
from pathlib import Path

import numpy as np
import pandas as pd
from playwright.sync_api import expect

from dashboard_lib import external
from dashboard_lib.store import RunStore
from tests.e2e.helpers import requests_leaving

IMAGE = "![t](http://evil.example/x.png)"
LINK = "[x](http://evil.example/)"
IMG_TAG = "<img src=http://evil.example/y.png>"
LONG = ("An eighty-character group name that no legend, tab or table may cut or wrap away." + "x" * 80)[:80]
RTL = "\u05e7\u05d1\u05d5\u05e6\u05d4 \u05e8\u05d0\u05e9\u05d5\u05e0\u05d4"  # "first group" in Hebrew
SENSITIVE_A, SENSITIVE_B, CLASS = IMAGE, LINK, IMG_TAG  # the column names
GROUPS_A = ["<script>alert(1)</script>", "**bold**", "$x^2$", ":red[red]", '=HYPERLINK("http://evil.example")']
GROUPS_B = [LONG, RTL, ":smile:"]
CLASSES = [LINK, "<b>bold</b>"]
RUN_NAME = IMAGE
FILE_NAME = "**bold** $x^2$ :red[red] <img src=x> =1+1.csv"  # a file name holds no slash

# Every text the page shows (rendered Markdown, widgets, plotly's SVG text), the invisible joiners text.md adds
# taken out, and what would be a sign of interpretation: a link or an image to the hostile host, math, colour.
PAGE_TEXT = """() => {
    const svg = [...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n');
    const inputs = [...document.querySelectorAll('input')].map(i => i.value).join('\\n');
    return {text: (document.body.innerText + '\\n' + svg + '\\n' + inputs).replaceAll('\\u2060', ''),
            evil: document.querySelectorAll('a[href*="evil.example"], img[src*="evil.example"], script[src*="evil.example"]').length,
            katex: document.querySelectorAll('.stMarkdown .katex, .stMarkdownColoredText').length};
}"""


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(GROUPS_A), n), rng.integers(0, len(GROUPS_B), n)
    segment = (a + rng.integers(0, 2, n)) % 3
    return pd.DataFrame({"segment": segment, SENSITIVE_A: np.asarray(GROUPS_A, dtype=object)[a],
                         SENSITIVE_B: np.asarray(GROUPS_B, dtype=object)[b],
                         CLASS: np.asarray(CLASSES, dtype=object)[rng.integers(0, 2, n)],
                         "e1": rng.normal(size=n) + segment, "e2": rng.normal(size=n)})


def _audit_into_store(path: Path, home: Path) -> str:
    """What `python -m dashboard_lib audit FILE --clusters … --name …` does, into the server's store."""
    table, provenance = external.read_audit_file(path)
    prepared = external.prepare(table, clusters="segment", sensitive=[SENSITIVE_A, SENSITIVE_B], class_column=CLASS,
                                embedding_columns=["e1", "e2"], embedding=None, id_column=None, provenance=provenance)
    result = external.audit_table(prepared, resamples=50)
    return external.record_external(RunStore(home / "store"), prepared, result, RUN_NAME)


def _shown(page, names, where: str) -> None:
    """Each name appears as literal text on the page, and nothing on it is a link, image or formula from a name."""
    try:  # the page draws in steps: wait for the names rather than sleep
        page.wait_for_function("(names) => { const f = " + PAGE_TEXT + "; const t = f().text;"
                               " return names.every(n => t.includes(n)); }", arg=list(names), timeout=30_000)
    except Exception:  # noqa: BLE001 - the assertion below says which names are missing
        pass
    seen = page.evaluate(PAGE_TEXT)
    missing = [name for name in names if name not in seen["text"]]
    assert not missing, f"{where}: not shown as text: {missing}"
    assert seen["evil"] == 0, f"{where}: a name became a link, an image or a script"
    assert seen["katex"] == 0, f"{where}: a name became math or coloured text"


def test_hostile_names_are_shown_as_text_and_fetch_nothing(app_server, page, tmp_path):
    path = tmp_path / FILE_NAME
    _table().to_csv(path, index=False)
    run_id = _audit_into_store(path, app_server.home)
    outside = requests_leaving(page)

    # Audit: the attributes' tabs (column names), the first attribute's groups in the text and the bars' legend.
    page.goto(f"{app_server.url}/audit?run={run_id}")
    expect(page.get_by_text("Hand it over")).to_be_visible(timeout=60_000)
    _shown(page, [SENSITIVE_A, SENSITIVE_B, *GROUPS_A, RUN_NAME], "Audit")

    # Monitor: the run's dataset is named after the run.
    page.goto(f"{app_server.url}/monitor?run={run_id}")
    expect(page.get_by_role("heading", name="Monitor")).to_be_visible()
    _shown(page, [RUN_NAME], "Monitor")

    # Embeddings: groups and classes in the legends and the counts heatmap.
    page.goto(f"{app_server.url}/embeddings?run={run_id}")
    expect(page.get_by_text("By sensitive group")).to_be_visible(timeout=60_000)
    _shown(page, [RUN_NAME, *GROUPS_A, *CLASSES], "Embeddings")

    # Compare: the run in the picker, its groups on the counts heatmap.
    page.goto(f"{app_server.url}/compare")
    expect(page.get_by_text("Cluster × group counts").first).to_be_visible(timeout=60_000)
    _shown(page, [RUN_NAME, *GROUPS_A], "Compare")

    # Data: the same file uploaded; its name and its columns in the form.
    page.goto(f"{app_server.url}/data")
    page.get_by_role("tab", name="Upload your own").click()
    page.locator("input[type=file]").first.set_input_files(str(path))
    expect(page.get_by_text("300 rows × 6 columns")).to_be_visible()
    _shown(page, [FILE_NAME, SENSITIVE_A], "Data")

    assert outside == [], outside
