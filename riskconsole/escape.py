"""Untrusted text (names, descriptions, segment values, raw rows) made safe for each medium it lands in.

Strategy names, descriptions and data values are written by users or come from data files. Each
output medium has its own dangers: Markdown renders headings, links and remote images (and raw
HTML in many viewers); HTML runs scripts; a spreadsheet runs a cell starting with `=`; a terminal
obeys ANSI escapes. One function per medium, used wherever text leaves the core.
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~>-])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def one_line(text: object) -> str:
    """Text on one line with no control characters (newlines become spaces, ANSI escapes are removed)."""
    value = _ANSI.sub("", str(text))
    value = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _CONTROL.sub("", value)


def printable(text: object) -> str:
    """Text for a one-line message: newlines, escapes and other unprintable characters shown as `\\n`, `\\x1b`."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(text))


def terminal(text: object) -> str:
    """Safe to print: one line, no escape sequences."""
    return one_line(text)


def markdown(text: object) -> str:
    """Inline Markdown text: one line, every character Markdown or HTML would interpret escaped."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text)).replace("&", "&amp;")


def html_text(text: object) -> str:
    """HTML element text or attribute value."""
    return html.escape(str(text), quote=True)


def csv_cell(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (text starting with = + - @ gets a leading ')."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
