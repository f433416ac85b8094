"""Amounts for people (CLI lines, HTML report): datasets keep DECIMAL(38,9), people read ``0.00 EUR``.

Rounding here is for display only (half-up, via :func:`pipelines.common.money.fmt` where a currency
applies); nothing formatted here is ever written back to a dataset.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pipelines.common.money import fmt

PERCENT_PLACES = 3
NONE_TEXT = "n/a"


def amount_text(value: Decimal | None, currency: str = "EUR") -> str:
    """A money amount, e.g. ``1,234.50 EUR`` (``n/a`` when there is no value)."""
    return NONE_TEXT if value is None else fmt(Decimal(value), currency)


def number_text(value: Decimal | int | None, places: int = 0) -> str:
    """A count or rate rounded half-up for display, with thousands separators (``-0`` shown as ``0``)."""
    if value is None:
        return NONE_TEXT
    q = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{q.copy_abs() if q.is_zero() else q:,.{places}f}"


def kpi_text(value: Decimal | None, unit: str) -> str:
    """A KPI value with its unit: EUR as money, percentages to 3 places, counts and days as integers."""
    if len(unit) == 3 and unit.isalpha() and unit.isupper():     # an ISO 4217 currency code
        return amount_text(value, unit)
    if unit == "%":
        return f"{number_text(value, PERCENT_PLACES)} %" if value is not None else NONE_TEXT
    return f"{number_text(value)} {unit}".strip() if value is not None else NONE_TEXT
