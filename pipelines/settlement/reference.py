"""Settlement reference data: exchange rates, content partners, dealers and roaming partner names.

Every table is an effective-dated CSV in the catalogue folder (``valid_from`` inclusive,
``valid_to`` exclusive, empty = open-ended). A period uses the row valid on its first day, so an
old period always settles with the rates that applied then.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from pipelines.common.money import money
from pipelines.common.periods import period_dates

EXCHANGE_RATES = "exchange_rates.csv"
CONTENT_PARTNERS = "content_partners.csv"
DEALERS = "dealers.csv"

ROAMING_PARTNERS: dict[str, tuple[str, str]] = {
    "FRAF1": ("Orange France", "FR"),
    "ESPTE": ("Telefonica Moviles Espana", "ES"),
    "GBRCN": ("Telbill UK Roaming Partner", "GB"),
    "USAAT": ("AT&T Mobility", "US"),
    "TURTC": ("Turkcell", "TR"),
}
"""Display names of the roaming partners (TADIG) from the shared domain facts."""


class ReferenceError(ValueError):
    """A reference table is missing a row the period needs, or holds a bad value."""


@dataclass(frozen=True)
class ContentPartner:
    partner_id: str
    name: str
    rating_group: int
    share_pct: Decimal
    currency: str


@dataclass(frozen=True)
class Dealer:
    dealer_id: str
    name: str
    activation_commission: Decimal
    chargeback_days: int
    residual_share_pct: Decimal
    currency: str


def _rows(tariffs_dir: str, name: str) -> list[dict[str, str]]:
    path = Path(tariffs_dir) / name
    if not path.exists():
        raise ReferenceError(f"reference table {path} is missing; settlement needs it")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _valid_on(row: dict[str, str], day: date) -> bool:
    start = date.fromisoformat(row["valid_from"])
    end = date.fromisoformat(row["valid_to"]) if row.get("valid_to") else None
    return start <= day and (end is None or day < end)


def reference_checksums(tariffs_dir: str) -> dict[str, str]:
    """sha256 of each reference file: recorded in manifests so a rerun proves what it used."""
    out = {}
    for name in (EXCHANGE_RATES, CONTENT_PARTNERS, DEALERS):
        path = Path(tariffs_dir) / name
        if path.exists():
            out[f"tariffs/{name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def exchange_rates(tariffs_dir: str, period: str) -> dict[str, Decimal]:
    """EUR value of one unit of each currency, as valid on the period's first day."""
    day = period_dates(period)[0]
    rates: dict[str, Decimal] = {}
    for row in _rows(tariffs_dir, EXCHANGE_RATES):
        if _valid_on(row, day):
            cur = row["currency"].strip().upper()
            if cur in rates:
                raise ReferenceError(f"{EXCHANGE_RATES}: overlapping rows for {cur} on {day}")
            rate = money(row["rate_to_eur"])
            if rate <= 0:
                raise ReferenceError(f"{EXCHANGE_RATES}: rate for {cur} must be positive, got {rate}")
            rates[cur] = rate
    return rates


def content_partners(tariffs_dir: str, period: str) -> dict[str, ContentPartner]:
    day = period_dates(period)[0]
    return {
        r["partner_id"]: ContentPartner(r["partner_id"], r["name"], int(r["rating_group"]), money(r["share_pct"]),
                                        r["currency"])
        for r in _rows(tariffs_dir, CONTENT_PARTNERS) if _valid_on(r, day)
    }


def dealers(tariffs_dir: str, period: str) -> dict[str, Dealer]:
    day = period_dates(period)[0]
    return {
        r["dealer_id"]: Dealer(r["dealer_id"], r["name"], money(r["activation_commission"]),
                               int(r["chargeback_days"]), money(r["residual_share_pct"]), r["currency"])
        for r in _rows(tariffs_dir, DEALERS) if _valid_on(r, day)
    }


def partner_name(partner_id: str, partner_type: str, contents: dict[str, ContentPartner],
                 dealer_table: dict[str, Dealer]) -> str:
    """Human name of a partner for statements; falls back to its id (interconnect carriers)."""
    if partner_type == "roaming" and partner_id in ROAMING_PARTNERS:
        return ROAMING_PARTNERS[partner_id][0]
    if partner_type == "content" and partner_id in contents:
        return contents[partner_id].name
    if partner_type == "dealer" and partner_id in dealer_table:
        return dealer_table[partner_id].name
    return partner_id
