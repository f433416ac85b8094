"""TS 32.297 §6.1 framed BER files: header codec, detection, reading, and every header fact checked."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.mediation.pipeline import load_readers, stage_file
from pipelines.mediation.readers import UnreadableFile
from pipelines.mediation.readers.ber3gpp import encode_msc_records, encode_pgw_records, read, read_tlv
from pipelines.mediation.readers.detect import detect_format, read_landed_file
from pipelines.mediation.readers.ts32297 import (
    TS_CS,
    HeaderTime,
    decode_time,
    encode_cdr_header,
    encode_time,
    frame_32297,
    looks_framed,
    lost_cdrs_text,
    parse_cdr_header,
    parse_file_header,
)
from schemas.contracts import REJECT_SCHEMA

from .conftest import OCT3
from .test_mediation_integration import SUBSCRIBERS, _sessions

OPENED = datetime(2026, 10, 3, 6, 0, tzinfo=UTC)


def _split(blob: bytes) -> list[bytes]:
    """Concatenated BER records -> one bytes per record."""
    out, pos = [], 0
    while pos < len(blob):
        end = read_tlv(blob, pos).end
        out.append(blob[pos:end])
        pos = end
    return out


def _cdr_offsets(framed: bytes) -> list[int]:
    """CDR header offsets, walked with the header lengths (independent of the reader)."""
    pos, out = parse_file_header(framed).header_length, []
    while pos < len(framed):
        cdr = parse_cdr_header(framed, pos)
        assert cdr is not None
        out.append(pos)
        pos = cdr.end
    return out


@pytest.fixture
def pgw_records(data_sessions: pl.DataFrame) -> list[bytes]:
    return _split(encode_pgw_records(data_sessions))


@pytest.fixture
def framed(pgw_records: list[bytes]) -> bytes:
    return frame_32297(pgw_records, sequence=42, opened=OPENED)


def _codes(parsed) -> list[tuple[int, str]]:  # noqa: ANN001 - ParsedFile
    return parsed.rejects.select("record_offset", "reason_code").rows()


# ----------------------------------------------------------------------------------- header codec


def test_timestamp_bit_layout() -> None:
    # 2026-10-03 08:15 UTC = 10:15 CEST: month 10, day 3, hour 10, minute 15, '+' (bit = 1), 02:00
    value = encode_time(OCT3, "Europe/Berlin")
    assert value == (10 << 28) | (3 << 23) | (10 << 18) | (15 << 12) | (1 << 11) | (2 << 6) | 0
    assert decode_time(value) == HeaderTime(10, 3, 10, 15, 120)
    west = decode_time(encode_time(OCT3, "America/New_York"))   # 04:15 EDT, UTC-4: sign bit 0
    assert (west.hour, west.utc_offset_minutes) == (4, -240)
    assert str(west) == "--10-03T04:15-04:00"


def test_file_header_round_trip(pgw_records: list[bytes]) -> None:
    blob = frame_32297(pgw_records, sequence=42, opened=OPENED, last_append=OCT3, closure_reason=1,
                       node_address="2001:db8::7", routeing_filter=b"PGW", private_extension=b"\x01\x02\x03")
    header = parse_file_header(blob)
    assert header.file_length == len(blob)
    assert header.header_length == 50 + 3 + 2 + 3 + 2        # filter, private length + extension, 2 release ext
    assert (header.high_release, header.low_release, header.high_version) == (16, 16, 0)
    assert header.opened == HeaderTime(10, 3, 8, 0, 120)
    assert header.last_append == HeaderTime(10, 3, 10, 15, 120)
    assert (header.cdr_count, header.sequence, header.closure_reason) == (len(pgw_records), 42, 1)
    assert header.node_address == "2001:db8::7"
    assert (header.routeing_filter, header.private_extension, header.lost_cdr_indicator) == (b"PGW", b"\x01\x02\x03", 0)


@pytest.mark.parametrize(("release", "header_length", "cdr_header"), [(99, 52, 4), (8, 52, 4), (10, 54, 5), (18, 54, 5)])
def test_release_identifiers_and_extensions(pgw_records: list[bytes], release: int, header_length: int,
                                            cdr_header: int) -> None:
    blob = frame_32297(pgw_records[:1], sequence=1, opened=OPENED, release=release, version=3)
    header = parse_file_header(blob)
    assert (header.header_length, header.high_release, header.low_release, header.high_version) == (
        header_length, release, release, 3)
    cdr = parse_cdr_header(blob, header_length)
    assert cdr is not None
    assert (cdr.size, cdr.length, cdr.release, cdr.version, cdr.record_format) == (cdr_header, len(pgw_records[0]),
                                                                                   release, 3, 1)
    assert blob[header_length + cdr_header:] == pgw_records[0]


def test_ipv4_node_address_is_ipv4_mapped_behind_four_ff_octets(framed: bytes) -> None:
    assert framed[27:31] == b"\xff" * 4
    assert framed[31:47] == b"\x00" * 10 + b"\xff\xff" + bytes([192, 0, 2, 10])
    assert parse_file_header(framed).node_address == "192.0.2.10"


def test_header_without_the_private_extension_length(framed: bytes) -> None:
    """Some writers leave out the (optional) private extension length when there is none."""
    header_length = parse_file_header(framed).header_length
    short = framed[:50] + framed[52:header_length] + framed[header_length:]
    short = (len(short)).to_bytes(4, "big") + (header_length - 2).to_bytes(4, "big") + short[8:]
    assert parse_file_header(short).header_length == header_length - 2
    assert read("pgw", "f", short).records.drop("record_offset").equals(
        read("pgw", "f", framed).records.drop("record_offset"))


@pytest.mark.parametrize(("indicator", "words"), [
    (0, None), (3, "identified 3 lost CDRs (there may be more)"), (0x7F, "identified 127 or more"),
    (0x80, "cannot tell how many"), (0x85, "calculated 5 lost CDRs"), (0xFF, "calculated 127 or more")])
def test_lost_cdr_indicator_in_words(indicator: int, words: str | None) -> None:
    text = lost_cdrs_text(indicator)
    assert text is None if words is None else words in text


# ------------------------------------------------------------------------------------- detection


def test_detected_as_ber_plain_and_gzipped(framed: bytes) -> None:
    assert detect_format("pgw/a.ber", framed[:4096]) == "ber_3gpp"
    assert detect_format("pgw/a.ber.gz", gzip.compress(framed, mtime=0)[:4096]) == "ber_3gpp"
    landed = read_landed_file("pgw", "pgw/a.ber.gz", gzip.compress(framed, mtime=0))
    assert landed.records.height == 4 and landed.rejects.height == 0


@pytest.mark.parametrize("head", [
    b"network_record_id,source,service\n" * 3, b"PAR1" + bytes(60), b"\x00" * 64, b"\xff" * 64,
    b"1700000000,4915112345678,4930123456,default\n" * 3])
def test_other_heads_are_not_framed(head: bytes) -> None:
    assert not looks_framed(head)


def test_a_header_with_an_impossible_opening_time_is_not_framed(framed: bytes) -> None:
    bad_month = framed[:10] + bytes([0xD0 | (framed[10] & 0x0F)]) + framed[11:]   # month 13
    assert not looks_framed(bad_month)


# ----------------------------------------------------------------------------------- reading


def test_framed_file_reads_the_same_rows_as_plain(pgw_records: list[bytes], framed: bytes) -> None:
    plain = read("pgw", "f", b"".join(pgw_records))
    parsed = read("pgw", "f", framed)
    assert parsed.rejects.height == 0
    assert parsed.records.drop("record_offset").equals(plain.records.drop("record_offset"))


def test_record_offsets_are_the_cdr_header_offsets(pgw_records: list[bytes], framed: bytes) -> None:
    header_length = parse_file_header(framed).header_length
    expected, pos = [], header_length
    for record in pgw_records:
        expected.append(pos)
        pos += 5 + len(record)                                 # Rel-16: 5-octet CDR headers
    assert pos == len(framed)
    assert read("pgw", "f", framed).records["record_offset"].to_list() == expected == _cdr_offsets(framed)


def test_msc_records_framed_with_rel8_headers(voice_calls: pl.DataFrame) -> None:
    records = _split(encode_msc_records(voice_calls))
    blob = frame_32297(records, sequence=1, opened=OPENED, release=8, ts_number=TS_CS)
    parsed = read("msc", "f", blob)
    assert parsed.rejects.height == 0
    assert parsed.records.drop("record_offset").equals(
        read("msc", "f", b"".join(records)).records.drop("record_offset"))
    offsets = [52 + sum(4 + len(r) for r in records[:i]) for i in range(len(records))]
    assert parsed.records["record_offset"].to_list() == offsets


def test_header_says_more_cdrs_than_present(pgw_records: list[bytes]) -> None:
    blob = frame_32297(pgw_records, sequence=1, opened=OPENED, cdr_count=len(pgw_records) + 2)
    parsed = read("pgw", "f", blob)
    assert parsed.records.height == len(pgw_records)                 # nothing lost
    assert _codes(parsed) == [(len(blob), "CDR_COUNT_MISMATCH")]
    assert "says 6 CDRs, the file holds 4: 2 missing" in parsed.rejects["message"][0]


def test_header_says_fewer_cdrs_than_present(pgw_records: list[bytes]) -> None:
    blob = frame_32297(pgw_records, sequence=1, opened=OPENED, cdr_count=1)
    parsed = read("pgw", "f", blob)
    assert parsed.records.height == len(pgw_records)
    assert _codes(parsed) == [(0, "CDR_COUNT_MISMATCH")]
    assert "says 1 CDRs, the file holds 4: all of them were read" in parsed.rejects["message"][0]


def test_lost_cdr_indicator_is_a_visible_reject(pgw_records: list[bytes]) -> None:
    blob = frame_32297(pgw_records, sequence=9, opened=OPENED, lost_cdr_indicator=0x83)
    parsed = read("pgw", "f", blob)
    assert parsed.records.height == len(pgw_records)
    assert _codes(parsed) == [(0, "LOST_CDRS")]
    message = parsed.rejects["message"][0]
    assert "0x83" in message and "calculated 3 lost CDRs" in message and "sequence 9" in message


def test_non_ber_cdr_is_rejected_and_its_neighbours_read(pgw_records: list[bytes], framed: bytes) -> None:
    second = _cdr_offsets(framed)[1]
    xer = bytearray(framed)
    xer[second + 3] = (4 << 5) | (xer[second + 3] & 0x1F)          # data record format 4 = XER
    parsed = read("pgw", "f", bytes(xer))
    assert parsed.records["network_record_id"].to_list() == ["d-1", "d-3", "d-4"]
    assert _codes(parsed) == [(second, "UNSUPPORTED_CDR_FORMAT")]
    assert "format 4 (XER)" in parsed.rejects["message"][0]
    assert parsed.rejects["raw"][0] == bytes(xer[second:second + 5 + len(pgw_records[1])]).hex()


def test_truncated_file_keeps_the_records_before_the_cut(framed: bytes) -> None:
    third = _cdr_offsets(framed)[2]
    cut = framed[:third + 30]
    parsed = read("pgw", "f", cut)
    assert parsed.records["network_record_id"].to_list() == ["d-1", "d-2"]
    assert _codes(parsed) == [(third, "BER_DECODE_ERROR")]           # one reject for the rest, nothing else
    assert parsed.rejects["raw"][0] == cut[third:].hex()
    assert "says 4 CDRs" in parsed.rejects["message"][0]


def test_every_cut_position_keeps_complete_cdrs_and_accounts_for_the_rest(pgw_records: list[bytes]) -> None:
    blob = frame_32297(pgw_records[:2], sequence=1, opened=OPENED, release=8)
    offsets, header_length = _cdr_offsets(blob), parse_file_header(blob).header_length
    ends = [*offsets[1:], len(blob)]
    for cut in range(header_length, len(blob)):
        parsed = read("pgw", "f", blob[:cut])
        complete = sum(end <= cut for end in ends)
        assert parsed.records.height == complete, cut
        boundary = offsets[complete] if complete < len(offsets) else len(blob)
        if not blob[boundary:cut].strip(b"\x00\xff"):   # at a boundary, or a stub that looks like padding
            assert _codes(parsed) == [(cut, "CDR_COUNT_MISMATCH")], cut
        else:
            assert _codes(parsed) == [(offsets[complete], "BER_DECODE_ERROR")], cut


def test_a_file_cut_inside_its_header_is_quarantined(framed: bytes) -> None:
    with pytest.raises(UnreadableFile) as info:
        read("pgw", "f", framed[:52])
    assert info.value.reason_code == "BAD_FILE_HEADER"


def test_header_fields_that_do_not_add_up_are_quarantined(framed: bytes) -> None:
    header_length = parse_file_header(framed).header_length
    wrong = framed[:4] + (header_length + 3).to_bytes(4, "big") + framed[8:]
    with pytest.raises(UnreadableFile) as info:
        read("pgw", "f", wrong)
    assert info.value.reason_code == "BAD_FILE_HEADER"
    assert "does not match its fields" in info.value.message


def test_wrong_file_length_is_a_reject(framed: bytes) -> None:
    longer = (len(framed) + 10).to_bytes(4, "big") + framed[4:]
    parsed = read("pgw", "f", longer)
    assert parsed.records.height == 4
    assert _codes(parsed) == [(len(framed), "FILE_LENGTH_MISMATCH")]
    shorter = (len(framed) - 100).to_bytes(4, "big") + framed[4:]
    assert _codes(read("pgw", "f", shorter)) == [(len(framed) - 100, "FILE_LENGTH_MISMATCH")]


def test_trailing_block_padding_is_not_a_problem(framed: bytes) -> None:
    for pad in (b"\x00" * 3, b"\xff" * 200, b"\x00" * 2048):
        parsed = read("pgw", "f", framed + pad)
        assert parsed.rejects.height == 0 and parsed.records.height == 4
    padded_inside = (len(framed) + 64).to_bytes(4, "big") + framed[4:] + b"\x00" * 64   # length counts padding
    assert read("pgw", "f", padded_inside).rejects.height == 0


def test_cdr_longer_than_its_record_is_rejected(pgw_records: list[bytes]) -> None:
    body = pgw_records[0] + b"junk"
    blob = frame_32297([body, pgw_records[1]], sequence=1, opened=OPENED)
    parsed = read("pgw", "f", blob)
    assert parsed.records["network_record_id"].to_list() == ["d-2"]
    assert _codes(parsed) == [(54, "BER_DECODE_ERROR")]
    padded = frame_32297([pgw_records[0] + b"\x00\x00", pgw_records[1]], sequence=1, opened=OPENED)
    assert read("pgw", "f", padded).rejects.height == 0


def test_empty_framed_file_is_empty(pgw_records: list[bytes]) -> None:
    with pytest.raises(UnreadableFile) as info:
        read("pgw", "f", frame_32297([], sequence=1, opened=OPENED))
    assert info.value.reason_code == "EMPTY_FILE"
    lost_only = read("pgw", "f", frame_32297([], sequence=1, opened=OPENED, lost_cdr_indicator=2))
    assert _codes(lost_only) == [(0, "LOST_CDRS")]


def test_cdr_header_encoding_rejects_oversized_records() -> None:
    assert encode_cdr_header(300, release=8, ts_number=TS_CS) == bytes([0x01, 0x2C, 5 << 5, 1 << 5 | TS_CS])
    with pytest.raises(ValueError, match="does not fit"):
        encode_cdr_header(70_000)


def test_framing_is_deterministic(pgw_records: list[bytes]) -> None:
    assert frame_32297(pgw_records, sequence=3, opened=OPENED) == frame_32297(pgw_records, sequence=3, opened=OPENED)


# ------------------------------------------------------------------------- through mediation's stage


def test_stage_file_conserves_records_with_header_rejects() -> None:
    load_readers()
    records = _split(encode_pgw_records(_sessions()))
    blob = frame_32297(records, sequence=5, opened=OPENED, lost_cdr_indicator=1, cdr_count=4)
    staged = stage_file("pgw/pgw_000005_20261003.ber", blob, SUBSCRIBERS)
    assert staged.base["format"] == "ber_3gpp" and not staged.base["quarantined"]
    assert dict(staged.rejects.select(list(REJECT_SCHEMA)).schema) == REJECT_SCHEMA
    assert sorted(staged.rejects["reason_code"].to_list()) == ["CDR_COUNT_MISMATCH", "LOST_CDRS"]
    assert staged.candidates.height == 3
    assert staged.base["records_in"] == staged.rejects.height + staged.filtered.height + staged.candidates.height


# ------------------------------------------------------------------------------------ damage


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 2000), st.binary(min_size=1, max_size=4)), min_size=1, max_size=4),
       cut=st.integers(0, 2000))
def test_any_damage_is_rows_rejects_or_a_quarantine(pgw_records: list[bytes], edits: list, cut: int) -> None:
    """Whatever bytes of a framed file are replaced or cut: rows and rejects sit on CDR boundaries or the
    header, or the file is unreadable with a reason; the reader never dies."""
    data = bytearray(frame_32297(pgw_records[:3], sequence=1, opened=OPENED))
    for position, noise in edits:
        at = position % len(data)
        data[at:at + len(noise)] = noise
    data = bytes(data[:max(cut, 1)]) if cut < len(data) else bytes(data)
    try:
        parsed = read("pgw", "f", data)
    except UnreadableFile as exc:
        assert exc.reason_code in {"BAD_FILE_HEADER", "EMPTY_FILE"}
        return
    assert dict(parsed.rejects.schema) == REJECT_SCHEMA
    offsets = set(parsed.records["record_offset"]) | set(parsed.rejects["record_offset"])
    assert all(0 <= o <= len(data) for o in offsets)
    if looks_framed(data):
        assert set(parsed.records["record_offset"]) <= set(_walk(data))


def _walk(data: bytes) -> list[int]:
    """CDR header offsets of a (possibly damaged) framed file, as far as complete CDRs go."""
    pos, out = parse_file_header(data).header_length, []
    while (cdr := parse_cdr_header(data, pos)) is not None and cdr.length and cdr.end <= len(data):
        out.append(pos)
        pos = cdr.end
    return out


# ------------------------------------------------------------------------------------ generator


def test_generator_frames_pgw_5g_from_the_cgf_cut_over_day(tmp_path) -> None:  # noqa: ANN001 - pytest fixture
    from pipelines.generate import CGF_FRAMED_FROM, generate

    gen = generate(tmp_path, 40, "2026-10", seed=3, faults=False, per_subscriber=10)
    keys = [k for k in gen.files if k.startswith("pgw-5g/")]
    framed = [k for k in keys if int(k[-12:-4][-2:]) >= CGF_FRAMED_FROM["pgw-5g"]]
    assert 0 < len(framed) < len(keys)
    for key in keys:
        body = (gen.landing_dir / key).read_bytes()
        parsed = read("pgw-5g", key, body)
        assert parsed.rejects.height == 0 and parsed.records.height == gen.records_by_file[key]
        if key in framed:
            header = parse_file_header(body)
            assert (header.sequence, header.cdr_count, header.file_length) == (
                int(key.split("_")[1]), gen.records_by_file[key], len(body))
        else:
            assert not looks_framed(body) and 0xA0 <= body[0] <= 0xBF


def test_a_zero_file_length_or_opening_time_still_reads_with_a_reject(framed: bytes) -> None:
    """An abnormally closed CGF file may leave its length field or opening time unset: its CDRs are kept."""
    for damaged in (bytes(4) + framed[4:], bytes(4) + framed[4:10] + bytes(4) + framed[14:]):
        assert looks_framed(damaged) and detect_format("pgw/a.ber", damaged[:4096]) == "ber_3gpp"
        parsed = read("pgw", "f", damaged)
        assert parsed.records.height == 4
        assert _codes(parsed) == [(0, "FILE_LENGTH_MISMATCH")]
