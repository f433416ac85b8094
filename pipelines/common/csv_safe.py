"""Spreadsheet-safe CSV for files people open (statements, disputes, collection lists): one implementation.

Partner-, bank- and customer-supplied text can start with ``=``, ``+``, ``-``, ``@``, TAB or CR, which a
spreadsheet runs as a formula (CSV injection). Such text cells are prefixed with ``'`` (OWASP advice).
Columns typed as numbers are written as plain numbers: a negative amount like ``-12.50`` stays a number.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import polars as pl

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
NUMERIC = (pl.Decimal, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
           pl.Float32, pl.Float64)


def neutralise(text: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula (OWASP CSV injection advice)."""
    return "'" + text if text.startswith(DANGEROUS_FIRST) else text


def _cell(value: object, numeric: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, date):            # dates and datetimes: ISO 8601, never a formula
        return value.isoformat()
    text = str(value)
    return text if numeric else neutralise(text)


def safe_csv(frame: pl.DataFrame) -> bytes:
    """CSV bytes where every text cell starting with = + - @ TAB or CR is prefixed with ``'``.

    Columns typed as numbers (amounts, counts, scores) are written as plain numbers. Lists are joined
    with ``; ``. Lines end in CRLF (RFC 4180); a CR inside a cell is quoted.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in frame.columns])
    numeric = [isinstance(t, NUMERIC) for t in frame.dtypes]
    lists = [isinstance(t, pl.List) for t in frame.dtypes]
    for row in frame.iter_rows():
        writer.writerow([
            neutralise("; ".join(map(str, v))) if lists[i] and v is not None else _cell(v, numeric[i])
            for i, v in enumerate(row)
        ])
    return buf.getvalue().encode()
