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

# CommonMark lets any ASCII punctuation be backslash-escaped; only those that can start a construct are, so that a
# message quoting a name stays readable in logs and tests: emphasis and code (* _ ` ~), links and images ([ ]),
# raw HTML and autolinks (< >), math ($), entities (&name;), a colon that a word, a sign or a slash follows
# (Streamlit's `:red[…]`, `:smile:`, `:material/…:`, and the `://` of a bare link), and at the start of the text a
# heading, list, quote or setext line (# + - = > 1.).
_MD_SPECIAL = re.compile(r"[\\`*~\[\]<>$]|(?<!\w)_|_(?!\w)|&(?=#?\w+;)|:(?=[\w+\-/])")
_MD_BLOCK_START = re.compile(r"^([#+\-=>]|\d+(?=[.)]))")
# Plugins that read the parsed text, after escapes are resolved (emoji shortcodes, `:material/name:` icons, GFM's
# bare www. and e-mail links): an invisible WORD JOINER (U+2060: neither space nor punctuation) after such a colon,
# before `www.` and `@`, and before leading spaces (four would open a code block) keeps them from matching while the
# reader sees the same characters.
WORD_JOINER = "\u2060"
_JOIN_BEFORE = re.compile(r"(?i)(?=\bwww\.)|(?=@)|^(?=\s)")
_NEWLINES = re.compile(r"\r\n|\r|\n")


# A colon that can open a shortcode or an icon (a word then a colon: `:smile:`, `:material/home:`), a coloured span
# (a word then a bracket: `:red[…]`) or a bare link (`://`): only there does the joiner go, so "upload:adult" stays
# plain text a reader can copy.
_SHORTCODE_OR_LINK = re.compile(r"[\w+\-/]*[:\[]|//")


def _escape(match: re.Match) -> str:
    if match.group(0) != ":":
        return "\\" + match.group(0)
    joins = _SHORTCODE_OR_LINK.match(match.string, match.end())
    return "\\:" + (WORD_JOINER if joins else "")


def md(value) -> str:
    """`value` as Markdown that Streamlit shows as the same literal text: every character that could start Markdown
    escaped, links and icons broken by an invisible word joiner, line breaks as spaces (a cell or a label is one line)."""
    text = _JOIN_BEFORE.sub(WORD_JOINER, _NEWLINES.sub(" ", str(value)))
    text = _MD_SPECIAL.sub(_escape, text)
    start = _MD_BLOCK_START.match(text)
    if start:  # "1." or "1)" opens a list by its punctuation; the others by their first character
        text = "\\" + text if not start.group(1)[0].isdigit() else text[:start.end()] + "\\" + text[start.end():]
    return text


def plain(markdown: str) -> str:
    """The text a reader sees of md(...)'s output (backslash escapes resolved, joiners removed): for tests that read
    a message as Streamlit's AppTest holds it, in Markdown."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace(WORD_JOINER, "")


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
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value):
    """One cell made safe for a spreadsheet: numbers (and text that is exactly a number, such as -3 or -0.5) unchanged,
    text beginning with a formula character prefixed with a single quote."""
    if value is None or isinstance(value, (bool, numbers.Number)):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
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
