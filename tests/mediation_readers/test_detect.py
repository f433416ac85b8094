"""Format detection from the first bytes: every format, gzip variants, empty and unknown files."""

from __future__ import annotations

import gzip
import io
from datetime import timedelta

import polars as pl
import pytest

from pipelines.mediation.readers import READERS, UnreadableFile
from pipelines.mediation.readers.asterisk import write_asterisk_csv
from pipelines.mediation.readers.ber3gpp import encode_msc_records, encode_pgw_records
from pipelines.mediation.readers.detect import HEAD_BYTES, detect_format, load_readers, read_landed_file
from pipelines.mediation.readers.freeswitch import write_freeswitch_json
from schemas.contracts import CANONICAL_COLUMNS

from .conftest import sample

FS_CSV = (b'"Anna","4915112345678","4930123456","default","2026-10-03 10:15:00","2026-10-03 10:15:04",'
          b'"2026-10-03 10:16:04","64","60","NORMAL_CLEARING","u-a","u-b","acct","PCMA","PCMA"\n')


def _canonical_csv() -> bytes:
    return (",".join(CANONICAL_COLUMNS) + "\n" + ",".join(["x"] * len(CANONICAL_COLUMNS)) + "\n").encode()


def _canonical_parquet() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({c: ["x"] for c in CANONICAL_COLUMNS}).write_parquet(buffer)
    return buffer.getvalue()


@pytest.fixture
def files(voice_calls: pl.DataFrame, data_sessions: pl.DataFrame) -> dict[str, tuple[str, bytes]]:
    return {
        "canonical csv": ("canonical_csv", _canonical_csv()),
        "canonical parquet": ("canonical_parquet", _canonical_parquet()),
        "asterisk master": ("asterisk_csv", sample("asterisk_cdr_csv_testsuite_Master.csv")),
        "asterisk buggy": ("asterisk_csv", sample("asterisk_cdr_csv_testsuite_cdrlib_buggy.csv")),
        "asterisk written": ("asterisk_csv", write_asterisk_csv(voice_calls)),
        "freeswitch csv": ("freeswitch_csv", FS_CSV),
        "freeswitch json pretty": ("freeswitch_json", sample("freeswitch_json_cdr__cgrates_engine_fscdr_test.json")),
        "freeswitch json line": ("freeswitch_json", sample("freeswitch_json_cdr__cgrates_agents_fsevent_test.json")),
        "freeswitch json written": ("freeswitch_json", write_freeswitch_json(voice_calls)),
        "ber pgw": ("ber_3gpp", encode_pgw_records(data_sessions)),
        "ber msc": ("ber_3gpp", encode_msc_records(voice_calls)),
        "bom + asterisk": ("asterisk_csv", b"\xef\xbb\xbf" + sample("asterisk_cdr_csv_testsuite_Master.csv")),
    }


def test_each_format_plain_and_gzipped(files: dict[str, tuple[str, bytes]]) -> None:
    for name, (fmt, data) in files.items():
        assert detect_format(name, data[:HEAD_BYTES]) == fmt, name
        assert detect_format(name + ".gz", gzip.compress(data, mtime=0)[:HEAD_BYTES]) == fmt, name


def test_switch_formats_have_a_reader(files: dict[str, tuple[str, bytes]]) -> None:
    switch_formats = {fmt for fmt, _ in files.values()} - {"canonical_csv", "canonical_parquet"}
    assert switch_formats <= set(READERS)


def test_first_line_garbage_then_a_known_layout() -> None:
    data = b"\xff\xfe garbage\n" + sample("asterisk_cdr_csv_testsuite_cdrlib_good.csv")
    assert detect_format("f", data) == "asterisk_csv"


@pytest.mark.parametrize("data", [b"", b"   \n\r\n\t", gzip.compress(b"", mtime=0), b"\xef\xbb\xbf\n"])
def test_empty_files(data: bytes) -> None:
    with pytest.raises(UnreadableFile) as info:
        detect_format("empty.csv", data)
    assert info.value.reason_code == "EMPTY_FILE"


@pytest.mark.parametrize(
    "data",
    [
        sample("asterisk_cel_csv_testsuite_CELMaster1.csv"),  # CEL events are not CDRs
        b"# a readme\nnothing here\n",
        b"msisdn,start_time\n4915112345678,2026-10-03T08:15:00Z\n",
        b"\x30\x03\x02\x01\x05",  # universal SEQUENCE: not a TS 32.298 record tag
        bytes(range(256)) * 4,
    ],
)
def test_unknown_formats(data: bytes) -> None:
    with pytest.raises(UnreadableFile) as info:
        detect_format("mystery.dat", data)
    assert info.value.reason_code == "UNKNOWN_FORMAT"
    assert "mystery.dat" in info.value.message


def test_corrupt_gzip_head() -> None:
    blob = bytearray(gzip.compress(bytes(range(256)) * 8, mtime=0))
    blob[10:20] = b"\x00" * 10
    with pytest.raises(UnreadableFile) as info:
        detect_format("x.gz", bytes(blob))
    assert info.value.reason_code == "CORRUPT_GZIP"


def test_read_landed_file_dispatches_every_format(files: dict[str, tuple[str, bytes]]) -> None:
    """gunzip -> detect -> read, through the real registry, for every format and its gzip variant."""
    for name, (fmt, data) in files.items():
        for blob in (data, gzip.compress(data, mtime=0)):
            parsed = read_landed_file("src", name, blob)
            assert parsed.records.height + parsed.rejects.height >= 1, name
            direct = load_readers()[fmt]("src", name, data)
            assert parsed.records.equals(direct.records) and parsed.rejects.equals(direct.rejects), name
            assert parsed.records["source"].to_list() == ["src"] * parsed.records.height
    assert {"canonical_csv", "canonical_parquet", "asterisk_csv", "freeswitch_csv", "freeswitch_json",
            "ber_3gpp"} <= set(load_readers())


def test_read_landed_file_applies_the_switch_zone() -> None:
    data = sample("asterisk_cdr_csv_testsuite_cdrlib_good.csv")
    in_utc = read_landed_file("pbx", "good.csv", data).records["start_time"][0]
    in_berlin = read_landed_file("pbx", "good.csv", data, switch_tz="Europe/Berlin").records["start_time"][0]
    assert in_utc - in_berlin == timedelta(hours=1)


def test_read_landed_file_quarantines_truncated_gzip() -> None:
    blob = gzip.compress(sample("asterisk_cdr_csv_testsuite_cdrlib_good.csv") * 50, mtime=0)
    with pytest.raises(UnreadableFile) as info:
        read_landed_file("pbx", "x.csv.gz", blob[:-30])
    assert info.value.reason_code == "CORRUPT_GZIP"


@pytest.mark.parametrize("fmt", ["asterisk_csv", "freeswitch_csv", "freeswitch_json", "ber_3gpp"])
@pytest.mark.parametrize("data", [b"", b"\n\n  \r\n"])
def test_readers_called_directly_on_an_empty_file(fmt: str, data: bytes) -> None:
    if fmt == "ber_3gpp" and data:
        data = b"\x00\xff" * 8  # BER filler only
    with pytest.raises(UnreadableFile) as info:
        load_readers()[fmt]("src", "empty", data)
    assert info.value.reason_code == "EMPTY_FILE"
