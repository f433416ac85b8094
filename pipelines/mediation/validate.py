"""Record validation (Pandera) and the not-billable filter: each record gets at most one reason.

``validate_records`` returns ``(good, rejects)``: rejects carry a reason code from
``schemas.usage.CHECK_REASONS``, a human message and the raw record text. ``split_billable`` then
moves records that are valid but not billable (unanswered, busy or failed calls, zero-volume data)
to ``filtered`` with a reason code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import pandera.polars as pa
import polars as pl

from schemas.contracts import REJECT_SCHEMA
from schemas.usage import (
    CHECK_REASONS,
    REASON_MESSAGES,
    REASON_PRIORITY,
    ROW_FAILURES,
    RULE_COLUMNS,
    RawUsageModel,
    row_reason,
    with_rule_columns,
)

RawLookup = Callable[[pl.DataFrame], list[str]]
"""Given the rejected records, their raw text (the line for text formats, the decoded row otherwise)."""

FILTER_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String, "source_file": pl.String, "record_offset": pl.Int64, "network_record_id": pl.String,
    "service": pl.String, "msisdn": pl.String, "other_party": pl.String,
    "start_time": pl.Datetime("us", "UTC"), "duration_s": pl.Int64, "quantity": pl.Int64,
    "call_outcome": pl.String, "reason_code": pl.String, "message": pl.String,
}


def normalise(records: pl.DataFrame) -> pl.DataFrame:
    """Defaults the formats leave implicit: no duration outside voice, non-voice records are 'answered'."""
    not_voice = pl.col("service") != "voice"
    # fill_null with a conditional fill touches only null slots (3x cheaper than a when/then over every row)
    return records.with_columns(pl.col("duration_s").fill_null(pl.when(not_voice).then(0)),
                                pl.col("call_outcome").fill_null(pl.when(not_voice).then(pl.lit("answered"))))


def latest_start(file_date: date | None) -> datetime | None:
    """Records may not start on or after the day after the file's own date (UTC)."""
    if file_date is None:
        return None
    return datetime(file_date.year, file_date.month, file_date.day, tzinfo=UTC) + timedelta(days=1)


def _reason_of(failures: pl.DataFrame) -> pl.DataFrame:
    """failure_cases -> one (index, reason_code) per failing row, by reason priority."""
    rules = pl.DataFrame(CHECK_REASONS, schema=["column", "check_prefix", "reason_code"], orient="row")
    fc = failures.filter(pl.col("index").is_not_null()).select(
        pl.col("index").cast(pl.Int64), "column",
        pl.col("check").str.extract(r"^([a-z_]+)").alias("check_prefix"),
    )
    unmapped = fc.join(rules, on=["column", "check_prefix"], how="anti")
    if unmapped.height:
        raise RuntimeError(f"validation check without a reason code: {unmapped.unique(['column', 'check_prefix']).rows()}")
    prio = pl.DataFrame({"reason_code": REASON_PRIORITY, "prio": list(range(len(REASON_PRIORITY)))})
    return (fc.join(rules, on=["column", "check_prefix"]).join(prio, on="reason_code")
            .sort("index", "prio").unique("index", keep="first").select("index", "reason_code"))


def _latest_start_expr(file_date: date | None | Mapping[str, date | None]) -> object:
    """The latest allowed start: one value for one file, or per row by ``source_file`` for a batch."""
    if isinstance(file_date, Mapping):
        limits = {k: latest_start(v) for k, v in file_date.items()}
        return pl.col("source_file").replace_strict(limits, default=None, return_dtype=pl.Datetime("us", "UTC"))
    return latest_start(file_date)


def pandera_reasons(frame: pl.DataFrame) -> pl.DataFrame:
    """(index, reason_code) per failing row by Pandera's own row checks (the reference the vectorised
    :func:`schemas.usage.row_reason` is tested against)."""
    try:
        RawUsageModel.validate(frame, lazy=True)
        return pl.DataFrame(schema={"index": pl.Int64, "reason_code": pl.String})
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    schema_level = failures.filter(pl.col("index").is_null())
    if schema_level.height:
        raise RuntimeError(f"reader output breaks the raw usage contract: {schema_level.rows()[:5]}")
    return _reason_of(failures)


def check_schema(frame: pl.DataFrame) -> None:
    """Pandera's schema-level validation (columns and dtypes) on the frame's empty head."""
    _check_schema(tuple(frame.schema.items()))


@lru_cache(maxsize=64)
def _check_schema(schema: tuple[tuple[str, pl.DataType], ...]) -> None:
    """Checked once per distinct schema (Pandera's fixed cost is ~30 ms a call); a failure is not cached."""
    try:
        RawUsageModel.validate(pl.DataFrame(schema=dict(schema)), lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise RuntimeError(f"reader output breaks the raw usage contract: {exc.failure_cases.rows()[:5]}") from exc


DIGIT_SCREENS: dict[str, tuple[str, int, int, bool]] = {
    "BAD_MSISDN": ("msisdn", 8, 15, True),       # ^[1-9]\d{7,14}$
    "BAD_IMSI": ("imsi", 14, 15, False),         # ^\d{14,15}$
    "BAD_OTHER_PARTY": ("other_party", 3, 15, False),  # ^\d{3,15}$
}
"""Reason code -> (column, min length, max length, first digit non-zero) of the digit-string checks."""


def digits_may_fail(col: str, shortest: int, longest: int, nonzero_first: bool) -> pl.Expr:
    r"""False only for text that certainly is ``shortest..longest`` ASCII digits (and not starting with 0 when
    ``nonzero_first``): an integer parse plus a length test, about half the cost of the regex. It may flag a
    valid value (e.g. Unicode digits, which the regex's ``\d`` accepts): flagged rows get the exact checks."""
    text = pl.col(col)
    digits = (text.str.len_bytes().is_between(shortest, longest)
              & text.str.to_integer(base=10, dtype=pl.UInt64, strict=False).is_not_null()
              & ~text.str.starts_with("+") & ~text.str.starts_with("-"))
    if nonzero_first:
        digits = digits & ~text.str.starts_with("0")
    return text.is_not_null() & ~digits


def may_fail() -> pl.Expr:
    """True for every row that fails a check of :data:`schemas.usage.ROW_FAILURES` (and perhaps a few that do
    not): the cheap checks exactly, the digit-string ones by :func:`digits_may_fail`."""
    return pl.any_horizontal([digits_may_fail(*DIGIT_SCREENS[code]) if code in DIGIT_SCREENS else expr.fill_null(False)
                              for code, expr in ROW_FAILURES.items()])


def reasons(frame: pl.DataFrame) -> pl.Series:
    """The reason code of every row (null when valid), exactly :func:`schemas.usage.row_reason`, computed only
    for the rows :func:`may_fail` flags (usually none)."""
    suspect = frame.select(may_fail())[:, 0].arg_true()
    codes = pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias("reason_code")
    if suspect.len():
        codes = codes.scatter(suspect, frame[suspect].select(row_reason())[:, 0])
    return codes


def validate_records(records: pl.DataFrame, file_date: date | None | Mapping[str, date | None],
                     raw_lookup: RawLookup) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split reader output into valid records and rejects (REJECT_SCHEMA).

    ``file_date`` is the date in the file's name (or, for records of several files, a mapping from
    ``source_file`` to it): records may not start after that day. Pandera checks the schema; the row
    checks run as one vectorised expression (``schemas.usage.row_reason``, tested equal to Pandera's), only
    on the rows a cheaper screen flags (:func:`reasons`).
    """
    frame = with_rule_columns(normalise(records), _latest_start_expr(file_date))
    check_schema(frame)
    flagged = frame.with_columns(reasons(frame)).drop(RULE_COLUMNS)
    if flagged["reason_code"].null_count() == flagged.height:
        return flagged.drop("reason_code"), pl.DataFrame(schema=REJECT_SCHEMA)
    bad = flagged.filter(pl.col("reason_code").is_not_null())
    good = flagged.filter(pl.col("reason_code").is_null()).drop("reason_code")
    messages = pl.DataFrame({"reason_code": list(REASON_MESSAGES), "message": list(REASON_MESSAGES.values())})
    rejects = bad.join(messages, on="reason_code", how="left").select(
        "source", "source_file", "record_offset", "reason_code",
        pl.format("record {}: {}", "record_offset", "message").alias("message"),
        pl.Series("raw", raw_lookup(bad), dtype=pl.String),
    )
    return good, rejects.cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _not_billable_rules() -> list[tuple[str, str, pl.Expr]]:
    """(reason code, message, condition) of each not-billable outcome, first match wins."""
    voice, data = pl.col("service") == "voice", pl.col("service") == "data"
    return [("NOT_ANSWERED", "call was not answered", voice & (pl.col("call_outcome") == "unanswered")),
            ("BUSY", "called party was busy", voice & (pl.col("call_outcome") == "busy")),
            ("CALL_FAILED", "call failed in the network", voice & (pl.col("call_outcome") == "failed")),
            ("ZERO_DURATION", "answered call of 0 seconds", voice & (pl.col("duration_s") == 0)),
            ("ZERO_VOLUME", "data record with no volume", data & (pl.col("quantity") == 0))]


def split_billable(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(billable, filtered): calls that were not answered and empty data sessions are not billable."""
    rules = _not_billable_rules()
    # a cheap mask first: the reason text is built only for the few records that are filtered
    mask = records.select(pl.any_horizontal([cond.fill_null(False) for _, _, cond in rules]))[:, 0]
    if not mask.any():
        return records, pl.DataFrame(schema=FILTER_SCHEMA)
    reason, message = pl.lit(None, pl.String), pl.lit(None, pl.String)
    for code, text, cond in reversed(rules):
        reason = pl.when(cond).then(pl.lit(code)).otherwise(reason)
        message = pl.when(cond).then(pl.lit(text)).otherwise(message)
    filtered = records.filter(mask).with_columns(reason.alias("reason_code"), message.alias("message"))
    return records.filter(~mask), filtered.select(FILTER_SCHEMA.keys()).cast(FILTER_SCHEMA)  # type: ignore[arg-type]
