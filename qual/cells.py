"""Spreadsheet-safe cells: no text a qual file holds is run as a formula when the file is
opened in Excel, LibreOffice or Google Sheets (OWASP, "CSV Injection"). Used by every writer of
a CSV or workbook (exports, summaries, the redaction key, decisions, topics)."""

from __future__ import annotations

import pandas as pd

#: A text cell starting with one of these is read as a formula by Excel, LibreOffice or Google
#: Sheets (OWASP, "CSV Injection"): "=HYPERLINK(...)", "+cmd|...", "-2+3+cmd|...", "@SUM(...)".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(value):
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``= + - @``, a tab
    or a carriage return gets a leading apostrophe (OWASP's advice), and so does text that
    already starts with an apostrophe, so that :func:`restore` gives back every value exactly.
    Numbers, booleans and empty cells are left as they are."""
    if isinstance(value, str) and value[:1] in (*FORMULA_START, "'"):
        return "'" + value
    return value


def restore(value):
    """The value :func:`inert` was given: one leading apostrophe removed."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def inert_table(frame: pd.DataFrame, *, index: bool = False) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names (and row labels with ``index``)
    are :func:`inert`; numeric columns keep their type."""
    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(inert, na_action="ignore")
    out.columns = [inert(c) for c in out.columns]
    if index:
        out.index = out.index.map(inert)
        out.index.name = inert(out.index.name)
    return out
