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
from dataclasses import dataclass, field
from itertools import product

import polars as pl


class UnreadableFile(Exception):  # noqa: N818 - a domain outcome, not a programming error
    """The whole file cannot be read; ``reason_code`` goes into the quarantine row."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


class OffsetError(ValueError):
    """A binary file that cannot be read at some point; ``offset`` is the file's byte offset of the problem."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"byte offset {offset}: {message}")
        self.offset = offset


@dataclass(frozen=True)
class ParsedFile:
    records: pl.DataFrame
    rejects: pl.DataFrame
    facts: dict[str, int] = field(default_factory=dict)
    """Per-file counts a reader reports beside the rows (e.g. :data:`TIME_FOLD_FACTS` for local-time
    formats), for the file manifest and the mediation report; empty for formats with nothing to say."""


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


# --- local wall-clock stamps and the repeated autumn hour (docs/mediation.md "Local time and DST") ------

FOLD_TOLERANCE_S = 2
"""How far a record's stamps may disagree with its own ``duration``/``billsec`` (seconds) and still count
as consistent: Asterisk prints truncated seconds but may round the durations from milliseconds."""

TIME_RULES = ("record", "file_order", "earliest")
"""How a record with an ambiguous (repeated-hour) stamp was placed; see :func:`resolve_local_stamps`."""

TIME_FOLD_FACTS = ("dst_ambiguous_records", "dst_resolved_by_record", "dst_resolved_by_file_order",
                   "dst_unresolved_earliest")
"""``ParsedFile.facts`` keys of the local-time readers: records with a stamp in a repeated hour, and how
many of them each rule placed (the three rule counts add up to the first)."""

_ROLES = ("start", "answer", "end")


def _local_reading(naive: pl.Expr, tz: str, ambiguous: str) -> pl.Expr:
    return (naive.dt.replace_time_zone(tz, ambiguous=ambiguous, non_existent="null")  # type: ignore[arg-type]
            .dt.convert_time_zone("UTC"))


def _place_by_record(rows: pl.DataFrame, duration: str, billsec: str, ambiguous: dict[str, pl.Expr],
                     micros: dict[tuple[str, int], pl.Expr], tol: int) -> pl.DataFrame:
    """Rule 1 on the rows with an ambiguous stamp: ``_n_ok`` consistent readings, ``_fold`` (exactly the
    all-first-pass and all-second-pass ones), ``_<role>_bit`` (the unique reading takes the second pass)."""
    dur = pl.col(duration).str.strip_chars().cast(pl.Int64, strict=False) * 1_000_000
    bill = pl.col(billsec).str.strip_chars().cast(pl.Int64, strict=False) * 1_000_000

    def consistent(bits: dict[str, int]) -> pl.Expr:
        s, a, e = (micros[(r, bits[r])] for r in _ROLES)

        def near(value: pl.Expr, target: pl.Expr, needed: pl.Expr) -> pl.Expr:
            return ~needed | ((value - target).abs() <= tol).fill_null(False)

        return (near(e - s, dur, e.is_not_null() & s.is_not_null())
                & near(e - a, bill, e.is_not_null() & a.is_not_null())
                & near(a - s, dur - bill, e.is_null() & a.is_not_null() & s.is_not_null()))

    combos = []
    for flags in product((0, 1), repeat=3):
        bits = dict(zip(_ROLES, flags, strict=True))
        allowed = pl.all_horizontal(pl.lit(True), *(ambiguous[r] for r in _ROLES if bits[r]))
        combos.append((bits, allowed & consistent(bits)))
    n_ok = pl.sum_horizontal(*(ok.cast(pl.Int8) for _, ok in combos))
    return rows.select(
        "_row",
        _n_ok=n_ok,
        _fold=(n_ok == 2) & consistent(dict.fromkeys(_ROLES, 0)) & consistent(dict.fromkeys(_ROLES, 1))
        & ambiguous["end"],
        **{f"_{r}_bit": pl.any_horizontal(pl.lit(False), *(ok for bits, ok in combos if bits[r])) for r in _ROLES},
    )


def resolve_local_stamps(frame: pl.DataFrame, fmt: str, tz: str, *, start: str, answer: str, end: str,
                         duration: str, billsec: str) -> pl.DataFrame:
    """Add ``_start_utc``, ``_answer_utc``, ``_end_utc`` (UTC instants) and ``_time_rule`` to a switch file.

    ``frame`` is one file's parsed lines in file order; ``start``/``answer``/``end`` name its local
    wall-clock stamp columns (text in ``fmt``, zone ``tz``; answer and end may be null), ``duration`` and
    ``billsec`` its integer text columns (duration = end - start, billsec = end - answer).

    A stamp that does not parse or falls in the spring gap is null (the reader rejects it). A stamp in
    a repeated autumn hour has two readings, the first pass (``earliest``) and the second (``latest``):

    1. *record*: of the readings of the record's stamps, keep those whose differences match duration and
       billsec within :data:`FOLD_TOLERANCE_S`; exactly one consistent combination places the record
       (any unambiguous stamp pins it, and a call from the first into the second pass is recognised
       because its local end is before its local start).
    2. *file_order*: when every stamp is in the repeated hour, both the all-first-pass and all-second-pass
       readings are consistent. The switch appends a record when the call ends, so true end instants
       never decrease in file order. A record whose first-pass end would be before an earlier line's
       end (a drop in local end time) is second pass, and so is every later such record of that night;
       a record whose second-pass end would be after a later line's end is first pass, and so is every
       earlier one. Used only if the resulting end instants of the whole file are non-decreasing
       (within the tolerance): otherwise the file is not in end order and this rule is off for it.
    3. *earliest*: what neither rule places (a night with no drop seen, e.g. a file that starts inside
       the second pass or a first pass with no call ending in it; stamps that contradict the record's
       own durations; records without an end stamp) keeps the first-pass reading. In the home zone both
       readings give the same local date and hour, so day, band and bill period are unaffected; the UTC
       instant may be one hour early. These are counted, never silent.

    ``_time_rule`` says how the record's start instant (answer, else start: what the readers use) was placed:
    null when that stamp is not ambiguous (its instant is exactly the plain reading, so files without
    repeated-hour times give the same output as before, and a record whose only ambiguous stamp is its end
    is not counted as possibly early), else one of :data:`TIME_RULES`.
    """
    columns = dict(zip(_ROLES, (start, answer, end), strict=True))
    naive = {r: pl.col(c).cast(pl.String).str.to_datetime(fmt, strict=False, time_unit="us")
             for r, c in columns.items()}
    if tz == "UTC":
        return frame.with_columns(*(_local_reading(n, tz, "earliest").alias(f"_{r}_utc") for r, n in naive.items()),
                                  pl.lit(None, dtype=pl.String).alias("_time_rule"))
    work = frame.with_columns(*(n.alias(f"_{r}_naive") for r, n in naive.items())).with_columns(
        *(_local_reading(pl.col(f"_{r}_naive"), tz, "earliest").alias(f"_{r}_early") for r in _ROLES),
        *(_local_reading(pl.col(f"_{r}_naive"), tz, "latest").alias(f"_{r}_late") for r in _ROLES),
    )
    ambiguous = {r: (pl.col(f"_{r}_early") != pl.col(f"_{r}_late")).fill_null(False) for r in _ROLES}
    any_ambiguous = pl.any_horizontal(*ambiguous.values())
    if not work.select(any_ambiguous.any()).item():
        return work.select(
            *frame.columns, *(pl.col(f"_{r}_early").alias(f"_{r}_utc") for r in _ROLES),
            pl.lit(None, dtype=pl.String).alias("_time_rule"))

    tol = FOLD_TOLERANCE_S * 1_000_000
    micros = {(r, b): pl.col(f"_{r}_{'late' if b else 'early'}").dt.epoch("us") for r in _ROLES for b in (0, 1)}
    work = work.with_row_index("_row").with_columns(_any_amb=any_ambiguous)
    placed = _place_by_record(work.filter(pl.col("_any_amb")), duration, billsec, ambiguous, micros, tol)
    work = work.join(placed, on="_row", how="left", maintain_order="left").with_columns(
        pl.col("_n_ok").fill_null(0), pl.col("_fold").fill_null(False),
        *(pl.col(f"_{r}_bit").fill_null(False) for r in _ROLES))
    by_record = pl.col("_n_ok") == 1
    end_known = by_record | ~ambiguous["end"]
    end_early, end_late = micros[("end", 0)], micros[("end", 1)]
    resolved_end = pl.when(pl.col("_end_bit")).then(end_late).otherwise(end_early)
    lo = pl.when(end_known).then(resolved_end).otherwise(end_early)
    hi = pl.when(end_known).then(resolved_end).otherwise(end_late)
    night = pl.when(pl.col("_fold")).then(pl.col("_end_naive").dt.date())
    work = work.with_columns(
        _floor=lo.cum_max().shift(1).forward_fill(),
        _ceiling=hi.cum_min(reverse=True).shift(-1).backward_fill(),
        _night=night,
    ).with_columns(
        _second=(pl.col("_fold") & (end_early < pl.col("_floor") - tol)).fill_null(False),
        _first=(pl.col("_fold") & (end_late > pl.col("_ceiling") + tol)).fill_null(False),
    ).with_columns(
        _second=pl.col("_second").cast(pl.Int32).cum_sum().over("_night") > 0,
        _first=pl.col("_first").cast(pl.Int32).cum_sum(reverse=True).over("_night") > 0,
    )
    placed_end = (pl.when(pl.col("_fold") & pl.col("_second")).then(end_late)
                  .when(pl.col("_fold")).then(end_early).when(end_known).then(resolved_end))
    in_order = work.select(
        ((placed_end - placed_end.cum_max().shift(1).forward_fill()) >= -tol).fill_null(True).all()
        & ~(pl.col("_fold") & pl.col("_first") & pl.col("_second")).any()
    ).item()
    by_file = pl.col("_fold") & (pl.col("_first") | pl.col("_second")) & pl.lit(in_order)
    late_pass = pl.col("_fold") & pl.col("_second") & pl.lit(in_order)
    return work.select(
        *frame.columns,
        *(pl.when(by_record & pl.col(f"_{r}_bit")).then(pl.col(f"_{r}_late"))
          .when(~by_record & late_pass).then(pl.col(f"_{r}_late"))
          .otherwise(pl.col(f"_{r}_early")).alias(f"_{r}_utc") for r in _ROLES),
        pl.when(~pl.when(pl.col("_answer_naive").is_not_null()).then(ambiguous["answer"])
                .otherwise(ambiguous["start"])).then(pl.lit(None, dtype=pl.String))
        .when(by_record).then(pl.lit("record"))
        .when(by_file).then(pl.lit("file_order"))
        .otherwise(pl.lit("earliest")).alias("_time_rule"),
    )


def time_fold_facts(records: pl.DataFrame, rule: str = "_time_rule") -> dict[str, int]:
    """:data:`TIME_FOLD_FACTS` counts of the accepted records' ``_time_rule`` column."""
    counts = dict(records.get_column(rule).drop_nulls().value_counts().iter_rows())
    placed = {name: int(counts.get(r, 0)) for name, r in zip(TIME_FOLD_FACTS[1:], TIME_RULES, strict=True)}
    return {TIME_FOLD_FACTS[0]: sum(placed.values()), **placed}


def time_fold_note(facts: dict[str, int]) -> str | None:
    """One manifest-ready sentence for a file with repeated-hour stamps, else None (no note, same bytes)."""
    if not facts.get("dst_ambiguous_records"):
        return None
    return ("repeated DST hour: {dst_ambiguous_records} records, {dst_resolved_by_record} placed by their own "
            "stamps, {dst_resolved_by_file_order} by file order, {dst_unresolved_earliest} kept at the first-pass "
            "reading (may be 1 h early)").format(**facts)


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
