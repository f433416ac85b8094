"""Property tests: the ledger conserves every cent of every payment, whatever the order of events."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.collections.lake import conform
from pipelines.collections.ledger import aging, replay
from schemas.contracts import INVOICE_SCHEMA, PAYMENT_SCHEMA

START = date(2026, 1, 1)
cents = st.integers(min_value=1, max_value=20_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def books(draw):
    accounts = draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=3, unique=True))
    invoices, payments = [], []
    for acc in accounts:
        for i in range(draw(st.integers(0, 4))):
            issued = START + timedelta(days=draw(st.integers(0, 120)))
            total = draw(cents) * (-1 if draw(st.integers(0, 9)) == 0 else 1)
            invoices.append({"invoice_id": f"I-{acc}-{i}", "account_id": acc, "status": "finalised",
                             "kind": "invoice" if total > 0 else "credit_note", "issue_date": issued,
                             "due_date": issued + timedelta(days=14), "total": total, "currency": "EUR"})
        for j in range(draw(st.integers(0, 5))):
            pid = f"P-{acc}-{j}"
            received = START + timedelta(days=draw(st.integers(0, 150)))
            target = draw(st.sampled_from([None] + [i["invoice_id"] for i in invoices if i["account_id"] == acc]))
            amount = draw(cents)
            base = {"payment_id": pid, "account_id": acc, "purpose": "bill_payment", "currency": "EUR",
                    "invoice_id": target}
            payments.append({**base, "event_type": "payment", "received_date": received, "amount": amount})
            if draw(st.booleans()) and draw(st.booleans()):
                payments.append({**base, "payment_id": pid + "-R", "event_type": "chargeback",
                                 "original_payment_id": pid, "amount": -amount,
                                 "received_date": received + timedelta(days=draw(st.integers(1, 30)))})
    return (conform(pl.DataFrame(invoices, infer_schema_length=None) if invoices else None, INVOICE_SCHEMA),
            conform(pl.DataFrame(payments, infer_schema_length=None) if payments else None, PAYMENT_SCHEMA))


@settings(max_examples=60, deadline=None)
@given(books(), st.integers(0, 180))
def test_every_cent_is_allocated_or_credit(book, day):
    invoices, payments = book
    as_of = START + timedelta(days=day)
    allocations, items = replay(invoices, payments, as_of)
    undone = set(payments.filter((pl.col("event_type") != "payment") & (pl.col("received_date") <= as_of))
                 ["original_payment_id"].to_list())
    live = payments.filter((pl.col("event_type") == "payment") & (pl.col("received_date") <= as_of)
                           & ~pl.col("payment_id").is_in(list(undone)))
    credits = invoices.filter((pl.col("total") < 0) & (pl.col("issue_date") <= as_of))
    sources = {**dict(zip(live["payment_id"], live["amount"], strict=True)),
               **dict(zip(credits["invoice_id"], -credits["total"], strict=True))}
    used = allocations.group_by("payment_id").agg(pl.col("amount").sum())
    assert dict(zip(used["payment_id"], used["amount"], strict=True)) == {k: v for k, v in sources.items()}
    paid = allocations.filter(pl.col("invoice_id").is_not_null()).group_by("invoice_id").agg(pl.col("amount").sum())
    paid_by = dict(zip(paid["invoice_id"], paid["amount"], strict=True))
    for r in items.iter_rows(named=True):
        assert r["open_amount"] == r["total"] - paid_by.get(r["invoice_id"], Decimal("0.00")) >= 0
    for r in aging(items, allocations, as_of).iter_rows(named=True):
        assert not (r["credit"] > 0 and r["open_total"] > 0), "credit is held only when nothing is open"
        assert r["open_total"] == sum(r[b] for b in ("current", "d1_30", "d31_60", "d61_90", "d90_plus"))
