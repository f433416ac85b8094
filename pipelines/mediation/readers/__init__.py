"""CDR format readers: raw file bytes in, normalised records and per-record rejects out.

Contract every reader follows (see docs/mediation.md):

``read(source, file_key, data) -> ParsedFile`` where ``data`` is the *decompressed* content.

* ``ParsedFile.records`` has the raw-usage columns of ``schemas.contracts.RAW_USAGE_SCHEMA``
  (a subset of the usage schema, before record ids, dedup keys and guiding), plus
  ``source``, ``source_file`` and ``record_offset`` (1-based line number for text formats,
  byte offset of the record for binary formats).
* ``ParsedFile.rejects`` has ``schemas.contracts.REJECT_SCHEMA``: one row per record that could not
  be decoded, with a reason code, a human message and the raw text (or hex for binary).
* A file that cannot be read at all raises :class:`UnreadableFile` with a reason code; the caller
  quarantines it and goes on with the other files.

Readers register themselves in :data:`READERS` by format name. Gzip is unwrapped by the caller
(:func:`open_cdr_bytes`), so every format has a gzip variant for free.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl


class UnreadableFile(Exception):  # noqa: N818 - a domain outcome, not a programming error
    """The whole file cannot be read; ``reason_code`` goes into the quarantine row."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class ParsedFile:
    records: pl.DataFrame
    rejects: pl.DataFrame


Reader = Callable[[str, str, bytes], ParsedFile]
READERS: dict[str, Reader] = {}


def register(fmt: str) -> Callable[[Reader], Reader]:
    def wrap(fn: Reader) -> Reader:
        READERS[fmt] = fn
        return fn

    return wrap


def open_cdr_bytes(file_key: str, data: bytes) -> bytes:
    """Unwrap gzip (by magic bytes, not by name); a truncated or corrupt gzip is unreadable."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise UnreadableFile("CORRUPT_GZIP", f"{file_key}: gzip stream is truncated or corrupt ({exc})") from exc


# --- helpers shared by the switch-format readers (asterisk, freeswitch, ber3gpp) -------------------

from schemas.contracts import RAW_USAGE_SCHEMA, REJECT_SCHEMA  # noqa: E402

RECORD_SCHEMA: dict[str, pl.DataType] = dict(RAW_USAGE_SCHEMA)
"""Reader output columns: ``RAW_USAGE_SCHEMA`` (it already holds source, source_file, record_offset)."""


def conform_records(frame: pl.DataFrame) -> pl.DataFrame:
    """Every raw-usage column, in contract order and dtype; columns a format lacks become nulls."""
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in RECORD_SCHEMA.items()
        ]
    )


def reject_rows(source: str, file_key: str, rows: list[tuple[int, str, str, str]]) -> pl.DataFrame:
    """Reject frame (REJECT_SCHEMA) from ``(record_offset, reason_code, message, raw)`` tuples."""
    return pl.DataFrame(
        {
            "source": [source] * len(rows),
            "source_file": [file_key] * len(rows),
            "record_offset": [r[0] for r in rows],
            "reason_code": [r[1] for r in rows],
            "message": [r[2] for r in rows],
            "raw": [r[3] for r in rows],
        },
        schema=REJECT_SCHEMA,
    )


def escaped_text(raw: bytes) -> str:
    """Raw bytes as text that survives Parquet: valid UTF-8 kept, other bytes as ``\\xNN`` escapes."""
    return raw.decode("utf-8", errors="backslashreplace")


def split_text_lines(source: str, file_key: str, data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a text file into ``(line_no, text)`` rows and BAD_ENCODING rejects.

    Encoding rule for every text format: UTF-8, strict. A UTF-8 byte-order mark is dropped, CRLF
    is accepted, and a line that is not valid UTF-8 becomes a ``BAD_ENCODING`` reject whose ``raw``
    keeps the bytes with ``\\xNN`` escapes. The empty tail after the last newline is not a record;
    any other blank line is a ``MALFORMED_LINE`` reject (nothing is skipped silently). A file with
    no content at all raises ``UnreadableFile("EMPTY_FILE")``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data or data.isspace():
        raise UnreadableFile("EMPTY_FILE", f"{file_key}: the file is empty")
    rejects: list[tuple[int, str, str, str]] = []
    try:
        texts: list[str | None] = list(data.decode("utf-8").split("\n"))
        if texts[-1] == "":
            texts.pop()
    except UnicodeDecodeError:
        raw_lines = data.split(b"\n")
        if raw_lines[-1] == b"":
            raw_lines.pop()
        texts = []
        for no, raw in enumerate(raw_lines, start=1):
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                texts.append(None)
                rejects.append((no, "BAD_ENCODING",
                                f"line {no} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                                escaped_text(raw.rstrip(b"\r"))))
    lines = (
        pl.DataFrame({"text": pl.Series(texts, dtype=pl.String)})
        .with_row_index("line_no", offset=1)
        .with_columns(pl.col("line_no").cast(pl.Int64), pl.col("text").str.strip_suffix("\r"))
        .filter(pl.col("text").is_not_null())
    )
    blank = lines.filter(pl.col("text").str.strip_chars() == "")
    for no in blank["line_no"].to_list():
        rejects.append((no, "MALFORMED_LINE", f"line {no} is blank", ""))
    rejects.sort()
    return lines.filter(pl.col("text").str.strip_chars() != ""), reject_rows(source, file_key, rejects)


_CSV_FIELD = r'(?:"(?:[^"]|"")*"|[^,"]*)'
CSV_LINE_RE = rf"^{_CSV_FIELD}(?:,{_CSV_FIELD})*$"
"""A line of comma-separated fields, each either bare (no quote, no comma) or fully double-quoted
with ``""`` escapes. Anything else (an unterminated quote, a quote inside a bare field) is malformed."""


def _plain_lines(raw: bytes) -> int | None:
    """Line count of a file whose bytes can go to the CSV reader as they are (no BOM, no CR), else None."""
    if raw.startswith(b"\xef\xbb\xbf") or b"\r" in raw:
        return None
    return raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)


_END_OF_LINE = "\x01telbill-end-of-line\x01"
"""Sentinel field appended to every line before one Polars CSV pass: its column is the field count."""


def quoted_csv_fields(lines: pl.DataFrame, widths: dict[int, list[str]], fmt: str, raw: bytes | None = None
                      ) -> tuple[pl.DataFrame, list[tuple[int, str, str, str]]]:
    """Parse validated quoted-CSV lines into named string columns, vectorised with Polars.

    ``widths`` maps an accepted field count to its column names; every layout must be a prefix of the
    widest (optional trailing columns). Lines with unbalanced quotes or a field count not in ``widths``
    are ``MALFORMED_LINE``. Returns the parsed rows (``line_no``, ``text`` and the widest layout's
    columns; empty strings and absent trailing columns are null) and the rejects.

    How: one regular expression checks each line's quoting; the good lines get a sentinel field
    appended and go through Polars' CSV reader once, padded to the widest layout plus one column (a
    first all-empty line fixes the width; short rows are padded with nulls, longer ones truncated).
    The column holding the sentinel is the line's field count. When ``raw`` (the file's bytes) is
    given and every line of it is a well-formed line, the CSV input is built from it with one bytes
    replace instead of re-joining the lines.
    """
    import io

    all_names = max(widths.values(), key=len)
    if any(names != all_names[: len(names)] for names in widths.values()):
        raise ValueError(f"{fmt}: every layout must be a prefix of the widest one")
    width = len(all_names)
    checked = lines.with_columns(well_formed=pl.col("text").str.contains(CSV_LINE_RE))
    rejects: list[tuple[int, str, str, str]] = []
    for no, text in checked.filter(~pl.col("well_formed")).select("line_no", "text").iter_rows():
        rejects.append((no, "MALFORMED_LINE", f"line {no}: unbalanced or misplaced double quote in {fmt} line", text))
    ok = checked.filter(pl.col("well_formed")).select("line_no", "text")
    columns = [f"c{i}" for i in range(width + 1)]
    if ok.height:
        end = f',"{_END_OF_LINE}"'
        if raw is not None and _plain_lines(raw) == ok.height:
            blob = b"," * width + b"\n" + raw.replace(b"\n", end.encode() + b"\n")
            if not raw.endswith(b"\n"):
                blob += end.encode() + b"\n"
        else:
            body = ok.select(pl.concat_str(pl.col("text"), pl.lit(end)).str.join("\n")).item()
            blob = ("," * width + "\n" + body + "\n").encode()
        fields = pl.read_csv(io.BytesIO(blob), has_header=False, infer_schema=False, quote_char='"',
                             truncate_ragged_lines=True, new_columns=columns).slice(1)
        if fields.height != ok.height:
            raise RuntimeError(f"{fmt}: parsed {fields.height} rows from {ok.height} validated lines")
    else:
        fields = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    n_fields = pl.coalesce([pl.when(pl.col(c) == _END_OF_LINE).then(pl.lit(i)) for i, c in enumerate(columns)])
    ok = pl.concat([ok, fields], how="horizontal").with_columns(n_fields.alias("n_fields"))
    accepted = sorted(widths)
    contiguous = len(accepted) > 3 and accepted == list(range(accepted[0], accepted[-1] + 1))
    expected = f"{accepted[0]} to {accepted[-1]}" if contiguous else " or ".join(map(str, accepted))
    wrong = ok.filter(~pl.col("n_fields").is_in(accepted).fill_null(False))
    for no, text, n in wrong.select("line_no", "text", "n_fields").iter_rows():
        count = f"more than {width}" if n is None else str(n)
        rejects.append((no, "MALFORMED_LINE", f"line {no}: {count} fields, a {fmt} line has {expected}", text))
    parsed = ok.filter(pl.col("n_fields").is_in(accepted).fill_null(False)).select(
        "line_no", "text",
        *[pl.when((pl.col("n_fields") > i) & (pl.col(c) != "")).then(pl.col(c)).alias(name)
          for i, (c, name) in enumerate(zip(columns, all_names, strict=False))],
    )
    return parsed, rejects


def local_timestamp(column: str, fmt: str, tz: str) -> pl.Expr:
    """Parse a switch's local wall-clock text into a UTC instant.

    Ambiguous autumn DST times take the earlier (summer-time) instant; times that do not exist
    (the spring DST gap) and unparseable text give null, which the caller turns into BAD_TIMESTAMP.
    """
    return (
        pl.col(column)
        .str.to_datetime(fmt, strict=False, time_unit="us")
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def e164_digits(column: str | pl.Expr) -> pl.Expr:
    """Switch numbers to E.164 digits without '+': '+' or the '00' international prefix dropped.

    Anything else (a national '0' number, a SIP user name) is kept as sent: normalising it needs a
    numbering plan and is mediation's job, which rejects or suspends what it cannot place.
    """
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.str.strip_chars().str.strip_prefix("+").str.replace(r"^00", "")


def field_problems(parsed: pl.DataFrame, checks: list[tuple[str, pl.Expr, pl.Expr]]
                   ) -> tuple[pl.DataFrame, list[tuple[int, str, str, str]]]:
    """Split rows where a check fails into rejects (first failing check wins, per row).

    ``checks`` holds ``(reason_code, failed_expr, message_expr)``; both evaluated on ``parsed``.
    """
    if not checks:
        return parsed, []
    reason = pl.lit(None, dtype=pl.String)
    message = pl.lit(None, dtype=pl.String)
    for code, failed, msg in reversed(checks):
        reason = pl.when(failed).then(pl.lit(code)).otherwise(reason)
        message = pl.when(failed).then(msg).otherwise(message)
    flagged = parsed.with_columns(_reason=reason, _message=message)
    bad = flagged.filter(pl.col("_reason").is_not_null())
    rejects = [(no, code, msg, text) for no, code, msg, text
               in bad.select("line_no", "_reason", "_message", "text").iter_rows()]
    return flagged.filter(pl.col("_reason").is_null()).drop("_reason", "_message"), rejects
