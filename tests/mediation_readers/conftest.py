"""Fixtures for the switch-format readers: the copied sample files and raw-usage frames to encode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.mediation.readers import conform_records

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "cdr-samples"
OCT3 = datetime(2026, 10, 3, 8, 15, tzinfo=UTC)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def raw_usage(rows: list[dict]) -> pl.DataFrame:
    """A RAW_USAGE_SCHEMA frame from partial row dicts (missing columns null)."""
    return conform_records(pl.DataFrame(rows, infer_schema_length=None))


@pytest.fixture
def voice_calls() -> pl.DataFrame:
    """Voice calls covering MO/MT, every outcome, international, partial and a DST-night start."""
    base = {"source": "msc-east", "source_file": "f", "record_offset": 0, "service": "voice",
            "imsi": "262021234567890"}
    return raw_usage([
        {**base, "network_record_id": "c-1", "direction": "MO", "msisdn": "4915112345678",
         "other_party": "4930123456", "start_time": OCT3, "duration_s": 65, "quantity": 65,
         "call_outcome": "answered", "charging_id": "1001"},
        {**base, "network_record_id": "c-2", "direction": "MT", "msisdn": "4915112345678",
         "other_party": "447700900123", "start_time": OCT3 + timedelta(hours=5), "duration_s": 120,
         "quantity": 120, "call_outcome": "answered", "charging_id": "1002"},
        {**base, "network_record_id": "c-3", "direction": "MO", "msisdn": "4915112345679",
         "other_party": "4915100000002", "start_time": OCT3 + timedelta(days=1), "duration_s": 0,
         "quantity": 0, "call_outcome": "busy", "charging_id": "1003"},
        {**base, "network_record_id": "c-4", "direction": "MO", "msisdn": "4915112345679",
         "other_party": "33123456789", "start_time": OCT3 + timedelta(days=2), "duration_s": 0,
         "quantity": 0, "call_outcome": "unanswered", "charging_id": "1004"},
        {**base, "network_record_id": "c-5", "direction": "MO", "msisdn": "4915112345679",
         "other_party": "4989123456", "start_time": OCT3 + timedelta(days=3), "duration_s": 0,
         "quantity": 0, "call_outcome": "failed", "charging_id": "1005"},
        # 2026-10-25 00:30 UTC = 02:30 CEST, the first of the two 02:30s in Berlin that night
        {**base, "network_record_id": "c-6", "direction": "MO", "msisdn": "4915112345678",
         "other_party": "4940123456", "start_time": datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
         "duration_s": 3600, "quantity": 3600, "call_outcome": "answered", "charging_id": "1006"},
    ])


@pytest.fixture
def data_sessions() -> pl.DataFrame:
    """Data sessions: rating groups, a 5G slice, roaming, partial records, an unmapped network."""
    base = {"source": "pgw-1", "source_file": "f", "record_offset": 0, "service": "data", "direction": "MO",
            "duration_s": 0, "call_outcome": "answered", "apn": "internet"}
    return raw_usage([
        {**base, "network_record_id": "d-1", "msisdn": "4915112345678", "imsi": "262021234567890",
         "start_time": OCT3, "uplink_bytes": 500_000, "downlink_bytes": 4_000_000, "quantity": 4_500_000,
         "rating_group": 10, "snssai": "1-000001", "qos_class": 9, "charging_id": "7001"},
        {**base, "network_record_id": "d-2", "msisdn": "4915112345678", "imsi": "262021234567890",
         "start_time": OCT3 + timedelta(hours=1), "uplink_bytes": 1_000, "downlink_bytes": 90_000_000,
         "quantity": 90_001_000, "rating_group": 20, "qos_class": 9, "visited_network": "FRAF1",
         "charging_id": "7002", "partial_seq": 1},
        {**base, "network_record_id": "d-3", "msisdn": "4915112345678", "imsi": "262021234567890",
         "start_time": OCT3 + timedelta(hours=2), "uplink_bytes": 2_000, "downlink_bytes": 8_000_000,
         "quantity": 8_002_000, "rating_group": 20, "qos_class": 9, "visited_network": "FRAF1",
         "charging_id": "7002", "partial_seq": 2},
        {**base, "network_record_id": "d-4", "msisdn": "4915100000001", "imsi": "262020000000001",
         "start_time": OCT3 + timedelta(days=20), "uplink_bytes": 10, "downlink_bytes": 0, "quantity": 10,
         "snssai": "3-000003", "qos_class": 80, "apn": "iot", "visited_network": "USAAT",
         "charging_id": "session-x"},
    ])
