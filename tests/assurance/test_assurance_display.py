"""People read amounts as ``0.00 EUR``; the datasets keep their exact DECIMAL(38,9) values."""

from __future__ import annotations

from decimal import Decimal

from pipelines.assurance.display import amount_text, kpi_text, number_text


def test_amounts_round_half_up_for_display_only():
    assert amount_text(Decimal("0E-9")) == "0.00 EUR"
    assert amount_text(Decimal("1234.565000000")) == "1,234.57 EUR"
    assert amount_text(Decimal("-0.125")) == "-0.13 EUR"
    assert amount_text(None) == "n/a"


def test_kpis_by_unit():
    assert kpi_text(Decimal("0.033616853"), "%") == "0.034 %"
    assert kpi_text(Decimal("-0.000100000"), "%") == "0.000 %"
    assert kpi_text(Decimal("3.000000000"), "days") == "3 days"
    assert kpi_text(Decimal("1200.000000000"), "records") == "1,200 records"
    assert kpi_text(Decimal("5.000000000"), "EUR") == "5.00 EUR"
    assert kpi_text(None, "%") == "n/a"
    assert number_text(Decimal("2.25"), 1) == "2.3"
