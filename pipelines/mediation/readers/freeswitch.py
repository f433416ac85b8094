"""FreeSWITCH CDR readers: ``mod_cdr_csv`` (default "example" template) and ``mod_json_cdr``.

mod_cdr_csv default template, 15 quoted fields (deployments often append more; they are ignored):
caller_id_name, caller_id_number, destination_number, context, start_stamp, answer_stamp,
end_stamp, duration, billsec, hangup_cause, uuid, bleg_uuid, accountcode, read_codec, write_codec.
The ``*_stamp`` values are the switch's local wall-clock time: the reader takes the switch time zone
as a parameter (default UTC). ``end_stamp`` is read only to place stamps of a repeated autumn hour
(:func:`pipelines.mediation.readers.resolve_local_stamps`); an unreadable one is not a reject.

mod_json_cdr writes one JSON document per call (``variables``, ``callflow``, ``callStats``...). A file
holds either one (possibly pretty-printed) document, or JSON lines (one document per line, what
:func:`write_freeswitch_json` writes). Times come from ``*_uepoch`` (UTC microseconds, no time-zone
guesswork); the ``*_stamp`` text is only a fallback.

Mapping: billable duration is ``billsec``; ``start_time`` is the answer time when answered, else the
start time; hangup_cause NORMAL_CLEARING -> answered, NO_ANSWER/ORIGINATOR_CANCEL -> unanswered,
USER_BUSY -> busy, anything else -> failed. The served subscriber is the caller (MO) unless the call
came in through the ``public`` context (FreeSWITCH's context for calls from outside), then it is
the destination (MT).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from pipelines.mediation.readers import (
    ParsedFile,
    UnreadableFile,
    conform_records,
    e164_digits,
    escaped_text,
    field_problems,
    local_timestamp,
    quoted_csv_fields,
    register,
    reject_rows,
    resolve_local_stamps,
    split_text_lines,
    time_fold_facts,
)

CSV_COLUMNS = [
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp", "answer_stamp",
    "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid", "accountcode", "read_codec",
    "write_codec",
]
MAX_EXTRA_COLUMNS = 40
CSV_LAYOUTS: dict[int, list[str]] = {
    15 + extra: [*CSV_COLUMNS, *(f"extra_{i}" for i in range(1, extra + 1))] for extra in range(MAX_EXTRA_COLUMNS + 1)
}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
INBOUND_CONTEXTS = frozenset({"public"})
"""FreeSWITCH routes calls from outside through the ``public`` context: served party = destination."""

ANSWERED_CAUSES = frozenset({"NORMAL_CLEARING"})
UNANSWERED_CAUSES = frozenset({"NO_ANSWER", "ORIGINATOR_CANCEL"})
BUSY_CAUSES = frozenset({"USER_BUSY"})
OUTCOME_CAUSES = {  # what the writer puts in hangup_cause (with the Q.850 code)
    "answered": ("NORMAL_CLEARING", 16),
    "unanswered": ("NO_ANSWER", 19),
    "busy": ("USER_BUSY", 17),
    "failed": ("NORMAL_TEMPORARY_FAILURE", 41),
}
_INT = r"^\s*-?\d+\s*$"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def call_outcome(hangup_cause: pl.Expr) -> pl.Expr:
    """Q.850 hangup cause name -> CALL_OUTCOMES."""
    return (
        pl.when(hangup_cause.is_in(list(ANSWERED_CAUSES))).then(pl.lit("answered"))
        .when(hangup_cause.is_in(list(UNANSWERED_CAUSES))).then(pl.lit("unanswered"))
        .when(hangup_cause.is_in(list(BUSY_CAUSES))).then(pl.lit("busy"))
        .otherwise(pl.lit("failed"))
    )


def _outcome(cause: str | None) -> str:
    if cause in ANSWERED_CAUSES:
        return "answered"
    if cause in UNANSWERED_CAUSES:
        return "unanswered"
    if cause in BUSY_CAUSES:
        return "busy"
    return "failed"


# ---------------------------------------------------------------------------------------- CSV


def _csv_problems() -> list[tuple[str, pl.Expr, pl.Expr]]:
    def say(text: str, col: str) -> pl.Expr:
        return pl.format(f"line {{}}: {text} {{}}", pl.col("line_no"), pl.col(col).fill_null("(empty)"))

    def bad_int(col: str) -> pl.Expr:
        return pl.col(col).is_null() | ~pl.col(col).str.contains(_INT)

    return [
        ("BAD_NUMBER", bad_int("duration"), say("duration is not an integer:", "duration")),
        ("BAD_NUMBER", bad_int("billsec"), say("billsec is not an integer:", "billsec")),
        ("BAD_TIMESTAMP", pl.col("start_stamp").is_null() | pl.col("_start_utc").is_null(),
         say("start_stamp is not a valid local time (YYYY-MM-DD HH:MM:SS in the switch time zone):", "start_stamp")),
        ("BAD_TIMESTAMP", pl.col("answer_stamp").is_not_null() & pl.col("_answer_utc").is_null(),
         say("answer_stamp is not a valid local time:", "answer_stamp")),
    ]


def read_freeswitch_csv(source: str, file_key: str, data: bytes, *, switch_tz: str = "UTC",
                        inbound_contexts: frozenset[str] = INBOUND_CONTEXTS) -> ParsedFile:
    """Decode a mod_cdr_csv Master.csv written with the default template."""
    lines, encoding_rejects = split_text_lines(source, file_key, data)
    parsed, rejects = quoted_csv_fields(lines, CSV_LAYOUTS, "FreeSWITCH mod_cdr_csv", raw=data)
    parsed = resolve_local_stamps(parsed, TIME_FORMAT, switch_tz, start="start_stamp", answer="answer_stamp",
                                  end="end_stamp", duration="duration", billsec="billsec")
    good, field_rejects = field_problems(parsed, _csv_problems())
    inbound = pl.col("context").is_in(list(inbound_contexts)).fill_null(False)
    records = good.select(
        pl.lit(source).alias("source"),
        pl.lit(file_key).alias("source_file"),
        pl.col("line_no").alias("record_offset"),
        pl.col("uuid").alias("network_record_id"),
        pl.lit("voice").alias("service"),
        pl.when(inbound).then(pl.lit("MT")).otherwise(pl.lit("MO")).alias("direction"),
        e164_digits(pl.when(inbound).then(pl.col("destination_number")).otherwise(pl.col("caller_id_number")))
        .alias("msisdn"),
        e164_digits(pl.when(inbound).then(pl.col("caller_id_number")).otherwise(pl.col("destination_number")))
        .alias("other_party"),
        pl.coalesce("_answer_utc", "_start_utc").alias("start_time"),
        pl.col("billsec").str.strip_chars().cast(pl.Int64).alias("duration_s"),
        pl.col("billsec").str.strip_chars().cast(pl.Int64).alias("quantity"),
        call_outcome(pl.col("hangup_cause")).alias("call_outcome"),
        pl.col("uuid").alias("charging_id"),
    )
    return ParsedFile(
        records=conform_records(records),
        rejects=pl.concat([encoding_rejects, reject_rows(source, file_key, sorted(rejects + field_rejects))])
        .sort("record_offset"),
        facts=time_fold_facts(good),
    )


@register("freeswitch_csv")
def read_csv(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Registered mod_cdr_csv reader (switch time zone UTC; see :func:`csv_reader_for_zone`)."""
    return read_freeswitch_csv(source, file_key, data)


def csv_reader_for_zone(switch_tz: str) -> partial[ParsedFile]:
    return partial(read_freeswitch_csv, switch_tz=switch_tz)


# --------------------------------------------------------------------------------------- JSON


class _RecordError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _epoch_us(variables: dict[str, Any], name: str, switch_tz: str) -> datetime | None:
    """``<name>_uepoch`` (µs), else ``<name>_epoch`` (s), else ``<name>_stamp`` local text; 0 = unset."""
    for suffix, scale in (("_uepoch", 1), ("_epoch", 1_000_000)):
        value = variables.get(name + suffix)
        if value in (None, ""):
            continue
        try:
            micros = int(str(value)) * scale
        except ValueError as exc:
            raise _RecordError("BAD_TIMESTAMP", f"{name}{suffix} is not an integer epoch: {value!r}") from exc
        return None if micros == 0 else EPOCH + timedelta(microseconds=micros)
    stamp = variables.get(name + "_stamp")
    if stamp in (None, ""):
        return None
    parsed = pl.DataFrame({"s": [str(stamp)]}).select(local_timestamp("s", TIME_FORMAT, switch_tz)).item()
    if parsed is None:
        raise _RecordError("BAD_TIMESTAMP", f"{name}_stamp is not a valid local time: {stamp!r}")
    return parsed


def _int_var(variables: dict[str, Any], name: str) -> int:
    value = variables.get(name)
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise _RecordError("BAD_NUMBER", f"{name} is not an integer: {value!r}") from exc


def _caller_profile(doc: dict[str, Any]) -> dict[str, Any]:
    flow = doc.get("callflow")
    if isinstance(flow, list):
        flow = flow[0] if flow else {}
    profile = flow.get("caller_profile") if isinstance(flow, dict) else None
    return profile if isinstance(profile, dict) else {}


def json_record(doc: Any, switch_tz: str, inbound_contexts: frozenset[str]) -> dict[str, Any]:
    """One mod_json_cdr document -> raw-usage fields (raises _RecordError with a reason code)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("variables"), dict):
        raise _RecordError("MALFORMED_JSON", "not a mod_json_cdr document: no 'variables' object")
    var: dict[str, Any] = doc["variables"]
    profile = _caller_profile(doc)

    def first(*values: Any) -> str | None:
        return next((str(v) for v in values if v not in (None, "")), None)

    caller = first(var.get("caller_id_number"), profile.get("caller_id_number"), var.get("sip_from_user"))
    dest = first(var.get("destination_number"), profile.get("destination_number"), var.get("sip_req_user"))
    context = first(var.get("context"), profile.get("context"))
    start = _epoch_us(var, "start", switch_tz)
    if start is None:
        raise _RecordError("BAD_TIMESTAMP", "no start time (start_uepoch/start_epoch/start_stamp)")
    answer = _epoch_us(var, "answer", switch_tz)
    billsec = _int_var(var, "billsec")
    inbound = context in inbound_contexts
    uuid = first(var.get("uuid"), profile.get("uuid"))
    return {
        "network_record_id": uuid,
        "service": "voice",
        "direction": "MT" if inbound else "MO",
        "msisdn": dest if inbound else caller,
        "other_party": caller if inbound else dest,
        "start_time": answer or start,
        "duration_s": billsec,
        "quantity": billsec,
        "call_outcome": _outcome(first(var.get("hangup_cause"))),
        "charging_id": uuid,
    }


def _json_documents(source: str, file_key: str, data: bytes) -> tuple[list[tuple[int, str, bytes]], pl.DataFrame]:
    """Split into ``(record_offset, text, raw)`` documents: JSON lines, or one whole-file document."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if not body or body.isspace():
        raise UnreadableFile("EMPTY_FILE", f"{file_key}: the file is empty")
    raw_lines = [line.rstrip(b"\r") for line in body.split(b"\n")]
    filled = [line for line in raw_lines if line.strip()]
    is_json_lines = len(filled) > 1 and all(
        line.strip().startswith(b"{") and line.strip().endswith(b"}") for line in filled
    )
    if not is_json_lines:
        try:
            return [(1, body.decode("utf-8"), body)], reject_rows(source, file_key, [])
        except UnicodeDecodeError as exc:
            return [], reject_rows(source, file_key, [(1, "BAD_ENCODING",
                                   f"document is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})",
                                   escaped_text(body))])
    lines, rejects = split_text_lines(source, file_key, body)
    by_no = dict(enumerate(raw_lines, start=1))
    return [(no, text, by_no[no]) for no, text in lines.select("line_no", "text").iter_rows()], rejects


def read_freeswitch_json(source: str, file_key: str, data: bytes, *, switch_tz: str = "UTC",
                         inbound_contexts: frozenset[str] = INBOUND_CONTEXTS) -> ParsedFile:
    """Decode mod_json_cdr documents (per-document Python: JSON CDRs are one call each)."""
    documents, encoding_rejects = _json_documents(source, file_key, data)
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[int, str, str, str]] = []
    for offset, text, _raw in documents:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append((offset, "MALFORMED_JSON", f"record at line {offset}: invalid JSON ({exc})", text))
            continue
        try:
            rows.append({"record_offset": offset, **json_record(doc, switch_tz, inbound_contexts)})
        except _RecordError as exc:
            rejects.append((offset, exc.code, f"record at line {offset}: {exc}", text))
    frame = pl.DataFrame(rows, schema={"record_offset": pl.Int64, "network_record_id": pl.String,
                                       "service": pl.String, "direction": pl.String, "msisdn": pl.String,
                                       "other_party": pl.String, "start_time": pl.Datetime("us", "UTC"),
                                       "duration_s": pl.Int64, "quantity": pl.Int64,
                                       "call_outcome": pl.String, "charging_id": pl.String})
    frame = frame.with_columns(
        pl.lit(source).alias("source"),
        pl.lit(file_key).alias("source_file"),
        e164_digits("msisdn").alias("msisdn"),
        e164_digits("other_party").alias("other_party"),
    )
    return ParsedFile(
        records=conform_records(frame),
        rejects=pl.concat([encoding_rejects, reject_rows(source, file_key, rejects)]).sort("record_offset"),
    )


@register("freeswitch_json")
def read_json(source: str, file_key: str, data: bytes) -> ParsedFile:
    """Registered mod_json_cdr reader (``*_stamp`` fallback read as UTC)."""
    return read_freeswitch_json(source, file_key, data)


def write_freeswitch_json(records: pl.DataFrame, switch_tz: str = "UTC") -> bytes:
    """Render raw-usage voice rows as mod_json_cdr JSON lines (sorted keys: same rows, same bytes)."""
    if records.height and (records["service"] != "voice").any():
        raise ValueError("write_freeswitch_json: FreeSWITCH CDRs carry voice calls only; got non-voice rows")
    out: list[str] = []
    zone = ZoneInfo(switch_tz)
    for row in records.iter_rows(named=True):
        mt = row["direction"] == "MT"
        caller, dest = (row["other_party"], row["msisdn"]) if mt else (row["msisdn"], row["other_party"])
        start: datetime = row["start_time"]
        seconds = row["duration_s"] or 0
        end = start + timedelta(seconds=max(seconds, 0))
        answered = row["call_outcome"] == "answered"
        cause, q850 = OUTCOME_CAUSES.get(row["call_outcome"], OUTCOME_CAUSES["failed"])
        context = "public" if mt else "default"

        def uepoch(ts: datetime) -> str:
            return str((ts - EPOCH) // timedelta(microseconds=1))

        def stamp(ts: datetime) -> str:
            return ts.astimezone(zone).strftime(TIME_FORMAT)

        variables = {
            "uuid": row["network_record_id"],
            "call_uuid": row["network_record_id"],
            "caller_id_number": caller,
            "destination_number": dest,
            "context": context,
            "start_stamp": stamp(start),
            "start_epoch": str(int(start.timestamp())),
            "start_uepoch": uepoch(start),
            "answer_stamp": stamp(start) if answered else "",
            "answer_epoch": str(int(start.timestamp())) if answered else "0",
            "answer_uepoch": uepoch(start) if answered else "0",
            "end_stamp": stamp(end),
            "end_epoch": str(int(end.timestamp())),
            "end_uepoch": uepoch(end),
            "duration": str(seconds),
            "billsec": str(seconds),
            "hangup_cause": cause,
            "hangup_cause_q850": str(q850),
        }
        doc = {
            "core-uuid": "telbill-generator",
            "switchname": "telbill-fs",
            "variables": variables,
            "callflow": [{"caller_profile": {"caller_id_number": caller, "destination_number": dest,
                                              "context": context, "uuid": row["network_record_id"]}}],
        }
        out.append(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return "".join(line + "\n" for line in out).encode()
