"""Bill-cycle holds: a critical assurance alert blocks finalising a period until an analyst clears it.

A hold is a small JSON object in the lake, ``assurance/holds/period=<P>/<hold_id>.json``; clearing
writes ``<hold_id>.cleared.json`` beside it (who, why, when - the date is passed in, never read from
the clock). Nothing is deleted, so the lake keeps the audit trail. The bill cycle calls
:func:`holds_for_period` before finalising and refuses while it returns anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date

import polars as pl

from pipelines.common.partitions import canonical_json, digest
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store

PREFIX = "assurance/holds"


@dataclass(frozen=True)
class Hold:
    """Why a period's bill cycle may not be finalised yet."""

    hold_id: str
    period: str
    source: str
    service: str
    reason_code: str        # e.g. VOLUME_DROP
    message: str
    first_hour: str         # ISO 8601 UTC
    last_hour: str
    hours: int


class HoldError(ValueError):
    """Clearing a hold that does not exist (or a bad request)."""


def _key(period: str, hold_id: str, cleared: bool = False) -> str:
    return f"{PREFIX}/period={period}/{hold_id}{'.cleared' if cleared else ''}.json"


def holds_from_alerts(alerts: pl.DataFrame) -> list[Hold]:
    """One hold per critical run of drop hours (same source, service and run start)."""
    crit = alerts.filter(pl.col("severity") == "critical")
    holds = []
    for (period, source, service, run_start), run in crit.group_by(
            "period", "source", "service", "run_start", maintain_order=True):
        first, last = run["hour"].min(), run["hour"].max()
        holds.append(Hold(
            hold_id="HOLD-" + digest(period, source, service, run_start.isoformat(), length=12),
            period=period, source=source, service=service, reason_code="VOLUME_DROP",
            message=(f"{source} {service}: {run.height} consecutive hours far below the weekly baseline "
                     f"({run['volume'].sum()} records vs a usual {round(run['baseline'].sum())}); "
                     f"check for missing files before billing"),
            first_hour=first.isoformat(), last_hour=last.isoformat(), hours=run.height))
    return sorted(holds, key=lambda h: (h.first_hour, h.source, h.service))


def place_holds(settings: Settings, holds: list[Hold]) -> list[str]:
    """Write each hold (same hold, same bytes: placing it again is harmless)."""
    lake = open_store(settings.lake_uri, settings.s3)
    return [lake.write_bytes(_key(h.period, h.hold_id), canonical_json(asdict(h))) for h in holds]


def _all(lake: Store, period: str) -> tuple[dict[str, Hold], dict[str, dict]]:
    holds, cleared = {}, {}
    for key in lake.list(f"{PREFIX}/period={period}/"):
        name = key.rsplit("/", 1)[-1]
        data = json.loads(lake.read_bytes(key))
        if name.endswith(".cleared.json"):
            cleared[name.removesuffix(".cleared.json")] = data
        elif name.endswith(".json"):
            holds[name.removesuffix(".json")] = Hold(**data)
    return holds, cleared


def holds_for_period(settings: Settings, period: str) -> list[Hold]:
    """Open (not cleared) holds on ``period``: the bill cycle must not finalise while this is non-empty."""
    holds, cleared = _all(open_store(settings.lake_uri, settings.s3), period)
    return [holds[k] for k in sorted(holds) if k not in cleared]


def hold_status(settings: Settings, period: str) -> list[tuple[Hold, dict | None]]:
    """Every hold on the period with its clearance record (``None`` while open)."""
    holds, cleared = _all(open_store(settings.lake_uri, settings.s3), period)
    return [(holds[k], cleared.get(k)) for k in sorted(holds)]


def clear_hold(settings: Settings, period: str, hold_id: str, cleared_by: str, reason: str,
               cleared_on: date) -> str:
    """Record an analyst's decision that a hold no longer blocks the bill cycle."""
    if not cleared_by.strip() or not reason.strip():
        raise HoldError("clearing a hold needs who cleared it and why")
    lake = open_store(settings.lake_uri, settings.s3)
    if not lake.exists(_key(period, hold_id)):
        raise HoldError(f"no hold {hold_id} on period {period}; list them with `telbill assurance holds --period {period}`")
    record = {"hold_id": hold_id, "period": period, "cleared_by": cleared_by, "reason": reason,
              "cleared_on": cleared_on.isoformat()}
    return lake.write_bytes(_key(period, hold_id, cleared=True), canonical_json(record))
