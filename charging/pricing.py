"""Pricing behind one small interface, so the real-time service charges what batch rating charges.

:class:`CataloguePricer` asks the batch rating area's ``pipelines.rating.quote.quote()`` over the same
catalogue (``tariffs/``); the sidecar holds no tariff rules of its own. :class:`TablePricer` is a
fixed per-unit table for tests and benchmarks that must not depend on catalogue contents.

A price is always the charge for the *cumulative* quantity of a session's rating group, so
increments and rounding are applied once over the whole session, exactly as a batch record of the
same total would be rated (the engine debits the difference at each report).
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from pipelines.common.money import money

MAX_INSTANT = datetime.max.replace(tzinfo=UTC)


class PricingError(Exception):
    """No price for a request. ``code`` is ``SERVICE_DENIED`` (the plan does not allow it) or ``RATING_FAILED``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PriceRequest:
    """What a charge depends on (the same arguments batch rating's quote takes)."""

    plan_id: str
    service: str
    start_time: datetime
    other_party: str | None = None
    rating_group: int | None = None
    snssai: str | None = None
    qos_class: int | None = None
    visited_network: str | None = None
    direction: str = "MO"


class Pricer(Protocol):
    def price(self, request: PriceRequest, quantity: int) -> Decimal:
        """Precise charge (currency of the plan) for ``quantity`` base units; monotone in quantity."""
        ...


@dataclass(frozen=True)
class TableRate:
    per_increment: Decimal
    increment: int


class TablePricer:
    """Fixed rates per service (optionally per rating group): ``per_increment`` for each started increment.

    Rows of a CSV ``service,rating_group,per_increment,increment`` (empty rating group = any).
    """

    def __init__(self, rates: Mapping[tuple[str, int | None], TableRate]) -> None:
        self.rates = dict(rates)

    @classmethod
    def from_csv(cls, path: str | Path) -> TablePricer:
        rates: dict[tuple[str, int | None], TableRate] = {}
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                rg = int(row["rating_group"]) if row.get("rating_group") else None
                rates[(row["service"], rg)] = TableRate(money(row["per_increment"]), int(row["increment"]))
        return cls(rates)

    def price(self, request: PriceRequest, quantity: int) -> Decimal:
        rate = self.rates.get((request.service, request.rating_group)) or self.rates.get((request.service, None))
        if rate is None:
            raise PricingError("SERVICE_DENIED", f"no rate for {request.service} rating group {request.rating_group}")
        if quantity <= 0:
            return Decimal(0)
        steps = (Decimal(quantity) / rate.increment).to_integral_value(rounding=ROUND_CEILING)
        return steps * rate.per_increment


class CataloguePricer:
    """Prices through batch rating's ``quote(catalogue, plan_id, service, start_time, quantity, ...)``.

    The whole catalogue is loaded (no ``as_of`` cut unless given) because quote() picks the rows
    valid at each session's start, so a long-running service crosses tariff changes correctly.
    Charges are cached per tariff window (see :class:`TariffWindows`); :meth:`refresh` swaps in a
    changed catalogue, with an empty cache, as one assignment.
    """

    DENIED = frozenset({"NO_PLAN", "NO_TARIFF"})
    """quote() reasons meaning "this plan does not offer the service" (END_USER_SERVICE_DENIED)."""

    def __init__(self, tariffs_dir: str, as_of: datetime | None = None, cache_size: int = 65536) -> None:
        self.tariffs_dir = tariffs_dir
        self.as_of = as_of
        self.cache_size = cache_size
        self._tariffs = self._load()

    def _load(self) -> TariffWindows:
        from pipelines.rating.catalogue import load_catalogue

        return TariffWindows(load_catalogue(self.tariffs_dir, self.as_of), self.cache_size)

    @property
    def catalogue(self):  # noqa: ANN201 - pipelines.rating.catalogue.Catalogue
        return self._tariffs.catalogue

    def refresh(self) -> bool:
        """Reload the catalogue if its files changed (content hash); True when a new one is in use."""
        from pipelines.rating.catalogue import catalogue_version

        if catalogue_version(self.tariffs_dir) == self._tariffs.catalogue.version:
            return False
        self._tariffs = self._load()
        return True

    def price(self, request: PriceRequest, quantity: int) -> Decimal:
        return self._tariffs.price(request, quantity)


class TariffWindows:
    """quote() results of one immutable catalogue, cached per *tariff window* instead of per instant.

    A window is a time span in which nothing quote() reads can change: no catalogue row starts or
    ends its validity in it (every ``valid_from``/``valid_to`` of every table is a cut) and it lies in
    one time-band segment of the plan's band set. Inside a window quote() gives the same charge for
    any start time (for voice: as long as the whole call ends in the window, so it crosses no band
    edge), so the charge is computed once at the window's start and keyed by (request without its
    start time, window, quantity): sessions starting at different instants share entries, and a
    request past a boundary lands in another window, never on a stale price. Anything that does not
    fit a window (a voice call crossing a band edge, an unknown plan) is quoted directly.
    """

    MAX_SEGMENTS = 100_000

    def __init__(self, catalogue, cache_size: int = 65536) -> None:  # noqa: ANN001
        from pipelines.rating.quote import RatingError, quote

        self.catalogue = catalogue
        self._quote = quote
        self._rating_error = RatingError
        frames = [*catalogue.tables.values(), catalogue.rules]
        self.cuts = sorted({v for f in frames if "valid_from" in f.columns and "valid_to" in f.columns
                            for c in ("valid_from", "valid_to") for v in f[c].to_list() if v is not None})
        self._segments: dict[str, list[tuple[datetime, datetime]]] = {}
        self._cached = lru_cache(maxsize=cache_size)(self._charge)

    def price(self, request: PriceRequest, quantity: int) -> Decimal:
        if quantity <= 0:
            return Decimal(0)
        start = self.window_start(request, quantity)
        if start is None:
            return self._charge(request, quantity)
        return self._cached(replace(request, start_time=start), quantity)

    def window_start(self, request: PriceRequest, quantity: int) -> datetime | None:
        """Start of the tariff window holding the request (None: price this one directly)."""
        at = request.start_time
        i = bisect_right(self.cuts, at)
        if i == 0 or i == len(self.cuts):
            return None
        lo, hi = self.cuts[i - 1], self.cuts[i]
        plans = self.catalogue.rows_valid("plans", at, plan_id=request.plan_id)
        segment = self._band_segment(plans[0]["band_set_id"], at) if plans else None
        if segment is None:
            return None
        lo, hi = max(lo, segment[0]), min(hi, segment[1])
        if request.service == "voice" and at + timedelta(seconds=quantity) > hi:
            return None
        return lo

    def _band_segment(self, band_set: str, at: datetime) -> tuple[datetime, datetime] | None:
        """A span holding ``at`` in which the band does not change (remembered per band set).

        band_calendar() covers the days around ``at``; its first and last segments may go on beyond
        those days, so a segment is a span of constant band but not always a maximal one. That only
        costs cache hits (another day, another window), never a wrong price.
        """
        known = self._segments.setdefault(band_set, [])
        i = bisect_right(known, (at, MAX_INSTANT)) - 1
        if i >= 0 and known[i][0] <= at < known[i][1]:
            return known[i]
        segments = [(s, e) for s, e, _ in self.catalogue.band_calendar(band_set, at, at + timedelta(microseconds=1))]
        if len(known) + len(segments) > self.MAX_SEGMENTS:
            known.clear()
        for seg in segments:
            j = bisect_right(known, seg)
            if not (j and known[j - 1] == seg):
                known.insert(j, seg)
        return next((seg for seg in segments if seg[0] <= at < seg[1]), None)

    def _charge(self, request: PriceRequest, quantity: int) -> Decimal:
        try:
            result = self._quote(self.catalogue, request.plan_id, request.service, request.start_time, quantity,
                                 other_party=request.other_party, rating_group=request.rating_group,
                                 snssai=request.snssai, qos_class=request.qos_class,
                                 visited_network=request.visited_network, direction=request.direction)
        except self._rating_error as exc:
            code = "SERVICE_DENIED" if exc.reason_code in CataloguePricer.DENIED else "RATING_FAILED"
            raise PricingError(code, str(exc)) from exc
        return money(result.charge)
