"""Golden and bad-input tests for the canonical CSV and Parquet readers."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime

import polars as pl
import pytest

from pipelines.mediation.readers import UnreadableFile, open_cdr_bytes
from pipelines.mediation.readers.canonical import HEADER, read_canonical_csv, read_canonical_parquet
from pipelines.mediation.readers.detect import detect_format
from schemas.contracts import RAW_USAGE_SCHEMA

GOLDEN = (
    HEADER + "\n"
    "MSC1,voice,MO,491511234567,262011234567890,4930123456,2026-10-03T08:15:00Z,125,125,,,answered,,,,,,,\n"
    ",data,MO,491511234567,,,2026-10-03T09:00:00.500000Z,,5000,1000,4000,,20,1-000001,9,internet,FRAF1,777,2\n"
    "SMS9,sms,MT,491517654321,,447700900123,2026-10-03T10:00:00+02:00,0,1,,,answered,,,,,,,\n"
).encode()


def test_golden_canonical_csv() -> None:
    parsed = read_canonical_csv("msc-east", "msc-east/f.csv", GOLDEN)
    assert parsed.rejects.height == 0
    assert parsed.records.schema == pl.Schema(RAW_USAGE_SCHEMA)
    voice, data, sms = parsed.records.iter_rows(named=True)
    assert voice["network_record_id"] == "MSC1" and voice["record_offset"] == 2
    assert voice["start_time"] == datetime(2026, 10, 3, 8, 15, tzinfo=UTC)
    assert (voice["duration_s"], voice["quantity"], voice["other_party"]) == (125, 125, "4930123456")
    assert data["network_record_id"] is None and data["partial_seq"] == 2 and data["charging_id"] == "777"
    assert (data["uplink_bytes"], data["downlink_bytes"], data["rating_group"]) == (1000, 4000, 20)
    assert data["start_time"] == datetime(2026, 10, 3, 9, 0, 0, 500000, tzinfo=UTC)
    assert (data["snssai"], data["qos_class"], data["visited_network"]) == ("1-000001", 9, "FRAF1")
    assert sms["start_time"] == datetime(2026, 10, 3, 8, 0, tzinfo=UTC), "offsets convert to UTC"
    assert sms["record_offset"] == 4


def test_gzip_variant_and_detection() -> None:
    packed = gzip.compress(GOLDEN, mtime=0)
    assert detect_format("x.csv.gz", packed[:4096]) == "canonical_csv"
    plain = read_canonical_csv("s", "k", GOLDEN).records
    assert read_canonical_csv("s", "k", open_cdr_bytes("k", packed)).records.equals(plain)


def test_truncated_gzip_is_unreadable() -> None:
    packed = gzip.compress(GOLDEN * 50, mtime=0)
    with pytest.raises(UnreadableFile) as err:
        open_cdr_bytes("k.csv.gz", packed[: len(packed) // 2])
    assert err.value.reason_code == "CORRUPT_GZIP"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"MSC2,voice,MO,491511234567", "MALFORMED_LINE"),
        (b"", "MALFORMED_LINE"),
        (b"MSC2,voice,MO,491511234567,,4930,2026-10-03T08:15:00Z,1x,1,,,answered,,,,,,,", "INVALID_FIELD"),
        (b"MSC2,voice,MO,491511234567,,4930,03.10.2026 08:15,1,1,,,answered,,,,,,,", "INVALID_FIELD"),
        (b"MSC2,voice,MO,491511234567,,4930,2026-10-03T08:15:00Z,1,1,,,answered,,,,M\xfcnchen,,,", "BAD_ENCODING"),
        (b"MSC2,voice,MO,491511234567,,4930,2026-10-03T08:15:00Z,1,1,,,answered,,,,,,,,extra", "MALFORMED_LINE"),
    ],
)
def test_bad_lines_are_rejected_with_reason_and_raw_text(line: bytes, code: str) -> None:
    data = GOLDEN + line + b"\n" + GOLDEN.split(b"\n", 2)[1] + b"\n"
    parsed = read_canonical_csv("msc-east", "msc-east/f.csv", data)
    assert parsed.rejects.height == 1
    reject = parsed.rejects.row(0, named=True)
    assert (reject["reason_code"], reject["record_offset"], reject["source_file"]) == (code, 5, "msc-east/f.csv")
    assert reject["raw"] == line.decode("utf-8", errors="backslashreplace")
    assert parsed.records["record_offset"].to_list() == [2, 3, 4, 6], "the good lines around it survive"


def test_fast_and_line_by_line_paths_agree() -> None:
    fast = read_canonical_csv("s", "k", GOLDEN).records
    slow = read_canonical_csv("s", "k", GOLDEN + b"\n").records   # a trailing blank line forces the slow path
    assert fast.equals(slow)


def test_wrong_header_is_unreadable() -> None:
    with pytest.raises(UnreadableFile) as err:
        read_canonical_csv("s", "k", b"a,b,c\n1,2,3\n")
    assert err.value.reason_code == "BAD_HEADER"


def test_canonical_parquet_matches_csv() -> None:
    csv = read_canonical_csv("s", "k", GOLDEN).records
    text = pl.read_csv(io.BytesIO(GOLDEN), infer_schema=False)
    buf = io.BytesIO()
    text.write_parquet(buf)
    parsed = read_canonical_parquet("s", "k", buf.getvalue())
    assert parsed.rejects.height == 0
    assert parsed.records.drop("record_offset").equals(csv.drop("record_offset"))
    assert parsed.records["record_offset"].to_list() == [1, 2, 3]


def test_parquet_with_bad_value_and_missing_column() -> None:
    text = pl.read_csv(io.BytesIO(GOLDEN), infer_schema=False).with_columns(
        pl.when(pl.col("service") == "sms").then(pl.lit("many")).otherwise(pl.col("quantity")).alias("quantity"))
    buf = io.BytesIO()
    text.write_parquet(buf)
    parsed = read_canonical_parquet("s", "k", buf.getvalue())
    assert parsed.rejects["reason_code"].to_list() == ["INVALID_FIELD"]
    assert '"quantity":"many"' in parsed.rejects["raw"][0]
    buf = io.BytesIO()
    text.drop("msisdn").write_parquet(buf)
    with pytest.raises(UnreadableFile) as err:
        read_canonical_parquet("s", "k", buf.getvalue())
    assert err.value.reason_code == "BAD_SCHEMA"


CHARGED = (
    HEADER + ",charged_amount\n"
    "CHF1,data,MO,491511234567,,,2026-10-03T09:00:00Z,,2200000,200000,2000000,,10,1-000001,9,internet,,c1,,0.030000000\n"
    "CHF2,voice,MO,491511234567,,4930123456,2026-10-03T10:00:00Z,61,61,,,answered,,,,,,,,0.12\n"
    "CHF3,sms,MO,491511234567,,4930123456,2026-10-03T11:00:00Z,0,1,,,answered,,,,,,,,\n"
).encode()


def test_known_extra_column_charged_amount_is_carried_as_decimal() -> None:
    parsed = read_canonical_csv("chf-prepaid", "chf-prepaid/f.csv", CHARGED)
    assert parsed.rejects.height == 0
    assert parsed.records.schema["charged_amount"] == pl.Decimal(38, 9)
    assert parsed.records["charged_amount"].cast(pl.String).to_list() == ["0.030000000", "0.120000000", None]
    # plain canonical files have the column too, all null
    assert read_canonical_csv("s", "k", GOLDEN).records["charged_amount"].null_count() == 3


def test_extra_column_bad_values_and_both_paths() -> None:
    bad = CHARGED + b"CHF4,sms,MO,491511234567,,4930123456,2026-10-03T11:00:00Z,0,1,,,answered,,,,,,,,1.0000000001\n"
    bad += b"CHF5,sms,MO,491511234567,,4930123456,2026-10-03T11:00:00Z,0,1,,,answered,,,,,,,,1e3\n"
    fast = read_canonical_csv("s", "k", bad)
    assert fast.rejects["reason_code"].to_list() == ["INVALID_FIELD", "INVALID_FIELD"]
    assert fast.rejects["record_offset"].to_list() == [5, 6]
    assert all("charged_amount" in m for m in fast.rejects["message"].to_list())
    slow = read_canonical_csv("s", "k", bad + b"short,line\n")  # a malformed line forces the line-by-line path
    assert slow.records.equals(fast.records)
    assert slow.rejects["reason_code"].to_list() == ["INVALID_FIELD", "INVALID_FIELD", "MALFORMED_LINE"]


@pytest.mark.parametrize("extra", [",bonus", ",charged_amount,charged_amount", ",tax,charged_amount"])
def test_unknown_or_repeated_extra_column_is_bad_header(extra: str) -> None:
    data = (HEADER + extra + "\n").encode()
    with pytest.raises(UnreadableFile) as err:
        read_canonical_csv("s", "k", data)
    assert err.value.reason_code == "BAD_HEADER"


def test_parquet_carries_charged_amount() -> None:
    frame = pl.read_csv(io.BytesIO(CHARGED), infer_schema=False)
    buf = io.BytesIO()
    frame.write_parquet(buf)
    parsed = read_canonical_parquet("chf-prepaid", "k.parquet", buf.getvalue())
    csv = read_canonical_csv("chf-prepaid", "k.parquet", CHARGED)
    assert parsed.records.drop("record_offset").equals(csv.records.drop("record_offset"))
