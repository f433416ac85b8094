"""FreeSWITCH mod_json_cdr (real cgrates samples) and mod_cdr_csv (default template)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import polars as pl
import pytest

from pipelines.mediation.readers import READERS, open_cdr_bytes
from pipelines.mediation.readers.freeswitch import (
    csv_reader_for_zone,
    read_csv,
    read_freeswitch_json,
    read_json,
    write_freeswitch_json,
)
from schemas.contracts import RAW_USAGE_SCHEMA

from .conftest import sample

ENGINE = "freeswitch_json_cdr__cgrates_engine_fscdr_test.json"
AGENT = "freeswitch_json_cdr__cgrates_agents_fsevent_test.json"


def _csv(*, caller: str = "4915112345678", dest: str = "4930123456", context: str = "default",
         answer: str = "2026-10-03 10:15:04", duration: str = "64", billsec: str = "60",
         cause: str = "NORMAL_CLEARING", extra: str = "") -> str:
    return (f'"Anna","{caller}","{dest}","{context}","2026-10-03 10:15:00","{answer}","2026-10-03 10:16:04",'
            f'"{duration}","{billsec}","{cause}","uuid-a","uuid-b","acct","PCMA","PCMA"{extra}')


def test_registered_under_their_format_names() -> None:
    assert READERS["freeswitch_json"] is read_json
    assert READERS["freeswitch_csv"] is read_csv


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # pretty-printed document; answer_uepoch 1515666347954373, billsec 68 (duration 71)
        (ENGINE, ("3da8bf84-c133-4959-9e24-e72875cb33a1", "MO", "1001", "1002",
                  datetime(2018, 1, 11, 10, 25, 47, 954373, tzinfo=UTC), 68, "answered")),
        # one-line document; answer_uepoch 1521025767766321, billsec 21 (duration 30, 15 s on hold)
        (AGENT, ("5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4", "MO", "1001", "1002",
                 datetime(2018, 3, 14, 11, 9, 27, 766321, tzinfo=UTC), 21, "answered")),
    ],
)
def test_json_samples_golden(name: str, expected: tuple) -> None:
    parsed = read_json("fs-1", name, sample(name))
    assert parsed.rejects.height == 0
    assert dict(parsed.records.schema) == RAW_USAGE_SCHEMA
    assert parsed.records.select("network_record_id", "direction", "msisdn", "other_party", "start_time",
                                 "duration_s", "call_outcome").rows() == [expected]
    assert parsed.records["record_offset"].to_list() == [1]


def test_json_gzip_variant() -> None:
    data = sample(ENGINE)
    zipped = read_json("fs-1", ENGINE, open_cdr_bytes("x.json.gz", gzip.compress(data, mtime=0)))
    assert zipped.records.equals(read_json("fs-1", ENGINE, data).records)


def test_json_lines_with_bad_documents() -> None:
    good = json.loads(sample(AGENT))
    no_vars = {"core-uuid": "x"}
    bad_billsec = {**good, "variables": {**good["variables"], "billsec": "lots"}}
    lines = [json.dumps(good), "{not json}", json.dumps(no_vars), json.dumps(bad_billsec), json.dumps(good)]
    parsed = read_json("fs-1", "cdr.json", ("\n".join(lines) + "\n").encode())
    assert parsed.records["record_offset"].to_list() == [1, 5]
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [
        (2, "MALFORMED_JSON"), (3, "MALFORMED_JSON"), (4, "BAD_NUMBER")]
    assert parsed.rejects["raw"][1] == lines[2]


def test_json_bad_encoding() -> None:
    one_doc = sample(ENGINE).replace(b'"switchname": "FSDev1"', b'"switchname": "FS\xff"')
    parsed = read_json("fs-1", "cdr.json", one_doc)
    assert parsed.records.height == 0
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(1, "BAD_ENCODING")]
    assert "FS\\xff" in parsed.rejects["raw"][0]
    line = json.dumps(json.loads(sample(AGENT))).encode()
    lines = line + b"\n" + line.replace(b'"teo"', b'"t\xe9o"') + b"\n" + line + b"\n"
    parsed = read_json("fs-1", "cdr.json", lines)
    assert parsed.records["record_offset"].to_list() == [1, 3]
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(2, "BAD_ENCODING")]


def test_json_writer_round_trips(voice_calls: pl.DataFrame) -> None:
    data = write_freeswitch_json(voice_calls, switch_tz="Europe/Berlin")
    parsed = read_freeswitch_json("msc-east", "f", data)
    assert parsed.rejects.height == 0
    carried = [c for c in RAW_USAGE_SCHEMA if c not in {"imsi", "charging_id", "record_offset", "source_file"}]
    assert parsed.records.select(carried).equals(voice_calls.select(carried))
    assert parsed.records["charging_id"].to_list() == voice_calls["network_record_id"].to_list()
    assert write_freeswitch_json(voice_calls, switch_tz="Europe/Berlin") == data


@pytest.mark.parametrize(
    ("cause", "outcome"),
    [("NORMAL_CLEARING", "answered"), ("NO_ANSWER", "unanswered"), ("ORIGINATOR_CANCEL", "unanswered"),
     ("USER_BUSY", "busy"), ("CALL_REJECTED", "failed"), ("NORMAL_TEMPORARY_FAILURE", "failed")],
)
def test_csv_hangup_cause_mapping(cause: str, outcome: str) -> None:
    parsed = read_csv("fs-1", "Master.csv", (_csv(cause=cause) + "\n").encode())
    assert parsed.records["call_outcome"].to_list() == [outcome]


def test_csv_default_template_golden_in_switch_zone() -> None:
    data = "\n".join([
        _csv(),
        _csv(caller="00447700900123", dest="4915112345678", context="public", answer="", billsec="0",
             cause="NO_ANSWER", extra=',"appended","columns"'),
    ]) + "\n"
    parsed = csv_reader_for_zone("Europe/Berlin")("fs-1", "Master.csv", data.encode())
    assert parsed.rejects.height == 0
    assert parsed.records.select("record_offset", "network_record_id", "direction", "msisdn", "other_party",
                                 "start_time", "duration_s", "call_outcome", "charging_id").rows() == [
        (1, "uuid-a", "MO", "4915112345678", "4930123456", datetime(2026, 10, 3, 8, 15, 4, tzinfo=UTC), 60,
         "answered", "uuid-a"),
        (2, "uuid-a", "MT", "4915112345678", "447700900123", datetime(2026, 10, 3, 8, 15, tzinfo=UTC), 0,
         "unanswered", "uuid-a"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_csv(billsec="6o"), "BAD_NUMBER"),
        (_csv(duration=""), "BAD_NUMBER"),
        (_csv(answer="03/10/2026 10:15"), "BAD_TIMESTAMP"),
        ('"a","b","c"', "MALFORMED_LINE"),
        (_csv()[:-1], "MALFORMED_LINE"),   # closing quote lost
    ],
)
def test_csv_bad_lines(line: str, reason: str) -> None:
    parsed = read_csv("fs-1", "Master.csv", f"{_csv()}\n{line}\n{_csv()}\n".encode())
    assert parsed.records["record_offset"].to_list() == [1, 3]
    assert parsed.rejects.select("record_offset", "reason_code").rows() == [(2, reason)]
