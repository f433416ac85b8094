"""The switch formats through mediation's own per-file stage (real validation, guiding, outcomes)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from pipelines.mediation.pipeline import load_readers, stage_file
from pipelines.mediation.readers.asterisk import write_asterisk_csv
from pipelines.mediation.readers.ber3gpp import encode_msc_records, encode_pgw_records
from pipelines.mediation.readers.freeswitch import write_freeswitch_json
from schemas.contracts import SUBSCRIPTION_SCHEMA

from .conftest import OCT3, raw_usage

SUBSCRIBERS = pl.DataFrame([{
    "subscription_id": "S1", "account_id": "A1", "msisdn": "4915112345678", "imsi": "262021234567890",
    "plan_id": "P_BASIC", "payment_type": "postpaid", "valid_from": datetime(2026, 1, 1, tzinfo=UTC),
    "valid_to": None}], schema=SUBSCRIPTION_SCHEMA)


def _calls() -> pl.DataFrame:
    base = {"source": "x", "source_file": "f", "record_offset": 0, "service": "voice", "direction": "MO",
            "msisdn": "4915112345678", "imsi": "262021234567890", "other_party": "4930123456", "start_time": OCT3}
    return raw_usage([
        {**base, "network_record_id": "c1", "duration_s": 60, "quantity": 60, "call_outcome": "answered",
         "charging_id": "1"},
        {**base, "network_record_id": "c2", "duration_s": 0, "quantity": 0, "call_outcome": "busy", "charging_id": "2"},
        {**base, "network_record_id": "c3", "duration_s": -5, "quantity": -5, "call_outcome": "answered",
         "charging_id": "3"},
    ])


def _sessions() -> pl.DataFrame:
    return _calls().with_columns(
        service=pl.lit("data"), uplink_bytes=pl.lit(10), downlink_bytes=pl.lit(90), quantity=pl.lit(100),
        duration_s=pl.lit(0), call_outcome=pl.lit("answered"), rating_group=pl.lit(10, pl.Int32),
        apn=pl.lit("internet"), other_party=pl.lit(None, pl.String))


@pytest.mark.parametrize(
    ("key", "make", "fmt", "rejected", "filtered", "passed"),
    [
        ("pbx/pbx_000001_20261003.csv", lambda: write_asterisk_csv(_calls()), "asterisk_csv", 1, 1, 1),
        ("fs/fs_000001_20261003.json", lambda: write_freeswitch_json(_calls()), "freeswitch_json", 1, 1, 1),
        ("msc/msc_000001_20261003.ber", lambda: encode_msc_records(_calls()), "ber_3gpp", 1, 1, 1),
        ("pgw/pgw_000001_20261003.ber", lambda: encode_pgw_records(_sessions()), "ber_3gpp", 0, 0, 3),
    ],
)
def test_stage_file_conserves_records(key: str, make, fmt: str, rejected: int, filtered: int,  # noqa: ANN001
                                      passed: int) -> None:
    load_readers()
    staged = stage_file(key, make(), SUBSCRIBERS)
    assert staged.base["format"] == fmt and not staged.base["quarantined"]
    assert (staged.base["records_in"], staged.base["rejected"], staged.base["filtered"]) == (3, rejected, filtered)
    assert staged.candidates.height == passed
    assert staged.base["records_in"] == staged.rejects.height + staged.filtered.height + staged.candidates.height
    if rejected:
        assert staged.rejects["reason_code"].to_list() == ["NEGATIVE_DURATION"]
