"""One account's bill for one period, as a pure function of its inputs.

Order of work (each step documented in docs/billing.md):
1. recurring charges per postpaid subscription row, pro-rated by local calendar days;
2. plan-level discounts on each recurring line;
3. usage charges per line and service (from rated usage, allowance shown);
4. line-level discounts on the line's recurring and/or usage lines;
5. one-off charges (never discounted);
6. account-level discounts on the account's discountable lines;
7. B2B minimum commitment true-up;
8. adjustments and credits;
9. taxes per jurisdiction and tax category on the sum of the rounded lines.

Every line keeps its precise amount (9 decimals) and the amount rounded once, half-up, to the
currency's minor unit. The invoice total is the sum of the rounded lines plus the rounded taxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.billing.catalogue import Catalogue, Discount
from pipelines.common.money import AMOUNT_SCALE, round_to_currency
from pipelines.common.partitions import digest
from pipelines.common.periods import period_dates

ZERO = Decimal(0)
PRECISE = Decimal(1).scaleb(-AMOUNT_SCALE)
DEFAULT_ENTITY = "TBM"
USAGE_GL = {"voice": "4010", "sms": "4020", "data": "4030", "event": "4040"}
GL = {"recurring": "4000", "discount": "4900", "commitment": "4050", "adjustment": "4950", "receivable": "1200"}
USAGE_UNITS = {"voice": "s", "sms": "events", "data": "bytes", "event": "events"}


class BillingError(ValueError):
    """An account cannot be billed as its data stands (reason code + message); the run reports it."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class Line:
    """One invoice line: what, for which subscription, precise and rounded amount, tax category, GL."""

    line_type: str            # recurring | usage | discount | one_off | commitment | adjustment | credit
    charge_code: str
    description: str
    amount_precise: Decimal
    amount: Decimal
    tax_category: str
    gl_account: str
    subscription_id: str | None = None
    msisdn: str | None = None
    plan_id: str | None = None
    service: str | None = None
    quantity: int | None = None
    quantity_included: int | None = None
    quantity_charged: int | None = None
    unit: str | None = None
    service_start: date | None = None
    service_end: date | None = None
    ref: str | None = None    # discount id, item ref, commitment id, rated rate ids ...


@dataclass(frozen=True)
class TaxLine:
    jurisdiction: str
    tax_code: str
    name: str
    tax_category: str
    rate: Decimal
    base: Decimal
    amount_precise: Decimal
    amount: Decimal
    gl_account: str


@dataclass(frozen=True)
class PrepaidSummary:
    """A prepaid line on a convergent bill: information only, never part of the total."""

    subscription_id: str
    msisdn: str
    plan_id: str
    service: str
    quantity: int
    quantity_included: int
    charge: Decimal          # debited from the prepaid balance (rounded for display)
    topups: Decimal


@dataclass(frozen=True)
class InvoiceDraft:
    invoice_id: str
    account_id: str
    account_name: str
    billing_entity: str
    period: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    currency: str
    jurisdiction: str
    revision: int
    lines: tuple[Line, ...]
    tax_lines: tuple[TaxLine, ...]
    prepaid: tuple[PrepaidSummary, ...]
    previous_balance: Decimal
    payments_received: Decimal
    address: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "invoice"
    status: str = "draft"
    invoice_number: str | None = None
    related_invoice_number: str | None = None
    status_reason: str | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return sum((t.amount for t in self.tax_lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_total

    @property
    def amount_due(self) -> Decimal:
        return self.previous_balance - self.payments_received + self.total

    @property
    def payment_reference(self) -> str:
        return "TB" + digest("payref", self.invoice_id, length=12).upper()


def invoice_id_for(account_id: str, period: str, kind: str = "invoice", revision: int = 0) -> str:
    """Stable id: the same account, period and revision always give the same invoice id."""
    return digest("invoice", account_id, period, kind, str(revision))


def precise(amount: Decimal) -> Decimal:
    return amount.quantize(PRECISE)


def make_line(amount_precise: Decimal, currency: str, **fields: Any) -> Line:
    """A line rounded once, half-up, to the currency's minor unit."""
    exact = precise(amount_precise)
    return Line(amount_precise=exact, amount=round_to_currency(exact, currency), **fields)


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def local_date(instant: datetime | None, tz: str) -> date | None:
    if instant is None:
        return None
    if instant.tzinfo is None:
        raise BillingError("NAIVE_TIMESTAMP", f"instant {instant} has no time zone; expected UTC")
    return instant.astimezone(_zone(tz)).date()


def active_days(start: date, end: date, valid_from: date, valid_to: date | None) -> tuple[date, date] | None:
    """The part of ``[start, end)`` a subscription covers: its first day counts, its stop day does not."""
    lo = max(start, valid_from)
    hi = min(end, valid_to) if valid_to is not None else end
    return (lo, hi) if lo < hi else None


# -- 1 + 2: recurring charges and plan discounts ---------------------------------------------------
def recurring_lines(sub: Mapping[str, Any], tz: str, start: date, end: date, cat: Catalogue,
                    currency: str, suffix: str = "") -> list[Line]:
    """Monthly fee x active days / days in period, one line per subscription row (a plan change is two rows)."""
    span = active_days(start, end, local_date(sub["valid_from"], tz), local_date(sub.get("valid_to"), tz))
    if span is None:
        return []
    plan = cat.plan(sub["plan_id"], start)
    if plan is None:
        raise BillingError("UNKNOWN_PLAN", f"plan {sub['plan_id']!r} of {sub['subscription_id']} not in catalogue")
    if plan.currency != currency:
        raise BillingError("CURRENCY_MISMATCH", f"plan {plan.plan_id} is in {plan.currency}, account in {currency}")
    days, period_days = (span[1] - span[0]).days, (end - start).days
    fee = plan.monthly_fee * days / period_days if days != period_days else plan.monthly_fee
    label = (plan.name if days == period_days else f"{plan.name} ({days}/{period_days} days)") + suffix
    common = dict(subscription_id=sub["subscription_id"], msisdn=sub["msisdn"], plan_id=plan.plan_id,
                  service_start=span[0], service_end=span[1], tax_category="telecom")
    out = [make_line(fee, currency, line_type="recurring", charge_code=f"RC_{plan.plan_id}", description=label,
                     gl_account=GL["recurring"], quantity=days, unit="days", **common)]
    base = out[0].amount
    for d in cat.discounts_for("plan", plan.plan_id, start):
        if d.applies_to not in ("recurring", "all") or base <= 0:
            continue
        line = discount_line(d, base, currency, suffix, **common)
        out.append(line)
        base += line.amount
    return out


def discount_line(d: Discount, base: Decimal, currency: str, suffix: str = "", **fields: Any) -> Line:
    """Percent of the remaining (rounded) base, or a fixed amount capped at that base: never below zero."""
    raw = base * d.value / 100 if d.kind == "percent" else min(d.value, base)
    fields.setdefault("tax_category", "telecom")
    return make_line(-raw, currency, line_type="discount", charge_code=d.discount_id, description=d.name + suffix,
                     gl_account=GL["discount"], ref=d.discount_id, **fields)


# -- 3: usage ----------------------------------------------------------------------------------------
def usage_lines(usage: Iterable[Mapping[str, Any]], sub_info: Mapping[str, Mapping[str, Any]], currency: str,
                start: date, end: date) -> list[Line]:
    """One line per (subscription, service): rated charges summed precisely, rounded once."""
    out = []
    for u in usage:
        sub = sub_info.get(u["subscription_id"], {})
        if u["currency"] != currency:
            raise BillingError("CURRENCY_MISMATCH", f"rated usage in {u['currency']}, account in {currency}")
        service = u["service"]
        out.append(make_line(
            u["charge"], currency, line_type="usage", charge_code=f"USAGE_{service.upper()}",
            description=f"{service.capitalize()} usage", tax_category="telecom", gl_account=USAGE_GL.get(service, "4040"),
            subscription_id=u["subscription_id"], msisdn=sub.get("msisdn"), plan_id=u.get("plan_id"), service=service,
            quantity=int(u["quantity"]), quantity_included=int(u["quantity_included"]),
            quantity_charged=int(u["quantity_charged"]), unit=USAGE_UNITS.get(service, "units"),
            service_start=start, service_end=end,
        ))
    return out


def line_discounts(lines: list[Line], cat: Catalogue, start: date, currency: str) -> list[Line]:
    """Line-level discounts (target = subscription id) after plan discounts."""
    out = []
    for sub_id in sorted({ln.subscription_id for ln in lines if ln.subscription_id}):
        mine = [ln for ln in lines if ln.subscription_id == sub_id]
        for d in cat.discounts_for("line", sub_id, start):
            base = sum((ln.amount for ln in mine if _discountable(ln, d.applies_to)), ZERO)
            base += sum((ln.amount for ln in out if ln.subscription_id == sub_id), ZERO)
            if base <= 0:
                continue
            out.append(discount_line(d, base, currency, subscription_id=sub_id, msisdn=mine[0].msisdn))
    return out


def _discountable(line: Line, applies_to: str) -> bool:
    kinds = {"recurring": ("recurring", "discount"), "usage": ("usage",),
             "all": ("recurring", "usage", "discount")}[applies_to]
    return line.line_type in kinds and line.tax_category == "telecom"


# -- 5 + 8: account items (one-off charges, adjustments) ---------------------------------------------
def one_off_lines(items: Iterable[Mapping[str, Any]], cat: Catalogue, currency: str,
                  sub_info: Mapping[str, Mapping[str, Any]]) -> list[Line]:
    out = []
    for it in items:
        kind = cat.one_off(it["charge_code"], it["item_date"])
        if kind is None:
            raise BillingError("UNKNOWN_CHARGE_CODE", f"one-off {it['item_ref']}: {it['charge_code']!r} not in catalogue")
        amount = it.get("amount")
        amount = kind.default_amount if amount is None else amount
        if amount is None:
            raise BillingError("NO_AMOUNT", f"one-off {it['item_ref']}: {kind.charge_code} needs an amount")
        sub = sub_info.get(it.get("subscription_id") or "", {})
        desc = it.get("description") or kind.name
        out.append(make_line(amount, currency, line_type="one_off", charge_code=kind.charge_code, description=desc,
                             tax_category=kind.tax_category, gl_account=kind.gl_account,
                             subscription_id=it.get("subscription_id") or None, msisdn=sub.get("msisdn"),
                             service_start=it["item_date"], service_end=it["item_date"] + timedelta(days=1),
                             ref=it["item_ref"]))
    return out


ADJUSTMENT_SIGNS = {"goodwill_credit": -1, "dispute_credit": -1, "debit_adjustment": 1}


def adjustment_lines(items: Iterable[Mapping[str, Any]], currency: str) -> list[Line]:
    """Care credits and disputes reduce the bill (negative lines); debit adjustments increase it."""
    out = []
    for it in items:
        sign = ADJUSTMENT_SIGNS[it["kind"]]
        out.append(make_line(sign * it["amount"], currency, line_type="adjustment", charge_code=it["kind"].upper(),
                             description=it.get("reason") or it["kind"].replace("_", " "),
                             tax_category=it.get("tax_category") or "telecom", gl_account=GL["adjustment"],
                             service_start=it["item_date"], service_end=it["item_date"] + timedelta(days=1),
                             ref=it["item_ref"]))
    return out


# -- 6 + 7: account discounts and commitments -------------------------------------------------------
def account_discounts(account_id: str, lines: list[Line], cat: Catalogue, start: date, currency: str) -> list[Line]:
    out: list[Line] = []
    for d in cat.discounts_for("account", account_id, start):
        base = sum((ln.amount for ln in lines if _discountable(ln, d.applies_to)), ZERO)
        base += sum((ln.amount for ln in out), ZERO)
        if base <= 0:
            continue
        out.append(discount_line(d, base, currency))
    return out


def commitment_line(account_id: str, lines: list[Line], cat: Catalogue, start: date, end: date,
                    currency: str) -> list[Line]:
    """True-up to the minimum spend: telecom recurring, usage, one-offs and discounts count; adjustments do not."""
    c = cat.commitment_for(account_id, start)
    if c is None:
        return []
    spent = sum((ln.amount for ln in lines if ln.tax_category == "telecom" and ln.line_type != "adjustment"), ZERO)
    if spent >= c.min_amount:
        return []
    return [make_line(c.min_amount - spent, currency, line_type="commitment", charge_code=c.commitment_id,
                      description=f"{c.name}: true-up to {c.min_amount} {currency}", tax_category="telecom",
                      gl_account=GL["commitment"], service_start=start, service_end=end, ref=c.commitment_id)]


# -- 9: taxes ------------------------------------------------------------------------------------------
def tax_lines(lines: Iterable[Line], cat: Catalogue, jurisdiction: str, tax_point: date, currency: str) -> list[TaxLine]:
    """Per tax code and category: base = sum of the rounded lines (+ earlier taxes if compound), rounded once."""
    rules = cat.rules_for(jurisdiction, tax_point)
    if not rules:
        raise BillingError("NO_TAX_RULES", f"no tax rules for jurisdiction {jurisdiction!r} on {tax_point}: "
                           "add them to tariffs/tax_rules.csv (a 0% rule for a tax-free jurisdiction)")
    bases: dict[str, Decimal] = {}
    for ln in lines:
        bases[ln.tax_category] = bases.get(ln.tax_category, ZERO) + ln.amount
    out: list[TaxLine] = []
    for rule in rules:
        if rule.tax_category not in bases:
            continue
        base = bases[rule.tax_category]
        if rule.compound:
            base += sum((t.amount for t in out if t.tax_category == rule.tax_category), ZERO)
        exact = precise(base * rule.rate)
        out.append(TaxLine(jurisdiction, rule.tax_code, rule.name, rule.tax_category, precise(rule.rate), base,
                           exact, round_to_currency(exact, currency, rule.rounding), rule.gl_account))
    return out


# -- the whole bill ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountInputs:
    """Everything one account's bill depends on (already filtered to the account)."""

    account: Mapping[str, Any]
    subscriptions: list[Mapping[str, Any]]
    usage: list[Mapping[str, Any]]             # summed per subscription + service (+ payment_type)
    charges: list[Mapping[str, Any]] = field(default_factory=list)
    adjustments: list[Mapping[str, Any]] = field(default_factory=list)
    topups: Mapping[str, Decimal] = field(default_factory=dict)
    previous_balance: Decimal = ZERO
    payments_received: Decimal = ZERO
    revision: int = 0
    advance_billed: list[Line] = field(default_factory=list)  # recurring + plan discounts billed earlier for this period
    advance_invoice: str = ""                                 # number of the invoice that billed them


def account_period(account: Mapping[str, Any], period: str) -> tuple[date, date]:
    return period_dates(period, int(account.get("bill_cycle_day") or 1))


def in_period(items: Iterable[Mapping[str, Any]], start: date, end: date) -> list[Mapping[str, Any]]:
    return [it for it in items if start <= it["item_date"] < end]


def bill_account(inp: AccountInputs, cat: Catalogue, period: str, as_of: date | None = None) -> InvoiceDraft | None:
    """The draft invoice of one account, or ``None`` when it has nothing postpaid to bill."""
    acc = inp.account
    currency, tz = acc.get("currency") or "EUR", acc.get("timezone") or "Europe/Berlin"
    start, end = account_period(acc, period)
    issue = as_of or end
    subs = sorted(inp.subscriptions, key=lambda s: (s["msisdn"] or "", s["valid_from"], s["subscription_id"]))
    postpaid = [s for s in subs if s["payment_type"] == "postpaid"]
    sub_info = {s["subscription_id"]: s for s in subs}
    post_usage = [u for u in inp.usage if u["payment_type"] != "prepaid"]
    charges, adjustments = in_period(inp.charges, start, end), in_period(inp.adjustments, start, end)
    next_start, next_end = period_dates(next_period(period), int(acc.get("bill_cycle_day") or 1))
    lines = recurring_corrections(postpaid, inp.advance_billed, inp.advance_invoice, tz, start, end, cat, currency)
    for s in postpaid:
        lines += recurring_lines(s, tz, next_start, next_end, cat, currency, ", in advance")
    if not (lines or post_usage or charges or adjustments):
        return None
    lines += usage_lines(sorted(post_usage, key=lambda u: (sub_info.get(u["subscription_id"], {}).get("msisdn") or "",
                                                           u["subscription_id"], u["service"])),
                         sub_info, currency, start, end)
    lines = _order_by_line(lines + line_discounts(lines, cat, start, currency))
    lines += one_off_lines(charges, cat, currency, sub_info)
    lines += account_discounts(acc["account_id"], lines, cat, start, currency)
    lines += commitment_line(acc["account_id"], lines, cat, start, end, currency)
    lines += adjustment_lines(adjustments, currency)
    jurisdiction = acc.get("tax_jurisdiction")
    if not jurisdiction:
        raise BillingError("NO_TAX_JURISDICTION", f"account {acc['account_id']} has no tax_jurisdiction")
    taxes = tax_lines(lines, cat, jurisdiction, issue, currency)
    prepaid = prepaid_summary(subs, inp.usage, inp.topups, currency)
    terms = int(acc.get("payment_terms_days") or 14)
    return InvoiceDraft(
        invoice_id=invoice_id_for(acc["account_id"], period, "invoice", inp.revision),
        account_id=acc["account_id"], account_name=acc.get("name") or "", billing_entity=acc.get("billing_entity")
        or DEFAULT_ENTITY, period=period, period_start=start, period_end=end, issue_date=issue,
        due_date=issue + timedelta(days=terms), currency=currency, jurisdiction=jurisdiction, revision=inp.revision,
        lines=tuple(lines), tax_lines=tuple(taxes), prepaid=prepaid,
        previous_balance=inp.previous_balance, payments_received=inp.payments_received,
        address={k: acc.get(k) or "" for k in ("address_line1", "postcode", "city", "country", "email")},
    )


def next_period(period: str) -> str:
    year, month = (int(x) for x in period.split("-"))
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


def _recurring_key(lines: Iterable[Line]) -> list[tuple]:
    return sorted((ln.line_type, ln.charge_code, ln.plan_id, ln.service_start, ln.service_end, ln.amount)
                  for ln in lines)


def recurring_corrections(postpaid: list[Mapping[str, Any]], billed: list[Line], billed_on: str, tz: str,
                          start: date, end: date, cat: Catalogue, currency: str) -> list[Line]:
    """This period's recurring charges versus what an earlier invoice billed for it in advance.

    Per subscription: when the earlier advance lines equal today's pro-rated lines nothing is
    billed again; otherwise the advance lines are reversed and the actual lines billed (a start,
    stop or plan change after the advance bill). Never billed before (first bill): actual lines.
    """
    actual: dict[str, list[Line]] = {}
    billed_subs = {ln.subscription_id for ln in billed}
    for s in postpaid:
        suffix = ", correction" if s["subscription_id"] in billed_subs else ", this period"
        actual.setdefault(s["subscription_id"], []).extend(recurring_lines(s, tz, start, end, cat, currency, suffix))
    before: dict[str, list[Line]] = {}
    for ln in billed:
        before.setdefault(ln.subscription_id or "", []).append(ln)
    out: list[Line] = []
    for sub_id in sorted(set(actual) | set(before)):
        now, then = actual.get(sub_id, []), before.get(sub_id, [])
        if _recurring_key(now) == _recurring_key(then):
            continue
        for ln in then:
            out.append(replace(ln, amount_precise=-ln.amount_precise, amount=-ln.amount,
                               description=f"Reversal: {ln.description} (invoice {billed_on})"))
        out += now
    return out


def _order_by_line(lines: list[Line]) -> list[Line]:
    """Group each subscription's lines together: recurring with its plan discounts, usage, line discounts."""
    group = {sid: i for i, sid in enumerate(dict.fromkeys(ln.subscription_id for ln in lines))}

    def phase(ln: Line) -> int:
        if ln.line_type == "recurring" or (ln.line_type == "discount" and ln.plan_id is not None):
            return 0
        return 1 if ln.line_type == "usage" else 2

    return sorted(lines, key=lambda ln: (group[ln.subscription_id], phase(ln)))


def prepaid_summary(subs: list[Mapping[str, Any]], usage: Iterable[Mapping[str, Any]],
                    topups: Mapping[str, Decimal], currency: str) -> tuple[PrepaidSummary, ...]:
    """Prepaid lines' usage per service and top-ups, for the convergent bill (not in the total)."""
    prepaid = {s["subscription_id"]: s for s in subs if s["payment_type"] == "prepaid"}
    out = []
    seen = set()
    for u in sorted(usage, key=lambda u: (u["subscription_id"], u["service"])):
        s = prepaid.get(u["subscription_id"])
        if s is None or u["payment_type"] != "prepaid":
            continue
        seen.add(s["subscription_id"])
        out.append(PrepaidSummary(s["subscription_id"], s["msisdn"], s["plan_id"], u["service"], int(u["quantity"]),
                                  int(u["quantity_included"]), round_to_currency(u["charge"], currency),
                                  topups.get(s["subscription_id"], ZERO)))
    for sid, s in sorted(prepaid.items()):
        if sid not in seen:
            out.append(PrepaidSummary(sid, s["msisdn"], s["plan_id"], "-", 0, 0, ZERO, topups.get(sid, ZERO)))
    return tuple(out)
