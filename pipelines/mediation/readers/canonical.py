"""The project's own canonical CDR format, as CSV (header required) and as Parquet.

CSV rules (docs/mediation.md): UTF-8, comma separated, no quoting (no field may contain a comma),
the header is ``schemas.contracts.CANONICAL_COLUMNS`` (plus known extras, below), empty field = null, ``start_time`` is
ISO 8601 UTC (``2026-10-03T08:15:00Z``; fractional seconds and ``+00:00`` accepted). Per line:
not UTF-8 -> ``BAD_ENCODING``; blank or a wrong field count -> ``MALFORMED_LINE``; a field that does
not parse as its type -> ``INVALID_FIELD``. The file is read as whole lines with Polars and split
vectorised, so there is no per-record Python.

Known extra trailing columns (:data:`EXTRA_COLUMNS`): after the canonical columns the header may name
``charged_amount`` (EUR the prepaid charging sidecar debited, decimal text with at most 9 decimals,
e.g. ``0.030000000``; empty = null). It is carried into usage as ``Decimal(38, 9)``; a value that is
not such a decimal -> ``INVALID_FIELD``. Any other extra column -> ``BAD_HEADER`` (the file is
quarantined rather than silently dropping data).

Parquet rules: the canonical columns with compatible types (strings or the contract's types);
a missing column makes the file unreadable (``BAD_SCHEMA``); values that do not cast -> ``INVALID_FIELD``
(``record_offset`` is the 1-based row number).
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl

from pipelines.mediation.readers import ParsedFile, UnreadableFile, escaped_text, register
from schemas.contracts import AMOUNT, CANONICAL_COLUMNS, RAW_USAGE_SCHEMA, REJECT_SCHEMA

HEADER = ",".join(CANONICAL_COLUMNS)
EXTRA_COLUMNS: dict[str, pl.DataType] = {"charged_amount": AMOUNT}
"""Trailing columns a canonical file may add after ``CANONICAL_COLUMNS`` (in any order, each once)."""
_DECIMAL_RE = r"^-?\d+(\.\d{1,9})?$"
_TYPED = {c: RAW_USAGE_SCHEMA[c] for c in (*CANONICAL_COLUMNS, *EXTRA_COLUMNS)}
_NEWLINE = 10
UTC_US = pl.Datetime("us", "UTC")


def _instant(col: str) -> pl.Expr:
    """ISO 8601 UTC text -> UTC microseconds (``Z`` or an explicit offset)."""
    text = pl.col(col)
    return pl.coalesce(
        text.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC", strict=False),
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC", strict=False),
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False).dt.convert_time_zone("UTC"),
    )


def typed_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Text canonical columns -> contract types, plus ``_bad_field`` naming the first field that did not parse."""
    casts = {}
    columns = [c for c in _TYPED if c in frame.columns]
    for col in columns:
        dtype = _TYPED[col]
        if col == "start_time":
            casts[col] = _instant(col)
        elif col in EXTRA_COLUMNS:
            casts[col] = _amount(col)
        elif dtype == pl.String:
            casts[col] = pl.col(col)
        else:
            casts[col] = pl.col(col).str.strip_chars().cast(dtype, strict=False)
    typed = frame.with_columns(expr.alias(f"_t_{col}") for col, expr in casts.items())
    bad = pl.lit(None, dtype=pl.String)
    for col in reversed(columns):
        bad = pl.when(pl.col(f"_t_{col}").is_null() & pl.col(col).is_not_null()).then(pl.lit(col)).otherwise(bad)
    return typed.with_columns(bad.alias("_bad_field")).with_columns(
        pl.col(f"_t_{col}").alias(col) for col in casts
    ).drop(f"_t_{col}" for col in casts)


def _amount(col: str) -> pl.Expr:
    """Decimal text with at most 9 decimals -> Decimal(38, 9); anything else null (then INVALID_FIELD)."""
    text = pl.col(col).cast(pl.String).str.strip_chars()
    return pl.when(text.str.contains(_DECIMAL_RE)).then(text.cast(AMOUNT, strict=False)).otherwise(None)


def header_columns(file_key: str, first: str) -> tuple[str, ...]:
    """The file's columns: the canonical ones, then known extras; anything else is ``BAD_HEADER``."""
    names = tuple(first.split(","))
    extras = names[len(CANONICAL_COLUMNS):]
    if (names[:len(CANONICAL_COLUMNS)] != CANONICAL_COLUMNS or len(set(extras)) != len(extras)
            or any(c not in EXTRA_COLUMNS for c in extras)):
        raise UnreadableFile("BAD_HEADER", f"{file_key}: canonical CSV header must be {HEADER!r} optionally followed "
                             f"by {sorted(EXTRA_COLUMNS)}, got {first[:200]!r}")
    return names


def _empty_to_null(cols: tuple[str, ...]) -> list[pl.Expr]:
    return [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in cols]


def line_starts(data: bytes) -> np.ndarray:
    """Byte offset where each line starts (index i = line i + 1)."""
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE)
    return np.concatenate(([0], nl + 1))


def raw_lines(data: bytes, line_numbers: list[int]) -> list[str]:
    """The raw text of some 1-based lines (bytes that are not UTF-8 kept as ``\\xNN``)."""
    if not line_numbers:
        return []
    starts = line_starts(data)
    out = []
    for no in line_numbers:
        begin = int(starts[no - 1])
        end = int(starts[no]) - 1 if no < len(starts) else len(data)
        out.append(escaped_text(data[begin:end].rstrip(b"\r")))
    return out


def _rejects(source: str, file_key: str, data: bytes, bad: pl.DataFrame) -> pl.DataFrame:
    """Reject rows for ``bad`` (line_no, reason_code, message), with the raw line bytes."""
    return bad.select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), "reason_code", "message",
        pl.Series("raw", raw_lines(data, bad["line_no"].to_list()), dtype=pl.String),
    ).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _fast_schema(columns: tuple[str, ...]) -> dict[str, pl.DataType]:
    return {c: (pl.String if c == "start_time" or c in EXTRA_COLUMNS else _TYPED[c]) for c in columns}


def _fast_read(data: bytes, n_lines: int, columns: tuple[str, ...] = CANONICAL_COLUMNS) -> pl.DataFrame | None:
    """Typed read of a file whose every line is well formed (the common case), else ``None``.

    Every line has exactly 18 commas iff the file's comma count is 18 x lines and no line has more
    (Polars refuses over-long rows). Encoding errors and unparseable numbers also make Polars refuse,
    and the file then takes the line-by-line path that names each bad line.
    """
    if data.count(b",") != (len(columns) - 1) * n_lines:
        return None
    try:
        frame = pl.read_csv(io.BytesIO(data), schema=_fast_schema(columns), quote_char=None, raise_if_empty=False)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        return None
    return frame if frame.height == n_lines - 1 else None


def _parse_start(frame: pl.DataFrame) -> pl.DataFrame:
    """``start_time`` text -> UTC instant: one fast format for all rows, the other ISO forms for the rest;
    extra columns (still text) to their types."""
    extras = [c for c in EXTRA_COLUMNS if c in frame.columns]
    # cache=False: nearly every timestamp is distinct, so Polars' parse cache only costs (half the time)
    fast = frame.with_columns(*(_amount(c).alias(f"_x_{c}") for c in extras),
        pl.col("start_time").str.strptime(UTC_US, "%Y-%m-%dT%H:%M:%SZ", strict=False, cache=False).alias("_start"))
    retry = fast["_start"].is_null() & fast["start_time"].is_not_null()
    if retry.any():
        fast = fast.with_columns(pl.when(pl.col("_start").is_null()).then(_instant("start_time"))
                                 .otherwise(pl.col("_start")).alias("_start"))
    bad = pl.lit(None, dtype=pl.String)
    for c in reversed(extras):
        bad = pl.when(pl.col(f"_x_{c}").is_null() & pl.col(c).is_not_null()).then(pl.lit(c)).otherwise(bad)
    return fast.with_columns(
        pl.when(pl.col("_start").is_null() & pl.col("start_time").is_not_null()).then(pl.lit("start_time"))
        .otherwise(bad).alias("_bad_field"),
        pl.col("_start").alias("start_time"),
        *(pl.col(f"_x_{c}").alias(c) for c in extras),
    ).drop("_start", *(f"_x_{c}" for c in extras))


@register("canonical_csv")
def read_canonical_csv(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Canonical CSV bytes (already un-gzipped) -> records + per-line rejects."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace").strip()
    columns = header_columns(file_key, first)
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    fast = _fast_read(data, n_lines, columns)
    if fast is not None:
        typed = _parse_start(fast.with_row_index("line_no", offset=2))
        bad = typed.filter(pl.col("_bad_field").is_not_null()).select(
            "line_no", pl.lit("INVALID_FIELD").alias("reason_code"),
            pl.format("line {}: field {} does not parse", "line_no", "_bad_field").alias("message"))
    else:
        typed, bad = _line_by_line(data, columns)
    records = typed.filter(pl.col("_bad_field").is_null()).select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), *columns)
    return ParsedFile(records=_conform(records), rejects=_rejects(source, file_key, data, bad.sort("line_no")))


def _line_by_line(data: bytes, columns: tuple[str, ...] = CANONICAL_COLUMNS) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Slow but exact path: split each line, name each malformed line and unparseable field."""
    lines = pl.read_csv(io.BytesIO(data), has_header=False, separator="\x1f", quote_char=None,
                        new_columns=["line"], schema={"line": pl.String}, encoding="utf8-lossy",
                        raise_if_empty=False)
    body = lines.slice(1).with_row_index("line_no", offset=2)
    n_sep = pl.col("line").str.count_matches(",", literal=True)
    blank = pl.col("line").is_null() | (pl.col("line").str.strip_chars() == "")
    checked = body.with_columns(
        pl.when(blank).then(pl.lit("MALFORMED_LINE"))
        .when(pl.col("line").str.contains("\ufffd", literal=True)).then(pl.lit("BAD_ENCODING"))
        .when(n_sep != len(columns) - 1).then(pl.lit("MALFORMED_LINE"))
        .otherwise(None).alias("reason_code"),
    )
    bad_lines = checked.filter(pl.col("reason_code").is_not_null()).with_columns(
        pl.when(pl.col("reason_code") == "BAD_ENCODING").then(pl.format("line {} is not valid UTF-8", "line_no"))
        .when(blank).then(pl.format("line {} is blank", "line_no"))
        .otherwise(pl.format("line {}: {} fields, a canonical CSV line has {}", "line_no", n_sep + 1,
                             pl.lit(len(columns))))
        .alias("message"))
    good = checked.filter(pl.col("reason_code").is_null())
    fields = good.select(
        "line_no", pl.col("line").str.split_exact(",", len(columns) - 1)
        .struct.rename_fields(list(columns)).alias("f")
    ).unnest("f").with_columns(_empty_to_null(columns))
    typed = typed_columns(fields)
    bad_fields = typed.filter(pl.col("_bad_field").is_not_null()).select(
        "line_no", pl.lit("INVALID_FIELD").alias("reason_code"),
        pl.format("line {}: field {} does not parse", "line_no", "_bad_field").alias("message"))
    bad = pl.concat([bad_lines.select("line_no", "reason_code", "message"), bad_fields])
    return typed, bad


def _conform(records: pl.DataFrame) -> pl.DataFrame:
    return records.select((pl.col(c) if c in records.columns else pl.lit(None)).cast(t).alias(c)
                          for c, t in RAW_USAGE_SCHEMA.items())


@register("canonical_parquet")
def read_canonical_parquet(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Canonical Parquet -> records; rows whose values do not cast to the contract types are rejected."""
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises several error types for a broken Parquet file
        raise UnreadableFile("CORRUPT_PARQUET", f"{file_key}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in CANONICAL_COLUMNS if c not in frame.columns]
    if missing:
        raise UnreadableFile("BAD_SCHEMA", f"{file_key}: canonical Parquet lacks columns {missing}")
    columns = (*CANONICAL_COLUMNS, *(c for c in EXTRA_COLUMNS if c in frame.columns))
    text = frame.select(pl.col(c).cast(pl.String) if c != "start_time" or frame.schema[c] == pl.String
                        else pl.col(c) for c in columns).with_row_index("line_no", offset=1)
    if frame.schema["start_time"] != pl.String:
        start = pl.col("start_time").cast(pl.Datetime("us", "UTC"), strict=False) if isinstance(
            frame.schema["start_time"], pl.Datetime) and frame.schema["start_time"].time_zone else (
            pl.col("start_time").cast(pl.Datetime("us"), strict=False).dt.replace_time_zone("UTC"))
        text = text.with_columns(start.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("start_time"))
    typed = typed_columns(text.with_columns(_empty_to_null(columns)))
    bad = typed.filter(pl.col("_bad_field").is_not_null())
    rejects = bad.select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), pl.lit("INVALID_FIELD").alias("reason_code"),
        pl.format("row {}: field {} does not parse", "line_no", "_bad_field").alias("message"),
        pl.lit("").alias("raw"),
    )
    if bad.height:
        raw = text.join(bad.select("line_no"), on="line_no").select(
            pl.struct(columns).struct.json_encode().alias("raw"))["raw"]
        rejects = rejects.with_columns(raw)
    records = typed.filter(pl.col("_bad_field").is_null()).select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), *columns)
    return ParsedFile(records=_conform(records), rejects=rejects.cast(REJECT_SCHEMA))  # type: ignore[arg-type]


def write_canonical_csv(records: pl.DataFrame) -> bytes:
    """Records (contract types) -> canonical CSV bytes; the encoder tests and the sidecar use."""
    text = records.select(
        pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%SZ") if c == "start_time" else pl.col(c).cast(pl.String)
        for c in CANONICAL_COLUMNS
    ).fill_null("")
    buf = io.BytesIO()
    text.write_csv(buf, quote_style="never")
    return buf.getvalue()
