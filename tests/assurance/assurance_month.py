"""A generated month of the whole chain (contract shapes, written with write_partition) with known leaks.

Fixture data, not mocks: every dataset the controls read is written to a real lake. Faults are
listed in ``LEAKS`` and can be switched off one by one, so a test can prove each control finds
exactly its injected problem and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl

from pipelines.assurance.controls import FILE_MANIFEST_COLUMNS
from pipelines.common.partitions import digest, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import (
    ACCOUNT_SCHEMA,
    DUNNING_STATE_SCHEMA,
    INVOICE_LINE_SCHEMA,
    INVOICE_SCHEMA,
    PAYMENT_ALLOCATION_SCHEMA,
    RATED_SCHEMA,
    SETTLEMENT_ENTRY_SCHEMA,
    SUBSCRIPTION_SCHEMA,
    USAGE_SCHEMA,
)

PERIOD = "2026-10"
DAYS = 31
FILES_PER_DAY = 4
RECORDS_PER_FILE = 8
SOURCES = {"msc-east": "voice", "pgw-1": "data", "smsc": "sms"}
PRICE = {"voice": Decimal("0.0025"), "data": Decimal("0.000000010"), "sms": Decimal("0.09")}
POSTPAID = [f"S{i:03d}" for i in range(1, 11)]       # S009 is the line that is never billed
PREPAID = ["S011", "S012"]
LEAKS = ("missing_file", "duplicate_file", "unrated_destination", "subscription_never_billed",
         "prepaid_debit_mismatch")
"""The leaks the issue names; ``lost_in_rating``, ``file_imbalance`` and ``unbilled_usage`` are extra ones."""
EXTRA_LEAKS = ("lost_in_rating", "file_imbalance", "unbilled_usage", "correction_not_rebilled")
MISSING = ("msc-east", 50)
DUPLICATED = ("pgw-1", 30)
NEVER_BILLED = "S009"


@dataclass
class Month:
    usage: list[dict] = field(default_factory=list)
    manifest: list[dict] = field(default_factory=list)
    rated: list[dict] = field(default_factory=list)
    suspense: list[dict] = field(default_factory=list)
    expected: dict[str, set[str]] = field(default_factory=dict)


def account_of(sub: str) -> str:
    return "A008" if sub in ("S008", "S009", "S010") else "A" + sub[1:]


def msisdn_of(sub: str) -> str:
    return "49151" + f"{int(sub[1:]):07d}"


def quantity_for(service: str, n: int) -> int:
    return {"voice": 30 + (n * 37) % 300, "data": 1_000_000 + (n * 7919) % 5_000_000, "sms": 1}[service]


def _usage_row(source: str, service: str, sub: str, start: datetime, n: int, file_key: str, offset: int,
               payment: str, plan: str) -> dict:
    qty = quantity_for(service, n)
    rid = digest(source, file_key, str(offset))
    return {**{k: None for k in USAGE_SCHEMA}, "record_id": rid, "dedup_key": rid, "source": source,
            "source_file": file_key, "file_sha256": digest("sha", file_key, length=64), "record_offset": offset,
            "network_record_id": f"{source}-{n}", "service": service, "direction": "MO", "msisdn": msisdn_of(sub),
            "imsi": "26201" + sub, "other_party": "4930123456" if service != "data" else "",
            "start_time": start, "duration_s": qty if service == "voice" else 0, "quantity": qty,
            "call_outcome": "answered", "usage_date": start.date(), "subscription_id": sub,
            "account_id": account_of(sub), "plan_id": plan, "payment_type": payment}


def _rated_row(u: dict) -> dict:
    charge = (PRICE[u["service"]] * u["quantity"]).quantize(Decimal("0.000000001"))
    return {"record_id": u["record_id"], "account_id": u["account_id"], "subscription_id": u["subscription_id"],
            "plan_id": u["plan_id"], "payment_type": u["payment_type"], "service": u["service"],
            "start_time": u["start_time"], "usage_date": u["usage_date"], "bill_period": PERIOD,
            "quantity": u["quantity"], "quantity_included": 0, "quantity_charged": u["quantity"], "charge": charge,
            "currency": "EUR", "destination_id": "DE_FIXED", "band": "peak", "rate_id": "R1",
            "allowance_id": None, "tariff_version": "fixture"}


def build(leaks: tuple[str, ...] = LEAKS) -> Month:
    """The month's records; ``expected`` maps control id -> the finding keys the leaks must produce."""
    month = Month()
    start = datetime(2026, 9, 30, 22, tzinfo=UTC)     # 2026-10-01 00:00 Europe/Berlin
    billable = [s for s in POSTPAID if s != NEVER_BILLED]
    n = 0
    for source, service in SOURCES.items():
        seq = 0
        for day in range(DAYS):
            for f in range(FILES_PER_DAY):
                seq += 1
                day_start = start + timedelta(days=day)
                local_day = (day_start + timedelta(hours=2)).strftime("%Y%m%d")
                file_key = f"{source}/{source}_{seq:06d}_{local_day}.csv"
                if "missing_file" in leaks and (source, seq) == MISSING:
                    continue
                rows = []
                for r in range(RECORDS_PER_FILE):
                    n += 1
                    t = day_start + timedelta(hours=6 * f, minutes=(r * 43) % 360)
                    rows.append(_usage_row(source, service, billable[n % len(billable)], t, n, file_key, r + 1,
                                           "postpaid", "P_BASIC"))
                month.usage += rows
                month.manifest.append({"source": source, "source_file": file_key,
                                       "file_sha256": digest("sha", file_key, length=64), "sequence": seq,
                                       "file_date": (day_start + timedelta(hours=2)).date(), "status": "processed",
                                       "records_in": len(rows), "usage": len(rows), "filtered": 0,
                                       "rejected": 0, "duplicate": 0, "suspense": 0})
                if "duplicate_file" in leaks and (source, seq) == DUPLICATED:
                    month.manifest.append({**month.manifest[-1], "source_file": file_key.replace(".csv", "_resent.csv"),
                                           "status": "duplicate_file", "usage": 0,
                                           "duplicate": len(rows)})
    # prepaid charging records: two a day, charged_amount = what the sidecar debited
    for day in range(DAYS):
        for k, sub in enumerate(PREPAID):
            n += 1
            t = start + timedelta(days=day, hours=9 + k)
            file_key = f"chf-prepaid/chf-prepaid_{day + 1:06d}_{t.strftime('%Y%m%d')}.csv"
            u = _usage_row("chf-prepaid", "voice", sub, t, n, file_key, k + 1, "prepaid", "PRE_PAYG")
            u["charged_amount"] = _rated_row(u)["charge"]
            month.usage.append(u)
    for day in range(DAYS):
        key = f"chf-prepaid/chf-prepaid_{day + 1:06d}_{(start + timedelta(days=day, hours=9)).strftime('%Y%m%d')}.csv"
        month.manifest.append({"source": "chf-prepaid", "source_file": key, "file_sha256": digest("sha", key, length=64),
                               "sequence": day + 1, "file_date": (start + timedelta(days=day, hours=2)).date(),
                               "status": "processed", "records_in": 2, "usage": 2, "filtered": 0,
                               "rejected": 0, "duplicate": 0, "suspense": 0})
    month.rated = [_rated_row(u) for u in month.usage]
    exp: dict[str, set[str]] = {c: set() for c in ("C01", "C02", "C03", "C04", "C05", "C06", "C07", "C08", "C09",
                                                    "C10")}
    if "missing_file" in leaks:
        exp["C01"].add("msc-east")
    if "duplicate_file" in leaks:
        exp["C02"].add(f"pgw-1/pgw-1_{DUPLICATED[1]:06d}_20261008_resent.csv")
    if "unrated_destination" in leaks:
        victim = month.usage[101]
        month.rated = [r for r in month.rated if r["record_id"] != victim["record_id"]]
        month.suspense.append({"record_id": victim["record_id"], "reason_code": "UNKNOWN_DESTINATION",
                               "message": "no destination prefix matches 999123"})
        exp["C06"].add(victim["record_id"])
    if "prepaid_debit_mismatch" in leaks:
        victim = next(u for u in month.usage if u["source"] == "chf-prepaid" and u["usage_date"] == date(2026, 10, 12))
        victim["charged_amount"] = victim["charged_amount"] + Decimal("0.20")
        exp["C09"].add(victim["record_id"])
    if "subscription_never_billed" in leaks:
        exp["C08"].add(NEVER_BILLED)
    if "lost_in_rating" in leaks:                 # rated row vanished with no suspense row
        victim = month.usage[202]
        month.rated = [r for r in month.rated if r["record_id"] != victim["record_id"]]
        exp["C05"].add(victim["record_id"])
    if "file_imbalance" in leaks:                 # mediation lost a record of a file
        month.manifest[7]["records_in"] += 1
        exp["C04"].add(month.manifest[7]["source_file"])
    if "unbilled_usage" in leaks:                 # invoice lacks S003's data usage line
        exp["C07"].add("S003")
    if "correction_not_rebilled" in leaks:        # S007's October advance reversed, the actual lines never billed
        exp["C08"].add("S007")
    month.expected = exp
    return month


LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
BERLIN_MIDNIGHT = {d: datetime(d.year, d.month, d.day, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
                   for d in (date(2026, 10, 16), date(2026, 11, 1))}
STOPS_AT_PERIOD_END = "S010"      # valid_to = 2026-11-01 00:00 Berlin: October was billed in advance in September
CHANGES_PLAN = "S007"             # P_BASIC -> P_UNLTD on 2026-10-16: October corrected on October's invoice
FEE = {"P_BASIC": Decimal("10.00"), "P_UNLTD": Decimal("30.00")}
MONTHS = {"2026-09": (date(2026, 9, 1), date(2026, 10, 1)), "2026-10": (date(2026, 10, 1), date(2026, 11, 1)),
          "2026-11": (date(2026, 11, 1), date(2026, 12, 1))}


def subscription_rows() -> list[dict]:
    """Postpaid rows (a plan change is two rows) with the local days each covers: [first, stop)."""
    rows = []
    for s in POSTPAID:
        if s == CHANGES_PLAN:
            rows.append({"sub": s, "plan": "P_BASIC", "valid_from": LONG_AGO, "valid_to": BERLIN_MIDNIGHT[date(2026, 10, 16)],
                         "first": date(2025, 1, 1), "stop": date(2026, 10, 16)})
            rows.append({"sub": s, "plan": "P_UNLTD", "valid_from": BERLIN_MIDNIGHT[date(2026, 10, 16)], "valid_to": None,
                         "first": date(2026, 10, 16), "stop": None})
        elif s == STOPS_AT_PERIOD_END:
            rows.append({"sub": s, "plan": "P_BASIC", "valid_from": LONG_AGO, "valid_to": BERLIN_MIDNIGHT[date(2026, 11, 1)],
                         "first": date(2025, 1, 1), "stop": date(2026, 11, 1)})
        else:
            rows.append({"sub": s, "plan": "P_BASIC", "valid_from": LONG_AGO, "valid_to": None,
                         "first": date(2025, 1, 1), "stop": None})
    return rows


def _recurring(row: dict, month: str, label: str, plan_as_known: str | None = None) -> tuple | None:
    """A pro-rated recurring line of ``row`` for ``month`` as billing writes it (service dates, end exclusive)."""
    start, end = MONTHS[month]
    lo, hi = max(start, row["first"]), min(end, row["stop"] or end)
    if lo >= hi:
        return None
    plan = plan_as_known or row["plan"]
    fee = FEE[plan] * (hi - lo).days / (end - start).days
    return ("recurring", row["sub"], None, fee.quantize(Decimal("0.000000001")), lo, hi, f"{plan}{label}", plan)


def invoices_for(month: Month, leaks: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Per postpaid account, as billing bills in advance: a September first bill (September + October in
    advance, as the subscriptions stood then) and the October invoice (November in advance, corrections
    for October, usage per line and service)."""
    usage_sum: dict[tuple[str, str], Decimal] = {}
    for r in month.rated:
        if r["payment_type"] == "postpaid":
            key = (r["subscription_id"], r["service"])
            usage_sum[key] = usage_sum.get(key, Decimal(0)) + r["charge"]
    as_in_september = [{**r, "stop": None} for r in subscription_rows() if r["first"] < date(2026, 10, 1)]
    invoices, lines = [], []
    for period in ("2026-09", PERIOD):
        for account in sorted({account_of(s) for s in POSTPAID}):
            inv_id = f"INV-{period}-{account}" if period != PERIOD else "INV-" + account
            subs = [s for s in POSTPAID if account_of(s) == account]
            inv_lines = []
            for s in subs:
                if s == NEVER_BILLED and "subscription_never_billed" in leaks:
                    continue
                if period == "2026-09":
                    for row in (r for r in as_in_september if r["sub"] == s):
                        inv_lines += [_recurring(row, "2026-09", ", this period"), _recurring(row, "2026-10", ", in advance")]
                    continue
                if s == CHANGES_PLAN:          # the October advance line no longer matches: reverse, bill actual
                    (then,) = [r for r in as_in_september if r["sub"] == s]
                    kind, sub, svc, amount, lo, hi, desc, plan = _recurring(then, "2026-10", ", in advance")
                    inv_lines.append((kind, sub, svc, -amount, lo, hi, f"Reversal: {desc} (invoice INV-2026-09)", plan))
                    if "correction_not_rebilled" not in leaks:
                        inv_lines += [_recurring(r, PERIOD, ", correction") for r in subscription_rows() if r["sub"] == s]
                inv_lines += [_recurring(r, "2026-11", ", in advance") for r in subscription_rows() if r["sub"] == s]
                for service in SOURCES.values():
                    if (s, service) in usage_sum and not ("unbilled_usage" in leaks and (s, service) == ("S003", "data")):
                        inv_lines.append(("usage", s, service, usage_sum[(s, service)], *MONTHS[PERIOD],
                                          f"{service} usage", "P_BASIC"))
            total = Decimal(0)
            for no, (kind, s, service, amount, lo, hi, desc, plan) in enumerate(filter(None, inv_lines), start=1):
                rounded = amount.quantize(Decimal("0.01"))
                total += rounded
                lines.append({**{k: None for k in INVOICE_LINE_SCHEMA}, "invoice_id": inv_id, "line_no": no,
                              "account_id": account, "period": period, "line_type": kind, "subscription_id": s,
                              "plan_id": plan, "service": service, "amount_precise": amount, "amount": rounded,
                              "currency": "EUR", "tax_category": "telecom", "description": desc,
                              "service_start": lo, "service_end": hi})
            invoices.append({**{k: None for k in INVOICE_SCHEMA}, "invoice_id": inv_id, "account_id": account,
                             "period": period, "status": "finalised", "kind": "invoice", "currency": "EUR",
                             "subtotal": total, "tax_total": Decimal("0.00"), "total": total})
    return invoices, lines


def write_month(settings: Settings, leaks: tuple[str, ...] = LEAKS, extra_usage: list[dict] | None = None) -> Month:
    """Write every dataset of the month to the lake; returns the month (with its expected findings)."""
    month = build(leaks)
    lake = open_store(settings.lake_uri, settings.s3)

    def put(dataset: str, rows: list[dict], schema: dict, part: dict | None = None) -> None:
        frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
        write_partition(lake, dataset, part or {"period": PERIOD}, "fixture", frame)

    usage_schema = {**USAGE_SCHEMA, "charged_amount": pl.Decimal(38, 9)}
    usage = [{"charged_amount": None, **u} for u in month.usage + (extra_usage or [])]
    by_day: dict[date, list[dict]] = {}
    for u in usage:
        by_day.setdefault(u["usage_date"], []).append(u)
    for day, rows in sorted(by_day.items()):
        put("usage", rows, usage_schema, {"usage_date": day.isoformat()})
    put("file_manifest", [{**dict.fromkeys(FILE_MANIFEST_COLUMNS), **m} for m in month.manifest], FILE_MANIFEST_COLUMNS, {})
    entries = [{"record_id": u["record_id"], "partner_id": "IC_CARRIER1", "partner_type": "interconnect",
                "direction": "payable", "service": "voice", "start_time": u["start_time"], "usage_date": u["usage_date"],
                "quantity": u["quantity"], "amount": Decimal("0.001") * u["quantity"], "currency": "EUR",
                "rate_id": "IC1", "band": "peak"} for u in month.usage if u["source"] == "msc-east"]
    put("settlement_entries", entries, SETTLEMENT_ENTRY_SCHEMA)
    put("rated", month.rated, RATED_SCHEMA)
    put("rating_suspense", month.suspense, {"record_id": pl.String, "reason_code": pl.String, "message": pl.String})
    all_invoices, all_lines = invoices_for(month, leaks)
    for period in ("2026-09", PERIOD):
        put("invoices", [i for i in all_invoices if i["period"] == period], INVOICE_SCHEMA, {"period": period})
        put("invoice_lines", [ln for ln in all_lines if ln["period"] == period], INVOICE_LINE_SCHEMA, {"period": period})
    invoices = [i for i in all_invoices if i["period"] == PERIOD]
    subs = [{"subscription_id": r["sub"], "account_id": account_of(r["sub"]), "msisdn": msisdn_of(r["sub"]),
             "imsi": "26201" + r["sub"], "plan_id": r["plan"], "payment_type": "postpaid",
             "valid_from": r["valid_from"], "valid_to": r["valid_to"]} for r in subscription_rows()]
    subs += [{"subscription_id": s, "account_id": account_of(s), "msisdn": msisdn_of(s), "imsi": "26201" + s,
              "plan_id": "PRE_PAYG", "payment_type": "prepaid", "valid_from": LONG_AGO, "valid_to": None}
             for s in PREPAID]
    put("customers/subscriptions", subs, SUBSCRIPTION_SCHEMA, {"snapshot": "fixture"})
    accounts = [{**{k: None for k in ACCOUNT_SCHEMA}, "account_id": a, "name": a, "currency": "EUR",
                 "timezone": "Europe/Berlin", "bill_cycle_day": 1, "segment": "consumer"}
                for a in sorted({account_of(s) for s in POSTPAID + PREPAID})]
    put("customers/accounts", accounts, ACCOUNT_SCHEMA, {"snapshot": "fixture"})
    allocations = [{"account_id": i["account_id"], "payment_id": "PAY-" + i["invoice_id"], "invoice_id": i["invoice_id"],
                    "allocation_date": date(2026, 11, 10), "amount": i["total"], "allocation_type": "allocated"}
                   for i in invoices[:5]]
    put("collections/allocations", allocations, PAYMENT_ALLOCATION_SCHEMA, {"as_of": "2026-11-15"})
    for as_of, scale in ((date(2026, 11, 20), Decimal(2)), (date(2026, 11, 30), Decimal(1))):  # latest counts
        dunning = [{"account_id": "A001", "as_of": as_of, "step": 0, "step_code": "NONE", "step_since": as_of,
                    "barring": "none", "overdue": Decimal("12.34") * scale, "days_past_due": 20,
                    "excluded_reason": "dispute"},
                   {"account_id": "A002", "as_of": as_of, "step": 7, "step_code": "WRITE_OFF", "step_since": as_of,
                    "barring": "hard", "overdue": Decimal("5.00") * scale, "days_past_due": 120,
                    "excluded_reason": None}]
        put("collections/dunning_state", dunning, DUNNING_STATE_SCHEMA, {"as_of": as_of.isoformat()})
    return month
