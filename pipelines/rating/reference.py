"""Reference rater: the set-based engine's whole job done one record at a time, in plain Python.

Why it exists: it is the oracle the tests compare :mod:`pipelines.rating.engine` with (allowances, tiers,
suspense and settlement included, not only single-record pricing), and the same-work per-record baseline of
the rating benchmark. It is written from the rules in ``docs/rating.md`` and the catalogue, not from the
engine's SQL: pricing reuses :func:`pipelines.rating.quote.quote` (``included=``, ``tier_position=``,
``tier_total=``); period membership, allowance pools, tier positions and settlement are computed here.

Rules applied (docs/rating.md, "Rules"):
- a record belongs to the period when its start is in its account's bill period (cycle day, time zone);
  records of accounts not in ``accounts`` use the UTC calendar month; the rest is left out (not rated);
- no account or plan on the record, or an account not in ``accounts``: suspense ``NOT_GUIDED``; otherwise ``quote()`` decides the suspense
  reason (``NO_PLAN``, ``UNKNOWN_NETWORK``, ``UNKNOWN_DESTINATION``, ``BAD_QUANTITY``, ``NO_BAND``, ``NO_TARIFF``);
- allowances are consumed in usage order (start time, record id): the most specific allowance of the plan
  for service/direction/zone/destination class/rating group (direction, destination class and rating group
  named count one each, ties by allowance id); pool = allowance + bill period + line (subscription, else
  msisdn) or group (parent account, else account); suspense records never consume; a record the allowance
  does not fully cover is priced with the allowance's overage rate when it has one (``overage_rate_id=``);
- tiers: the line's billed units before the record (graduated) and in the whole period (volume) per tier set;
- settlement: roaming IOT payable to the visited TADIG (direction-specific rate, else ``*``) for rated
  records outside HOME; interconnect termination for rated MO voice at HOME to any non-on-net destination,
  payable to the carrier of the longest interconnect prefix. Amount = price x (quantity rounded up to whole
  increments) / rate unit, rounded half-up to 9 decimals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from pipelines.common.periods import period_bounds_utc
from pipelines.rating.catalogue import ANY, Catalogue
from pipelines.rating.quote import HOME_ZONE, Quote, RatingError, quote

NINE_PLACES = Decimal("0.000000001")


def reference_rate(cat: Catalogue, usage_rows: list[dict], accounts: Iterable[dict] | object,
                   period: str) -> tuple[list[dict], list[dict], list[dict]]:
    """Rate a bill period's usage record by record: (rated, suspense, settlement) lists of dicts.

    ``usage_rows``: USAGE_SCHEMA dicts; ``accounts``: ACCOUNT_SCHEMA dicts or a Polars frame. Rated rows carry
    the fields that hold money, quantities and ids (the engine's column names); outputs are sorted like the
    engine's (record_id; record_id, partner_type, partner_id).
    """
    bounds = _account_periods(accounts, period, {r["account_id"] for r in usage_rows})
    month = period_bounds_utc(period)
    in_period = [r for r in usage_rows if _in_period(r, bounds, month)]
    pools: dict[str, int] = defaultdict(int)   # units of quantity consumed so far per allowance pool
    priced: list[tuple[dict, Quote, dict]] = []
    suspense: list[dict] = []
    for row in sorted(in_period, key=lambda r: (r["start_time"], r["record_id"])):
        if row["account_id"] is None or row["plan_id"] is None or row["account_id"] not in bounds:
            suspense.append({"record_id": row["record_id"], "reason_code": "NOT_GUIDED"})
            continue
        allowance = _allowance_for(cat, row)
        pool = _pool_key(allowance, row, bounds, period) if allowance else None
        used = pools[pool] if pool else None
        included = 0
        if pool is not None and row["quantity"] is not None and row["quantity"] >= 0:
            included = row["quantity"] if allowance["unlimited"] else max(0, min(row["quantity"],
                                                                                 allowance["quantity"] - used))
        try:
            q = _quote(cat, row, included, overage_rate_id=allowance["overage_rate_id"] if pool else None)
        except RatingError as exc:
            suspense.append({"record_id": row["record_id"], "reason_code": exc.reason_code})
            continue
        if pool is not None:
            pools[pool] += row["quantity"]
        extra = {"allowance_id": allowance["allowance_id"] if allowance else None, "allowance_pool": pool,
                 "allowance_used_before": used, "overage_rate_id": allowance["overage_rate_id"] if pool else None}
        priced.append((row, q, extra))
    priced = _apply_tiers(cat, priced)
    rated = [_rated_row(row, q, extra) for row, q, extra in priced]
    settlement = [entry for row, q, _ in priced for entry in _settlement_entries(cat, row, q)]
    rated.sort(key=lambda r: r["record_id"])
    suspense.sort(key=lambda r: r["record_id"])
    settlement.sort(key=lambda e: (e["record_id"], e["partner_type"], e["partner_id"]))
    return rated, suspense, settlement


# ------------------------------------------------------------------------------------------ bill periods
def _account_periods(accounts: Iterable[dict] | object, period: str, wanted: set) -> dict[str, dict]:
    """account_id -> its bill period bounds in UTC and allowance group (only the accounts the usage names)."""
    if hasattr(accounts, "filter") and hasattr(accounts, "to_dicts"):  # a Polars frame: take the few rows needed
        import polars as pl

        accounts = accounts.filter(pl.col("account_id").is_in(sorted(a for a in wanted if a is not None)))
        accounts = accounts.to_dicts()
    cache: dict[tuple, tuple[datetime, datetime]] = {}
    out = {}
    for acc in accounts:
        if acc["account_id"] not in wanted:
            continue
        key = (acc["bill_cycle_day"], acc["timezone"])
        if key not in cache:
            cache[key] = period_bounds_utc(period, *key)
        out[acc["account_id"]] = {"start": cache[key][0], "end": cache[key][1],
                                  "group": acc.get("parent_account_id") or acc["account_id"]}
    return out


def _in_period(row: dict, bounds: dict[str, dict], month: tuple[datetime, datetime]) -> bool:
    acc = bounds.get(row["account_id"])
    start, end = (acc["start"], acc["end"]) if acc else month
    return start <= row["start_time"] < end


# ------------------------------------------------------------------------------------------ allowances
def _zone_and_class(cat: Catalogue, row: dict) -> tuple[str | None, str | None]:
    """The record's roaming zone and destination class (None when unknown: quote() then suspends it)."""
    at, zone = row["start_time"], HOME_ZONE
    if row["visited_network"]:
        found = cat.rows_valid("roaming_zones", at, tadig=row["visited_network"])
        zone = found[0]["zone"] if found else None
    dest_class = None
    if row["service"] in ("voice", "sms") and row["direction"] == "MO":
        dest = cat.longest_prefix("destinations", row["other_party"], at)
        dest_class = dest["destination_class"] if dest else None
    return zone, dest_class


def _allowance_for(cat: Catalogue, row: dict) -> dict | None:
    """The plan's most specific allowance valid at the record's start that covers the record, if any."""
    zone, dest_class = _zone_and_class(cat, row)
    if zone is None:
        return None
    candidates = []
    for a in cat.rows_valid("allowances", row["start_time"], plan_id=row["plan_id"], service=row["service"]):
        if a["direction"] != ANY and a["direction"] != row["direction"]:
            continue
        if ANY not in a["zones"] and zone not in a["zones"]:
            continue
        if ANY not in a["destination_classes"] and (dest_class is None or dest_class not in a["destination_classes"]):
            continue
        if a["rating_groups"] is not None and row["rating_group"] not in a["rating_groups"]:
            continue
        specific = (a["direction"] != ANY) + (ANY not in a["destination_classes"]) + (a["rating_groups"] is not None)
        candidates.append((-specific, a["allowance_id"], a))
    return min(candidates, key=lambda c: c[:2])[2] if candidates else None


def _line(row: dict) -> str | None:
    return row["subscription_id"] if row["subscription_id"] is not None else row["msisdn"]


def _pool_key(allowance: dict, row: dict, bounds: dict[str, dict], period: str) -> str | None:
    """``allowance|period|line:<subscription or msisdn>`` or ``allowance|period|group:<parent or account>``."""
    if allowance["scope"] == "group":
        acc = bounds.get(row["account_id"])
        owner = "group:" + (acc["group"] if acc else row["account_id"])
    else:
        line = _line(row)
        if line is None:
            return None  # no line to hold a pool (the engine then consumes nothing either)
        owner = "line:" + line
    return f"{allowance['allowance_id']}|{period}|{owner}"


# ------------------------------------------------------------------------------------------ pricing
def _quote(cat: Catalogue, row: dict, included: int, *, tier_position: int = 0,
           tier_total: int | None = None, overage_rate_id: str | None = None) -> Quote:
    return quote(cat, row["plan_id"], row["service"], row["start_time"], row["quantity"], row["other_party"],
                 row["rating_group"], row["snssai"], row["qos_class"], row["visited_network"],
                 direction=row["direction"], account_id=row["account_id"], included=included,
                 tier_position=tier_position, tier_total=tier_total, overage_rate_id=overage_rate_id)


def _tiered(q: Quote) -> bool:
    """Tier sets apply to a record priced in one band (docs: tiers on a rate; split calls are not tiered)."""
    return bool(q.rate["tier_set_id"]) and len(q.segments) == 1


def _apply_tiers(cat: Catalogue, priced: list[tuple[dict, Quote, dict]]) -> list[tuple[dict, Quote, dict]]:
    """Re-price tiered records with the line's billed units before them and in the whole period."""
    totals: dict[tuple, int] = defaultdict(int)
    for row, q, _ in priced:
        if _tiered(q):
            totals[(_line(row), q.rate["tier_set_id"])] += q.quantity_charged
    running: dict[tuple, int] = defaultdict(int)
    out = []
    for row, q, extra in priced:  # still in usage order
        if _tiered(q):
            key = (_line(row), q.rate["tier_set_id"])
            before = running[key]
            running[key] += q.quantity_charged
            q = _quote(cat, row, q.quantity_included, tier_position=before, tier_total=totals[key],
                       overage_rate_id=extra["overage_rate_id"])
            extra = {**extra, "tier_before": before, "tier_total": totals[key]}
        out.append((row, q, extra))
    return out


def _rated_row(row: dict, q: Quote, extra: dict) -> dict:
    return {"record_id": row["record_id"], "charge": q.charge, "quantity": row["quantity"],
            "quantity_included": q.quantity_included, "quantity_charged": q.quantity_charged,
            "precise_charge": Decimal(q.precise_nanos).scaleb(-9), "rate_id": q.rate_id, "band": q.band,
            "destination_id": q.destination_id, "zone": q.zone, "capped": q.capped, "currency": q.currency,
            "band_segments": len(q.segments), "allowance_id": extra["allowance_id"],
            "allowance_pool": extra["allowance_pool"], "allowance_used_before": extra["allowance_used_before"],
            "tier_before": extra.get("tier_before"), "tier_total": extra.get("tier_total")}


# ------------------------------------------------------------------------------------------ settlement
def settlement_amount(price: str, quantity: int, increment: int, rate_unit: int) -> Decimal:
    """``price * ceil(quantity / increment) * increment / rate_unit``, rounded half-up to 9 decimals."""
    billed = -(-quantity // increment) * increment
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(price) * billed / rate_unit).quantize(NINE_PLACES, rounding=ROUND_HALF_UP)


def _settlement_entries(cat: Catalogue, row: dict, q: Quote) -> list[dict]:
    """Payable entries of one rated record: roaming IOT outside HOME, interconnect for home MO voice off-net."""
    at, quantity = row["start_time"], row["quantity"]
    if quantity <= 0:
        return []
    out = []
    if q.zone != HOME_ZONE:
        iot = (cat.rows_valid("iot_rates", at, tadig=row["visited_network"], service=row["service"],
                              direction=row["direction"])
               or cat.rows_valid("iot_rates", at, tadig=row["visited_network"], service=row["service"], direction=ANY))
        if iot:
            i = iot[0]
            out.append({"record_id": row["record_id"], "partner_type": "roaming", "partner_id": row["visited_network"],
                        "amount": settlement_amount(i["price"], quantity, i["increment"], i["rate_unit"]),
                        "currency": i["currency"], "band": q.band,
                        "rate_id": f"IOT:{row['visited_network']}:{row['service']}:{i['direction']}"})
    elif row["service"] == "voice" and row["direction"] == "MO" and q.destination_class != "onnet":
        ic = cat.longest_prefix("interconnect", row["other_party"], at)
        if ic is not None and ic["carrier_id"] is not None:
            out.append({"record_id": row["record_id"], "partner_type": "interconnect", "partner_id": ic["carrier_id"],
                        "amount": settlement_amount(ic["price"], quantity, ic["increment"], ic["rate_unit"]),
                        "currency": ic["currency"], "band": q.band,
                        "rate_id": f"IC:{ic['carrier_id']}:{ic['prefix']}"})
    return out


__all__ = ["reference_rate", "settlement_amount"]
