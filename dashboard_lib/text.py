"""User strings as data: the one place that makes a string from a user's file (file, column, group, class and run
names, and messages that quote them) safe to show in Streamlit Markdown, in Plotly text and in a CSV a spreadsheet
opens. Knows nothing of Streamlit or Plotly.

Streamlit renders Markdown (CommonMark + GFM, KaTeX math between `$`, `:colour[…]`, emoji shortcodes, `:material/…:`
icons, bare-URL links) in st.markdown, caption, info/warning/error/success, widget labels and help, tab labels,
metric labels and st.table cells; not in selectbox options or st.dataframe cells. Plotly reads a subset of HTML
(<a href>, <b>, <br>, <span style>) and `%{…}` placeholders (in templates) in titles, legends, ticks and hovers.
"""
from __future__ import annotations

import html
import numbers
import re

import pandas as pd

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping them all leaves nothing for the
# parser (emphasis, links, images, code, headings, lists, tables, math `$`, `:red[…]`, `:smile:`) to act on.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&\"'=^%@,;?/])")
# Plugins that read the parsed text, after escapes are resolved: GFM's bare-URL and e-mail links and Streamlit's
# `:material/name:` icons. An invisible WORD JOINER (U+2060: neither space nor punctuation, so it ends no word)
# before the text they look for keeps them from matching while the reader sees the same characters.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?=https?:|www\.|ftp:|mailto:|xmpp:)|(?=@)|(?<=:)(?=material/)")
_NEWLINES = re.compile(r"\r\n|\r|\n")


def md(value) -> str:
    """`value` as Markdown that Streamlit shows as the same literal text: every Markdown-special character escaped,
    links and icons broken by an invisible word joiner, line breaks kept as spaces (a table cell or a label is one line)."""
    text = _NEWLINES.sub(" ", str(value))
    return _MD_SPECIAL.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, text))


def plain(rendered: str) -> str:
    """What a reader sees of md(...)'s output once rendered, the joiners removed (for tests and comparisons)."""
    return rendered.replace(WORD_JOINER, "")


def html_text(value) -> str:
    """`value` as text for Plotly titles, legends, ticks, hovers and templates: HTML entities for <, > and & and
    % (Plotly decodes entities, so the reader sees the original characters, and `%{…}` is never a placeholder)."""
    # Plotly knows only a few named entities (&lt; &gt; &amp; …, not &quot;): quotes stay as they are, harmless once
    # no tag can open.
    return html.escape(str(value), quote=False).replace("%", "&#37;").replace("\n", " ")


# --- CSV exports
# OWASP's rule for CSV injection: a cell a spreadsheet would read as a formula (or a DDE command) starts with one of
# these; a single quote before it makes the spreadsheet show the text as typed.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def csv_cell(value):
    """One cell made safe for a spreadsheet: numbers (and text that is exactly a number, such as -3 or -0.5) unchanged,
    text beginning with a formula character prefixed with a single quote."""
    if value is None or isinstance(value, (bool, numbers.Number)):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.match(text):
        return "'" + text
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose header and text cells are neutralised (csv_cell); numeric columns untouched."""
    out = frame.copy()
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            out.isetitem(i, column.map(csv_cell, na_action="ignore"))
    if out.index.name is not None or not isinstance(out.index, pd.RangeIndex):
        out.index = out.index.map(csv_cell)
    return out


def to_csv(frame: pd.DataFrame, **kwargs) -> str:
    """The text of a CSV for the user (every CSV the app or the CLI writes goes through here): csv_safe, then pandas,
    with RFC 4180's CRLF line ends (the csv writer then quotes a cell holding a lone carriage return, which would
    otherwise end the row early in a spreadsheet)."""
    return csv_safe(frame).to_csv(**{"index": False, "lineterminator": "\r\n", **kwargs})
