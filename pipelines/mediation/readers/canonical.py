"""The project's own canonical CDR format, as CSV (header required) and as Parquet.

CSV rules (docs/mediation.md): UTF-8, comma separated, no quoting (no field may contain a comma),
the header is exactly ``schemas.contracts.CANONICAL_COLUMNS``, empty field = null, ``start_time`` is
ISO 8601 UTC (``2026-10-03T08:15:00Z``; fractional seconds and ``+00:00`` accepted). Per line:
not UTF-8 -> ``BAD_ENCODING``; blank or a wrong field count -> ``MALFORMED_LINE``; a field that does
not parse as its type -> ``INVALID_FIELD``. The file is read as whole lines with Polars and split
vectorised, so there is no per-record Python.

Parquet rules: the canonical columns with compatible types (strings or the contract's types);
a missing column makes the file unreadable (``BAD_SCHEMA``); values that do not cast -> ``INVALID_FIELD``
(``record_offset`` is the 1-based row number).
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl

from pipelines.mediation.readers import ParsedFile, UnreadableFile, escaped_text, register
from schemas.contracts import CANONICAL_COLUMNS, RAW_USAGE_SCHEMA, REJECT_SCHEMA

HEADER = ",".join(CANONICAL_COLUMNS)
_TYPED = {c: RAW_USAGE_SCHEMA[c] for c in CANONICAL_COLUMNS}
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
    for col, dtype in _TYPED.items():
        if col == "start_time":
            casts[col] = _instant(col)
        elif dtype == pl.String:
            casts[col] = pl.col(col)
        else:
            casts[col] = pl.col(col).str.strip_chars().cast(dtype, strict=False)
    typed = frame.with_columns(expr.alias(f"_t_{col}") for col, expr in casts.items())
    bad = pl.lit(None, dtype=pl.String)
    for col in reversed(CANONICAL_COLUMNS):
        bad = pl.when(pl.col(f"_t_{col}").is_null() & pl.col(col).is_not_null()).then(pl.lit(col)).otherwise(bad)
    return typed.with_columns(bad.alias("_bad_field")).with_columns(
        pl.col(f"_t_{col}").alias(col) for col in casts
    ).drop(f"_t_{col}" for col in casts)


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


_FAST_SCHEMA = {c: (pl.String if c == "start_time" else t) for c, t in _TYPED.items()}


def _fast_read(data: bytes, n_lines: int) -> pl.DataFrame | None:
    """Typed read of a file whose every line is well formed (the common case), else ``None``.

    Every line has exactly 18 commas iff the file's comma count is 18 x lines and no line has more
    (Polars refuses over-long rows). Encoding errors and unparseable numbers also make Polars refuse,
    and the file then takes the line-by-line path that names each bad line.
    """
    if data.count(b",") != (len(CANONICAL_COLUMNS) - 1) * n_lines:
        return None
    try:
        frame = pl.read_csv(io.BytesIO(data), schema=_FAST_SCHEMA, quote_char=None, raise_if_empty=False)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        return None
    return frame if frame.height == n_lines - 1 else None


def _parse_start(frame: pl.DataFrame) -> pl.DataFrame:
    """``start_time`` text -> UTC instant: one fast format for all rows, the other ISO forms for the rest."""
    fast = frame.with_columns(
        pl.col("start_time").str.strptime(UTC_US, "%Y-%m-%dT%H:%M:%SZ", strict=False).alias("_start"))
    retry = fast["_start"].is_null() & fast["start_time"].is_not_null()
    if retry.any():
        fast = fast.with_columns(pl.when(pl.col("_start").is_null()).then(_instant("start_time"))
                                 .otherwise(pl.col("_start")).alias("_start"))
    return fast.with_columns(
        pl.when(pl.col("_start").is_null() & pl.col("start_time").is_not_null()).then(pl.lit("start_time"))
        .otherwise(None).alias("_bad_field"),
        pl.col("_start").alias("start_time"),
    ).drop("_start")


@register("canonical_csv")
def read_canonical_csv(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Canonical CSV bytes (already un-gzipped) -> records + per-line rejects."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace").strip()
    if first != HEADER:
        raise UnreadableFile("BAD_HEADER", f"{file_key}: canonical CSV header must be {HEADER!r}, got {first[:200]!r}")
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    fast = _fast_read(data, n_lines)
    if fast is not None:
        typed = _parse_start(fast.with_row_index("line_no", offset=2))
        bad = typed.filter(pl.col("_bad_field").is_not_null()).select(
            "line_no", pl.lit("INVALID_FIELD").alias("reason_code"),
            pl.format("line {}: field {} does not parse", "line_no", "_bad_field").alias("message"))
    else:
        typed, bad = _line_by_line(data)
    records = typed.filter(pl.col("_bad_field").is_null()).select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), *CANONICAL_COLUMNS)
    return ParsedFile(records=_conform(records), rejects=_rejects(source, file_key, data, bad.sort("line_no")))


def _line_by_line(data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
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
        .when(n_sep != len(CANONICAL_COLUMNS) - 1).then(pl.lit("MALFORMED_LINE"))
        .otherwise(None).alias("reason_code"),
    )
    bad_lines = checked.filter(pl.col("reason_code").is_not_null()).with_columns(
        pl.when(pl.col("reason_code") == "BAD_ENCODING").then(pl.format("line {} is not valid UTF-8", "line_no"))
        .when(blank).then(pl.format("line {} is blank", "line_no"))
        .otherwise(pl.format("line {}: {} fields, a canonical CSV line has {}", "line_no", n_sep + 1,
                             pl.lit(len(CANONICAL_COLUMNS))))
        .alias("message"))
    good = checked.filter(pl.col("reason_code").is_null())
    fields = good.select(
        "line_no", pl.col("line").str.split_exact(",", len(CANONICAL_COLUMNS) - 1)
        .struct.rename_fields(list(CANONICAL_COLUMNS)).alias("f")
    ).unnest("f").with_columns(_empty_to_null(CANONICAL_COLUMNS))
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
    text = frame.select(pl.col(c).cast(pl.String) if c != "start_time" or frame.schema[c] == pl.String
                        else pl.col(c) for c in CANONICAL_COLUMNS).with_row_index("line_no", offset=1)
    if frame.schema["start_time"] != pl.String:
        start = pl.col("start_time").cast(pl.Datetime("us", "UTC"), strict=False) if isinstance(
            frame.schema["start_time"], pl.Datetime) and frame.schema["start_time"].time_zone else (
            pl.col("start_time").cast(pl.Datetime("us"), strict=False).dt.replace_time_zone("UTC"))
        text = text.with_columns(start.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("start_time"))
    typed = typed_columns(text.with_columns(_empty_to_null(CANONICAL_COLUMNS)))
    bad = typed.filter(pl.col("_bad_field").is_not_null())
    rejects = bad.select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), pl.lit("INVALID_FIELD").alias("reason_code"),
        pl.format("row {}: field {} does not parse", "line_no", "_bad_field").alias("message"),
        pl.lit("").alias("raw"),
    )
    if bad.height:
        raw = text.join(bad.select("line_no"), on="line_no").select(
            pl.struct(CANONICAL_COLUMNS).struct.json_encode().alias("raw"))["raw"]
        rejects = rejects.with_columns(raw)
    records = typed.filter(pl.col("_bad_field").is_null()).select(
        pl.lit(source).alias("source"), pl.lit(file_key).alias("source_file"),
        pl.col("line_no").cast(pl.Int64).alias("record_offset"), *CANONICAL_COLUMNS)
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
