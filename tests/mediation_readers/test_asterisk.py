"""Asterisk cdr_csv: the real testsuite files, every bad-input rule, time zones and the writer."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import polars as pl
import pytest

from pipelines.mediation.readers import READERS, UnreadableFile, open_cdr_bytes
from pipelines.mediation.readers.asterisk import read, read_asterisk_csv, reader_for_zone, write_asterisk_csv
from schemas.contracts import RAW_USAGE_SCHEMA, REJECT_SCHEMA

from .conftest import sample

GOOD = "asterisk_cdr_csv_testsuite_cdrlib_good.csv"
BUGGY = "asterisk_cdr_csv_testsuite_cdrlib_buggy.csv"
MASTER = "asterisk_cdr_csv_testsuite_Master.csv"


def _line(*, src: str = "4915112345678", dst: str = "4930123456", dcontext: str = "from-internal",
          start: str = "2026-10-03 10:15:00", answer: str = '"2026-10-03 10:15:04"', duration: str = "64",
          billsec: str = "60", disposition: str = "ANSWERED", tail: str = '"1759480500.1",""') -> str:
    return (f'"","{src}","{dst}","{dcontext}","""Anna"" <{src}>","SIP/a-1","SIP/b-2","Dial","SIP/b",'
            f'"{start}",{answer},"2026-10-03 10:16:04",{duration},{billsec},"{disposition}","BILLING",{tail}')


def test_registered_under_its_format_name() -> None:
    assert READERS["asterisk_csv"] is read


def test_master_csv_golden() -> None:
    parsed = read("pbx", "Master.csv", sample(MASTER))
    assert parsed.rejects.height == 0
    assert dict(parsed.records.schema) == RAW_USAGE_SCHEMA
    got = parsed.records.select("record_offset", "network_record_id", "direction", "msisdn", "other_party",
                                "start_time", "duration_s", "quantity", "call_outcome", "charging_id").rows()
    assert got == [
        (1, "1270167992.0", "MO", None, "1", datetime(2010, 4, 2, 0, 26, 32, tzinfo=UTC), 7, 7, "answered",
         "1270167992.0"),
        (2, "1270168442.0", "MO", None, "1", datetime(2010, 4, 2, 0, 34, 2, tzinfo=UTC), 7, 7, "answered",
         "1270168442.0"),
    ]
    assert parsed.records["service"].to_list() == ["voice", "voice"]
    assert parsed.records["source"].to_list() == ["pbx", "pbx"]


def test_good_csv_golden_in_the_switch_time_zone() -> None:
    parsed = reader_for_zone("Europe/Berlin")("pbx", "good.csv", sample(GOOD))
    assert parsed.rejects.height == 0
    records = parsed.records
    assert records["call_outcome"].to_list() == ["answered", "answered", "failed", "unanswered", "busy"]
    # billsec, not duration: row 2 has billsec 7 > duration 5 (a semantic problem for validation)
    assert records["duration_s"].to_list() == [5, 7, 0, 0, 0]
    # 2009-01-14 23:51:15 in Berlin (CET, UTC+1); unanswered rows have no answer time, start is used
    assert records["start_time"].unique().to_list() == [datetime(2009, 1, 14, 22, 51, 15, tzinfo=UTC)]
    assert records["msisdn"].to_list() == ["test"] * 5
    assert records["other_party"].to_list() == ["100"] * 5


def test_buggy_csv_unterminated_quote_is_a_malformed_line_reject() -> None:
    data = sample(BUGGY)
    parsed = read("pbx", "buggy.csv", data)
    assert parsed.records.height == 0
    assert dict(parsed.rejects.schema) == REJECT_SCHEMA
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(1, "MALFORMED_LINE")]
    assert parsed.rejects["raw"][0] == data.decode().rstrip("\n")
    assert "quote" in parsed.rejects["message"][0]


def test_gzip_variant_reads_the_same() -> None:
    data = sample(GOOD)
    plain = read("pbx", "good.csv", data)
    zipped = read("pbx", "good.csv", open_cdr_bytes("good.csv.gz", gzip.compress(data, mtime=0)))
    assert zipped.records.equals(plain.records)


def test_truncated_gzip_is_unreadable() -> None:
    blob = gzip.compress(sample(GOOD) * 20, mtime=0)
    with pytest.raises(UnreadableFile) as info:
        open_cdr_bytes("good.csv.gz", blob[: len(blob) // 2])
    assert info.value.reason_code == "CORRUPT_GZIP"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_line(duration="sixty"), "BAD_NUMBER"),
        (_line(billsec=""), "BAD_NUMBER"),
        (_line(start="2026-13-03 10:15:00"), "BAD_TIMESTAMP"),
        (_line(answer='"yesterday"'), "BAD_TIMESTAMP"),
        (_line(disposition="MAYBE"), "UNKNOWN_DISPOSITION"),
        (_line(tail='"1759480500.1"') + ',"x","y"', "MALFORMED_LINE"),       # 19 fields
        ('"only","three",fields', "MALFORMED_LINE"),
        (_line().replace('"Dial"', '"Di"al"'), "MALFORMED_LINE"),            # stray quote
    ],
)
def test_each_bad_line_is_rejected_with_its_reason_and_the_others_survive(line: str, reason: str) -> None:
    data = f"{_line()}\n{line}\n{_line(src='4915100000009')}\n".encode()
    parsed = read("pbx", "f.csv", data)
    assert parsed.records["record_offset"].to_list() == [1, 3]
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(2, reason)]
    assert parsed.rejects["raw"].to_list() == [line]


def test_bad_encoding_line_keeps_escaped_bytes() -> None:
    bad = _line(src="49151\xe9").encode("latin-1")
    data = _line().encode() + b"\n" + bad + b"\r\n" + _line().encode() + b"\n"
    parsed = read("pbx", "f.csv", data)
    assert parsed.records["record_offset"].to_list() == [1, 3]
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(2, "BAD_ENCODING")]
    assert "49151\\xe9" in parsed.rejects["raw"][0]
    assert "0xe9" in parsed.rejects["message"][0]


def test_blank_line_inside_a_file_is_reported_not_skipped() -> None:
    parsed = read("pbx", "f.csv", f"{_line()}\n\n{_line()}\n".encode())
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(2, "MALFORMED_LINE")]
    assert parsed.records.height == 2


def test_conservation_every_line_is_a_record_or_a_reject() -> None:
    lines = [_line(), _line(duration="x"), "garbage", _line(disposition="BUSY", answer="", billsec="0"),
             _line(start="2026-03-29 02:30:00")]
    parsed = reader_for_zone("Europe/Berlin")("pbx", "f.csv", ("\n".join(lines) + "\n").encode())
    assert parsed.records.height + parsed.rejects.height == len(lines)
    # 02:30 on 2026-03-29 does not exist in Berlin (clocks jump 02:00 -> 03:00)
    assert parsed.rejects.filter(pl.col("record_offset") == 5)["reason_code"].item() == "BAD_TIMESTAMP"


def test_inbound_context_makes_the_callee_the_served_subscriber() -> None:
    line = _line(src="+447700900123", dst="4915112345678", dcontext="from-pstn")
    record = read("pbx", "f.csv", (line + "\n").encode()).records.row(0, named=True)
    assert (record["direction"], record["msisdn"], record["other_party"]) == ("MT", "4915112345678", "447700900123")


def test_newcdrcolumns_layout_uses_linkedid_and_sequence() -> None:
    line = _line(tail='"1759480500.7","","","1759480500.1","42"')
    record = read_asterisk_csv("pbx", "f.csv", (line + "\n").encode()).records.row(0, named=True)
    assert record["network_record_id"] == "1759480500.7:42"
    assert record["charging_id"] == "1759480500.1"


def test_local_time_and_dst_fold() -> None:
    berlin = reader_for_zone("Europe/Berlin")
    summer = berlin("p", "f", (_line(answer='"2026-07-01 12:00:00"') + "\n").encode()).records["start_time"][0]
    winter = berlin("p", "f", (_line(answer='"2026-12-01 12:00:00"') + "\n").encode()).records["start_time"][0]
    fold = berlin("p", "f", (_line(answer='"2026-10-25 02:30:00"') + "\n").encode()).records["start_time"][0]
    assert summer == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert winter == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    assert fold == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # ambiguous: the earlier (CEST) instant


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_writer_round_trips(voice_calls: pl.DataFrame, zone: str) -> None:
    data = write_asterisk_csv(voice_calls, switch_tz=zone)
    parsed = read_asterisk_csv("msc-east", "f", data, switch_tz=zone)
    assert parsed.rejects.height == 0
    carried = [c for c in RAW_USAGE_SCHEMA if c not in {"imsi", "charging_id", "record_offset", "source_file"}]
    assert parsed.records.select(carried).equals(voice_calls.select(carried))
    assert parsed.records["record_offset"].to_list() == list(range(1, voice_calls.height + 1))
    assert write_asterisk_csv(voice_calls, switch_tz=zone) == data  # deterministic bytes


def test_writer_refuses_non_voice(data_sessions: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="voice"):
        write_asterisk_csv(data_sessions)
