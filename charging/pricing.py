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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from pipelines.common.money import money


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
    Quotes are cached per (request, quantity): the catalogue is immutable while the service runs.
    """

    DENIED = frozenset({"NO_PLAN", "NO_TARIFF"})
    """quote() reasons meaning "this plan does not offer the service" (END_USER_SERVICE_DENIED)."""

    def __init__(self, tariffs_dir: str, as_of: datetime | None = None, cache_size: int = 65536) -> None:
        from pipelines.rating.catalogue import load_catalogue
        from pipelines.rating.quote import RatingError, quote

        self._quote = quote
        self._rating_error = RatingError
        self.catalogue = load_catalogue(tariffs_dir, as_of)
        self.price = lru_cache(maxsize=cache_size)(self._price)  # type: ignore[method-assign]

    def _price(self, request: PriceRequest, quantity: int) -> Decimal:
        if quantity <= 0:
            return Decimal(0)
        try:
            result = self._quote(self.catalogue, request.plan_id, request.service, request.start_time, quantity,
                                 other_party=request.other_party, rating_group=request.rating_group,
                                 snssai=request.snssai, qos_class=request.qos_class,
                                 visited_network=request.visited_network, direction=request.direction)
        except self._rating_error as exc:
            code = "SERVICE_DENIED" if exc.reason_code in self.DENIED else "RATING_FAILED"
            raise PricingError(code, str(exc)) from exc
        return money(result.charge)

    def price(self, request: PriceRequest, quantity: int) -> Decimal:  # replaced by the cached one in __init__
        return self._price(request, quantity)
