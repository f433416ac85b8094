"""3GPP TS 32.298 BER: round trips through the encoders, vendor tags, corrupt and truncated input."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.mediation.readers import READERS, UnreadableFile, open_cdr_bytes
from pipelines.mediation.readers.ber3gpp import (
    _choice,
    address_decode,
    address_encode,
    children,
    encode_msc_records,
    encode_pgw_records,
    encode_tlv,
    plmn_decode,
    plmn_encode,
    read,
    read_tlv,
    tbcd_decode,
    tbcd_encode,
    timestamp_decode,
    timestamp_encode,
)
from schemas.contracts import RAW_USAGE_SCHEMA, REJECT_SCHEMA

from .conftest import OCT3, raw_usage


def _records(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        tlv = read_tlv(blob, pos)
        out.append(blob[pos:tlv.end])
        pos = tlv.end
    return out


def _rebuild(record: bytes, edit) -> bytes:  # noqa: ANN001 - edit(list_of_child_bytes) -> list
    outer = read_tlv(record, 0)
    kids = [record[c.start:c.end] for c in children(record, outer)]
    return encode_tlv(2, True, outer.number, b"".join(edit(kids)))


def _child_tag(child: bytes) -> int:
    return read_tlv(child, 0).number


def test_registered_under_its_format_name() -> None:
    assert READERS["ber_3gpp"] is read


def test_pgw_round_trip_is_exact(data_sessions: pl.DataFrame) -> None:
    blob = encode_pgw_records(data_sessions)
    assert blob[:2] == b"\xbf\x4f"  # pGWRecord [79]
    parsed = read("pgw-1", "f", blob)
    assert parsed.rejects.height == 0
    assert dict(parsed.records.schema) == RAW_USAGE_SCHEMA
    assert parsed.records.drop("record_offset").equals(data_sessions.drop("record_offset"))
    assert parsed.records["record_offset"].to_list() == [len(b"".join(_records(blob)[:i])) for i in range(4)]
    assert encode_pgw_records(data_sessions) == blob  # deterministic bytes


def test_msc_round_trip_is_exact(voice_calls: pl.DataFrame) -> None:
    blob = encode_msc_records(voice_calls)
    parsed = read("msc-east", "f", blob)
    assert parsed.rejects.height == 0
    assert parsed.records.drop("record_offset").equals(voice_calls.drop("record_offset"))
    tags = [read_tlv(r, 0).number for r in _records(blob)]
    assert tags == [0, 1, 0, 0, 0, 0]  # moCallRecord [0] / mtCallRecord [1]


def test_msc_round_trip_with_text_ids_roaming_and_null_charging_id() -> None:
    calls = raw_usage([
        {"source": "msc", "source_file": "f", "record_offset": 0, "network_record_id": "roam-1",
         "service": "voice", "direction": "MO", "msisdn": "4915112345678", "imsi": "262021234567890",
         "other_party": "4930123456", "start_time": OCT3, "duration_s": 30, "quantity": 30,
         "call_outcome": "answered", "visited_network": "GBRCN", "charging_id": None, "partial_seq": 3},
        {"source": "msc", "source_file": "f", "record_offset": 0, "network_record_id": "x-2",
         "service": "voice", "direction": "MO", "msisdn": "4915112345678", "imsi": None,
         "other_party": "4930123456", "start_time": OCT3, "duration_s": -5, "quantity": -5,
         "call_outcome": "answered", "charging_id": "abc"},
    ])
    parsed = read("msc", "f", encode_msc_records(calls))
    assert parsed.records.drop("record_offset").equals(calls.drop("record_offset"))


def test_real_switch_record_without_telbill_extension_and_two_rating_groups() -> None:
    """A PGW-CDR as a switch writes it (pycrate, no telbill extension): one row per rating group."""
    opened = bytes.fromhex("2610031015002b0200")  # 2026-10-03 10:15:00 +02:00
    asn = _choice("gprs")
    asn.set_val(("pGWRecord", {
        "recordType": 85, "servedIMSI": tbcd_encode("262021234567890"), "chargingID": 123456,
        "p-GWAddress": ("iPBinaryAddress", ("iPBinV4Address", b"\xc0\x00\x02\x01")),
        "servingNodeAddress": [("iPBinaryAddress", ("iPBinV4Address", b"\xc0\x00\x02\x02"))],
        "accessPointNameNI": "internet", "recordOpeningTime": opened, "duration": 600, "causeForRecClosing": 16,
        "recordSequenceNumber": 4, "nodeID": "PGW07", "localSequenceNumber": 42,
        "servedMSISDN": address_encode("4915112345678"), "chargingCharacteristics": b"\x08\x00",
        "servingNodePLMNIdentifier": plmn_encode("21407"), "servingNodeType": ["gTPSGW"],
        "listOfServiceData": [
            {"ratingGroup": 10, "datavolumeFBCUplink": 200_000, "datavolumeFBCDownlink": 4_000_000,
             "timeOfReport": opened, "serviceConditionChange": (0x40, 32)},
            {"ratingGroup": 30, "datavolumeFBCUplink": 1_000, "datavolumeFBCDownlink": 9_000_000,
             "timeOfReport": opened, "serviceConditionChange": (0x40, 32)},
        ]}))
    parsed = read("pgw-1", "f", asn.to_ber())
    assert parsed.rejects.height == 0
    assert parsed.records.select(
        "record_offset", "network_record_id", "msisdn", "imsi", "start_time", "rating_group", "uplink_bytes",
        "downlink_bytes", "quantity", "visited_network", "charging_id", "partial_seq", "snssai").rows() == [
        (0, "PGW07:42:rg10", "4915112345678", "262021234567890", datetime(2026, 10, 3, 8, 15, tzinfo=UTC), 10,
         200_000, 4_000_000, 4_200_000, "ESPTE", "123456", 4, None),
        (0, "PGW07:42:rg30", "4915112345678", "262021234567890", datetime(2026, 10, 3, 8, 15, tzinfo=UTC), 30,
         1_000, 9_000_000, 9_001_000, "ESPTE", "123456", 4, None),
    ]


def test_sgw_record_sums_traffic_volume_containers() -> None:
    opened = bytes.fromhex("2610031015002b0200")
    asn = _choice("gprs")
    asn.set_val(("sGWRecord", {
        "recordType": 84, "servedIMSI": tbcd_encode("262021234567890"), "chargingID": 99,
        "s-GWAddress": ("iPBinaryAddress", ("iPBinV4Address", b"\xc0\x00\x02\x09")),
        "servingNodeAddress": [("iPBinaryAddress", ("iPBinV4Address", b"\xc0\x00\x02\x02"))],
        "recordOpeningTime": opened, "duration": 60, "causeForRecClosing": 0,
        "chargingCharacteristics": b"\x08\x00", "servingNodeType": ["mME"], "accessPointNameNI": "internet",
        "listOfTrafficVolumes": [
            {"dataVolumeGPRSUplink": 100, "dataVolumeGPRSDownlink": 1_000, "changeCondition": "qoSChange",
             "changeTime": opened},
            {"dataVolumeGPRSUplink": 50, "dataVolumeGPRSDownlink": 2_000, "changeCondition": "recordClosure",
             "changeTime": opened},
        ]}))
    parsed = read("sgw-1", "f", asn.to_ber())
    assert parsed.rejects.height == 0
    assert parsed.records.select("network_record_id", "service", "imsi", "msisdn", "rating_group", "uplink_bytes",
                                 "downlink_bytes", "quantity", "charging_id", "partial_seq").rows() == [
        ("99:0", "data", "262021234567890", None, None, 150, 3_000, 3_150, "99", None)]


def test_unknown_vendor_tags_and_clashing_types_are_skipped(data_sessions: pl.DataFrame) -> None:
    clean = encode_pgw_records(data_sessions.head(1))
    vendor = [
        encode_tlv(2, False, 200, b"\x01\x02\x03"),               # vendor tag [200], primitive
        encode_tlv(2, True, 233, encode_tlv(2, False, 0, b"x")),  # vendor tag [233], constructed
        encode_tlv(3, False, 5, b"private"),                      # private-class tag
        encode_tlv(2, True, 29, encode_tlv(0, False, 4, b"\x11")),  # servedIMEI [29] constructed: type clash
    ]
    dirty = _rebuild(clean, lambda kids: kids[:3] + vendor + kids[3:])
    assert len(dirty) > len(clean)
    parsed = read("pgw-1", "f", dirty)
    assert parsed.rejects.height == 0
    assert parsed.records.equals(read("pgw-1", "f", clean).records)


def test_corrupt_record_is_rejected_with_offset_and_neighbours_survive(data_sessions: pl.DataFrame) -> None:
    records = _records(encode_pgw_records(data_sessions.head(3)))
    no_record_type = _rebuild(records[1], lambda kids: [k for k in kids if _child_tag(k) != 0])
    blob = records[0] + no_record_type + records[2]
    parsed = read("pgw-1", "f", blob)
    assert parsed.records["network_record_id"].to_list() == ["d-1", "d-3"]
    assert dict(parsed.rejects.schema) == REJECT_SCHEMA
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(len(records[0]), "BER_DECODE_ERROR")]
    assert parsed.rejects["raw"][0] == no_record_type.hex()
    assert f"byte offset {len(records[0])}" in parsed.rejects["message"][0]


def test_bad_timestamp_is_its_own_reason(data_sessions: pl.DataFrame) -> None:
    record = encode_pgw_records(data_sessions.head(1))

    def break_opening_time(kids: list[bytes]) -> list[bytes]:
        return [encode_tlv(2, False, 13, b"\xaa" * 9) if _child_tag(k) == 13 else k for k in kids]

    parsed = read("pgw-1", "f", _rebuild(record, break_opening_time))
    assert parsed.records.height == 0
    assert parsed.rejects["reason_code"].to_list() == ["BAD_TIMESTAMP"]


def test_truncated_file_keeps_the_records_before_the_cut(voice_calls: pl.DataFrame) -> None:
    blob = encode_msc_records(voice_calls.head(3))
    first_two = sum(len(r) for r in _records(blob)[:2])
    parsed = read("msc", "f", blob[: first_two + 20])
    assert parsed.records["network_record_id"].to_list() == ["c-1", "c-2"]
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(first_two, "BER_DECODE_ERROR")]
    assert parsed.rejects["raw"][0] == blob[first_two: first_two + 20].hex()


def test_filler_between_records_is_skipped_and_filler_only_is_empty(voice_calls: pl.DataFrame) -> None:
    a, b = _records(encode_msc_records(voice_calls.head(2)))
    parsed = read("msc", "f", a + b"\x00" * 7 + b + b"\xff" * 64)
    assert parsed.rejects.height == 0
    assert parsed.records["record_offset"].to_list() == [0, len(a) + 7]
    with pytest.raises(UnreadableFile) as info:
        read("msc", "f", b"\xff" * 2048)
    assert info.value.reason_code == "EMPTY_FILE"


def test_unsupported_record_type_is_rejected(voice_calls: pl.DataFrame) -> None:
    sgsn = encode_tlv(2, True, 20, encode_tlv(2, False, 0, b"\x12"))  # sgsnPDPRecord [20]
    call = encode_msc_records(voice_calls.head(1))
    parsed = read("msc", "f", sgsn + call)
    assert parsed.records.height == 1
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(0, "UNSUPPORTED_RECORD_TYPE")]


def test_gzip_variant(voice_calls: pl.DataFrame) -> None:
    blob = encode_msc_records(voice_calls)
    unzipped = open_cdr_bytes("msc.ber.gz", gzip.compress(blob, mtime=0))
    assert read("msc", "f", unzipped).records.equals(read("msc", "f", blob).records)


def test_timestamp_example_from_the_spec() -> None:
    # STANDARDS.md: 21 12 04 10 22 38 2B 02 00 is 2021-12-04 10:22:38 +02:00
    assert timestamp_decode(bytes.fromhex("2112041022382b0200")) == datetime(2021, 12, 4, 8, 22, 38, tzinfo=UTC)
    assert timestamp_decode(bytes.fromhex("2112041022382d0530")) == datetime(2021, 12, 4, 15, 52, 38, tzinfo=UTC)
    with pytest.raises(ValueError, match="sign"):
        timestamp_decode(bytes.fromhex("211204102238200200"))


def test_number_and_plmn_codecs() -> None:
    assert tbcd_decode(bytes.fromhex("62022143658709f0")) == "262012345678900"
    assert address_decode(address_encode("4915112345678")) == "4915112345678"
    assert address_encode("4915112345678").hex() == "91945111325476f8"
    assert plmn_decode(plmn_encode("310410")) == "310410"
    assert plmn_encode("26202").hex() == "62f220"


@settings(max_examples=60, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=20),
       instant=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),  # YY = 20YY
       zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
def test_codecs_round_trip(digits: str, instant: datetime, zone: str) -> None:
    assert tbcd_decode(tbcd_encode(digits)) == digits
    whole = instant.replace(microsecond=0, tzinfo=UTC)
    assert timestamp_decode(timestamp_encode(whole, zone)) == whole


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**12), st.sampled_from([None, 10, 20, 30]),
                          st.integers(0, 86_400 * 30), st.sampled_from([None, "FRAF1", "TURTC"])),
                min_size=1, max_size=5))
def test_pgw_encode_decode_property(rows: list[tuple]) -> None:
    frame = raw_usage([
        {"source": "pgw", "source_file": "f", "record_offset": 0, "network_record_id": f"r{i}", "service": "data",
         "direction": "MO", "msisdn": "4915112345678", "imsi": "262021234567890",
         "start_time": OCT3 + timedelta(seconds=offset), "duration_s": 0, "quantity": up + down,
         "uplink_bytes": up, "downlink_bytes": down, "call_outcome": "answered", "rating_group": group,
         "apn": "internet", "visited_network": visited, "charging_id": str(i)}
        for i, (up, down, group, offset, visited) in enumerate(rows)
    ])
    parsed = read("pgw", "f", encode_pgw_records(frame))
    assert parsed.rejects.height == 0
    assert parsed.records.drop("record_offset").equals(frame.drop("record_offset"))


def test_files_decoded_on_two_threads_keep_their_own_records(data_sessions: pl.DataFrame) -> None:
    """Mediation stages two groups of files at once; pycrate's compiled types are shared stateful objects,
    so without the module lock a record decoded on one thread could come back with the other file's
    values (same record counts: conservation would not notice)."""
    from concurrent.futures import ThreadPoolExecutor

    sessions = pl.concat([data_sessions] * 100)
    blobs = {number: encode_pgw_records(sessions.with_columns(pl.lit(number).alias("msisdn")))
             for number in ("491510000001", "491520000002")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [(number, pool.submit(read, "pgw-1", number, blob)) for _ in range(3) for number, blob in blobs.items()]
        for number, job in jobs:
            parsed = job.result()
            assert parsed.rejects.height == 0
            assert parsed.records["msisdn"].unique().to_list() == [number]
