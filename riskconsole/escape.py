"""Untrusted text (names, descriptions, segment values, raw rows) made safe for each medium it lands in.

Strategy names, descriptions and data values are written by users or come from data files. Each
output medium has its own dangers: Markdown renders headings, links and remote images (and raw
HTML in many viewers); HTML runs scripts; a spreadsheet runs a cell starting with `=`; a terminal
obeys ANSI escapes. One function per medium, used wherever text leaves the core.
"""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
# Not allowed in XML 1.0 (SVG): vl-convert aborts the whole process on them (a Rust panic, not an exception)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~])")
_MD_BLOCK_START = re.compile(r"^(\s*)([-+=]|\d+[.)](?=\s|$))")  # list items, setext lines, ordered lists
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
FORMULA_LEADING = " \t\r\n"  # skipped before the first character a spreadsheet reads


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


def markdown(text: object, line_start: bool = True) -> str:
    """Inline Markdown text: one line, every character Markdown or HTML would interpret escaped.

    `&`, `<` and `>` become entities (a viewer that ignores a backslash before `<` still shows text,
    not a tag); brackets, parentheses, emphasis, code, `#`, `!` and `|` are backslash-escaped everywhere, and a
    leading `-`, `+`, `=` or `1.` too (unless `line_start` is False: the text is never at the start of a
    block, as in a table cell): no heading, list, link, image, HTML or table cell can start.
    """
    value = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = _MD_SPECIAL.sub(r"\\\1", value)
    if not line_start:  # e.g. a table cell: inline only, a leading - or 1. starts nothing there
        return value
    return _MD_BLOCK_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], value)


def xml_safe(value: object) -> object:
    """Strings anywhere in `value` (a chart spec: dicts, lists) without ANSI escapes or characters XML forbids."""
    if isinstance(value, str):
        return _NOT_XML.sub("", _ANSI.sub("", value))
    if isinstance(value, dict):
        return {xml_safe(k): xml_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [xml_safe(v) for v in value]
    return value


def html_text(text: object) -> str:
    """HTML element text or attribute value (control characters and ANSI escapes removed)."""
    return html.escape(_CONTROL.sub("", _ANSI.sub("", str(text))), quote=True)


def csv_cell(value: object) -> object:
    """A cell a spreadsheet will not run as a formula: text starting with = + - @ (also after leading
    spaces or controls, also full-width) gets a leading '. Numbers stay numbers."""
    if isinstance(value, str) and value.lstrip(FORMULA_LEADING).startswith(FORMULA_START):
        return "'" + value
    return value
