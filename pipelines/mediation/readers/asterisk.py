"""Asterisk ``cdr_csv`` (Master.csv) reader and writer.

Master.csv has no header. Columns (asterisk ``cdr/cdr_csv.c``): accountcode, src, dst, dcontext,
clid, channel, dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition,
amaflags, then uniqueid (``loguniqueid``), userfield (``loguserfield``) and peeraccount, linkedid,
sequence (``newcdrcolumns``): 16, 17, 18 or 21 fields. Strings are double-quoted with ``""``
escapes, duration and billsec are bare integers, an unset date is an empty bare field.

Mapping (documented in docs/formats.md):

* billable duration is ``billsec`` (``duration`` includes ringing); ``start_time`` is ``answer``
  when the call was answered, else ``start``;
* timestamps are the switch's local wall-clock time (unless ``usegmtime``): the reader takes the
  switch time zone as a parameter, default UTC; stamps in a repeated autumn hour are placed from the
  record's other stamps and durations, then from file order (:func:`resolve_local_stamps`), and
  ``ParsedFile.facts`` counts how each was placed;
* the served subscriber is ``src`` (MO) unless ``dcontext`` is an inbound context (calls arriving
  from a trunk, e.g. ``from-pstn``), then it is ``dst`` (MT);
* disposition ANSWERED/NO ANSWER/BUSY/FAILED/CONGESTION -> answered/unanswered/busy/failed/failed.
"""

from __future__ import annotations

from functools import partial

import polars as pl

from pipelines.mediation.readers import (
    ParsedFile,
    conform_records,
    e164_digits,
    field_problems,
    quoted_csv_fields,
    register,
    reject_rows,
    resolve_local_stamps,
    split_text_lines,
    time_fold_facts,
)

BASE_COLUMNS = [
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
]
LAYOUTS: dict[int, list[str]] = {
    16: BASE_COLUMNS,
    17: [*BASE_COLUMNS, "uniqueid"],
    18: [*BASE_COLUMNS, "uniqueid", "userfield"],
    21: [*BASE_COLUMNS, "uniqueid", "userfield", "peeraccount", "linkedid", "sequence"],
}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DISPOSITIONS = {
    "ANSWERED": "answered",
    "NO ANSWER": "unanswered",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
INBOUND_CONTEXTS = frozenset({"from-pstn", "from-trunk", "from-external", "incoming", "inbound"})
"""Dialplan contexts whose calls come in from outside: the served subscriber is the callee (MT)."""

_INT = r"^\s*-?\d+\s*$"


def _problems() -> list[tuple[str, pl.Expr, pl.Expr]]:
    def bad_int(col: str) -> pl.Expr:
        return pl.col(col).is_null() | ~pl.col(col).str.contains(_INT)

    def bad_time(col: str, required: bool) -> pl.Expr:
        missing = pl.col(col).is_null()
        unparsed = pl.col(f"_{col}_utc").is_null()
        return (missing | unparsed) if required else (~missing & unparsed)

    def say(text: str, col: str) -> pl.Expr:
        return pl.format(f"line {{}}: {text} {{}}", pl.col("line_no"), pl.col(col).fill_null("(empty)"))

    return [
        ("BAD_NUMBER", bad_int("duration"), say("duration is not an integer:", "duration")),
        ("BAD_NUMBER", bad_int("billsec"), say("billsec is not an integer:", "billsec")),
        ("BAD_TIMESTAMP", bad_time("start", True),
         say("start is not a valid local time (YYYY-MM-DD HH:MM:SS, existing in the switch time zone):", "start")),
        ("BAD_TIMESTAMP", bad_time("answer", False), say("answer is not a valid local time:", "answer")),
        ("BAD_TIMESTAMP", bad_time("end", False), say("end is not a valid local time:", "end")),
        ("UNKNOWN_DISPOSITION", ~pl.col("disposition").is_in(list(DISPOSITIONS)),
         say("disposition is not ANSWERED/NO ANSWER/BUSY/FAILED/CONGESTION:", "disposition")),
    ]


def read_asterisk_csv(source: str, file_key: str, data: bytes, *, switch_tz: str = "UTC",
                      inbound_contexts: frozenset[str] = INBOUND_CONTEXTS) -> ParsedFile:
    """Decode a Master.csv file; bad lines become rejects, the rest raw-usage rows."""
    lines, encoding_rejects = split_text_lines(source, file_key, data)
    parsed, rejects = quoted_csv_fields(lines, LAYOUTS, "Asterisk cdr_csv", raw=data)
    parsed = resolve_local_stamps(parsed, TIME_FORMAT, switch_tz, start="start", answer="answer", end="end",
                                  duration="duration", billsec="billsec")
    good, field_rejects = field_problems(parsed, _problems())
    inbound = pl.col("dcontext").is_in(list(inbound_contexts)).fill_null(False)
    records = good.select(
        pl.lit(source).alias("source"),
        pl.lit(file_key).alias("source_file"),
        pl.col("line_no").alias("record_offset"),
        pl.when(pl.col("sequence").is_not_null())
        .then(pl.concat_str(pl.col("uniqueid"), pl.lit(":"), pl.col("sequence")))
        .otherwise(pl.col("uniqueid"))
        .alias("network_record_id"),
        pl.lit("voice").alias("service"),
        pl.when(inbound).then(pl.lit("MT")).otherwise(pl.lit("MO")).alias("direction"),
        e164_digits(pl.when(inbound).then(pl.col("dst")).otherwise(pl.col("src"))).alias("msisdn"),
        e164_digits(pl.when(inbound).then(pl.col("src")).otherwise(pl.col("dst"))).alias("other_party"),
        pl.coalesce("_answer_utc", "_start_utc").alias("start_time"),
        pl.col("billsec").str.strip_chars().cast(pl.Int64).alias("duration_s"),
        pl.col("billsec").str.strip_chars().cast(pl.Int64).alias("quantity"),
        pl.col("disposition").replace_strict(DISPOSITIONS).alias("call_outcome"),
        pl.coalesce("linkedid", "uniqueid").alias("charging_id"),
    )
    all_rejects = sorted(rejects + field_rejects)
    return ParsedFile(
        records=conform_records(records),
        rejects=pl.concat([encoding_rejects, reject_rows(source, file_key, all_rejects)]).sort("record_offset"),
        facts=time_fold_facts(good),
    )


@register("asterisk_csv")
def read(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Registered reader: switch time zone UTC (use :func:`reader_for_zone` for a local-time switch)."""
    return read_asterisk_csv(source, file_key, data)


def reader_for_zone(switch_tz: str) -> partial[ParsedFile]:
    """A reader with the contract's signature for a switch that logs local time in ``switch_tz``."""
    return partial(read_asterisk_csv, switch_tz=switch_tz)


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.lit('"'), expr.fill_null("").str.replace_all('"', '""', literal=True), pl.lit('"'))


def write_asterisk_csv(records: pl.DataFrame, switch_tz: str = "UTC") -> bytes:
    """Render raw-usage voice rows as an 18-column Master.csv (uniqueid + userfield), for the generator.

    ``network_record_id`` becomes uniqueid, ``duration_s`` both duration and billsec, and times are
    written in ``switch_tz`` wall-clock. MT rows get the inbound context ``from-pstn``.
    """
    if records.height and (records["service"] != "voice").any():
        raise ValueError("write_asterisk_csv: Asterisk CDRs carry voice calls only; got non-voice rows")
    outcome_to_disposition = {v: k for k, v in DISPOSITIONS.items() if k != "CONGESTION"}
    mt = pl.col("direction") == "MT"

    def local(expr: pl.Expr) -> pl.Expr:
        return expr.dt.convert_time_zone(switch_tz).dt.strftime(TIME_FORMAT)

    answered = pl.col("call_outcome") == "answered"
    end = pl.col("start_time") + pl.duration(seconds=pl.col("duration_s").fill_null(0).clip(lower_bound=0))
    src = pl.when(mt).then(pl.col("other_party")).otherwise(pl.col("msisdn"))
    dst = pl.when(mt).then(pl.col("msisdn")).otherwise(pl.col("other_party"))
    lines = records.select(
        pl.concat_str(
            [
                _quoted(pl.lit("")),
                _quoted(src),
                _quoted(dst),
                _quoted(pl.when(mt).then(pl.lit("from-pstn")).otherwise(pl.lit("from-internal"))),
                _quoted(pl.format('"{}" <{}>', src.fill_null(""), src.fill_null(""))),
                _quoted(pl.format("SIP/{}-trunk", src.fill_null(""))),
                _quoted(pl.format("SIP/{}-trunk", dst.fill_null(""))),
                _quoted(pl.lit("Dial")),
                _quoted(pl.format("SIP/{}", dst.fill_null(""))),
                _quoted(local(pl.col("start_time"))),
                pl.when(answered).then(_quoted(local(pl.col("start_time")))).otherwise(pl.lit("")),
                _quoted(local(end)),
                pl.col("duration_s").cast(pl.String),
                pl.col("duration_s").cast(pl.String),
                _quoted(pl.col("call_outcome").replace_strict(outcome_to_disposition, default="FAILED")),
                _quoted(pl.lit("BILLING")),
                _quoted(pl.col("network_record_id")),
                _quoted(pl.lit("")),
            ],
            separator=",",
        ).alias("line")
    )
    return "".join(f"{line}\n" for line in lines["line"].to_list()).encode()
