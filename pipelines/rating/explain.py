"""``telbill explain RECORD_ID``: how one record was charged, in plain words, from the published rated row (or
why it was not: rating suspense, or mediation suspense when it never reached rating)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from pipelines.common.partitions import published_manifests, read_manifested
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.rating.catalogue import Catalogue, load_catalogue
from pipelines.rating.stage import RATED, SUSPENSE, usage_window

_UNITS = {"voice": "s", "data": "bytes", "sms": "SMS", "event": "events"}


def find_record(settings: Settings, dataset: str, record_id: str, period: str | None) -> dict | None:
    lake = open_store(settings.lake_uri, settings.s3)
    where = {"period": period} if period else None
    for manifest in published_manifests(lake, dataset, where):
        frame = read_manifested(lake, [manifest])
        if frame is None:
            continue
        hit = frame.filter(pl.col("record_id") == record_id)
        if hit.height:
            return {**hit.row(0, named=True), "_period": manifest.partition.get("period"),
                    "_run": manifest.run_id}
    return None


def find_mediation_suspense(settings: Settings, record_id: str, period: str | None) -> dict | None:
    """The record's row in the published mediation suspense (partitioned by usage date; with ``period`` only the
    dates that can hold that period's usage are read). Read-only use of mediation's dataset."""
    from pipelines.mediation.pipeline import SUSPENSE as MEDIATION_SUSPENSE

    lake = open_store(settings.lake_uri, settings.s3)
    window = usage_window(period) if period else None
    for manifest in published_manifests(lake, MEDIATION_SUSPENSE):
        day = manifest.partition.get("usage_date")
        if window and not (day and window[0].isoformat() <= day < window[1].isoformat()):
            continue
        ids = read_manifested(lake, [manifest], ["record_id"])
        if ids is None or not ids.filter(pl.col("record_id") == record_id).height:
            continue
        hit = read_manifested(lake, [manifest]).filter(pl.col("record_id") == record_id)
        return {**hit.row(0, named=True), "_usage_date": day, "_run": manifest.run_id}
    return None


def explain_mediation_suspense(r: dict) -> str:
    """Why a record is held by mediation (not guided to a subscription) and how to get it rated."""
    reason = r.get("suspense_reason") or "unknown reason"
    message = f" ({r['suspense_message']})" if r.get("suspense_message") else ""
    start = f", started {r['start_time']:%Y-%m-%d %H:%M:%S} UTC" if r.get("start_time") else ""
    who = ", ".join(f"{k} {r[k]}" for k in ("msisdn", "imsi") if r.get(k))
    return (f"Record {r['record_id']} has not been rated: it is in mediation suspense (dataset mediation/suspense, "
            f"usage date {r['_usage_date']}) with reason {reason}{message}.\n"
            f"{r.get('service') or 'usage'} record{start}" + (f", {who}" if who else "")
            + (f", file {r['source_file']}" if r.get("source_file") else "") + ".\n"
            "To rate it: import the missing or corrected subscription (`telbill customers import ...`), run "
            "`telbill mediation recycle` (guided records move into usage), then rate its bill period again "
            "(`telbill rate --period P`).")


def explain_record(settings: Settings, record_id: str, period: str | None = None,
                   catalogue: Catalogue | None = None) -> str | None:
    """Plain-words explanation of a rated (or suspended) record; ``None`` when it is nowhere."""
    row = find_record(settings, RATED, record_id, period)
    if row is None:
        sus = find_record(settings, SUSPENSE, record_id, period)
        if sus is None:
            held = find_mediation_suspense(settings, record_id, period)
            return explain_mediation_suspense(held) if held else None
        return (f"Record {record_id} was not charged: it is in rating suspense for period {sus['_period']} "
                f"with reason {sus['reason_code']} ({sus['message']}). Fix the catalogue or the record and rate "
                f"the period again.")
    cat = catalogue or load_catalogue(settings.tariffs_dir)
    return explain_row(row, cat)


def _amount(nanos_or_dec: Decimal, currency: str) -> str:
    return f"{Decimal(nanos_or_dec).normalize():f} {currency}"


def _overage_rate(cat: Catalogue, r: dict) -> str | None:
    """The overage rate of the record's allowance as the catalogue had it at the record's start."""
    found = cat.rows_valid("allowances", r["start_time"], allowance_id=r["allowance_id"])
    return found[0]["overage_rate_id"] if found else None


def explain_row(r: dict, cat: Catalogue) -> str:
    """Explain a rated row (RATED_SCHEMA + explain columns) with the catalogue it was rated with."""
    unit = _UNITS.get(r["service"], "units")
    cur = r["currency"]
    lines = [f"Record {r['record_id']}: {r['service']} {r.get('direction') or ''} "
             f"{('from ' if r.get('direction') == 'MT' else 'to ') + r['other_party'] + ' ' if r.get('other_party') else ''}"
             f"of {r['quantity']} {unit}, started {r['start_time']:%Y-%m-%d %H:%M:%S} UTC.",
             f"Account {r['account_id']}, subscription {r['subscription_id']}, plan {r['plan_id']} "
             f"({r['payment_type']}), bill period {r['bill_period']}."]
    if r.get("destination_id"):
        lines.append(f"Destination {r['destination_id']} ({r['destination_class']}), found by the longest "
                     f"matching number prefix.")
    zone = r.get("zone") or "HOME"
    lines.append("Used at home." if zone == "HOME" else
                 f"Used while roaming on {r['visited_network']} (roaming zone {zone}).")
    extras = [f"rating group {r['rating_group']}" if r.get("rating_group") is not None else "",
              f"network slice {r['snssai']}" if r.get("snssai") else "",
              f"QoS class {r['qos_class']}" if r.get("qos_class") is not None else ""]
    if any(extras):
        lines.append("Data keys: " + ", ".join(e for e in extras if e) + ".")
    lines.append(f"Time band at the start: {r['band']}.")
    if r.get("segments_detail"):
        parts = []
        for seg in r["segments_detail"].split("; "):
            band, rate_id, length, units, cost = seg.split(" ")
            parts.append(f"{band} {int(length) / 1_000_000:g} s at rate {rate_id} "
                         f"({units} s billed, {_amount(Decimal(cost).scaleb(-9), cur)})")
        lines.append("The call crossed a band boundary and was split: " + "; ".join(parts) + ".")
    rate = cat.rate(r["rate_id"], r["start_time"])
    if rate is not None:
        lines.append(f"Rate {r['rate_id']} ({rate['description']}): {rate['price']} {cur} per {rate['rate_unit']} "
                     f"{unit}, connect fee {rate['connect_fee']} {cur}; the first {rate['first_interval']} {unit} "
                     f"are one block, then blocks of {rate['increment']} {unit}; each block's price is rounded to "
                     f"{rate['increment_decimals']} decimals ({rate['rounding_method']}).")
    if r.get("tier_set_id"):
        lines.append(f"Tiered price (tier set {r['tier_set_id']}): {r['tier_before']} {unit} were billed on this line "
                     f"earlier in the period, {r['tier_total']} {unit} in the whole period; graduated tiers price "
                     f"each unit at its tier, volume tiers price all units at the tier of the period total.")
    if r.get("allowance_id"):
        lines.append(f"Allowance {r['allowance_id']} (pool {r['allowance_pool']}): {r['allowance_used_before']} "
                     f"{unit} of it were used by earlier usage this period; it covered {r['quantity_included']} "
                     f"{unit} of this record" + (" (no connect fee on the rest)." if r["quantity_included"] else "."))
        overage = _overage_rate(cat, r)
        if overage and r["rate_id"] == overage and r["quantity_included"] < r["quantity"]:
            lines.append(f"Beyond allowance {r['allowance_id']}: overage rate {overage} applies instead of the "
                         f"plan's rate, with one price in every time band.")
    else:
        lines.append("No allowance applied.")
    lines.append(f"Billed quantity in whole blocks: {r['quantity_charged']} {unit}. Precise amount "
                 f"{_amount(r['precise_charge'], cur)}" + (
                     f", rounded {rate['rounding_method']} to {rate['rounding_decimals']} decimals" if rate else "")
                 + (f", capped at the maximum {rate['max_cost']} {cur}" if r.get("capped") and rate else "")
                 + f": charge {_amount(r['charge'], cur)}.")
    note = "" if r["tariff_version"] == cat.version else \
        f" (the catalogue has changed since: now {cat.version}; rerate the period to apply it)"
    lines.append(f"Rated with catalogue version {r['tariff_version']}{note}.")
    return "\n".join(lines)
