"""User strings are data: the escaping helper (Markdown for Streamlit, entities for Plotly), the CSV rule against
formula injection, the group palette, and full group names in every legend (page figures and the HTML report).

Streamlit's own rendering of the corpus (math, `:red[…]`, emoji, icons, bare links) is checked in a real browser by
tests/e2e/test_hostile_names.py; here, the properties that hold before any renderer."""
import csv
import html
import io
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard_lib import plots, report
from dashboard_lib.auditing import audit
from dashboard_lib.text import FORMULA_PREFIXES, WORD_JOINER, csv_cell, csv_safe, html_text, md, plain, to_csv

LONG = "A group name of sixty characters, all of it kept in the legend"[:60]
CORPUS = ["![t](http://evil.example/x.png)", "[x](http://evil.example/)", "<img src=http://evil.example/y.png>",
          "<script>alert(1)</script>", "**bold**", "$x^2$", ":red[red]", ":smile:", ":material/home:",
          '=HYPERLINK("http://evil.example")', "x" * 80, "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
          "www.evil.example", "me@evil.example", "a_b_", "# h", "1. x", "- y", "`c`", "~~s~~", "a\\b", "&amp;", "x|y",
          "> q", "%{x}", "line\nbreak", LONG]
@pytest.mark.parametrize("value", CORPUS)
def test_md_escapes_every_character_that_starts_markdown_and_round_trips(value):
    escaped = md(value)
    bare = re.sub(r"\\[!-/:-@\[-`{-~]", "", escaped).replace(WORD_JOINER, "")  # what is left outside the escapes
    assert not set(bare) & set("*`~[]<>$"), escaped  # emphasis, code, strike, links, images, HTML, math
    assert not re.search(r"(?<!\w)_|_(?!\w)|&#?\w+;|:[\w+\-/]|^[#+\-=>]|^\d+[.)]", bare), escaped
    # Read back (escapes resolved, joiners invisible), it is the same text on one line.
    assert plain(escaped) == value.replace("\n", " ")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40))
def test_md_round_trips_any_text(value):
    escaped = md(value)
    bare = re.sub(r"\\[!-/:-@\[-`{-~]", "", escaped).replace(WORD_JOINER, "")
    assert not set(bare) & set("*`~[]<>$")
    assert plain(escaped) == re.sub(r"\r\n|\r|\n", " ", value.replace(WORD_JOINER, "")) or WORD_JOINER in value


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=20)))
def test_csv_cell_never_starts_a_formula_unless_it_is_a_number(value):
    cell = csv_cell(value)
    if isinstance(value, str):
        assert not str(cell).startswith(FORMULA_PREFIXES) or re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell)
    else:
        assert cell == value


def test_md_leaves_ordinary_names_and_messages_readable():
    for text in ("Male", "sex_race", "table.csv: the file is empty", "a & b", "race × sex (12 groups)"):
        assert md(text) == text


def test_md_breaks_bare_links_emoji_and_icons_with_an_invisible_joiner():
    assert "http\\:" + WORD_JOINER + "//" in md("see http://evil.example/z")  # no "://": no bare link
    assert WORD_JOINER + "www" in md("www.evil.example") and WORD_JOINER + "@" in md("me@evil.example")
    assert md(":smile:") == "\\:" + WORD_JOINER + "smile:" and "\\:" + WORD_JOINER + "material" in md(":material/home:")
    assert md("    code").startswith(WORD_JOINER)  # four leading spaces would open a code block
    assert md(":red[x]") == "\\:" + WORD_JOINER + "red\\[x\\]"


def test_md_puts_no_joiner_in_a_colon_that_opens_nothing():
    """A name such as upload:adult stays the characters it is (a reader can copy it, a browser test can find it)."""
    for text in ("upload:adult", "ratio 1:2", "12:30"):
        assert WORD_JOINER not in md(text) and plain(md(text)) == text


@pytest.mark.parametrize("value", CORPUS)
def test_html_text_opens_no_tag_and_no_template(value):
    escaped = html_text(value)
    assert "<" not in escaped and ">" not in escaped and "%{" not in escaped
    assert html.unescape(escaped) == value.replace("\n", " ")  # Plotly decodes the entities: the reader sees the value


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_csv_cells_starting_a_formula_are_quoted(prefix):
    assert csv_cell(prefix + "cmd|' /C calc'!A0") == "'" + prefix + "cmd|' /C calc'!A0"


def test_csv_numbers_stay_numbers_and_headers_are_neutralised_too():
    frame = pd.DataFrame({"=SUM(A1)": ["=1+1", "+x", "-3", "-0.5", "@me", "\tq", "\rr", "plain", None],
                          "value": [-3, -0.5, 1, 2, 3, 4, 5, 6, 7], "flag": [True] * 9,
                          "label": ["-1+cmd", "-2", "1e5", "+7", "-", "a", "b", "c", "d"]})
    text = to_csv(frame)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["'=SUM(A1)", "value", "flag", "label"]
    assert [r[0] for r in rows[1:]] == ["'=1+1", "'+x", "-3", "-0.5", "'@me", "'\tq", "'\rr", "plain", ""]
    assert [r[1] for r in rows[1:3]] == ["-3.0", "-0.5"]  # a numeric column is written as numbers, unquoted
    assert text.splitlines()[2].startswith("'+x,-0.5,True,-2")
    assert [r[3] for r in rows[1:6]] == ["'-1+cmd", "-2", "1e5", "+7", "'-"]
    back = pd.read_csv(io.StringIO(text))
    assert back["value"].dtype.kind == "f" and back["value"].iloc[0] == -3
    assert list(csv_safe(frame)["value"]) == list(frame["value"])


def test_the_assignments_csv_neutralises_cells_and_keeps_cluster_ids_numeric():
    rng = np.random.default_rng(0)
    clusters = rng.integers(0, 3, 60)
    groups = np.array(["=HYPERLINK(\"http://evil.example\")", "@b", "-c"])[rng.integers(0, 3, 60)]
    result = audit(clusters, {"g": groups}, resamples=0, probe=False)
    text = report.assignments_csv({"assignment": clusters, "row_id": np.arange(60)}, result, {"=g": groups})
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["row_id", "cluster", "'=g"]
    assert {r[2] for r in rows[1:]} == {"'=HYPERLINK(\"http://evil.example\")", "'@b", "'-c"}
    assert [r[1] for r in rows[1:]] == [str(c) for c in clusters]


@pytest.mark.parametrize("n", [12, 40])
def test_the_group_palette_has_distinct_colours(n):
    colours = plots.group_palette(n)
    assert len(set(colours)) == n and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)
    rgb = np.array([[int(c[k:k + 2], 16) for k in (1, 3, 5)] for c in colours], dtype=float)
    distance = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1)) + np.eye(n) * 1e9
    assert distance.min() > 20  # not merely different codes: colours a reader tells apart side by side
    assert plots.group_palette(100)[:n] == colours and len(set(plots.group_palette(100))) == 100


def test_group_figures_use_the_one_palette_and_show_names_whole():
    names = [f"group {i}" for i in range(11)] + [LONG]
    table = np.arange(36).reshape(3, 12) + 1
    fig = plots.group_share_bars(table, ["0", "1", "2"], names, title="race × sex")
    assert [t.marker.color for t in fig.data] == plots.group_colours(names) and len(set(plots.group_colours(names))) == 12
    assert fig.data[-1].name == LONG and LONG in fig.data[-1].hovertemplate
    scatter = plots.embedding_scatter(np.zeros((12, 2)), np.arange(12), names, palette="group")
    assert [t.marker.color for t in scatter.data] == plots.group_colours(names) and scatter.data[-1].name == LONG


def test_the_group_legend_never_covers_the_title():
    names = [f"{LONG} {i}" for i in range(12)]
    fig = plots.group_share_bars(np.ones((4, 12)), list("abcd"), names, title="A title")
    legend = fig.layout.legend
    # Anchored at the figure's bottom edge, in a bottom margin at least as tall as its lines: nowhere near the title.
    assert legend.yref == "container" and legend.yanchor == "bottom" and legend.y == 0
    assert fig.layout.margin.b >= 60 + 22 * plots._legend_rows(names) and fig.layout.margin.t >= 40  # the title: top


def test_figures_show_hostile_names_as_text():
    names = CORPUS[:6]
    fig = plots.group_share_bars(np.ones((2, 6)), ["<b>c</b>", "1"], names, title="<a href='http://evil.example'>t</a>")
    shown = [t.name for t in fig.data] + list(fig.data[0].y) + [fig.layout.title.text] + [t.hovertemplate for t in fig.data]
    assert not any("<a" in s or "<img" in s or "<script" in s or "<b>c" in s for s in shown)
    assert [html.unescape(t.name) for t in fig.data] == names
    heat = plots.count_heatmap(np.ones((2, 2)), ["<b>r</b>", "r2"], ["<img src=x>", "g"])
    assert list(heat.data[0].x) == ["&lt;img src=x&gt;", "g"] and heat.data[0].y[0] == "&lt;b&gt;r&lt;/b&gt;"
    pareto = plots.pareto_scatter([0.1], [0.2], ["<b>run</b>"], x_key="acc", y_key="balance",
                                  hover=[["<a href=x>run</a>", "k = <i>1</i>"]], groups=["<i>m</i>"])
    assert pareto.data[0].customdata[0][0] == "&lt;a href=x&gt;run&lt;/a&gt;<br>k = &lt;i&gt;1&lt;/i&gt;"
    assert pareto.data[0].name == "&lt;i&gt;m&lt;/i&gt;" and pareto.data[0].text[0] == "&lt;b&gt;run&lt;/b&gt;"


def _report(group_names):
    rng = np.random.default_rng(1)
    groups = np.asarray(group_names, dtype=object)[rng.integers(0, len(group_names), 400)]
    clusters = rng.integers(0, 3, 400)
    return audit(clusters, {"<b>attr</b>": groups}, resamples=0, probe=False)


def test_the_report_escapes_every_hostile_name_and_keeps_long_names_whole():
    names = CORPUS[:10] + [LONG]
    result = _report(names)
    page = report.build_report(result, title="<script>alert(1)</script>",
                               provenance={"file": "![t](http://evil.example/x.png).csv"})
    for tag in ("<img", "<script", "<a ", "<b>attr"):
        assert tag not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and html.escape("<img src=http://evil.example/y.png>") in page
    svg = report.stacked_bars_svg(result.attribute("<b>attr</b>"), result.clusters)
    legend_text = "".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg))
    assert html.escape(LONG) in svg and all(html.escape(w) in legend_text for w in LONG.split(" "))
    # Every group its own colour, from the one palette.
    fills = re.findall(r'<rect x="\d+" y="-?\d+" width="12" height="12" fill="(#[0-9a-f]{6})"', svg)
    shown = result.attribute("<b>attr</b>").group_names  # the audit's order; the colours are by name, whatever it is
    assert sorted(shown) == sorted(names) and fills == plots.group_colours(shown) and len(set(fills)) == len(names)
