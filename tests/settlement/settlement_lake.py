"""Settlement fixtures: settlement entries and subscriptions written to a real lake in contract shape."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl

from pipelines.common.partitions import write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import RATED_SCHEMA, SETTLEMENT_ENTRY_SCHEMA, SUBSCRIPTION_SCHEMA, USAGE_SCHEMA


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(record_id: str, partner_id: str, partner_type: str, direction: str, service: str, start: str,
          quantity: int, amount: str, currency: str = "EUR", band: str = "peak") -> dict:
    start_ts = ts(start)
    return {"record_id": record_id, "partner_id": partner_id, "partner_type": partner_type, "direction": direction,
            "service": service, "start_time": start_ts, "usage_date": start_ts.date(), "quantity": quantity,
            "amount": Decimal(amount), "currency": currency, "rate_id": f"R_{partner_id}_{service}", "band": band}


def write_entries(settings: Settings, period: str, rows: list[dict]) -> None:
    frame = pl.DataFrame(rows, schema=SETTLEMENT_ENTRY_SCHEMA, orient="row")
    write_partition(open_store(settings.lake_uri, settings.s3), "settlement_entries", {"period": period},
                    f"fixture-{period}", frame)


def write_subscriptions(settings: Settings, rows: list[dict]) -> None:
    schema = {**SUBSCRIPTION_SCHEMA, "dealer_id": pl.String}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    write_partition(open_store(settings.lake_uri, settings.s3), "customers/subscriptions", {"snapshot": "fixture"},
                    "fixture", frame)


def write_usage(settings: Settings, rows: list[dict]) -> None:
    full = [{**{k: None for k in USAGE_SCHEMA}, "usage_date": r["start_time"].date(), **r} for r in rows]
    frame = pl.DataFrame(full, schema=USAGE_SCHEMA, orient="row")
    for (day,), part in frame.partition_by("usage_date", as_dict=True, maintain_order=True).items():
        write_partition(open_store(settings.lake_uri, settings.s3), "usage", {"usage_date": day.isoformat()},
                        "fixture", part)


def write_rated(settings: Settings, period: str, rows: list[dict]) -> None:
    full = [{**{k: None for k in RATED_SCHEMA}, "bill_period": period, "currency": "EUR",
             "usage_date": r["start_time"].date(), **r} for r in rows]
    frame = pl.DataFrame(full, schema=RATED_SCHEMA, orient="row")
    write_partition(open_store(settings.lake_uri, settings.s3), "rated", {"period": period}, "fixture", frame)
