"""Single-event pricer: the same tariff rules as the set-based engine, one record at a time, in Python.

The prepaid charging sidecar prices with it (so prepaid and postpaid share one catalogue), ``telbill
explain`` reuses its wording, and it is the per-record baseline of the rating benchmark. It applies
every rule except allowances (they depend on the other records of the bill period); pass
``included`` to price what is left after an allowance.

Charging structure (documented in docs/rating.md): the rate matched at the record's start band gives
the connect fee, first interval, increment, decimals, final rounding and cap; each band segment of a
voice call is priced with the price of its own band's rate. Blocks (the first interval, then each
increment) are laid on the call's timeline and priced at the band where they start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from pipelines.common.money import ROUNDING_MODES
from pipelines.rating.catalogue import ANY, MATCH_COLUMNS, NANO, Catalogue, quantity_ok

HOME_ZONE = "HOME"
US = 1_000_000
"""Voice timelines are measured in microseconds (records may start at fractional seconds)."""


class RatingError(ValueError):
    """A record cannot be rated; ``reason_code`` is the suspense reason."""

    def __init__(self, reason_code: str, message: str):
        self.reason_code = reason_code
        super().__init__(f"{reason_code}: {message}")


@dataclass(frozen=True)
class Segment:
    """Part of a record inside one time band, and what it cost."""

    band: str
    rate_id: str
    start: datetime
    length: int          # voice: microseconds, others: base units
    charged_units: int   # base units billed in this segment (whole blocks)
    cost_nanos: int


@dataclass(frozen=True)
class Quote:
    """How one usage record is priced."""

    charge: Decimal
    currency: str
    rate_id: str
    band: str
    destination_id: str | None
    destination_class: str | None
    zone: str
    quantity: int
    quantity_included: int
    quantity_charged: int
    precise_nanos: int
    capped: bool
    rate: dict = field(repr=False, default_factory=dict)
    segments: tuple[Segment, ...] = ()


def div_round(n: int, d: int, method: str) -> int:
    """``n / d`` rounded to an integer with a named method (n >= 0, d > 0); mirrors the SQL macro."""
    q, r = divmod(n, d)
    if r == 0 or method == "down":
        return q
    if method == "up":
        return q + 1
    if method == "half_up":
        return q + (1 if 2 * r >= d else 0)
    if method == "half_even":
        return q + (1 if 2 * r > d or (2 * r == d and q % 2 == 1) else 0)
    raise ValueError(f"unknown rounding method {method!r}")


def block_cost(price: str, length: int, unit: int, decimals: int, method: str) -> int:
    """Cost in nanos of one block of ``length`` base units at ``price`` per ``unit``, rounded to ``decimals``.

    Written with :class:`~decimal.Decimal` on purpose (the SQL engine uses integer arithmetic), so the
    equality test between the two is a real cross-check.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(price) * length / unit
        rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUNDING_MODES[method])
    return int(rounded.scaleb(9))


def final_round(nanos: int, decimals: int, method: str) -> int:
    step = 10 ** (9 - decimals)
    return div_round(nanos, step, method) * step


def match_rule(cat: Catalogue, at: datetime, *, plan_id: str, account_id: str | None, service: str,
               keys: dict[str, str]) -> dict | None:
    """The highest-priority catalogue rule for a record (account override, plan rule or '*' rule)."""
    best = None
    for rule in cat._row_dicts("rules"):
        if not (rule["valid_from"] <= at < rule["valid_to"]) or rule["service"] != service:
            continue
        if rule["plan_id"] not in (ANY, plan_id) or rule["account_id"] not in (ANY, account_id):
            continue
        if any(rule[c] != ANY and rule[c] != keys[c] for c in MATCH_COLUMNS):
            continue
        if best is None or rule["priority"] > best["priority"]:
            best = rule
    return best


def _key(value: object) -> str:
    return "" if value is None else str(value)


def quote(catalogue: Catalogue, plan_id: str, service: str, start_time: datetime, quantity: int,
          other_party: str | None = None, rating_group: int | None = None, snssai: str | None = None,
          qos_class: int | None = None, visited_network: str | None = None, *, direction: str = "MO",
          account_id: str | None = None, included: int = 0, tier_position: int = 0,
          tier_total: int | None = None, overage_rate_id: str | None = None) -> Quote:
    """Price one usage record (without allowances; ``included`` units at the start are free).

    ``overage_rate_id``: the allowance's overage rate; when the record is not fully included it replaces the
    rule's rate as a whole, with one price for every time band (the rules still have to match: a record the
    plan does not rate is suspense, overage or not).

    Tiered rates need the line's billed units before this record in the period (``tier_position``, for
    graduated tiers) or the period total (``tier_total``, volume tiers; default: position + this record).
    """
    cat, at = catalogue, start_time
    plans = cat.rows_valid("plans", at, plan_id=plan_id)
    if not plans:
        raise RatingError("NO_PLAN", f"plan {plan_id!r} is not in the catalogue on {at:%Y-%m-%d}")
    band_set = plans[0]["band_set_id"]
    zone = HOME_ZONE
    if visited_network:
        found = cat.rows_valid("roaming_zones", at, tadig=visited_network)
        if not found:
            raise RatingError("UNKNOWN_NETWORK", f"visited network {visited_network!r} has no roaming zone")
        zone = found[0]["zone"]
    dest_id = dest_class = None
    if service in ("voice", "sms") and direction == "MO":
        dest = cat.longest_prefix("destinations", other_party, at)
        if dest is None:
            raise RatingError("UNKNOWN_DESTINATION", f"no destination prefix matches {other_party!r}")
        dest_id, dest_class = dest["destination_id"], dest["destination_class"]
    if not quantity_ok(service, quantity):
        raise RatingError("BAD_QUANTITY", f"quantity {quantity!r} is missing, negative or absurd")
    keys = {"direction": direction, "zone": zone, "destination_class": _key(dest_class),
            "destination_id": _key(dest_id), "rating_group": _key(rating_group), "snssai": _key(snssai),
            "qos_class": _key(qos_class)}

    voice = service == "voice"
    scale = US if voice else 1
    total = quantity * scale
    end = start_time + timedelta(microseconds=total) if voice else start_time
    calendar = cat.band_calendar(band_set, start_time, max(end, start_time + timedelta(microseconds=1)))
    bands = [(s, e, b) for s, e, b in calendar if s <= start_time < e or (voice and s < end and e > start_time)]
    if not bands or not (bands[0][0] <= start_time < bands[0][1]):
        raise RatingError("NO_BAND", f"band set {band_set} has no band at {start_time.isoformat()}")
    if not voice or total == 0:
        bands = bands[:1]
    elif sum((min(e, end) - max(s, start_time) for s, e, _ in bands), timedelta()) < timedelta(microseconds=total):
        raise RatingError("NO_BAND", f"band set {band_set} has no band for part of the call starting "
                                     f"{start_time.isoformat()}")

    overage = None
    if overage_rate_id and max(0, min(included, quantity)) < quantity:
        overage = cat.rate(overage_rate_id, at)
        if overage is None:
            raise RatingError("NO_TARIFF", f"overage rate {overage_rate_id} is not valid on {at:%Y-%m-%d}")

    def rate_for(band: str) -> tuple[dict, dict]:
        rule = match_rule(cat, at, plan_id=plan_id, account_id=account_id, service=service,
                          keys={**keys, "band": band})
        if rule is None:
            raise RatingError("NO_TARIFF", f"no rate for plan {plan_id} {service} {direction} zone {zone} "
                                           f"destination {dest_id or '-'} band {band}")
        rate = cat.rate(rule["rate_id"], at)
        if rate is None:
            raise RatingError("NO_TARIFF", f"rate {rule['rate_id']} is not valid on {at:%Y-%m-%d}")
        return rule, overage or rate

    _, rate0 = rate_for(bands[0][2])
    inc0 = max(0, min(included, quantity))
    origin = inc0 * scale
    first = rate0["first_interval"] if inc0 == 0 else rate0["increment"]
    step = rate0["increment"]
    p0 = origin + first * scale
    segments: list[Segment] = []
    precise = 0
    charged = 0
    for s, e, band in bands:
        a = 0 if s <= start_time else (s - start_time) // timedelta(microseconds=1)
        b = total if not voice else min(total, (e - start_time) // timedelta(microseconds=1))
        rule, rate = rate_for(band) if band != bands[0][2] else (None, rate0)
        cost = units = 0
        if total > origin and a <= origin < b:
            if inc0 == 0:
                cost += rate0["connect_nanos"]
            cost += block_cost(rate["price"], first, rate["rate_unit"], rate0["increment_decimals"],
                               rate0["rounding_method"])
            units += first
        if b > p0:
            n = -(-(b - p0) // (step * scale)) - -(-(max(a, p0) - p0) // (step * scale))
            cost += n * block_cost(rate["price"], step, rate["rate_unit"], rate0["increment_decimals"],
                                   rate0["rounding_method"])
            units += n * step
        segments.append(Segment(band, rate["rate_id"], max(s, start_time), b - a, units, cost))
        precise += cost
        charged += units
    if rate0["tier_set_id"] and len(segments) == 1:
        precise = _tiered_cost(cat, rate0, at, charged, tier_position, tier_total, inc0 == 0 and total > 0)
    final = final_round(precise, rate0["rounding_decimals"], rate0["rounding_method"])
    capped = rate0["max_nanos"] is not None and final > rate0["max_nanos"]
    if capped:
        final = rate0["max_nanos"]
    return Quote(charge=Decimal(final).scaleb(-9), currency=rate0["currency"], rate_id=rate0["rate_id"],
                 band=bands[0][2], destination_id=dest_id, destination_class=dest_class, zone=zone,
                 quantity=quantity, quantity_included=inc0, quantity_charged=charged, precise_nanos=precise,
                 capped=capped, rate=rate0, segments=tuple(segments))


def _tiered_cost(cat: Catalogue, rate: dict, at: datetime, units: int, position: int, total: int | None,
                 connect: bool) -> int:
    """Graduated: each unit at the price of the tier it falls in; volume: all at the tier of the total."""
    tiers = sorted(cat.rows_valid("tiers", at, tier_set_id=rate["tier_set_id"]), key=lambda t: t["from_units"])
    total = position + units if total is None else total
    cost = rate["connect_nanos"] if connect else 0
    for t in tiers:
        if t["tier_type"] == "graduated":
            portion = max(0, min(position + units, t["to_units"]) - max(position, t["from_units"]))
        else:
            portion = units if t["from_units"] <= total < t["to_units"] else 0
        cost += block_cost(t["price"], portion, rate["rate_unit"], rate["increment_decimals"], rate["rounding_method"])
    return cost


__all__ = ["NANO", "Quote", "RatingError", "Segment", "block_cost", "div_round", "final_round", "quote"]
