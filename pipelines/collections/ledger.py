"""Open-item ledger: how payments settle invoices as of any date, and the aging of what stays open.

Collections keeps open items per finalised invoice (its ``total``; ``amount_due`` is the balance-
forward figure printed for the customer and would count earlier debt twice). The ledger is replayed
from the events, so any as-of date gives the same answer and a payment that arrives before its invoice
is simply held as account credit until the invoice is issued:

- events in date order; on one day invoices and credit notes come first, then payments by id;
- a payment goes first to the invoice its reference names (if still open), then to the oldest open
  invoices (due date, then invoice id); whatever is left is account credit;
- a new invoice consumes the account's credit first (oldest credit first);
- a reversed or charged-back payment does not exist in the replay from the day of its reversal, so the
  invoices it paid reopen with their original due dates.
Amounts are exact ``Decimal`` in the currency's minor unit; nothing is rounded here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import polars as pl

from schemas.contracts import CURRENCY_AMOUNT, PAYMENT_ALLOCATION_SCHEMA

ZERO = Decimal("0.00")
BUCKETS = ("current", "d1_30", "d31_60", "d61_90", "d90_plus")

OPEN_ITEM_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "invoice_id": pl.String,
    "issue_date": pl.Date,
    "due_date": pl.Date,
    "total": CURRENCY_AMOUNT,
    "open_amount": CURRENCY_AMOUNT,
    "paid_date": pl.Date,            # day the invoice became fully paid, null while open
}

AGING_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "as_of": pl.Date,
    **{b: CURRENCY_AMOUNT for b in BUCKETS},
    "open_total": CURRENCY_AMOUNT,
    "overdue": CURRENCY_AMOUNT,      # everything past due (all buckets but current)
    "credit": CURRENCY_AMOUNT,       # unapplied payments held for the account
    "balance": CURRENCY_AMOUNT,      # open_total - credit
    "days_past_due": pl.Int32,       # of the oldest open item past due, 0 when none
    "oldest_due_date": pl.Date,
}


def effective_payments(payments: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Bill payments received by ``as_of`` and not reversed or charged back by then."""
    bills = payments.filter((pl.col("purpose") == "bill_payment") & (pl.col("received_date") <= as_of))
    undone = bills.filter(pl.col("event_type") != "payment")["original_payment_id"].to_list()
    return bills.filter((pl.col("event_type") == "payment") & ~pl.col("payment_id").is_in(undone))


def replay(invoices: pl.DataFrame, payments: pl.DataFrame, as_of: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(allocations, open items) as of a date. ``invoices`` in INVOICE_SCHEMA, ``payments`` in PAYMENT_SCHEMA."""
    inv = invoices.filter((pl.col("status") == "finalised") & (pl.col("issue_date") <= as_of))
    pay = effective_payments(payments, as_of)
    events: dict[str, list[tuple]] = defaultdict(list)
    for inv_id, acc, issued, due, total in inv.select(
        "invoice_id", "account_id", "issue_date", "due_date", "total"
    ).iter_rows():
        if total > 0:
            events[acc].append((issued, 0, inv_id, "invoice", total, due, None))
        elif total < 0:
            events[acc].append((issued, 1, inv_id, "credit", -total, None, None))
    for pid, acc, received, amount, target in pay.select(
        "payment_id", "account_id", "received_date", "amount", "invoice_id"
    ).iter_rows():
        events[acc].append((received, 1, pid, "credit", amount, None, target))
    allocations: list[tuple] = []
    items: list[tuple] = []
    for account in sorted(events):
        _replay_account(account, sorted(events[account], key=lambda e: e[:3]), allocations, items)
    alloc = pl.DataFrame(allocations, schema=PAYMENT_ALLOCATION_SCHEMA, orient="row")
    open_items = pl.DataFrame(items, schema=OPEN_ITEM_SCHEMA, orient="row")
    return alloc.sort("account_id", "payment_id", "invoice_id", nulls_last=True), open_items.sort(
        "account_id", "due_date", "invoice_id")


def _replay_account(account: str, events: list[tuple], allocations: list[tuple], items: list[tuple]) -> None:
    remaining: dict[str, Decimal] = {}
    meta: dict[str, tuple[date, date, Decimal]] = {}
    paid_on: dict[str, date] = {}
    pool: list[list] = []                                   # [source_id, date, remaining]

    def apply(source: str, day: date, amount: Decimal, order: list[str]) -> Decimal:
        for inv_id in order:
            if amount <= 0:
                break
            left = remaining.get(inv_id, ZERO)
            if left <= 0:
                continue
            part = min(left, amount)
            remaining[inv_id] = left - part
            amount -= part
            allocations.append((account, source, inv_id, day, part, "allocated"))
            if remaining[inv_id] == 0:
                paid_on[inv_id] = day
        return amount

    for day, _, ident, kind, amount, due, target in events:
        if kind == "invoice":
            remaining[ident] = amount
            meta[ident] = (day, due, amount)
            for credit in pool:
                if credit[2] > 0:
                    credit[2] = apply(credit[0], day, credit[2], [ident])
            continue
        oldest = sorted((i for i in remaining if remaining[i] > 0), key=lambda i: (meta[i][1], i))
        order = ([target] if target in remaining else []) + [i for i in oldest if i != target]
        left = apply(ident, day, amount, order)
        if left > 0:
            pool.append([ident, day, left])
    for source, day, left in pool:
        if left > 0:
            allocations.append((account, source, None, day, left, "credit"))
    for inv_id, (issued, due, total) in meta.items():
        items.append((account, inv_id, issued, due, total, remaining[inv_id], paid_on.get(inv_id)))


def bucket_of(days_past_due: int) -> str:
    """Aging bucket name for a number of days past due (<= 0 is current)."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "d1_30"
    if days_past_due <= 60:
        return "d31_60"
    if days_past_due <= 90:
        return "d61_90"
    return "d90_plus"


def aging(open_items: pl.DataFrame, allocations: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Open balance per account by bucket as of a date (accounts with an open item or a credit)."""
    dpd = (pl.lit(as_of) - pl.col("due_date")).dt.total_days()
    items = open_items.filter(pl.col("open_amount") > 0).with_columns(dpd.alias("dpd"))
    amount_in = {b: pl.when(pl.col("dpd").map_elements(bucket_of, return_dtype=pl.String) == b)
                 .then(pl.col("open_amount")).otherwise(pl.lit(ZERO)) for b in BUCKETS}
    per_account = items.group_by("account_id").agg(
        *[expr.sum().cast(CURRENCY_AMOUNT).alias(b) for b, expr in amount_in.items()],
        pl.col("open_amount").sum().cast(CURRENCY_AMOUNT).alias("open_total"),
        pl.col("dpd").max().clip(lower_bound=0).cast(pl.Int32).alias("days_past_due"),
        pl.col("due_date").filter(pl.col("dpd") > 0).min().alias("oldest_due_date"),
    )
    credit = allocations.filter(pl.col("allocation_type") == "credit").group_by("account_id").agg(
        pl.col("amount").sum().cast(CURRENCY_AMOUNT).alias("credit"))
    zero = pl.lit(ZERO).cast(CURRENCY_AMOUNT)
    out = per_account.join(credit, on="account_id", how="full", coalesce=True).with_columns(
        *[pl.col(c).fill_null(zero) for c in (*BUCKETS, "open_total", "credit")],
        pl.col("days_past_due").fill_null(0),
        pl.lit(as_of).alias("as_of"),
    ).with_columns(
        (pl.col("open_total") - pl.col("current")).cast(CURRENCY_AMOUNT).alias("overdue"),
        (pl.col("open_total") - pl.col("credit")).cast(CURRENCY_AMOUNT).alias("balance"),
    )
    return out.select(list(AGING_SCHEMA)).cast(AGING_SCHEMA).sort("account_id")
