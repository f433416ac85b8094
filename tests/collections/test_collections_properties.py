"""Property tests: the ledger conserves every cent of every payment, whatever the order of events."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

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


LINE_KINDS = st.sampled_from(["ref", "account", "nomatch", "badamount", "malformed", "return"])


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(LINE_KINDS, st.integers(0, 6), cents), min_size=1, max_size=25))
def test_every_line_of_a_file_ends_in_one_outcome(tmp_path_factory, lines):
    """Lines in = matched + top_up + duplicate + suspense, and matched money = allocated + credit."""
    from collections_data import BASE_INVOICES, bank_file, publish_customers, publish_invoices

    from pipelines.collections import lake as lk
    from pipelines.collections.intake import import_payments
    from pipelines.common.partitions import read_published
    from pipelines.common.settings import Settings
    from pipelines.common.storage import open_store

    root = tmp_path_factory.mktemp("intake")
    settings = Settings(lake_uri=str(root / "lake"), tariffs_dir=str(Path(__file__).resolve().parents[2] / "tariffs"))
    publish_customers(settings)
    publish_invoices(settings, BASE_INVOICES)
    rows = []
    for kind, n, amount in lines:
        tid = f"T{n}"                                     # small id space: duplicates happen
        if kind == "ref":
            rows.append((tid, "2026-10-10", "CRDT", str(amount), "x", "TB-ACC001-202609", ""))
        elif kind == "account":
            rows.append((tid, "2026-10-10", "CRDT", str(amount), "x", "ACC00" + str(1 + n % 5), ""))
        elif kind == "nomatch":
            rows.append((tid, "2026-10-10", "CRDT", str(amount), "x", "hello", ""))
        elif kind == "badamount":
            rows.append((tid, "2026-10-10", "CRDT", "12,5", "x", "TB-ACC001-202609", ""))
        elif kind == "return":
            rows.append((f"R{n}", "2026-10-12", "RTRN", str(-amount), "x", "RETURN", f"T{n}"))
        else:
            rows.append((tid, "2026-10-10", "CRDT", f"{amount}\",\"extra", "x", "y", ""))
    result = import_payments(settings, bank_file(rows), "bank", "random.csv")
    assert sum(result.counts.values()) == len(rows)
    lake = open_store(settings.lake_uri)
    intake = read_published(lake, lk.INTAKE)
    assert intake.height == len(rows) and intake["record_offset"].n_unique() == len(rows)
    payments = read_published(lake, lk.PAYMENTS)
    assert payments["payment_id"].n_unique() == payments.height, "a payment is published once"
    invoices, _ = lk.load_invoices(lake)
    allocations, _ = replay(invoices, lk.conform(payments, PAYMENT_SCHEMA), date(2026, 12, 31))
    live = payments.filter((pl.col("event_type") == "payment")
                           & ~pl.col("payment_id").is_in(payments["original_payment_id"].drop_nulls().implode()))
    assert allocations["amount"].sum() == live["amount"].sum()
