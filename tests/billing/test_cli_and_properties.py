"""The CLI end to end, and properties of the pure bill computation (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billing_fixtures import ADJUSTMENTS_CSV, CHARGES_CSV, account, sub, write_customers, write_rated
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.billing.catalogue import load_catalogue
from pipelines.billing.compute import AccountInputs, bill_account
from pipelines.cli import main

CAT = load_catalogue(Path(__file__).resolve().parents[2] / "tariffs")


def _cli(settings, *args: str) -> int:
    return main(["--lake", settings.lake_uri, "--tariffs", settings.tariffs_dir, *args])


def test_cli_imports_cycle_dry_run_and_verify(local_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TELBILL_OUTPUT_DIR", local_settings.output_dir)
    write_customers(local_settings)
    write_rated(local_settings)
    (tmp_path / "c.csv").write_bytes(CHARGES_CSV)
    (tmp_path / "a.csv").write_bytes(ADJUSTMENTS_CSV)
    assert _cli(local_settings, "billing", "import-charges", str(tmp_path / "c.csv")) == 2  # one bad row
    assert "3 imported" in capsys.readouterr().out
    assert _cli(local_settings, "billing", "import-adjustments", str(tmp_path / "a.csv")) == 2
    assert _cli(local_settings, "bill-cycle", "--period", "2026-10", "--dry-run") == 0
    assert "would bill 7 account(s)" in capsys.readouterr().out
    assert _cli(local_settings, "bill-cycle", "--period", "2026-10", "--workers", "1") == 0
    out = capsys.readouterr().out
    assert "finalised 7 invoice(s)" in out and "documents: 15 file(s)" in out
    assert _cli(local_settings, "bill-cycle", "--period", "2026-10") == 0
    assert "7 already finalised (no-op" in capsys.readouterr().out
    assert _cli(local_settings, "bill-cycle", "--period", "2026-10", "--verify") == 0
    assert "no differences" in capsys.readouterr().out
    assert _cli(local_settings, "billing", "void", "--invoice", "TBM-INV-00000001", "--reason", "test") == 0
    assert _cli(local_settings, "billing", "credit-note", "--invoice", "TBM-INV-00000002", "--reason", "x",
                "--date", "2026-11-03", "--amount", "1.00") == 0
    assert "TBM-CN-00000001" in capsys.readouterr().out
    assert _cli(local_settings, "bill-cycle", "--period", "2026-10", "--accounts", "ACC-FAM-KID") == 2
    assert "UNKNOWN_ACCOUNT" in capsys.readouterr().out
    assert _cli(local_settings, "billing", "void", "--invoice", "NOPE-1", "--reason", "x") == 2
    assert "UNKNOWN_INVOICE" in capsys.readouterr().out


START = datetime(2026, 10, 1, tzinfo=UTC) - timedelta(hours=2)  # Oct 1 00:00 Berlin


@settings(max_examples=40, deadline=None)
@given(change_day=st.integers(min_value=1, max_value=30), fee_plan=st.sampled_from(["P_BASIC", "P_UNLTD", "P_BIZ"]),
       usage=st.lists(st.decimals(min_value=0, max_value=50, places=9), max_size=4),
       jurisdiction=st.sampled_from(["DE", "DE-HH", "AT"]))
def test_bill_properties(change_day, fee_plan, usage, jurisdiction):
    """A plan change splits the days exactly; the total identity holds; rounding is once per line."""
    changed = START + timedelta(days=change_day)
    subs = [sub("S", "A", "491510000099", "P_BASIC", start=START - timedelta(days=40), end=changed),
            sub("S", "A", "491510000099", fee_plan, start=changed)]
    rows = [{"account_id": "A", "subscription_id": "S", "payment_type": "postpaid", "service": svc, "currency": "EUR",
             "plan_id": fee_plan, "quantity": 10, "quantity_included": 5, "quantity_charged": 5, "charge": c}
            for svc, c in zip(("voice", "sms", "data", "event"), usage, strict=False)]
    inv = bill_account(AccountInputs(account=account("A", "A", tax_jurisdiction=jurisdiction), subscriptions=subs,
                                     usage=rows), CAT, "2026-10")
    this_period = [ln for ln in inv.lines if ln.line_type == "recurring" and ln.service_start < date(2026, 11, 1)]
    assert sum(ln.quantity for ln in this_period) == 31, "the two plan rows cover every day exactly once"
    assert all(ln.amount == ln.amount_precise.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") for ln in inv.lines)
    assert inv.total == sum((ln.amount for ln in inv.lines), Decimal(0)) + sum((t.amount for t in inv.tax_lines),
                                                                                Decimal(0))
    usage_lines = [ln for ln in inv.lines if ln.line_type == "usage"]
    assert sum((ln.amount_precise for ln in usage_lines), Decimal(0)) == sum(usage, Decimal(0))
    assert inv.subtotal >= 0 and inv.tax_total >= 0


@settings(max_examples=40, deadline=None)
@given(base=st.decimals(min_value=Decimal("0.01"), max_value=500, places=2),
       pct=st.sampled_from([Decimal(5), Decimal(10), Decimal(20), Decimal(100)]),
       fixed=st.decimals(min_value=0, max_value=600, places=2))
def test_discounts_never_push_a_base_below_zero(base, pct, fixed):
    from pipelines.billing.catalogue import Discount
    from pipelines.billing.compute import discount_line

    d_pct = Discount(date(2024, 1, 1), None, "P", "p", "account", "A", "percent", pct, "all")
    d_fix = Discount(date(2024, 1, 1), None, "F", "f", "account", "A", "fixed", fixed, "all")
    after_pct = base + discount_line(d_pct, base, "EUR").amount
    assert after_pct >= 0
    assert after_pct + discount_line(d_fix, after_pct, "EUR").amount >= 0
