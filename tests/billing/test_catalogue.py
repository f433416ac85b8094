"""Catalogue rules: jurisdiction inheritance, effective dating, missing rules are an error, bad files refused."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.billing.catalogue import CatalogueError, load_catalogue
from pipelines.billing.compute import BillingError, make_line, tax_lines

TARIFFS = Path(__file__).resolve().parents[2] / "tariffs"


@pytest.fixture
def tariffs(tmp_path) -> Path:
    folder = tmp_path / "tariffs"
    shutil.copytree(TARIFFS, folder)
    return folder


def _telecom(amount: str):
    return [make_line(Decimal(amount), "EUR", line_type="recurring", charge_code="RC", description="x",
                      tax_category="telecom", gl_account="4000")]


def test_sub_jurisdiction_inherits_and_overrides(tariffs):
    with (tariffs / "tax_rules.csv").open("a") as fh:
        fh.write("DE-BY,USF,Universal service fee BY,telecom,0.5,10,false,half_up,2410,2026-01-01,\n")
    cat = load_catalogue(tariffs)
    be = tax_lines(_telecom("100"), cat, "DE-BE", date(2026, 11, 1), "EUR")
    by = tax_lines(_telecom("100"), cat, "DE-BY", date(2026, 11, 1), "EUR")
    assert [(t.tax_code, t.amount) for t in be] == [("USF", Decimal("1.00")), ("VAT19", Decimal("19.19"))]
    assert [(t.tax_code, t.amount) for t in by] == [("USF", Decimal("0.50")), ("VAT19", Decimal("19.10"))]


def test_effective_dating_picks_the_rate_on_the_tax_point():
    cat = load_catalogue(TARIFFS)
    assert tax_lines(_telecom("100"), cat, "DE", date(2026, 12, 31), "EUR")[0].amount == Decimal("1.00")
    assert tax_lines(_telecom("100"), cat, "DE", date(2027, 1, 1), "EUR")[0].amount == Decimal("1.20")


def test_unknown_jurisdiction_is_an_error_not_zero_tax():
    with pytest.raises(BillingError, match="NO_TAX_RULES"):
        tax_lines(_telecom("10"), load_catalogue(TARIFFS), "XX", date(2026, 11, 1), "EUR")


@pytest.mark.parametrize(("file", "old", "new", "message"), [
    ("discounts.csv", ",percent,10,", ",percent,1O,", "not an amount"),
    ("discounts.csv", "plan,P_FAMILY", "planet,P_FAMILY", "level 'planet'"),
    ("tax_rules.csv", "telecom,19,", "telco,19,", "tax_category 'telco'"),
    ("one_off_charges.csv", "2024-01-01", "2024-13-01", "not a date"),
])
def test_malformed_catalogue_is_refused(tariffs, file, old, new, message):
    path = tariffs / file
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(tariffs)
