"""Property tests: whatever bytes arrive, a reader never dies and accounts for every record."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.mediation.readers import UnreadableFile
from pipelines.mediation.readers.asterisk import read as read_asterisk
from pipelines.mediation.readers.asterisk import write_asterisk_csv
from pipelines.mediation.readers.ber3gpp import encode_msc_records
from pipelines.mediation.readers.ber3gpp import read as read_ber
from pipelines.mediation.readers.freeswitch import read_csv as read_fs_csv
from pipelines.mediation.readers.freeswitch import read_json as read_fs_json
from pipelines.mediation.readers.freeswitch import write_freeswitch_json

from .conftest import sample

FS_LINE = (b'"Anna","4915112345678","4930123456","default","2026-10-03 10:15:00","2026-10-03 10:15:04",'
           b'"2026-10-03 10:16:04","64","60","NORMAL_CLEARING","u-a","u-b","acct","PCMA","PCMA"')
NOISE = st.binary(min_size=0, max_size=6) | st.sampled_from([b'"', b",", b'""', b"\r", b"\xff", b"\xc3", b"\t", b"{"])


def _mutate(line: bytes, cuts: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(line)
    for position, noise in cuts:
        at = position % (len(out) + 1)
        out[at:at + len(noise) // 2] = noise
    return bytes(out).replace(b"\n", b" ")


EDITS = st.lists(st.tuples(st.integers(0, 400), NOISE), max_size=3)


def _line_count(data: bytes) -> int:
    lines = data.split(b"\n")
    return len(lines) - (1 if lines[-1] == b"" else 0)


def _check_text(reader, data: bytes) -> None:  # noqa: ANN001
    parsed = reader("s", "f", data)
    offsets = parsed.records["record_offset"].to_list() + parsed.rejects["record_offset"].to_list()
    assert sorted(offsets) == list(range(1, _line_count(data) + 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDITS, min_size=1, max_size=6))
def test_asterisk_lines_any_damage(edits: list) -> None:  # noqa: ANN001 - hypothesis data
    base = sample("asterisk_cdr_csv_testsuite_cdrlib_good.csv").splitlines()
    data = b"\n".join(_mutate(base[i % len(base)], e) for i, e in enumerate(edits)) + b"\n"
    _check_text(read_asterisk, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDITS, min_size=1, max_size=6))
def test_freeswitch_csv_lines_any_damage(edits: list) -> None:  # noqa: ANN001
    data = b"\n".join(_mutate(FS_LINE, e) for e in edits) + b"\n"
    _check_text(read_fs_csv, data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDITS, min_size=2, max_size=5))
def test_freeswitch_json_lines_any_damage(edits: list) -> None:  # noqa: ANN001
    doc = json.dumps(json.loads(sample("freeswitch_json_cdr__cgrates_agents_fsevent_test.json"))).encode()
    lines = [_mutate(doc, e) for e in edits]
    data = b"\n".join(lines) + b"\n"
    try:
        parsed = read_fs_json("s", "f", data)
    except UnreadableFile:
        return
    offsets = parsed.records["record_offset"].to_list() + parsed.rejects["record_offset"].to_list()
    assert len(offsets) in (1, len(lines))  # JSON lines, or the whole file as one damaged document


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 10_000))
def test_ber_any_damage(flips: list[tuple[int, int]], cut: int, voice_calls: pl.DataFrame) -> None:
    blob = bytearray(encode_msc_records(voice_calls))
    for position, value in flips:
        blob[position % len(blob)] = value
    data = bytes(blob[: max(1, len(blob) - cut % len(blob))])
    try:
        parsed = read_ber("s", "f", data)
    except UnreadableFile as exc:
        assert exc.reason_code == "EMPTY_FILE"
        return
    assert parsed.records.height + parsed.rejects.height >= 1
    assert all(0 <= o < len(data) for o in parsed.records["record_offset"].to_list())


def test_writers_output_reads_back_without_rejects(voice_calls: pl.DataFrame) -> None:
    for reader, data in ((read_asterisk, write_asterisk_csv(voice_calls)),
                         (read_fs_json, write_freeswitch_json(voice_calls))):
        assert reader("s", "f", data).rejects.height == 0
