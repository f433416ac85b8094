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
    """Prices through batch rating's ``quote(catalogue, plan_id, service, start_time, quantity, ...)``."""

    def __init__(self, tariffs_dir: str, as_of: datetime) -> None:
        try:
            from pipelines.rating import quote as quote_module
        except ImportError as exc:
            raise RuntimeError(
                "pipelines.rating.quote is not available yet; start the service with --rates FILE "
                "(a TablePricer CSV) until the rating area's quote() lands") from exc
        self._quote = quote_module.quote
        self.catalogue = quote_module.load_catalogue(tariffs_dir, as_of)

    def price(self, request: PriceRequest, quantity: int) -> Decimal:
        if quantity <= 0:
            return Decimal(0)
        try:
            result = self._quote(self.catalogue, request.plan_id, request.service, request.start_time, quantity,
                                 other_party=request.other_party, rating_group=request.rating_group,
                                 snssai=request.snssai, qos_class=request.qos_class,
                                 visited_network=request.visited_network)
        except (KeyError, ValueError, LookupError) as exc:
            raise PricingError("RATING_FAILED", str(exc)) from exc
        return money(_quote_amount(result))


def _quote_amount(result: object) -> Decimal:
    """The charge of a rating ``Quote`` (field ``charge``, as in the rated contract)."""
    for name in ("charge", "amount"):
        if hasattr(result, name):
            return getattr(result, name)
    raise PricingError("RATING_FAILED", f"quote returned {type(result).__name__} without a charge")
