"""Partner reconciliation: a partner's declaration for a period against our settlement entries.

Declaration file (CSV, header required; documented in docs/settlement.md)::

    partner_ref,msisdn,service,start_time,duration_s,quantity,amount,currency

``start_time`` is ISO 8601 UTC (``2026-10-03T08:15:00Z``); ``amount`` an exact decimal. Our side is
the partner's settlement entries of the period joined to usage (for the MSISDN and duration).

Every declared and every own record ends in exactly one class:

* ``matched``       paired, and time, duration and cost agree within tolerance;
* ``mismatched``    paired (same MSISDN and service, start within the match window) but cost,
                    duration or time differ beyond tolerance (``reasons`` says which);
* ``ours_only``     in our entries, not declared by the partner;
* ``theirs_only``   declared, with no record of ours in the match window;
* ``out_of_window`` declared with a start time outside the period;
* ``invalid``       a declared line that cannot be read (reason code in ``reasons``).

Pairing is one-to-one and deterministic: candidate pairs are taken closest in time first (then
closest in amount, then by id). ``disputed_amount`` is what the partner claims beyond our figure
(their amount - ours; their whole amount when we have no record; minus ours when they omit one).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.common.csv_safe import safe_csv
from pipelines.common.money import MoneyError, money
from pipelines.common.partitions import published_manifests, read_manifested, run_id_for, write_partition
from pipelines.common.periods import period_bounds_utc
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.settlement.statements import _usage_manifests_near
from schemas.contracts import AMOUNT, UTC_TS

HOME_ZONE = "Europe/Berlin"
PARTNER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")   # it becomes a lake partition and a file name
DATASET = "settlement/reconciliation"
DECLARATION_COLUMNS = ("partner_ref", "msisdn", "service", "start_time", "duration_s", "quantity", "amount",
                       "currency")
STATUSES = ("matched", "mismatched", "ours_only", "theirs_only", "out_of_window", "invalid")

RECONCILIATION_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String,
    "partner_id": pl.String,
    "status": pl.String,             # one of STATUSES
    "reasons": pl.String,            # comma list: cost, duration, time, currency; or a reject reason code
    "record_id": pl.String,          # ours
    "partner_ref": pl.String,        # theirs
    "msisdn": pl.String,
    "service": pl.String,
    "our_start_time": UTC_TS,
    "their_start_time": UTC_TS,
    "time_diff_s": pl.Int64,
    "our_duration_s": pl.Int64,
    "their_duration_s": pl.Int64,
    "our_amount": AMOUNT,
    "their_amount": AMOUNT,
    "currency": pl.String,
    "disputed_amount": AMOUNT,
    "declaration_line": pl.Int64,    # 2 = first data line of the file
}


@dataclass(frozen=True)
class Tolerances:
    """How far apart paired records may be before they count as mismatched."""

    match_window_s: int = 600        # max start-time distance for two records to be paired at all
    time_s: int = 2                  # start-time difference allowed for a clean match
    duration_s: int = 1
    cost: Decimal = Decimal("0.01")


@dataclass(frozen=True)
class Reconciliation:
    period: str
    partner_id: str
    run_id: str
    rows: pl.DataFrame
    totals: pl.DataFrame
    files: list[str]

    @property
    def disputes(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("status").is_in(["mismatched", "theirs_only", "ours_only", "out_of_window"]))


def check_partner_id(partner_id: str) -> str:
    """The partner id, or ValueError: only letters, digits, '_' and '-' (1-32) may reach a path."""
    if not isinstance(partner_id, str) or not PARTNER_ID.fullmatch(partner_id):
        raise ValueError(f"partner id {partner_id!r} must match {PARTNER_ID.pattern} (TADIG, carrier or partner id)")
    return partner_id


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("start_time needs a zone (use Z for UTC)")
    return value.astimezone(UTC)


def parse_declaration(data: bytes) -> tuple[list[dict], list[dict]]:
    """(good declared records, invalid lines with a reason code); nothing is dropped."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError("declaration is not UTF-8 text; ask the partner for a UTF-8 CSV") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in DECLARATION_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"declaration header lacks {', '.join(missing)}; expected {','.join(DECLARATION_COLUMNS)}")
    good, bad = [], []
    for line_no, row in enumerate(reader, start=2):
        try:
            good.append(_declared_record(line_no, row))
        except _Bad as exc:
            bad.append({"declaration_line": line_no, "reasons": exc.code, "partner_ref": _field(row, "partner_ref")
                        or None})
    return good, bad


REQUIRED_FIELDS = DECLARATION_COLUMNS  # every field; an empty number is never read as 0


def _field(row: dict, key: str) -> str:
    """A declared field as stripped text; csv gives None for fields missing at the end of a short line."""
    value = row.get(key)
    return value.strip() if isinstance(value, str) else ""


def _declared_record(line_no: int, row: dict) -> dict:
    """One declaration line as a record, or _Bad with a reason code (never another exception)."""
    fields = {k: _field(row, k) for k in DECLARATION_COLUMNS}
    empty = [k for k in REQUIRED_FIELDS if not fields[k]]
    if empty:
        raise _Bad("MISSING_FIELD", f"empty {', '.join(empty)}")
    rec = {"partner_ref": fields["partner_ref"], "msisdn": fields["msisdn"], "service": fields["service"],
           "declaration_line": line_no, "currency": fields["currency"].upper()}
    try:
        rec["start_time"] = _parse_time(fields["start_time"])
    except ValueError as exc:
        raise _Bad("BAD_TIME", f"start_time {fields['start_time']!r}: {exc}") from exc
    try:
        rec["duration_s"] = int(fields["duration_s"])
        rec["quantity"] = int(fields["quantity"])
    except ValueError as exc:
        raise _Bad("BAD_QUANTITY", f"duration/quantity not integers: {exc}") from exc
    if rec["duration_s"] < 0 or rec["quantity"] < 0:
        raise _Bad("BAD_QUANTITY", "duration/quantity negative")
    try:
        rec["amount"] = money(fields["amount"])
    except (MoneyError, ValueError, ArithmeticError) as exc:
        raise _Bad("BAD_AMOUNT", str(exc)) from exc
    return rec


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def our_records(entries: pl.DataFrame | None, usage: pl.DataFrame | None, partner_id: str) -> list[dict]:
    """Our side: the partner's settlement entries with MSISDN and duration from usage."""
    if entries is None or entries.is_empty():
        return []
    mine = entries.filter(pl.col("partner_id") == partner_id)
    if usage is not None and not usage.is_empty():
        mine = mine.join(usage.select("record_id", "msisdn", "duration_s").unique("record_id"), on="record_id",
                         how="left")
    else:
        mine = mine.with_columns(pl.lit(None, pl.String).alias("msisdn"), pl.lit(None, pl.Int64).alias("duration_s"))
    # every column in the sort: one record may carry several entries, and their order must not depend on input
    # order; _our_key tells them apart when pairing
    return mine.sort(mine.columns, nulls_last=True).with_row_index("_our_key").to_dicts()


def _our_key(o: dict) -> object:
    return o.get("_our_key", o["record_id"])


def match(ours: list[dict], theirs: list[dict], tol: Tolerances) -> list[tuple[dict, dict]]:
    """Deterministic one-to-one pairing, closest start time first (then closest amount, then ids)."""
    by_key: dict[tuple, list[dict]] = {}
    for o in ours:
        by_key.setdefault((o["msisdn"], o["service"]), []).append(o)
    candidates = []
    for t in theirs:
        for o in by_key.get((t["msisdn"], t["service"]), []):
            dt = abs(int((t["start_time"] - o["start_time"]).total_seconds()))
            if dt <= tol.match_window_s:
                candidates.append((dt, abs(t["amount"] - o["amount"]), o["record_id"], _our_key(o),
                                   t["partner_ref"], t["declaration_line"], o, t))
    candidates.sort(key=lambda c: c[:6])
    used_o, used_t, pairs = set(), set(), []
    for *_, o, t in candidates:
        if _our_key(o) in used_o or t["declaration_line"] in used_t:
            continue
        used_o.add(_our_key(o))
        used_t.add(t["declaration_line"])
        pairs.append((o, t))
    return pairs


def _row(period: str, partner_id: str, status: str, o: dict | None, t: dict | None, reasons: str = "") -> dict:
    our_amt = money(o["amount"]) if o else None
    their_amt = t.get("amount") if t else None
    if status in ("matched", "mismatched"):
        disputed = their_amt - our_amt
    elif status in ("theirs_only", "out_of_window"):
        disputed = their_amt
    elif status == "ours_only":
        disputed = -our_amt
    else:
        disputed = None
    return {
        "period": period, "partner_id": partner_id, "status": status, "reasons": reasons,
        "record_id": o["record_id"] if o else None, "partner_ref": t.get("partner_ref") if t else None,
        "msisdn": (o or t or {}).get("msisdn"), "service": (o or t or {}).get("service"),
        "our_start_time": o["start_time"] if o else None, "their_start_time": t.get("start_time") if t else None,
        "time_diff_s": int((t["start_time"] - o["start_time"]).total_seconds()) if o and t else None,
        "our_duration_s": o.get("duration_s") if o else None, "their_duration_s": t.get("duration_s") if t else None,
        "our_amount": our_amt, "their_amount": their_amt,
        "currency": (t or {}).get("currency") or (o or {}).get("currency"),
        "disputed_amount": disputed, "declaration_line": t.get("declaration_line") if t else None,
    }


def classify_pair(o: dict, t: dict, tol: Tolerances) -> list[str]:
    """Which tolerances a paired record breaks (empty list = clean match)."""
    reasons = []
    if abs(t["amount"] - money(o["amount"])) > tol.cost:
        reasons.append("cost")
    if t["currency"] != (o.get("currency") or "").upper():
        reasons.append("currency")
    if o.get("duration_s") is not None and abs(t["duration_s"] - o["duration_s"]) > tol.duration_s:
        reasons.append("duration")
    if abs((t["start_time"] - o["start_time"]).total_seconds()) > tol.time_s:
        reasons.append("time")
    return reasons


def reconcile_records(period: str, partner_id: str, ours: list[dict], declared: list[dict], invalid: list[dict],
                      tol: Tolerances) -> pl.DataFrame:
    """Every record of both sides in exactly one class (pure: no I/O)."""
    start, end = period_bounds_utc(period, 1, HOME_ZONE)
    in_window = [t for t in declared if start <= t["start_time"] < end]
    rows = [_row(period, partner_id, "out_of_window", None, t) for t in declared if not start <= t["start_time"] < end]
    pairs = match(ours, in_window, tol)
    for o, t in pairs:
        reasons = classify_pair(o, t, tol)
        rows.append(_row(period, partner_id, "mismatched" if reasons else "matched", o, t, ",".join(reasons)))
    paired_o = {_our_key(o) for o, _ in pairs}
    paired_t = {t["declaration_line"] for _, t in pairs}
    rows += [_row(period, partner_id, "ours_only", o, None) for o in ours if _our_key(o) not in paired_o]
    rows += [_row(period, partner_id, "theirs_only", None, t) for t in in_window if t["declaration_line"] not in paired_t]
    rows += [_row(period, partner_id, "invalid", None, b, b["reasons"]) for b in invalid]
    frame = pl.DataFrame(rows, schema=RECONCILIATION_SCHEMA, orient="row") if rows else \
        pl.DataFrame(schema=RECONCILIATION_SCHEMA)
    key = ["status", "record_id", "declaration_line"]      # then every other column: a total order
    return frame.sort([*key, *(c for c in frame.columns if c not in key)], nulls_last=True)


def reconciliation_totals(rows: pl.DataFrame) -> pl.DataFrame:
    """Counts and amounts per currency and class, plus an ``all`` row per currency: our total vs theirs.

    Amounts of different currencies are never summed together; invalid lines have no currency (null).
    """
    zero = pl.lit(Decimal(0)).cast(AMOUNT)
    amounts = ("our_amount", "their_amount", "disputed_amount")
    agg = [pl.len().cast(pl.Int64).alias("records"), *(pl.col(c).fill_null(zero).sum().cast(AMOUNT).alias(c)
                                                        for c in amounts)]
    currencies = rows.select("currency").unique() if rows.height else pl.DataFrame({"currency": [None]},
                                                                                     schema={"currency": pl.String})
    per = rows.group_by("currency", "status").agg(agg)
    skeleton = currencies.join(pl.DataFrame({"status": list(STATUSES)}), how="cross")
    per = skeleton.join(per, on=["currency", "status"], how="left", nulls_equal=True).with_columns(
        pl.col("records").fill_null(0), *(pl.col(c).fill_null(zero) for c in amounts))
    total = rows.group_by("currency").agg(agg).with_columns(pl.lit("all").alias("status"))
    order = {s: i for i, s in enumerate([*STATUSES, "all"])}
    cols = ["currency", "status", "records", *amounts]
    return (pl.concat([per.select(cols), total.select(cols)], how="vertical_relaxed")
            .with_columns(pl.col("status").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
            .sort("currency", "_order", nulls_last=True).drop("_order"))


def run_reconciliation(settings: Settings, partner_id: str, period: str, declaration: str | Path,
                       tol: Tolerances | None = None) -> Reconciliation:
    """Reconcile one partner's declaration for ``period``; publish rows, write CSVs of rows and disputes."""
    check_partner_id(partner_id)
    tol = tol or Tolerances()
    data = Path(declaration).read_bytes()
    declared, invalid = parse_declaration(data)
    lake = open_store(settings.lake_uri, settings.s3)
    entry_m = published_manifests(lake, "settlement_entries", {"period": period})
    usage_m = _usage_manifests_near(lake, period)        # only dates that can hold the period's records
    entries = read_manifested(lake, entry_m)
    ours = our_records(entries, read_manifested(lake, usage_m) if usage_m else None, partner_id)
    rows = reconcile_records(period, partner_id, ours, declared, invalid, tol)
    totals = reconciliation_totals(rows)
    inputs = {m.prefix: m.run_id for m in [*entry_m, *usage_m]}
    inputs["declaration"] = hashlib.sha256(data).hexdigest()
    run_id = run_id_for(inputs, period=period, partner=partner_id, tolerances=repr(tol))
    write_partition(lake, DATASET, {"period": period, "partner": partner_id}, run_id, rows, inputs=inputs)
    out = Path(settings.output_dir) / "settlement" / period
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in (("reconciliation", rows), ("disputes", rows.filter(
            pl.col("status").is_in(["mismatched", "theirs_only", "ours_only", "out_of_window"]))),
                        ("reconciliation_totals", totals)):
        path = out / f"{name}_{partner_id}.csv"
        path.write_bytes(safe_csv(frame))  # partner text neutralised (CSV injection)
        files.append(str(path))
    return Reconciliation(period, partner_id, run_id, rows, totals, files)
