"""Load a CGRateS tariff-plan folder (the rating files only) into validated, immutable rows.

Files read: Timings, Destinations, Rates, DestinationRates, RatingPlans, RatingProfiles (``.csv``,
``#`` lines are comments/headers, blank lines are skipped, exactly as CGRateS's CSV loader does).
Account files (Actions, ActionPlans, AccountActions, ...) are not rating and are ignored.
Every problem raises :class:`TariffPlanError` naming the file and line, so an operator can fix
the plan; nothing is guessed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pipelines.common.money import MoneyError, money
from pipelines.rating.cgrates.goformats import (
    NS_PER_DAY,
    NS_PER_SECOND,
    GoFormatError,
    parse_cgr_duration,
    parse_clock,
    parse_rfc3339,
)

ANY = "*any"
ROUNDING_METHODS = ("*up", "*middle", "*down")
MAX_COST_STRATEGIES = ("", "*free", "*disconnect")
FILES = ("Timings", "Destinations", "Rates", "DestinationRates", "RatingPlans", "RatingProfiles")
# without these nothing can be rated (every event would be RATING_PLAN_NOT_FOUND): such a folder is refused.
# Timings (``*any`` is built in) and Destinations (``*any`` destination rates) may be absent.
REQUIRED_FILES = ("Rates", "DestinationRates", "RatingPlans", "RatingProfiles")


class TariffPlanError(ValueError):
    """A tariff-plan file that cannot be loaded; the message names the file and line."""


@dataclass(frozen=True)
class Timing:
    """When a rating-plan row applies. Empty tuples mean *any; weekdays are ISO (1=Mon..7=Sun)."""

    timing_id: str
    years: tuple[int, ...]
    months: tuple[int, ...]
    month_days: tuple[int, ...]
    week_days: tuple[int, ...]
    start_ns: int
    end_ns: int


ANY_TIMING = Timing(ANY, (), (), (), (), 0, NS_PER_DAY)


@dataclass(frozen=True)
class RateSlot:
    """One GroupIntervalStart slot of a Rates id; durations in nanoseconds (units)."""

    rate_id: str
    connect_fee: Decimal
    rate: Decimal
    unit_ns: int
    increment_ns: int
    group_start_ns: int
    line: int


@dataclass(frozen=True)
class DestinationRate:
    dr_id: str
    destination_id: str
    rate_id: str
    rounding_method: str
    rounding_decimals: int
    max_cost: Decimal
    max_cost_strategy: str


@dataclass(frozen=True)
class RatingPlanRow:
    plan_id: str
    dr_id: str
    timing_id: str
    weight: Decimal


@dataclass(frozen=True)
class RatingProfile:
    """One activation of a rating plan for tenant/category/subject (``*any`` allowed)."""

    tenant: str
    category: str
    subject: str
    activation_utc_ns: int
    plan_id: str
    fallback_subjects: tuple[str, ...]


@dataclass(frozen=True)
class TariffPlan:
    """A whole tariff plan, validated: every reference resolves."""

    timings: tuple[Timing, ...]
    destinations: tuple[tuple[str, str], ...]
    rates: tuple[RateSlot, ...]
    destination_rates: tuple[DestinationRate, ...]
    rating_plans: tuple[RatingPlanRow, ...]
    rating_profiles: tuple[RatingProfile, ...]
    source: str = field(default="")


def _rows(folder: Path, name: str, min_fields: int) -> Iterator[tuple[int, list[str]]]:
    path = folder / f"{name}.csv"
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if len(row) < min_fields:
                raise TariffPlanError(f"{name}.csv line {reader.line_num}: expected {min_fields} fields, "
                                      f"found {len(row)}: {','.join(row)!r}")
            yield reader.line_num, [c.strip() for c in row]


def _fail(name: str, line: int, message: str) -> TariffPlanError:
    return TariffPlanError(f"{name}.csv line {line}: {message}")


def _int_list(value: str, name: str, line: int, what: str, low: int, high: int) -> tuple[int, ...]:
    if value in ("", ANY):
        return ()
    try:
        items = tuple(int(v) for v in value.split(";") if v.strip())
    except ValueError as exc:
        raise _fail(name, line, f"{what} must be {ANY} or ';'-separated integers, got {value!r}") from exc
    bad = [v for v in items if not low <= v <= high]
    if bad:
        raise _fail(name, line, f"{what} out of range {low}..{high}: {bad}")
    return items


def _amount(value: str, name: str, line: int, what: str) -> Decimal:
    try:
        return money(value or "0")
    except MoneyError as exc:
        raise _fail(name, line, f"{what} is not a decimal number: {value!r}") from exc


def _duration(value: str, name: str, line: int, what: str) -> int:
    try:
        ns, _ = parse_cgr_duration(value)
    except GoFormatError as exc:
        raise _fail(name, line, f"{what}: {exc}") from exc
    if ns < 0:
        raise _fail(name, line, f"{what} must not be negative: {value!r}")
    return ns


def _load_timings(folder: Path) -> list[Timing]:
    out = []
    for line, r in _rows(folder, "Timings", 6):
        start_text, _, end_text = r[5].partition(";")
        try:
            # *asap only makes sense for action plans; for rating it means "from midnight".
            start = 0 if start_text in ("", "*asap", ANY) else parse_clock(start_text)
            if end_text:
                parse_clock(end_text)  # validated, but CGRateS rating ignores it (see below)
            # engine GetRateInterval copies only StartTime into the rating timing: a rate interval
            # runs from its start time to the end of the day, whatever end time the file gives.
            end = NS_PER_DAY
        except GoFormatError as exc:
            raise _fail("Timings", line, str(exc)) from exc
        week_days = _int_list(r[4], "Timings", line, "WeekDays", 0, 7)
        out.append(Timing(r[0], _int_list(r[1], "Timings", line, "Years", 0, 9999),
                          _int_list(r[2], "Timings", line, "Months", 1, 12),
                          _int_list(r[3], "Timings", line, "MonthDays", 1, 31),
                          tuple(7 if d == 0 else d for d in week_days), start, end))
    return out


def _load_rates(folder: Path) -> list[RateSlot]:
    out = []
    for line, r in _rows(folder, "Rates", 6):
        out.append(RateSlot(
            rate_id=r[0],
            connect_fee=_amount(r[1], "Rates", line, "ConnectFee"),
            rate=_amount(r[2], "Rates", line, "Rate"),
            # CGRateS replaces a zero RateUnit/RateIncrement by one second (RateInterval.GetRateParameters).
            unit_ns=_duration(r[3], "Rates", line, "RateUnit") or NS_PER_SECOND,
            increment_ns=_duration(r[4], "Rates", line, "RateIncrement") or NS_PER_SECOND,
            group_start_ns=_duration(r[5], "Rates", line, "GroupIntervalStart"),
            line=line,
        ))
    seen: dict[tuple[str, int], int] = {}
    for s in out:
        key = (s.rate_id, s.group_start_ns)
        if key in seen:
            raise _fail("Rates", s.line, f"rate {s.rate_id!r} has two slots starting at the same "
                                         f"GroupIntervalStart (also line {seen[key]})")
        seen[key] = s.line
    return out


def _load_destination_rates(folder: Path) -> list[tuple[int, DestinationRate]]:
    out = []
    for line, r in _rows(folder, "DestinationRates", 5):
        method = r[3]
        if method not in ROUNDING_METHODS:
            raise _fail("DestinationRates", line, f"RoundingMethod must be one of {ROUNDING_METHODS}, "
                                                  f"got {method!r}")
        try:
            decimals = int(r[4])
        except ValueError as exc:
            raise _fail("DestinationRates", line, f"RoundingDecimals must be an integer, got {r[4]!r}") from exc
        if not 0 <= decimals <= 9:
            raise _fail("DestinationRates", line, f"RoundingDecimals must be 0..9, got {decimals}")
        strategy = r[6] if len(r) > 6 else ""
        if strategy not in MAX_COST_STRATEGIES:
            raise _fail("DestinationRates", line, f"MaxCostStrategy must be one of {MAX_COST_STRATEGIES}, "
                                                  f"got {strategy!r}")
        max_cost = _amount(r[5] if len(r) > 5 else "", "DestinationRates", line, "MaxCost")
        out.append((line, DestinationRate(r[0], r[1], r[2], method, decimals, max_cost, strategy)))
    return out


def _load_profiles(folder: Path) -> list[tuple[int, RatingProfile]]:
    out = []
    for line, r in _rows(folder, "RatingProfiles", 5):
        if r[1] in ("*out", "*in") and len(r) >= 6:  # old layout with a Direction column
            r = [r[0], *r[2:]]
        try:
            activation = parse_rfc3339(r[3]).utc_ns
        except GoFormatError as exc:
            raise _fail("RatingProfiles", line, f"ActivationTime: {exc}") from exc
        fallbacks = tuple(s for s in (r[5].split(";") if len(r) > 5 else []) if s)
        out.append((line, RatingProfile(r[0], r[1], r[2], activation, r[4], fallbacks)))
    return out


def _require_files(folder: Path) -> None:
    """Refuse a folder that is not a tariff plan (often its parent), naming what is missing."""
    missing = [f"{name}.csv" for name in REQUIRED_FILES if not (folder / f"{name}.csv").is_file()]
    if not missing:
        return
    plans = sorted(p.parent.name for p in folder.glob("*/RatingProfiles.csv"))
    hint = f"; plan folders inside it: {', '.join(plans[:5])}" if plans else ""
    raise TariffPlanError(f"{folder} is not a CGRateS tariff-plan folder: missing {', '.join(missing)} (required: "
                          f"{', '.join(n + '.csv' for n in REQUIRED_FILES)}){hint}")


def load_tariff_plan(folder: str | Path) -> TariffPlan:
    """Read and cross-check a tariff-plan folder; raise :class:`TariffPlanError` on any problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TariffPlanError(f"tariff plan folder not found: {folder}")
    _require_files(folder)
    timings = _load_timings(folder)
    destinations = [(r[0], r[1]) for _, r in _rows(folder, "Destinations", 2)]
    rates = _load_rates(folder)
    drs = _load_destination_rates(folder)
    plans = []
    for line, r in _rows(folder, "RatingPlans", 4):
        try:
            weight = money(r[3] or "0")
        except MoneyError as exc:
            raise _fail("RatingPlans", line, f"Weight is not a number: {r[3]!r}") from exc
        plans.append((line, RatingPlanRow(r[0], r[1], r[2], weight)))
    profiles = _load_profiles(folder)

    timing_ids = {t.timing_id for t in timings} | {ANY}
    dest_ids = {d for d, _ in destinations} | {ANY}
    rate_ids = {s.rate_id for s in rates}
    for line, dr in drs:
        if dr.destination_id not in dest_ids:
            raise _fail("DestinationRates", line, f"unknown destination {dr.destination_id!r}")
        if dr.rate_id not in rate_ids:
            raise _fail("DestinationRates", line, f"unknown rate {dr.rate_id!r}")
    dr_ids = {dr.dr_id for _, dr in drs}
    for line, p in plans:
        if p.dr_id not in dr_ids:
            raise _fail("RatingPlans", line, f"unknown destination rate {p.dr_id!r}")
        if p.timing_id not in timing_ids:
            raise _fail("RatingPlans", line, f"unknown timing {p.timing_id!r}")
    if not profiles:
        raise TariffPlanError("RatingProfiles.csv has no rating profile rows: no event could be rated")
    plan_ids = {p.plan_id for _, p in plans}
    for line, prof in profiles:
        if prof.plan_id not in plan_ids:
            raise _fail("RatingProfiles", line, f"unknown rating plan {prof.plan_id!r}")
    return TariffPlan(
        timings=tuple(timings), destinations=tuple(destinations), rates=tuple(rates),
        destination_rates=tuple(dr for _, dr in drs), rating_plans=tuple(p for _, p in plans),
        rating_profiles=tuple(p for _, p in profiles), source=str(folder),
    )
