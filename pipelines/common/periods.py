"""Bill periods: half-open ``[start, end)`` in the account's time zone, labelled ``YYYY-MM``.

A period labelled ``2026-10`` for bill cycle day ``d`` runs from ``2026-10-d 00:00`` local time to
``2026-11-d 00:00`` local time. Cycle days are 1..28 so every month has them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


_PERIOD_RE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
FIRST_YEAR, LAST_YEAR = 1900, 9998
"""Years a period may have: its bill-period window (up to a month and a day in any time zone) must stay
inside the dates Python and DuckDB can represent."""


def parse_period(period: str) -> tuple[int, int]:
    """``'2026-10'`` -> ``(2026, 10)``. Strictly ``YYYY-MM`` (four-digit year, month 01..12), because the label
    names lake partitions (``period=2026-10``): ``2026-1`` or `` 2026-10`` would publish a second, different one."""
    if not isinstance(period, str) or not _PERIOD_RE.fullmatch(period):
        raise ValueError(f"period must be YYYY-MM with month 01-12, got {period!r}")
    if not FIRST_YEAR <= int(period[:4]) <= LAST_YEAR:
        raise ValueError(f"period year must be {FIRST_YEAR}-{LAST_YEAR}, got {period!r}")
    return int(period[:4]), int(period[5:])


def period_dates(period: str, cycle_day: int = 1) -> tuple[date, date]:
    """Local calendar dates ``[start, end)`` of a bill period."""
    if not 1 <= cycle_day <= 28:
        raise ValueError(f"bill cycle day must be 1..28, got {cycle_day}")
    year, month = parse_period(period)
    ny, nm = _next_month(year, month)
    return date(year, month, cycle_day), date(ny, nm, cycle_day)


def period_bounds_utc(period: str, cycle_day: int = 1, tz: str = "UTC") -> tuple[datetime, datetime]:
    """UTC instants ``[start, end)`` of a bill period for an account in time zone ``tz``."""
    start, end = period_dates(period, cycle_day)
    zone = ZoneInfo(tz)
    to_utc = lambda d: datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)  # noqa: E731
    return to_utc(start), to_utc(end)


def period_of(instant: datetime, cycle_day: int = 1, tz: str = "UTC") -> str:
    """Label of the bill period an instant falls in, for an account's cycle day and zone."""
    local = instant.astimezone(ZoneInfo(tz))
    year, month = local.year, local.month
    if local.day < cycle_day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


def days_in_period(period: str, cycle_day: int = 1) -> int:
    start, end = period_dates(period, cycle_day)
    return (end - start).days


def iter_dates(start: date, end: date) -> list[date]:
    """Every date in ``[start, end)``."""
    return [start + timedelta(days=i) for i in range((end - start).days)]
