"""Unit tests for validation reasons, the billable filter, record identity and guiding."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import polars as pl
import pytest

from pipelines.mediation.guiding import guide
from pipelines.mediation.identity import with_identity
from pipelines.mediation.readers.canonical import read_canonical_csv
from pipelines.mediation.validate import split_billable, validate_records
from schemas.contracts import CANONICAL_COLUMNS, SUBSCRIPTION_SCHEMA

BASE = {"network_record_id": "N1", "service": "voice", "direction": "MO", "msisdn": "491511234567",
        "imsi": "262011234567890", "other_party": "4930123456", "start_time": "2026-10-03T08:15:00Z",
        "duration_s": 60, "quantity": 60, "call_outcome": "answered"}


def canonical_csv(rows: list[dict]) -> bytes:
    lines = [",".join(CANONICAL_COLUMNS), *(",".join(str(r.get(c, "")) for c in CANONICAL_COLUMNS) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


def _records(rows: list[dict]) -> pl.DataFrame:
    parsed = read_canonical_csv("msc-east", "msc-east/msc-east_000001_20261003.csv", canonical_csv(rows))
    assert parsed.rejects.height == 0
    return parsed.records


def _validate(change: dict, file_date: date | None = date(2026, 10, 3)) -> list[str]:
    records = _records([BASE, {**BASE, **change}])
    good, rejects = validate_records(records, file_date, lambda bad: ["raw"] * bad.height)
    assert good.height + rejects.height == 2
    assert 2 in good["record_offset"].to_list(), "the clean record passes"
    return rejects["reason_code"].to_list()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"duration_s": -30}, "NEGATIVE_DURATION"),
        ({"duration_s": 200000}, "ABSURD_DURATION"),
        ({"msisdn": "49151ABC1234"}, "BAD_MSISDN"),
        ({"msisdn": "0151123"}, "BAD_MSISDN"),
        ({"msisdn": "", "imsi": ""}, "MISSING_SUBSCRIBER_ID"),
        ({"imsi": "12"}, "BAD_IMSI"),
        ({"start_time": "2026-10-12T00:00:00Z"}, "FUTURE_TIMESTAMP"),
        ({"service": "fax"}, "UNKNOWN_SERVICE"),
        ({"service": ""}, "MISSING_SERVICE"),        # an empty service field used to crash the whole run
        ({"direction": "XX"}, "BAD_DIRECTION"),
        ({"other_party": "+4930"}, "BAD_OTHER_PARTY"),
        ({"quantity": -1}, "NEGATIVE_QUANTITY"),
        ({"call_outcome": "maybe"}, "BAD_CALL_OUTCOME"),
        ({"snssai": "1-XYZ"}, "BAD_SNSSAI"),
        ({"visited_network": "france"}, "BAD_TADIG"),
        ({"qos_class": 300}, "BAD_QOS_CLASS"),
        ({"duration_s": -5, "msisdn": "bad"}, "BAD_MSISDN"),   # several failures: the first by priority wins
    ],
)
def test_each_rule_gives_its_reason(change: dict, code: str) -> None:
    assert _validate(change) == [code]


def test_late_record_is_valid_and_unknown_file_date_skips_future_check() -> None:
    assert _validate({"start_time": "2026-09-28T00:00:00Z"}) == []
    assert _validate({"start_time": "2027-01-01T00:00:00Z"}, file_date=None) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"call_outcome": "unanswered", "duration_s": 0, "quantity": 0}, "NOT_ANSWERED"),
     ({"call_outcome": "busy", "duration_s": 0, "quantity": 0}, "BUSY"),
     ({"call_outcome": "failed", "duration_s": 0, "quantity": 0}, "CALL_FAILED"),
     ({"duration_s": 0, "quantity": 0}, "ZERO_DURATION"),
     ({"service": "data", "quantity": 0, "duration_s": "", "call_outcome": "", "other_party": ""}, "ZERO_VOLUME")],
)
def test_not_billable_records_are_filtered_with_reason(change: dict, reason: str) -> None:
    records = _records([BASE, {**BASE, **change}])
    good, _ = validate_records(records, None, lambda bad: [])
    billable, filtered = split_billable(good)
    assert billable["record_offset"].to_list() == [2]
    assert filtered["reason_code"].to_list() == [reason]


def test_identity_network_id_business_key_and_partials() -> None:
    data = {"network_record_id": "", "service": "data", "direction": "MO", "msisdn": "491511234567",
            "start_time": "2026-10-03T08:00:00Z", "quantity": 500, "charging_id": "77", "partial_seq": 1,
            "rating_group": 10, "call_outcome": "answered"}
    records = _records([BASE, data, {**data, "partial_seq": 2}, data])
    ids = with_identity(records)
    assert ids["dedup_key"][0] == "N1"
    business = "data|MO|491511234567|1791014400000000||500|77|1|10"
    assert ids["dedup_key"][1] == "b:" + hashlib.md5(business.encode()).hexdigest()[:20]  # noqa: S324
    assert ids["dedup_key"][1] != ids["dedup_key"][2], "the next partial of a session is a new record"
    assert ids["dedup_key"][1] == ids["dedup_key"][3], "a repeated partial is a duplicate"
    expected = hashlib.md5(b"msc-east\x1fN1").hexdigest()[:16]  # noqa: S324 - an id, not security
    assert ids["record_id"][0] == expected
    assert ids["usage_date"][0] == date(2026, 10, 3)


def _subs(rows: list[tuple]) -> pl.DataFrame:
    cols = list(SUBSCRIPTION_SCHEMA)
    return pl.DataFrame([dict(zip(cols, r, strict=False)) for r in rows], schema=SUBSCRIPTION_SCHEMA)


def test_guiding_uses_subscription_valid_at_start_time() -> None:
    utc = UTC
    change = datetime(2026, 10, 15, tzinfo=utc)
    subs = _subs([
        ("S1", "A1", "491511234567", "262011234567890", "P_BASIC", "postpaid", datetime(2024, 1, 1, tzinfo=utc), change),
        ("S1", "A1", "491511234567", "262011234567890", "P_UNLTD", "postpaid", change, None),
        ("S2", "A2", "491519999999", None, "PRE_PAYG", "prepaid", datetime(2026, 10, 20, tzinfo=utc), None),
    ])
    rows = [{**BASE, "network_record_id": f"N{i}", "start_time": t, "msisdn": m}
            for i, (t, m) in enumerate([("2026-10-10T00:00:00Z", "491511234567"), ("2026-10-15T00:00:00Z", "491511234567"),
                                        ("2026-10-16T00:00:00Z", "491519999999"), ("2026-10-16T00:00:00Z", "491510000001")])]
    rows.append({**BASE, "network_record_id": "IMSI", "msisdn": "", "imsi": "262011234567890",
                 "start_time": "2026-10-20T00:00:00Z"})
    records = pl.concat([_records(rows[:4]), read_canonical_csv(
        "msc-east", "k", canonical_csv(rows[4:])).records])
    guided = guide(records, subs).sort("network_record_id")
    by_id = {r["network_record_id"]: r for r in guided.iter_rows(named=True)}
    assert by_id["N0"]["plan_id"] == "P_BASIC"
    assert by_id["N1"]["plan_id"] == "P_UNLTD", "valid_from is inclusive, valid_to exclusive"
    assert by_id["N2"]["suspense_reason"] == "NO_ACTIVE_SUBSCRIPTION"
    assert by_id["N3"]["suspense_reason"] == "UNKNOWN_SUBSCRIBER"
    assert (by_id["IMSI"]["subscription_id"], by_id["IMSI"]["msisdn"]) == ("S1", "491511234567")
    assert guided.height == len(rows)


def test_canonical_columns_cover_raw_schema_inputs() -> None:
    assert set(CANONICAL_COLUMNS) <= set(pl.Schema(SUBSCRIPTION_SCHEMA)) | set(
        read_canonical_csv("s", "k", canonical_csv([BASE])).records.columns)


def test_vectorised_row_checks_equal_panderas_on_an_adversarial_frame() -> None:
    """Mediation runs ``schemas.usage.row_reason`` instead of Pandera's per-row checks: both must give every row
    the same reason code (several faults per row, nulls everywhere), so the Pandera model stays the declared truth."""
    import numpy as np

    from pipelines.mediation.readers import RECORD_SCHEMA
    from pipelines.mediation.validate import _latest_start_expr, normalise, pandera_reasons
    from schemas.usage import row_reason, with_rule_columns

    rng = np.random.default_rng(7)
    n = 4000

    def pick(*values: object) -> list:
        return [values[i] for i in rng.integers(0, len(values), n)]

    utc = UTC
    frame = pl.DataFrame({
        "source": ["s"] * n, "source_file": ["f"] * n, "record_offset": list(range(n)),
        "service": pick("voice", "sms", "data", "fax", None), "direction": pick("MO", "MT", "XX", None),
        "msisdn": pick("491511234567", "49151ABC", None, "0151"), "imsi": pick("262011234567890", "12", None),
        "other_party": pick("4930123", "+49", None, ""),
        "start_time": pick(None, datetime(2026, 10, 3, tzinfo=utc), datetime(2026, 10, 9, tzinfo=utc)),
        "duration_s": pick(0, 10, -5, 200000, None), "quantity": pick(1, -1, None, 1 << 41),
        "uplink_bytes": pick(1, -1, None), "downlink_bytes": pick(1, -1, None),
        "call_outcome": pick("answered", "maybe", None, "busy"), "rating_group": pick(10, -1, None),
        "snssai": pick("1-000001", "1-XYZ", None), "qos_class": pick(9, 300, -1, None),
        "visited_network": pick("FRAF1", "france", None), "partial_seq": pick(1, -1, None),
    }).with_columns(pl.lit(None).alias(c) for c in RECORD_SCHEMA if c not in {
        "source", "source_file", "record_offset", "service", "direction", "msisdn", "imsi", "other_party", "start_time",
        "duration_s", "quantity", "uplink_bytes", "downlink_bytes", "call_outcome", "rating_group", "snssai",
        "qos_class", "visited_network", "partial_seq"}).select(RECORD_SCHEMA.keys()).cast(RECORD_SCHEMA)
    checked = with_rule_columns(normalise(frame), _latest_start_expr(date(2026, 10, 3)))
    reference = pandera_reasons(checked).sort("index")
    vectorised = (checked.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("index"), row_reason().alias("reason_code"))
                  .filter(pl.col("reason_code").is_not_null()))
    assert reference.height > n // 2 and reference["reason_code"].n_unique() > 15
    assert vectorised.equals(reference)
