"""Aging at a fixed as-of date: bucket edges, partial payments, credit, and the replay as of any date."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from collections_data import invoice

from pipelines.collections.lake import conform
from pipelines.collections.ledger import aging, bucket_of, replay
from schemas.contracts import INVOICE_SCHEMA, PAYMENT_SCHEMA

AS_OF = date(2026, 12, 31)


@pytest.mark.parametrize(("days", "bucket"), [(-5, "current"), (0, "current"), (1, "d1_30"), (30, "d1_30"),
                                              (31, "d31_60"), (60, "d31_60"), (61, "d61_90"), (90, "d61_90"),
                                              (91, "d90_plus"), (400, "d90_plus")])
def test_bucket_edges(days, bucket):
    assert bucket_of(days) == bucket


def _invoice_due(account: str, period: str, total: str, due: date) -> dict:
    return invoice(account, period, total, due - timedelta(days=14))


def _payment(pid: str, account: str, day: date, amount: str, target: str | None = None, **kw) -> dict:
    return {"payment_id": pid, "source_payment_id": pid, "kind": "bank", "channel": "bank_transfer",
            "event_type": kw.get("event_type", "payment"), "purpose": "bill_payment",
            "original_payment_id": kw.get("original"), "account_id": account, "invoice_id": target,
            "match_method": "reference", "received_date": day, "amount": Decimal(amount), "currency": "EUR"}


def test_aging_at_fixed_date():
    invoices = conform(pl.DataFrame([
        _invoice_due("A", "2026-07", "10.00", date(2026, 9, 1)),     # 121 days: 90+
        _invoice_due("A", "2026-08", "20.00", date(2026, 10, 1)),    # 91 days: 90+
        _invoice_due("A", "2026-09", "30.00", date(2026, 10, 31)),   # 61 days: 61-90
        _invoice_due("A", "2026-10", "40.00", date(2026, 12, 1)),    # 30 days: 1-30
        _invoice_due("A", "2026-11", "50.00", date(2026, 12, 31)),   # due today: current
        _invoice_due("A", "2026-12", "60.00", date(2027, 1, 14)),    # not issued until 2026-12-31: current
        _invoice_due("B", "2026-10", "25.00", date(2026, 11, 30)),   # 31 days: 31-60, paid in part
        _invoice_due("C", "2026-10", "25.00", date(2026, 11, 30)),   # paid, plus 5.00 credit
        {**_invoice_due("D", "2026-10", "99.00", date(2026, 11, 30)), "status": "voided"},
    ], infer_schema_length=None), INVOICE_SCHEMA)
    payments = conform(pl.DataFrame([
        _payment("P1", "A", date(2026, 12, 20), "15.00", "INV-A-2026-08"),   # named invoice first
        _payment("P2", "B", date(2026, 12, 1), "10.00"),
        _payment("P3", "C", date(2026, 12, 2), "30.00"),
        _payment("P4", "A", date(2027, 1, 2), "500.00"),                     # after the as-of date
    ]), PAYMENT_SCHEMA)
    allocations, items = replay(invoices, payments, AS_OF)
    book = {r["account_id"]: r for r in aging(items, allocations, AS_OF).iter_rows(named=True)}
    d = Decimal
    a = book["A"]
    assert (a["current"], a["d1_30"], a["d31_60"], a["d61_90"], a["d90_plus"]) == (
        d("110.00"), d("40.00"), d("0.00"), d("30.00"), d("15.00"))
    assert a["overdue"] == d("85.00") and a["open_total"] == d("195.00") and a["days_past_due"] == 121
    assert a["oldest_due_date"] == date(2026, 9, 1)
    assert book["B"]["d31_60"] == d("15.00") and book["B"]["days_past_due"] == 31
    c = book["C"]
    assert c["open_total"] == d("0.00") and c["credit"] == d("5.00") and c["balance"] == d("-5.00")
    assert "D" not in book, "voided invoices are not debt"
    # the same data a month earlier: nothing of December happened yet
    _, earlier = replay(invoices, payments, date(2026, 11, 30))
    open_a = earlier.filter(pl.col("account_id") == "A")["open_amount"].sum()
    assert open_a == d("100.00")


def test_credit_waits_for_next_invoice_and_credit_notes_apply():
    invoices = conform(pl.DataFrame([
        _invoice_due("A", "2026-10", "40.00", date(2026, 11, 15)),
        _invoice_due("A", "2026-11", "40.00", date(2026, 12, 15)),
        {**_invoice_due("A", "2026-11", "-15.00", date(2026, 12, 5)), "invoice_id": "CN-1", "kind": "credit_note"},
    ], infer_schema_length=None), INVOICE_SCHEMA)
    payments = conform(pl.DataFrame([_payment("P1", "A", date(2026, 11, 10), "60.00")]), PAYMENT_SCHEMA)
    allocations, items = replay(invoices, payments, date(2026, 12, 31))
    open_amounts = dict(zip(items["invoice_id"], items["open_amount"], strict=True))
    # P1 pays Oct (40) and holds 20 credit; Nov invoice (issued 12-01) takes the 20; credit note takes 15 more
    assert open_amounts["INV-A-2026-11"] == Decimal("5.00")
    assert allocations.filter(pl.col("payment_id") == "P1")["amount"].sum() == Decimal("60.00")
    assert allocations.filter(pl.col("allocation_type") == "credit").is_empty()
