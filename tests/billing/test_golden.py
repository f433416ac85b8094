"""Golden invoices for hand-checked accounts (amounts worked out by hand in the comments)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from billing_fixtures import ACCOUNTS, PERIOD, SUBSCRIPTIONS, account, sub, utc, write_customers

from pipelines.billing import bill_cycle
from pipelines.billing.compute import active_days
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store

D = Decimal

# account -> ([(line_type, charge_code, amount_precise, amount)], [(tax_code, category, base, amount)], total)
GOLDEN = {
    # October was billed in advance on September's bill (21/31 x 10 = 6.77, see test_mid_period_start_in_advance)
    # and did not change: only November in advance 10.00 + voice 0.123456789 + 0.5 -> 0.62
    # USF 1% of 10.62 = 0.1062 -> 0.11; VAT 19% of (10.62 + 0.11) = 2.0387 -> 2.04; total 12.77
    "ACC-START": ([("recurring", "RC_P_BASIC", "10", "10.00"), ("usage", "USAGE_VOICE", "0.623456789", "0.62")],
                  [("USF", "telecom", "10.62", "0.11"), ("VAT19", "telecom", "10.73", "2.04")], "12.77"),
    # plan change on Oct 16, after September's bill charged P_BASIC 10.00 for October in advance:
    # reverse -10.00; P_BASIC 15/31 x 10 = 4.838709677 -> 4.84; P_UNLTD 16/31 x 30 = 15.483870968 -> 15.48;
    # November P_UNLTD in advance 30.00; no usage. 40.32: USF 0.4032 -> 0.40; VAT 40.72 x 0.19 = 7.7368 -> 7.74
    "ACC-CHANGE": ([("recurring", "RC_P_BASIC", "-10", "-10.00"), ("recurring", "RC_P_BASIC", "4.838709677", "4.84"),
                    ("recurring", "RC_P_UNLTD", "15.483870968", "15.48"), ("recurring", "RC_P_UNLTD", "30", "30.00")],
                   [("USF", "telecom", "40.32", "0.40"), ("VAT19", "telecom", "40.72", "7.74")], "48.46"),
    # stop on Oct 21 after October was billed in advance: reverse -10.00, bill 20/31 x 10 = 6.451612903 -> 6.45,
    # nothing in advance. -3.55: USF -0.0355 -> -0.04 (half-up is away from zero); VAT -3.59 x 0.19 = -0.6821 -> -0.68
    "ACC-STOP": ([("recurring", "RC_P_BASIC", "-10", "-10.00"), ("recurring", "RC_P_BASIC", "6.451612903", "6.45")],
                 [("USF", "telecom", "-3.55", "-0.04"), ("VAT19", "telecom", "-3.59", "-0.68")], "-4.27"),
    # stacking: plan 10% of 45 = 4.50; usage 3.33; line 20% of 43.83 = 8.766 -> 8.77;
    # account 5% of 35.06 = 1.753 -> 1.75; then fixed 2.00; net 31.31; USF 0.31; VAT 31.62 x 0.19 = 6.0078 -> 6.01
    "ACC-DEMO-VIP": ([("recurring", "RC_P_FAMILY", "45", "45.00"), ("discount", "D_FAMILY10", "-4.5", "-4.50"),
                      ("usage", "USAGE_DATA", "3.333333333", "3.33"), ("discount", "D_LINE_STAFF", "-8.766", "-8.77"),
                      ("discount", "D_ACC_VIP5", "-1.753", "-1.75"), ("discount", "D_ACC_WELCOME", "-2", "-2.00")],
                     [("USF", "telecom", "31.31", "0.31"), ("VAT19", "telecom", "31.62", "6.01")], "37.63"),
    # tax rounding: device VAT 12.50 x 0.19 = 2.375 -> 2.38 (half-up); late fee exempt (no tax line)
    # telecom 29.99: USF 0.2999 -> 0.30; VAT 30.29 x 0.19 = 5.7551 -> 5.76
    "ACC-TAXR": ([("recurring", "RC_P_BASIC", "10", "10.00"), ("one_off", "ACTIVATION", "19.99", "19.99"),
                  ("one_off", "DEVICE_INSTALMENT", "12.5", "12.50"), ("one_off", "LATE_FEE", "5", "5.00")],
                 [("VAT19", "device", "12.50", "2.38"), ("USF", "telecom", "29.99", "0.30"),
                  ("VAT19", "telecom", "30.29", "5.76")], "55.93"),
    # credits reduce the taxable base: 10 - 2.50 - 1.00 = 6.50; USF 0.065 -> 0.07; VAT 6.57 x 0.19 = 1.2483 -> 1.25
    "ACC-CREDIT": ([("recurring", "RC_P_BASIC", "10", "10.00"), ("adjustment", "GOODWILL_CREDIT", "-2.5", "-2.50"),
                    ("adjustment", "DISPUTE_CREDIT", "-1", "-1.00")],
                   [("USF", "telecom", "6.50", "0.07"), ("VAT19", "telecom", "6.57", "1.25")], "7.82"),
    # family: one postpaid line 45 - 10% = 40.50; prepaid lines (own + child account) only in the summary
    # USF 0.405 -> 0.41; VAT 40.91 x 0.19 = 7.7729 -> 7.77
    "ACC-FAM": ([("recurring", "RC_P_FAMILY", "45", "45.00"), ("discount", "D_FAMILY10", "-4.5", "-4.50")],
                [("USF", "telecom", "40.50", "0.41"), ("VAT19", "telecom", "40.91", "7.77")], "48.68"),
    # B2B: 2 x (25 - 5) + 30 voice = 70 < 250 commitment -> true-up 180; USF 2.50; VAT 252.50 x 0.19 = 47.975 -> 47.98
    "ACC-DEMO-BIZ": ([("recurring", "RC_P_BIZ", "25", "25.00"), ("discount", "D_BIZ_LOYAL", "-5", "-5.00"),
                      ("usage", "USAGE_VOICE", "30", "30.00"), ("recurring", "RC_P_BIZ", "25", "25.00"),
                      ("discount", "D_BIZ_LOYAL", "-5", "-5.00"), ("commitment", "C_DEMO_BIZ", "180", "180.00")],
                     [("USF", "telecom", "250.00", "2.50"), ("VAT19", "telecom", "252.50", "47.98")], "300.48"),
}


STOP = [account("ACC-STOP", "Stefan Stop")]
BEFORE = [s for s in SUBSCRIPTIONS if s["subscription_id"] != "SUB-CHG"] + [
    sub("SUB-CHG", "ACC-CHANGE", "491510000002", "P_BASIC"), sub("SUB-STOP", "ACC-STOP", "491510000013", "P_BASIC")]
AFTER = [*SUBSCRIPTIONS, sub("SUB-STOP", "ACC-STOP", "491510000013", "P_BASIC", end=utc(2026, 10, 20, 22))]


@pytest.fixture
def september(billing_lake):
    """September billed with the customer data as it stood then (no plan change, no stop yet)."""
    write_customers(billing_lake, accounts=ACCOUNTS + STOP, subs=BEFORE, run="before")
    return bill_cycle(billing_lake, "2026-09", documents=False)


@pytest.fixture
def cycle(billing_lake, september):
    write_customers(billing_lake, accounts=ACCOUNTS + STOP, subs=AFTER, run="after")
    return bill_cycle(billing_lake, PERIOD, documents=False)


def test_mid_period_start_in_advance(september):
    """September's bill (issued Oct 1) charges October in advance: from Oct 11 local, 21/31 x 10.00."""
    [inv] = [d for d in september.invoices if d.account_id == "ACC-START"]
    assert [(ln.charge_code, ln.service_start, ln.service_end, ln.quantity, ln.amount_precise, ln.amount)
            for ln in inv.lines] == [("RC_P_BASIC", date(2026, 10, 11), date(2026, 11, 1), 21, D("6.774193548"),
                                      D("6.77"))]
    [chg] = [d for d in september.invoices if d.account_id == "ACC-CHANGE"]
    assert [ln.amount for ln in chg.lines] == [D("10.00"), D("10.00")], "first bill: September + October in advance"


@pytest.mark.parametrize("account_id", sorted(GOLDEN))
def test_golden_invoice(cycle, account_id):
    lines, taxes, total = GOLDEN[account_id]
    [inv] = [d for d in cycle.invoices if d.account_id == account_id]
    assert [(ln.line_type, ln.charge_code, ln.amount_precise, ln.amount) for ln in inv.lines] == [
        (t, c, D(p), D(a)) for t, c, p, a in lines]
    assert [(t.tax_code, t.tax_category, t.base, t.amount) for t in inv.tax_lines] == [
        (c, cat, D(b), D(a)) for c, cat, b, a in taxes]
    assert inv.total == D(total)


def test_invoice_total_identity_in_published_data(cycle, billing_lake):
    """total = sum of rounded lines + sum of rounded taxes, for every published invoice."""
    lake = open_store(billing_lake.lake_uri)
    inv = read_published(lake, "invoices", {"period": PERIOD})
    lines = read_published(lake, "invoice_lines", {"period": PERIOD})
    taxes = read_published(lake, "invoice_tax_lines", {"period": PERIOD})
    assert inv.height == len(GOLDEN)
    for row in inv.to_dicts():
        line_sum = sum(lines.filter(lines["invoice_id"] == row["invoice_id"])["amount"].to_list(), D(0))
        tax_sum = sum(taxes.filter(taxes["invoice_id"] == row["invoice_id"])["amount"].to_list(), D(0))
        assert row["subtotal"] == line_sum and row["tax_total"] == tax_sum
        assert row["total"] == line_sum + tax_sum
        assert row["amount_due"] == row["previous_balance"] - row["payments_received"] + row["total"]
    for row in lines.to_dicts():  # each rounded amount is its precise amount rounded once, half-up
        assert row["amount"] == row["amount_precise"].quantize(D("0.01"), rounding="ROUND_HALF_UP")


def test_prepaid_lines_are_summarised_not_billed(cycle):
    [fam] = [d for d in cycle.invoices if d.account_id == "ACC-FAM"]
    summary = {(p.msisdn, p.service): (p.quantity, p.charge, p.topups) for p in fam.prepaid}
    assert summary == {("491510000007", "voice"): (600, D("1.80"), D("15.00")),   # own prepaid line + top-up
                       ("491510000008", "sms"): (12, D("1.08"), D("0"))}          # child account's prepaid line
    assert "ACC-FAM-KID" not in {d.account_id for d in cycle.invoices}, "child accounts roll up to the parent"
    assert cycle.not_billed == ["ACC-PRE"], "a prepaid-only account gets no invoice"


def test_empty_period_still_bills_recurring(local_settings):
    """No rated dataset and no earlier bill: this period pro-rated plus next period in advance."""
    write_customers(local_settings)
    result = bill_cycle(local_settings, PERIOD, documents=False)
    by_acc = {d.account_id: d for d in result.invoices}
    assert [ln.amount for ln in by_acc["ACC-CHANGE"].lines] == [D("4.84"), D("15.48"), D("30.00")]
    assert [ln.line_type for ln in by_acc["ACC-START"].lines] == ["recurring", "recurring"]
    assert by_acc["ACC-START"].subtotal == D("16.77")
    assert not any(ln.line_type == "usage" for d in result.invoices for ln in d.lines)


@pytest.mark.parametrize(("valid_from", "valid_to", "days"), [
    ("2026-10-01", None, 31), ("2026-10-11", None, 21), ("2026-09-01", "2026-10-16", 15),
    ("2026-10-31", None, 1), ("2026-11-01", None, 0), ("2026-10-05", "2026-10-05", 0),
])
def test_active_days_rule(valid_from, valid_to, days):
    from datetime import date

    span = active_days(date(2026, 10, 1), date(2026, 11, 1), date.fromisoformat(valid_from),
                       date.fromisoformat(valid_to) if valid_to else None)
    assert (0 if span is None else (span[1] - span[0]).days) == days


@pytest.mark.parametrize(("instant", "local_day"), [
    ("2026-10-24T22:00:00+00:00", "2026-10-25"),   # CEST (UTC+2): midnight Oct 25 local
    ("2026-10-25T22:30:00+00:00", "2026-10-25"),   # after the switch to CET (UTC+1): still Oct 25, 23:30
    ("2026-10-25T23:00:00+00:00", "2026-10-26"),   # CET midnight
    ("2026-03-28T23:00:00+00:00", "2026-03-29"),   # CET midnight before the spring switch
])
def test_subscription_days_use_the_account_zone_across_dst(instant, local_day):
    from datetime import datetime

    from pipelines.billing.compute import local_date

    assert local_date(datetime.fromisoformat(instant), "Europe/Berlin") == date.fromisoformat(local_day)
