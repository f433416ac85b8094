"""Rating test helpers: usage rows and accounts built per the contracts, published through the real lake code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipelines.common.partitions import digest, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import ACCOUNT_SCHEMA, USAGE_SCHEMA

TARIFFS = Path(__file__).resolve().parents[2] / "tariffs"
PERIOD = "2026-10"


def ts(text: str) -> datetime:
    """``'2026-10-05 07:59:30'`` (UTC) -> aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def usage_row(record_id: str, start: str, quantity: int, *, service: str = "voice", other_party: str | None = None,
              plan_id: str = "P_BASIC", account_id: str = "ACC1", subscription_id: str | None = None,
              direction: str = "MO", rating_group: int | None = None, snssai: str | None = None,
              qos_class: int | None = None, visited_network: str | None = None,
              payment_type: str = "postpaid") -> dict:
    start_time = ts(start)
    row = dict.fromkeys(USAGE_SCHEMA)
    row.update(record_id=record_id, dedup_key=record_id, source="test", source_file="test.csv",
               record_offset=1, service=service, direction=direction, msisdn="4915100000" + account_id[-2:],
               other_party=other_party, start_time=start_time, duration_s=quantity if service == "voice" else 0,
               quantity=quantity, call_outcome="answered", rating_group=rating_group, snssai=snssai,
               qos_class=qos_class, visited_network=visited_network, usage_date=start_time.date(),
               subscription_id=subscription_id or f"SUB_{account_id}", account_id=account_id, plan_id=plan_id,
               payment_type=payment_type)
    return row


def usage_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=USAGE_SCHEMA, orient="row") if rows else pl.DataFrame(schema=USAGE_SCHEMA)


def accounts_frame(*accounts: tuple, cycle_day: int = 1, tz: str = "Europe/Berlin") -> pl.DataFrame:
    """Accounts ``(account_id, parent_account_id)`` with the given cycle day and zone, or
    ``(account_id, parent_account_id, cycle_day, zone)`` each with their own."""
    rows = []
    for account in accounts:
        account_id, parent, day, zone = (*account, cycle_day, tz)[:4]
        row = dict.fromkeys(ACCOUNT_SCHEMA)
        row.update(account_id=account_id, name=account_id, currency="EUR", timezone=zone, bill_cycle_day=day,
                   tax_jurisdiction="DE", payment_terms_days=14, country="DE", parent_account_id=parent,
                   segment="consumer", billing_entity="TELBILL_DE")
        rows.append(row)
    return pl.DataFrame(rows, schema=ACCOUNT_SCHEMA, orient="row")


DEFAULT_ACCOUNTS = [("ACC1", None), ("ACC2", None), ("ACC_ACME", None), ("FAM_A", "FAM1"), ("FAM_B", "FAM1"),
                    ("FAM1", None)]


def publish_usage(settings: Settings, frame: pl.DataFrame) -> None:
    """Publish usage per usage_date partition exactly as mediation does (data, manifest, published pointer)."""
    lake = open_store(settings.lake_uri, settings.s3)
    for (day,), part in frame.sort("record_id").partition_by("usage_date", as_dict=True).items():
        write_partition(lake, "usage", {"usage_date": day.isoformat()},
                        digest(*part["record_id"].to_list()), part)


