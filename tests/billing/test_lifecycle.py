"""Lifecycle: numbering, reruns, dry runs, void and reissue, credit notes, verify, balances, imports."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from billing_fixtures import (
    ACCOUNTS,
    CHARGES_CSV,
    PERIOD,
    RATED,
    SUBSCRIPTIONS,
    rated,
    write_customers,
    write_rated,
)

from pipelines.billing import bill_cycle
from pipelines.billing.cycle import REGISTER
from pipelines.billing.imports import import_items
from pipelines.billing.lifecycle import issue_credit_note, verify_cycle, void_invoice
from pipelines.common.partitions import read_published, write_partition
from pipelines.common.storage import open_store


def lake_of(settings):
    return open_store(settings.lake_uri, settings.s3)


def numbers(settings) -> list[str]:
    reg = read_published(lake_of(settings), REGISTER)
    return sorted(reg["invoice_number"].to_list())


def test_numbers_are_gapless_and_rerun_is_a_noop(billing_lake):
    first = bill_cycle(billing_lake, PERIOD, documents=False)
    assert sorted(d.invoice_number for d in first.finalised) == [f"TBM-INV-{i:08d}" for i in range(1, 8)]
    published = read_published(lake_of(billing_lake), "invoices", {"period": PERIOD})
    again = bill_cycle(billing_lake, PERIOD, documents=False)
    assert again.invoices == [] and len(again.already_finalised) == 7
    assert "already finalised" in again.message and "no-op" in again.message
    assert numbers(billing_lake) == [f"TBM-INV-{i:08d}" for i in range(1, 8)], "no second number issued"
    assert read_published(lake_of(billing_lake), "invoices", {"period": PERIOD}).equals(published)


def test_dry_run_writes_nothing(billing_lake):
    before = lake_of(billing_lake).list()
    result = bill_cycle(billing_lake, PERIOD, dry_run=True)
    assert len(result.invoices) == 7 and all(d.invoice_number is None for d in result.invoices)
    assert lake_of(billing_lake).list() == before
    assert "would bill 7" in result.message


def test_drafts_then_finalise_keep_ids_and_subset_by_accounts(billing_lake):
    drafts = bill_cycle(billing_lake, PERIOD, finalise=False, documents=False)
    assert {d.status for d in drafts.invoices} == {"draft"}
    assert read_published(lake_of(billing_lake), REGISTER) is None, "drafts get no number"
    part = bill_cycle(billing_lake, PERIOD, accounts=["ACC-START"], documents=False)
    assert [d.invoice_id for d in part.finalised] == [d.invoice_id for d in drafts.invoices if d.account_id == "ACC-START"]
    inv = read_published(lake_of(billing_lake), "invoices", {"period": PERIOD})
    assert inv.height == 7 and inv.filter(pl.col("status") == "finalised")["account_id"].to_list() == ["ACC-START"]
    bill_cycle(billing_lake, PERIOD, documents=False)
    assert numbers(billing_lake) == [f"TBM-INV-{i:08d}" for i in range(1, 8)]


def test_cycle_day_selects_accounts(local_settings):
    accounts = [dict(a, bill_cycle_day=15) if a["account_id"] == "ACC-TAXR" else a for a in ACCOUNTS]
    write_customers(local_settings, accounts=accounts)
    result = bill_cycle(local_settings, PERIOD, cycle_day=15, documents=False)
    [inv] = result.invoices
    assert (inv.account_id, inv.period_start, inv.period_end) == ("ACC-TAXR", date(2026, 10, 15), date(2026, 11, 15))


def test_void_and_reissue(billing_lake):
    first = bill_cycle(billing_lake, PERIOD, documents=False)
    [start] = [d for d in first.finalised if d.account_id == "ACC-START"]
    assert "voided" in void_invoice(billing_lake, start.invoice_number, "wrong plan")
    out = open_store(billing_lake.output_dir)
    assert b'"state": "withdrawn"' in out.read_bytes(f"invoices/{PERIOD}/{start.invoice_number}.json")
    inv = read_published(lake_of(billing_lake), "invoices", {"period": PERIOD})
    assert inv.filter(pl.col("invoice_id") == start.invoice_id)["status"].to_list() == ["voided"]
    reissue = bill_cycle(billing_lake, PERIOD, accounts=["ACC-START"], documents=False)
    [new] = reissue.finalised
    assert new.revision == 1 and new.invoice_id != start.invoice_id
    assert new.invoice_number == "TBM-INV-00000008", "the voided number stays used; the reissue takes the next"
    assert new.total == start.total
    with pytest.raises(ValueError, match="only finalised"):
        void_invoice(billing_lake, start.invoice_number, "twice")


def test_credit_notes_full_and_partial_then_brought_forward(billing_lake):
    first = bill_cycle(billing_lake, PERIOD, documents=False)
    [taxr] = [d for d in first.finalised if d.account_id == "ACC-TAXR"]
    full = issue_credit_note(billing_lake, taxr.invoice_number, "billing error", date(2026, 11, 5))
    assert full.invoice_number == "TBM-CN-00000001" and full.kind == "credit_note"
    assert full.total == -taxr.total and full.related_invoice_number == taxr.invoice_number
    partial = issue_credit_note(billing_lake, taxr.invoice_number, "goodwill", date(2026, 11, 6), net_amount="10.00")
    # 10.00 net: USF 0.10; VAT (10.10) x 0.19 = 1.919 -> 1.92; total -12.02
    assert partial.invoice_number == "TBM-CN-00000002" and partial.total == Decimal("-12.02")
    # November: previous balance = October's amount due + credit notes issued in November; payment received
    lake = lake_of(billing_lake)
    write_partition(lake, "payments", {"period": "2026-11"}, "p1", pl.DataFrame(
        {"payment_id": ["P1"], "account_id": ["ACC-TAXR"], "amount": [Decimal("20.00")], "currency": ["EUR"],
         "received_date": [date(2026, 11, 10)]}, schema_overrides={"amount": pl.Decimal(18, 2)}))
    nov = bill_cycle(billing_lake, "2026-11", accounts=["ACC-TAXR"], documents=False)
    [inv] = nov.finalised
    assert inv.previous_balance == taxr.amount_due + full.total + partial.total == Decimal("-12.02")
    assert inv.payments_received == Decimal("20.00")
    assert inv.amount_due == Decimal("-12.02") - Decimal("20.00") + inv.total


def test_verify_reports_no_difference_then_a_late_change(billing_lake):
    bill_cycle(billing_lake, PERIOD, documents=False)
    ok = verify_cycle(billing_lake, PERIOD)
    assert ok.ok and ok.checked == 7, ok.differences
    write_rated(billing_lake, rows=[*RATED, rated("late", "ACC-START", "SUB-START", "P_BASIC", "sms", 1, 0, "0.09")])
    bad = verify_cycle(billing_lake, PERIOD)
    assert not bad.ok
    assert any("ACC-START" in d and "lines" in d for d in bad.differences)


def test_bad_account_is_reported_not_fatal(local_settings):
    subs = [*SUBSCRIPTIONS, dict(SUBSCRIPTIONS[0], subscription_id="SUB-X", account_id="ACC-CREDIT", plan_id="P_NOPE")]
    write_customers(local_settings, subs=subs)
    result = bill_cycle(local_settings, PERIOD, documents=False)
    assert [(a, c) for a, c, _ in result.errors] == [("ACC-CREDIT", "UNKNOWN_PLAN")]
    assert len(result.finalised) == 6
    errors = read_published(lake_of(local_settings), "billing/cycle_errors", {"period": PERIOD})
    assert errors["reason_code"].to_list() == ["UNKNOWN_PLAN"]


def test_imports_conserve_rows_and_refuse_duplicates(local_settings):
    write_customers(local_settings)
    data = (b"item_ref,account_id,subscription_id,charge_code,amount,item_date,description\n"
            b"A,ACC-TAXR,,ACTIVATION,,2026-10-05,\nB,ACC-TAXR,,DEVICE_INSTALMENT,abc,2026-10-05,\n"
            b"C,ACC-TAXR,,LATE_FEE,,2026-13-01,\nA,ACC-TAXR,,LATE_FEE,,2026-10-05,\n,ACC-TAXR,,LATE_FEE,,2026-10-05,\n")
    r = import_items(local_settings, "charges", data, "c.csv")
    assert (r.rows_in, r.imported, r.rejected) == (5, 1, 4)
    rejects = read_published(lake_of(local_settings), "billing/import_rejects")
    assert sorted(rejects["reason_code"].to_list()) == ["BAD_AMOUNT", "BAD_DATE", "DUPLICATE_REF", "MISSING_FIELD"]
    again = import_items(local_settings, "charges", data, "c.csv")
    assert (again.imported, again.rejected) == (1, 4), "re-importing the same file is idempotent"
    other = import_items(local_settings, "charges", data.replace(b"2026-10-05,\nB", b"2026-10-06,\nB"), "d.csv")
    assert other.imported == 0 and other.rejected == 5, "ref A was imported by another batch"


def test_crash_after_numbering_reuses_the_numbers(billing_lake):
    """The register is committed before the invoices: a crash in between leaves no gap on the rerun."""
    from pipelines.billing.cycle import assign_numbers

    drafts = bill_cycle(billing_lake, PERIOD, dry_run=True).invoices
    numbered = {d.invoice_id: d.invoice_number for d in assign_numbers(billing_lake, drafts)}  # then "crash"
    assert read_published(lake_of(billing_lake), "invoices") is None
    rerun = bill_cycle(billing_lake, PERIOD, documents=False)
    assert {d.invoice_id: d.invoice_number for d in rerun.finalised} == numbered
    assert numbers(billing_lake) == [f"TBM-INV-{i:08d}" for i in range(1, 8)]


def test_account_without_jurisdiction_is_an_error(local_settings):
    write_customers(local_settings, accounts=[dict(a, tax_jurisdiction=None) if a["account_id"] == "ACC-TAXR" else a
                                              for a in ACCOUNTS])
    result = bill_cycle(local_settings, PERIOD, documents=False)
    assert [(a, c) for a, c, _ in result.errors] == [("ACC-TAXR", "NO_TAX_JURISDICTION")]


def test_items_for_unknown_accounts_or_closed_periods_are_rejected_at_import(billing_lake):
    bill_cycle(billing_lake, PERIOD, documents=False)                 # 2026-10 is now finalised
    data = (b"item_ref,account_id,subscription_id,charge_code,amount,item_date,description\n"
            b"N1,ACC-NOPE,,LATE_FEE,,2026-11-05,\n"                  # no such account
            b"N2,ACC-TAXR,,LATE_FEE,,2026-10-20,\n"                  # period already finalised
            b"N3,ACC-TAXR,,LATE_FEE,,2026-11-05,\n")                 # open period: imported
    r = import_items(billing_lake, "charges", data, "late.csv")
    assert (r.rows_in, r.imported, r.rejected) == (3, 1, 2)
    rejects = read_published(lake_of(billing_lake), "billing/import_rejects", {"batch": r.batch})
    assert sorted(zip(rejects["line"], rejects["reason_code"], strict=True)) == [(2, "UNKNOWN_ACCOUNT"),
                                                                                (3, "PERIOD_CLOSED")]
    again = import_items(billing_lake, "charges", CHARGES_CSV, "charges.csv")
    assert again.imported == 3, "re-importing a landed file keeps its items although their period closed"


def test_rows_of_unknown_accounts_are_cycle_errors_not_dropped(billing_lake):
    write_rated(billing_lake, rows=[*RATED, rated("ghost", "ACC-GHOST", "SUB-GHOST", "P_BASIC", "sms", 1, 0, "0.09")])
    write_partition(lake_of(billing_lake), "payments", {"period": PERIOD}, "p1", pl.DataFrame(
        {"account_id": ["ACC-GHOST2"], "amount": [Decimal("5.00")], "received_date": [date(2026, 10, 9)]},
        schema={"account_id": pl.String, "amount": pl.Decimal(18, 2), "received_date": pl.Date}))
    result = bill_cycle(billing_lake, PERIOD, documents=False)
    assert sorted((a, c) for a, c, _ in result.errors) == [("ACC-GHOST", "UNKNOWN_ACCOUNT"),
                                                           ("ACC-GHOST2", "UNKNOWN_ACCOUNT")]
    errors = read_published(lake_of(billing_lake), "billing/cycle_errors", {"period": PERIOD})
    assert errors["account_id"].to_list() == ["ACC-GHOST", "ACC-GHOST2"]
    assert "rated" in errors["message"][0] and "payments" in errors["message"][1]


def test_run_id_does_not_depend_on_the_order_of_accounts(billing_lake):
    one = bill_cycle(billing_lake, PERIOD, accounts=["ACC-TAXR", "ACC-CREDIT"], dry_run=True)
    two = bill_cycle(billing_lake, PERIOD, accounts=["ACC-CREDIT", "ACC-TAXR"], dry_run=True)
    assert one.run_id == two.run_id
