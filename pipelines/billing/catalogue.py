"""The billing catalogue: plans, tax rules, discounts, commitments and one-off charge types.

Every file is an effective-dated CSV in the tariffs folder (``valid_from`` inclusive, ``valid_to``
exclusive, empty = open). Amounts are parsed with :func:`money` (never float); a malformed file
raises :class:`CatalogueError` naming the file and line, because billing with a half-read catalogue
would be wrong for every account.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path

from pipelines.common.money import MoneyError, money
from pipelines.common.partitions import digest

CATALOGUE_FILES = ("plans.csv", "tax_rules.csv", "discounts.csv", "commitments.csv", "one_off_charges.csv")
TAX_CATEGORIES = ("telecom", "device", "exempt")
DISCOUNT_LEVELS = ("plan", "line", "account")
DISCOUNT_APPLIES_TO = ("recurring", "usage", "all")


class CatalogueError(ValueError):
    """A catalogue file is missing or malformed; fix the file and rerun."""


@dataclass(frozen=True)
class Effective:
    valid_from: date
    valid_to: date | None

    def active_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass(frozen=True)
class Plan(Effective):
    plan_id: str
    name: str
    payment_type: str
    monthly_fee: Decimal
    currency: str


@dataclass(frozen=True)
class TaxRule(Effective):
    jurisdiction: str
    tax_code: str
    name: str
    tax_category: str
    rate: Decimal          # fraction, e.g. 0.19
    sequence: int
    compound: bool         # base includes the earlier (lower sequence) taxes of the same category
    rounding: str
    gl_account: str


@dataclass(frozen=True)
class Discount(Effective):
    discount_id: str
    name: str
    level: str
    target: str
    kind: str              # percent | fixed
    value: Decimal         # percent points or currency amount
    applies_to: str


@dataclass(frozen=True)
class Commitment(Effective):
    commitment_id: str
    account_id: str
    name: str
    min_amount: Decimal
    currency: str


@dataclass(frozen=True)
class OneOffType(Effective):
    charge_code: str
    name: str
    default_amount: Decimal | None
    currency: str
    tax_category: str
    gl_account: str


@dataclass(frozen=True)
class Catalogue:
    plans: tuple[Plan, ...]
    tax_rules: tuple[TaxRule, ...]
    discounts: tuple[Discount, ...]
    commitments: tuple[Commitment, ...]
    one_offs: tuple[OneOffType, ...]
    version: str

    @cached_property
    def _plans_by_id(self) -> dict[str, list[Plan]]:
        out: dict[str, list[Plan]] = {}
        for p in self.plans:
            out.setdefault(p.plan_id, []).append(p)
        return out

    @cached_property
    def _discounts_by_target(self) -> dict[tuple[str, str], list[Discount]]:
        out: dict[tuple[str, str], list[Discount]] = {}
        for d in sorted(self.discounts, key=lambda d: (d.kind != "percent", d.discount_id)):
            out.setdefault((d.level, d.target), []).append(d)
        return out

    def plan(self, plan_id: str, on: date) -> Plan | None:
        return next((p for p in self._plans_by_id.get(plan_id, ()) if p.active_on(on)), None)

    def rules_for(self, jurisdiction: str, on: date) -> list[TaxRule]:
        """Rules of a jurisdiction and its parents ("DE-BE" inherits "DE"); the most specific rule
        for a tax code and category wins."""
        chosen: dict[tuple[str, str], TaxRule] = {}
        for r in self.tax_rules:
            if r.active_on(on) and (r.jurisdiction == jurisdiction or jurisdiction.startswith(r.jurisdiction + "-")):
                key = (r.tax_code, r.tax_category)
                if key not in chosen or len(r.jurisdiction) > len(chosen[key].jurisdiction):
                    chosen[key] = r
        return sorted(chosen.values(), key=lambda r: (r.tax_category, r.sequence, r.tax_code))

    def discounts_for(self, level: str, target: str, on: date) -> list[Discount]:
        """Discounts of one level for one target, percent before fixed, then by id (the stacking order)."""
        return [d for d in self._discounts_by_target.get((level, target), ()) if d.active_on(on)]

    def commitment_for(self, account_id: str, on: date) -> Commitment | None:
        return next((c for c in self.commitments if c.account_id == account_id and c.active_on(on)), None)

    def one_off(self, code: str, on: date) -> OneOffType | None:
        return next((o for o in self.one_offs if o.charge_code == code and o.active_on(on)), None)


def _date(text: str, where: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CatalogueError(f"{where}: not a date: {text!r}") from exc


def _amount(text: str, where: str) -> Decimal:
    try:
        return money(text)
    except MoneyError as exc:
        raise CatalogueError(f"{where}: {exc}") from exc


def _rows(folder: Path, name: str) -> list[tuple[str, dict[str, str]]]:
    path = folder / name
    if not path.is_file():
        raise CatalogueError(f"catalogue file {path} is missing")
    with path.open(newline="", encoding="utf-8") as fh:
        return [(f"{name} line {i}", row) for i, row in enumerate(csv.DictReader(fh), start=2)]


def _effective(row: dict[str, str], where: str) -> dict[str, date | None]:
    start = _date(row.get("valid_from", ""), where)
    if start is None:
        raise CatalogueError(f"{where}: valid_from is required")
    return {"valid_from": start, "valid_to": _date(row.get("valid_to", ""), where)}


def _check(value: str, allowed: tuple[str, ...], where: str, what: str) -> str:
    if value not in allowed:
        raise CatalogueError(f"{where}: {what} {value!r} is not one of {allowed}")
    return value


def load_catalogue(tariffs_dir: str | Path) -> Catalogue:
    """Read and validate the billing catalogue; its version is a digest of the files' bytes."""
    folder = Path(tariffs_dir)
    plans = tuple(
        Plan(plan_id=r["plan_id"], name=r["name"], payment_type=r["payment_type"],
             monthly_fee=_amount(r["monthly_fee"], w), currency=r["currency"], **_effective(r, w))
        for w, r in _rows(folder, "plans.csv")
    )
    rules = tuple(
        TaxRule(jurisdiction=r["jurisdiction"], tax_code=r["tax_code"], name=r["name"],
                tax_category=_check(r["tax_category"], TAX_CATEGORIES, w, "tax_category"),
                rate=_amount(r["rate_percent"], w) / 100, sequence=int(r["sequence"]),
                compound=r["compound"].strip().lower() == "true", rounding=r["rounding"] or "half_up",
                gl_account=r["gl_account"], **_effective(r, w))
        for w, r in _rows(folder, "tax_rules.csv")
    )
    discounts = tuple(
        Discount(discount_id=r["discount_id"], name=r["name"],
                 level=_check(r["level"], DISCOUNT_LEVELS, w, "level"), target=r["target"],
                 kind=_check(r["kind"], ("percent", "fixed"), w, "kind"), value=_amount(r["value"], w),
                 applies_to=_check(r["applies_to"], DISCOUNT_APPLIES_TO, w, "applies_to"), **_effective(r, w))
        for w, r in _rows(folder, "discounts.csv")
    )
    commitments = tuple(
        Commitment(commitment_id=r["commitment_id"], account_id=r["account_id"], name=r["name"],
                   min_amount=_amount(r["min_amount"], w), currency=r["currency"], **_effective(r, w))
        for w, r in _rows(folder, "commitments.csv")
    )
    one_offs = tuple(
        OneOffType(charge_code=r["charge_code"], name=r["name"],
                   default_amount=_amount(r["default_amount"], w) if r["default_amount"].strip() else None,
                   currency=r["currency"], tax_category=_check(r["tax_category"], TAX_CATEGORIES, w, "tax_category"),
                   gl_account=r["gl_account"], **_effective(r, w))
        for w, r in _rows(folder, "one_off_charges.csv")
    )
    version = digest(*(name.encode() + (folder / name).read_bytes() for name in CATALOGUE_FILES))
    return Catalogue(plans, rules, discounts, commitments, one_offs, version)
