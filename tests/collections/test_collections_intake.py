"""Payment intake: every matching case, duplicates, reversals, and conservation of lines and money."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from collections_data import bank_file

from pipelines.collections import lake as lk
from pipelines.collections.intake import import_payments
from pipelines.collections.layouts import LayoutError
from pipelines.collections.ledger import replay
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store


def _intake(settings) -> pl.DataFrame:
    return read_published(open_store(settings.lake_uri), lk.INTAKE).sort("file_sha256", "record_offset")


def _ledger(settings, as_of: date):
    lake = open_store(settings.lake_uri)
    invoices, _ = lk.load_invoices(lake)
    payments, _ = lk.load_payments(lake)
    return replay(invoices, payments, as_of)


def test_matching_cases_and_conservation(billed):
    data = bank_file([
        ("T1", "2026-10-10", "CRDT", "50.00", "Anna", "Rechnung TB-ACC001-202609 danke", ""),      # exact
        ("T2", "2026-10-11", "CRDT", "30.00", "Ben", "TB-ACC002-202609", ""),                      # partial
        ("T3", "2026-10-12", "CRDT", "100.00", "VIP", "Kundennr ACC003", ""),                      # over, by account
        ("T4", "2026-10-12", "CRDT", "12.34", "Nobody", "for my phone", ""),                       # unmatched
        ("T5", "2026-10-13", "CRDT", "not-money", "Broken", "TB-ACC004-202609", ""),               # unreadable
        ("T1", "2026-10-10", "CRDT", "50.00", "Anna", "TB-ACC001-202609", ""),                     # duplicate id
    ])
    result = import_payments(billed, data, "bank", "landing/payments/bank-1.csv")
    assert result.counts == {"matched": 3, "top_up": 0, "duplicate": 1, "suspense": 2}
    intake = _intake(billed)
    assert intake.height == 6, "every line of the file ends in exactly one outcome"
    by_id = {r["source_payment_id"] or r["record_offset"]: r
             for r in intake.filter(pl.col("outcome") != "duplicate").iter_rows(named=True)}
    assert by_id["T1"]["match_method"] == "reference" and by_id["T1"]["invoice_id"] == "INV-ACC001-2026-09"
    assert by_id["T3"]["match_method"] == "account" and by_id["T3"]["account_id"] == "ACC003"
    assert by_id["T4"]["reason_code"] == "NO_MATCH"
    assert by_id[6]["reason_code"] == "BAD_AMOUNT"
    assert intake.filter(pl.col("outcome") == "duplicate")["record_offset"].to_list() == [7]

    allocations, items = _ledger(billed, date(2026, 10, 31))
    open_by_invoice = dict(zip(items["invoice_id"], items["open_amount"], strict=True))
    assert open_by_invoice["INV-ACC001-2026-09"] == Decimal("0.00")
    assert open_by_invoice["INV-ACC002-2026-09"] == Decimal("50.00")
    assert open_by_invoice["INV-ACC003-2026-09"] == Decimal("0.00")
    credit = allocations.filter(pl.col("allocation_type") == "credit")
    assert credit.select("account_id", "amount").rows() == [("ACC003", Decimal("60.00"))]

    # conservation: matched money = allocated + credit; suspense money is held, not lost
    matched = intake.filter(pl.col("outcome") == "matched")["amount"].sum()
    assert matched == allocations["amount"].sum() == Decimal("180.00")
    assert intake.filter(pl.col("outcome") == "suspense")["amount"].drop_nulls().sum() == Decimal("12.34")


def test_duplicate_file_writes_nothing(billed):
    data = bank_file([("T1", "2026-10-10", "CRDT", "50.00", "Anna", "TB-ACC001-202609", "")])
    first = import_payments(billed, data, "bank", "bank-1.csv")
    again = import_payments(billed, data, "bank", "bank-1-copy.csv")
    assert not first.duplicate_file and again.duplicate_file
    assert _intake(billed).height == 1
    # the same payment inside a different file is a duplicate line, not a second payment
    other = bank_file([("T1", "2026-10-10", "CRDT", "50.00", "Anna", "TB-ACC001-202609", ""),
                       ("T9", "2026-10-11", "CRDT", "5.00", "Anna", "TB-ACC001-202609", "")])
    result = import_payments(billed, other, "bank", "bank-2.csv")
    assert result.counts["duplicate"] == 1 and result.counts["matched"] == 1
    payments = read_published(open_store(billed.lake_uri), lk.PAYMENTS)
    assert sorted(payments["source_payment_id"].to_list()) == ["T1", "T9"]


def test_reversal_reopens_invoice(billed):
    import_payments(billed, bank_file([("T1", "2026-10-10", "CRDT", "50.00", "Anna", "TB-ACC001-202609", "")]),
                    "bank", "bank-1.csv")
    _, items = _ledger(billed, date(2026, 10, 20))
    assert items.filter(pl.col("invoice_id") == "INV-ACC001-2026-09")["open_amount"].item() == Decimal("0.00")
    returns = bank_file([
        ("R1", "2026-10-21", "RTRN", "-50.00", "Anna", "RETURN AC04", "T1"),
        ("R2", "2026-10-21", "RTRN", "-50.00", "Anna", "RETURN AC04", "T1"),      # second return of the same
        ("R3", "2026-10-21", "RTRN", "-10.00", "Anna", "RETURN", "T404"),         # unknown original
    ])
    result = import_payments(billed, returns, "bank", "bank-2.csv")
    assert result.counts == {"matched": 1, "top_up": 0, "duplicate": 0, "suspense": 2}
    reasons = _intake(billed).filter(pl.col("outcome") == "suspense")["reason_code"].sort().to_list()
    assert reasons == ["ALREADY_REVERSED", "ORIGINAL_NOT_FOUND"]
    _, before = _ledger(billed, date(2026, 10, 20))
    _, after = _ledger(billed, date(2026, 10, 21))
    inv = pl.col("invoice_id") == "INV-ACC001-2026-09"
    assert before.filter(inv)["open_amount"].item() == Decimal("0.00"), "the ledger replays history as of a date"
    assert after.filter(inv)["open_amount"].item() == Decimal("50.00")
    payments = read_published(open_store(billed.lake_uri), lk.PAYMENTS)
    assert payments.filter(pl.col("account_id") == "ACC001")["amount"].sum() == Decimal("0.00")


def test_card_chargeback_and_wallet_topup(billed):
    card = (
        b"psp_reference,settlement_date,type,card_brand,masked_pan,gross_amount,fee,net_amount,currency,"
        b"merchant_reference,account_ref,original_psp_reference\n"
        b"C1,2026-10-05,SALE,VISA,411111******1111,120.00,1.20,118.80,EUR,TB-ACC005-202609,,\n"
        b"C2,2026-10-25,CHARGEBACK,VISA,411111******1111,120.00,15.00,-135.00,EUR,,,C1\n"
        b"C3,2026-10-06,SALE,MC,555555******4444,10.00,0.10,9.90,USD,,ACC002,\n"
    )
    result = import_payments(billed, card, "card", "card-1.csv")
    assert result.counts == {"matched": 2, "top_up": 0, "duplicate": 0, "suspense": 1}
    assert _intake(billed).filter(pl.col("outcome") == "suspense")["reason_code"].item() == "CURRENCY_MISMATCH"
    wallet = (
        b"txn_id,txn_time,channel,agent_id,purpose,msisdn,account_ref,reference,amount,currency,status,original_txn_id\n"
        b"W1,2026-10-07T10:00:00,retail,SHOP7,BILL,491510000002,,,30.00,EUR,SUCCESS,\n"
        b"W2,2026-10-07T11:00:00,wallet,,TOPUP,491510000099,,,15.00,EUR,SUCCESS,\n"
        b"W3,2026-10-07T12:00:00,dealer,D1,TOPUP,491709999999,,,15.00,EUR,SUCCESS,\n"
    )
    result = import_payments(billed, wallet, "wallet", "wallet-1.csv")
    assert result.counts == {"matched": 1, "top_up": 1, "duplicate": 0, "suspense": 1}
    allocations, items = _ledger(billed, date(2026, 10, 31))
    open_by_invoice = dict(zip(items["invoice_id"], items["open_amount"], strict=True))
    assert open_by_invoice["INV-ACC005-2026-09"] == Decimal("120.00"), "charged back: open again"
    assert open_by_invoice["INV-ACC002-2026-09"] == Decimal("50.00"), "retail payment matched by MSISDN"
    assert "ACC002" not in allocations.filter(pl.col("allocation_type") == "credit")["account_id"].to_list()
    lake = open_store(billed.lake_uri)
    topups = read_published(lake, lk.TOPUPS)
    assert topups.select("subscription_id", "msisdn", "topup_date", "amount").rows() == [
        ("SUB099", "491510000099", date(2026, 10, 7), Decimal("15.00"))]
    assert "W2" not in read_published(lake, lk.PAYMENTS)["source_payment_id"].to_list(), "top-ups are not bill payments"


def test_wrong_layout_is_a_clear_error(billed):
    with pytest.raises(LayoutError, match="lacks columns"):
        import_payments(billed, b"a,b\n1,2\n", "bank", "x.csv")


def test_suspense_is_matched_again_once_the_invoice_exists(billed):
    from collections_data import invoice, publish_invoices

    from pipelines.collections.intake import rematch_suspense

    early = bank_file([("E1", "2026-11-03", "CRDT", "45.00", "Anna", "TB-ACC001-202610 October", ""),
                       ("E2", "2026-11-03", "CRDT", "9.99", "Who", "no idea", "")])
    assert import_payments(billed, early, "bank", "early.csv").counts["suspense"] == 2
    before = rematch_suspense(billed, date(2026, 11, 3))
    assert (before.candidates, before.resolved) == (2, 0)
    publish_invoices(billed, [invoice("ACC001", "2026-10", "45.00", date(2026, 11, 1))])
    after = rematch_suspense(billed, date(2026, 11, 4))
    assert (after.candidates, after.resolved, after.amount_resolved) == (2, 1, Decimal("45.00"))
    again = rematch_suspense(billed, date(2026, 11, 4))
    assert again == after, "rerunning the same day recomputes the same resolutions"
    later = rematch_suspense(billed, date(2026, 11, 5))
    assert (later.candidates, later.resolved) == (1, 0), "a resolved payment is not matched twice"
    lake = open_store(billed.lake_uri)
    payments = read_published(lake, lk.PAYMENTS)
    assert payments.filter(pl.col("source_payment_id") == "E1").select("invoice_id", "amount").rows() == [
        ("INV-ACC001-2026-10", Decimal("45.00"))]
    _, items = _ledger(billed, date(2026, 11, 5))
    assert items.filter(pl.col("invoice_id") == "INV-ACC001-2026-10")["open_amount"].item() == Decimal("0.00")
    # a payment resolved on 11-04 is not visible to a rerun of an earlier day
    early_view, _ = lk.load_payments(lake, as_of=date(2026, 11, 3))
    assert "E1" not in early_view["source_payment_id"].to_list()
