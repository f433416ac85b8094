"""Exact money: every amount is a Decimal built through :func:`money`; never a float.

Rounding happens once, where the business rule says, with a named mode. DuckDB amounts use
``DECIMAL(38,9)`` (see :data:`SQL_AMOUNT`), invoice totals the currency's minor unit.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

SQL_AMOUNT = "DECIMAL(38,9)"
"""DuckDB type for precise (unrounded) rated amounts."""

AMOUNT_SCALE = 9
"""Decimal places kept for precise amounts (matches :data:`SQL_AMOUNT`)."""

ROUNDING_MODES = {
    "half_up": ROUND_HALF_UP,
    "up": ROUND_UP,
    "down": ROUND_DOWN,
    "half_even": ROUND_HALF_EVEN,
}
"""Named rounding modes accepted in catalogue and tax files. ``up`` rounds away from zero."""

CURRENCY_MINOR_UNITS = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
                        "JPY": 0, "KWD": 3, "BHD": 3}


class MoneyError(ValueError):
    """An amount that cannot be represented exactly (float input, garbage text, unknown currency)."""


def money(value: str | int | Decimal) -> Decimal:
    """Build an exact amount. Floats are refused: they already lost the exact value."""
    if isinstance(value, float):
        raise MoneyError(f"float {value!r} refused as money: pass a str, int or Decimal")
    if isinstance(value, bool):
        raise MoneyError("bool is not money")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not an amount: {value!r}") from exc
    if not amount.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return amount


def round_money(amount: Decimal, decimals: int, mode: str = "half_up") -> Decimal:
    """Round ``amount`` to ``decimals`` places with a named mode (see :data:`ROUNDING_MODES`)."""
    try:
        rounding = ROUNDING_MODES[mode]
    except KeyError as exc:
        raise MoneyError(f"unknown rounding mode {mode!r}; use one of {sorted(ROUNDING_MODES)}") from exc
    return money(amount).quantize(Decimal(1).scaleb(-decimals), rounding=rounding)


def minor_units(currency: str) -> int:
    """Decimal places of a currency's minor unit (ISO 4217)."""
    try:
        return CURRENCY_MINOR_UNITS[currency.upper()]
    except KeyError as exc:
        raise MoneyError(f"unknown currency {currency!r}; add it to CURRENCY_MINOR_UNITS") from exc


def round_to_currency(amount: Decimal, currency: str, mode: str = "half_up") -> Decimal:
    """Round a precise amount to the currency's minor unit."""
    return round_money(amount, minor_units(currency), mode)


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount already rounded to the minor unit, as an integer count of minor units."""
    rounded = round_to_currency(amount, currency)
    if rounded != amount:
        raise MoneyError(f"{amount} {currency} is not rounded to the minor unit")
    return int(rounded.scaleb(minor_units(currency)))


def fmt(amount: Decimal, currency: str) -> str:
    """Display text for an amount, e.g. ``12.30 EUR``; rounds half-up for display only."""
    return f"{round_to_currency(amount, currency):,.{minor_units(currency)}f} {currency}"
