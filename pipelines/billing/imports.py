"""Import account-specific billing items: one-off charges applied and adjustments/credits.

Files are CSV with a header (layouts in docs/billing.md). Each import writes the good rows to
``billing/charges`` or ``billing/adjustments`` and the bad ones, with a reason code, to
``billing/import_rejects``, all partitioned by ``batch=<file digest>``: re-importing the same file
rewrites the same partition (idempotent), and an ``item_ref`` seen in an earlier batch is rejected
as ``DUPLICATE_REF`` so nothing is billed twice. An item the bill cycle could never bill is rejected
too, never silently kept: ``UNKNOWN_ACCOUNT`` (not in ``customers/accounts``) and ``PERIOD_CLOSED``
(its date falls in a bill period already finalised for the account's billing account; correct a
finalised invoice with a credit note). Conservation: rows in = imported + rejected.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from pipelines.billing.catalogue import TAX_CATEGORIES, load_catalogue
from pipelines.billing.compute import ADJUSTMENT_SIGNS, account_period
from pipelines.billing.cycle import root_accounts
from pipelines.common.money import MoneyError, money
from pipelines.common.partitions import digest, read_published, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store

CHARGES_SCHEMA = {"item_ref": pl.String, "account_id": pl.String, "subscription_id": pl.String,
                  "charge_code": pl.String, "amount": pl.Decimal(38, 9), "item_date": pl.Date,
                  "description": pl.String, "batch": pl.String}
ADJUSTMENTS_SCHEMA = {"item_ref": pl.String, "account_id": pl.String, "kind": pl.String,
                      "amount": pl.Decimal(38, 9), "item_date": pl.Date, "reason": pl.String,
                      "tax_category": pl.String, "batch": pl.String}
REJECTS_SCHEMA = {"batch": pl.String, "dataset": pl.String, "line": pl.Int64, "reason_code": pl.String,
                  "message": pl.String, "raw": pl.String}
KINDS = {"charges": CHARGES_SCHEMA, "adjustments": ADJUSTMENTS_SCHEMA}


class Reject(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ImportResult:
    dataset: str
    batch: str
    rows_in: int
    imported: int
    rejected: int


def _required(row: dict[str, str], name: str) -> str:
    value = (row.get(name) or "").strip()
    if not value:
        raise Reject("MISSING_FIELD", f"{name} is required")
    return value


def _amount(text: str, required: bool) -> Decimal | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise Reject("MISSING_FIELD", "amount is required")
        return None
    try:
        value = money(text)
    except MoneyError as exc:
        raise Reject("BAD_AMOUNT", str(exc)) from exc
    if value < 0:
        raise Reject("BAD_AMOUNT", f"amount must be positive (the kind gives the sign), got {value}")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Reject("BAD_DATE", f"item_date must be YYYY-MM-DD, got {text!r}") from exc


def parse_charge(row: dict[str, str], codes: set[str]) -> dict[str, Any]:
    code = _required(row, "charge_code")
    if code not in codes:
        raise Reject("UNKNOWN_CHARGE_CODE", f"charge_code {code!r} is not in tariffs/one_off_charges.csv")
    return {"item_ref": _required(row, "item_ref"), "account_id": _required(row, "account_id"),
            "subscription_id": (row.get("subscription_id") or "").strip() or None, "charge_code": code,
            "amount": _amount(row.get("amount", ""), required=False), "item_date": _date(_required(row, "item_date")),
            "description": (row.get("description") or "").strip() or None}


def parse_adjustment(row: dict[str, str], codes: set[str]) -> dict[str, Any]:
    kind = _required(row, "kind")
    if kind not in ADJUSTMENT_SIGNS:
        raise Reject("BAD_KIND", f"kind must be one of {sorted(ADJUSTMENT_SIGNS)}, got {kind!r}")
    category = (row.get("tax_category") or "telecom").strip()
    if category not in TAX_CATEGORIES:
        raise Reject("BAD_TAX_CATEGORY", f"tax_category must be one of {TAX_CATEGORIES}, got {category!r}")
    return {"item_ref": _required(row, "item_ref"), "account_id": _required(row, "account_id"), "kind": kind,
            "amount": _amount(row.get("amount", ""), required=True), "item_date": _date(_required(row, "item_date")),
            "reason": (row.get("reason") or "").strip() or None, "tax_category": category}


@dataclass(frozen=True)
class BillableAccounts:
    """Which accounts exist (-> their billing account) and the date windows already finalised per billing account."""

    roots: dict[str, str]
    closed: dict[str, list[tuple[date, date, str]]]

    @classmethod
    def from_lake(cls, accounts: pl.DataFrame | None, invoices: pl.DataFrame | None) -> BillableAccounts:
        rows = [] if accounts is None else accounts.unique("account_id", keep="last").sort("account_id").to_dicts()
        by_id = {a["account_id"]: a for a in rows}
        closed: dict[str, list[tuple[date, date, str]]] = {}
        if invoices is not None and invoices.height:
            final = invoices.filter((pl.col("kind") == "invoice") & (pl.col("status") == "finalised"))
            for acc_id, period in sorted(set(final.select("account_id", "period").iter_rows())):
                if acc_id in by_id:
                    start, end = account_period(by_id[acc_id], period)
                    closed.setdefault(acc_id, []).append((start, end, period))
        return cls(root_accounts(rows), closed)

    def check(self, item: dict[str, Any]) -> None:
        """Reject an item the bill cycle would never bill."""
        account = item["account_id"]
        if account not in self.roots:
            raise Reject("UNKNOWN_ACCOUNT", f"account {account} is not in customers/accounts")
        root = self.roots[account]
        for start, end, period in self.closed.get(root, []):
            if start <= item["item_date"] < end:
                raise Reject("PERIOD_CLOSED", f"item_date {item['item_date']} is in period {period} of billing "
                                              f"account {root}, already finalised: bill it in an open period or "
                                              "issue a credit note")


def import_items(settings: Settings, kind: str, data: bytes, name: str = "") -> ImportResult:
    """Validate and land one CSV file of charges or adjustments; bad rows are rejected, never fatal."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    lake = open_store(settings.lake_uri, settings.s3)
    dataset = f"billing/{kind}"
    batch = digest(kind, data)
    seen = read_published(lake, dataset)
    seen_refs = set() if seen is None else set(seen.filter(pl.col("batch") != batch)["item_ref"].to_list())
    # a re-import of the same file keeps the items it landed before (idempotent even once their period closed)
    landed = set() if seen is None else set(seen.filter(pl.col("batch") == batch)["item_ref"].to_list())
    billable = BillableAccounts.from_lake(read_published(lake, "customers/accounts"), read_published(lake, "invoices"))
    codes = {o.charge_code for o in load_catalogue(settings.tariffs_dir).one_offs}
    parse = parse_charge if kind == "charges" else parse_adjustment
    good, bad = [], []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name or kind}: not UTF-8 text: {exc}") from exc
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        raw = ",".join(v or "" for v in row.values() if isinstance(v, str))
        try:
            item = parse(row, codes)
            if item["item_ref"] not in landed:
                billable.check(item)
            if item["item_ref"] in seen_refs:
                raise Reject("DUPLICATE_REF", f"item_ref {item['item_ref']} was already imported")
            seen_refs.add(item["item_ref"])
            good.append({**item, "batch": batch})
        except Reject as rej:
            bad.append({"batch": batch, "dataset": dataset, "line": line, "reason_code": rej.code,
                        "message": str(rej), "raw": raw})
    schema = KINDS[kind]
    frame = pl.DataFrame(good, schema=schema, orient="row") if good else pl.DataFrame(schema=schema)
    write_partition(lake, dataset, {"batch": batch}, batch, frame.sort("item_ref"), inputs={name or kind: batch})
    rejects = pl.DataFrame(bad, schema=REJECTS_SCHEMA, orient="row") if bad else pl.DataFrame(schema=REJECTS_SCHEMA)
    write_partition(lake, "billing/import_rejects", {"batch": batch}, batch, rejects, inputs={name or kind: batch})
    return ImportResult(dataset, batch, len(good) + len(bad), len(good), len(bad))
