"""A lean store (pyarrow writer, statistics on non-text columns only) reads back exactly like the default."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipelines.common import storage
from pipelines.common.partitions import read_published, write_partition
from pipelines.common.storage import configure_duckdb, open_store
from schemas.contracts import AMOUNT

USAGE_LIKE = {"record_id": pl.String, "service": pl.String, "start_time": pl.Datetime("us", "UTC"),
              "quantity": pl.Int64, "rating_group": pl.Int32, "usage_date": pl.Date, "charged_amount": AMOUNT,
              "flag": pl.Boolean}


def usage_like(rows: int) -> pl.DataFrame:
    """The column types of a usage partition, nulls included."""
    return pl.DataFrame({
        "record_id": [f"{i:016x}" for i in range(rows)],
        "service": [("voice", "sms", None)[i % 3] for i in range(rows)],
        "start_time": [datetime(2026, 10, 3, 8, 15, i % 60, tzinfo=UTC) for i in range(rows)],
        "quantity": [i * 7 if i % 5 else None for i in range(rows)],
        "rating_group": [[10, 20, None, 30][i % 4] for i in range(rows)],
        "usage_date": [date(2026, 10, 3)] * rows,
        "charged_amount": [Decimal("0.030000000") if i % 2 else None for i in range(rows)],
        "flag": [i % 2 == 0 for i in range(rows)],
    }, schema=USAGE_LIKE)


@pytest.fixture(params=["local", "s3"])
def lean_store(request, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "lake")).lean()
    s3 = request.getfixturevalue("s3_settings")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/lake", s3).lean()


@pytest.mark.parametrize("rows", [0, 1, 1000])
def test_lean_reads_back_identical_and_reproducible(lean_store, rows):
    frame = usage_like(rows)
    m = write_partition(lean_store, "demo", {"p": "1"}, "r", frame, compression="lz4")
    key = m.files[0]["key"]
    first = lean_store.read_bytes(key)
    back = read_published(lean_store, "demo")
    assert back.schema == frame.schema
    assert back.equals(frame)
    write_partition(lean_store, "demo", {"p": "1"}, "r", frame, compression="lz4")
    assert lean_store.read_bytes(key) == first, "same frame must give the same bytes"
    con = duckdb.connect()
    if lean_store.is_s3:
        configure_duckdb(con, lean_store.s3)
    described = con.execute(f"describe select * from read_parquet('{lean_store.duckdb_glob(key)}')").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["start_time"] == "TIMESTAMP WITH TIME ZONE" and types["charged_amount"] == "DECIMAL(38,9)"
    assert types["record_id"] == "VARCHAR" and types["usage_date"] == "DATE"


def test_lean_keeps_statistics_where_readers_prune(tmp_path):
    """start_time / numbers / dates keep min-max (DuckDB prunes row groups with them); text columns do not.
    Text columns get dictionary pages unless named plain (per-record ids); numbers are plain."""
    store = open_store(str(tmp_path)).lean(plain=["record_id"])
    store.write_parquet("x.parquet", usage_like(500), compression="lz4")
    meta = pq.ParquetFile(io.BytesIO(store.read_bytes("x.parquet"))).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert all(columns[c].is_stats_set for c in ("start_time", "quantity", "usage_date", "charged_amount"))
    assert not columns["record_id"].is_stats_set and not columns["service"].is_stats_set
    assert columns["service"].has_dictionary_page
    assert not columns["record_id"].has_dictionary_page and not columns["quantity"].has_dictionary_page


def test_lean_writes_large_frames_in_row_groups(tmp_path, monkeypatch):
    """A frame is handed to pyarrow one row group at a time (bounded copies); the data is unchanged."""
    monkeypatch.setattr(storage, "LEAN_ROW_GROUP", 300)
    store = open_store(str(tmp_path)).lean()
    frame = usage_like(1000)
    store.write_parquet("x.parquet", frame, compression="lz4")
    assert pq.ParquetFile(io.BytesIO(store.read_bytes("x.parquet"))).metadata.num_row_groups == 4
    assert store.read_parquet("x.parquet").equals(frame)


def test_lean_keeps_types_parquet_alone_cannot_describe(tmp_path):
    """Categorical, Enum, Duration, Time and zoned (non-UTC) columns round-trip too (the Arrow schema is stored for them)."""
    store = open_store(str(tmp_path)).lean()
    frame = pl.DataFrame({
        "zone": pl.Series(["EU", "WORLD", None], dtype=pl.Categorical()),
        "band": pl.Series(["peak", "offpeak", "peak"], dtype=pl.Enum(["peak", "offpeak"])),
        "held": pl.Series([timedelta(seconds=5), None, timedelta(0)], dtype=pl.Duration("us")),
        "at": [time(8, 15), time(23, 59, 59), None],
        "n": pl.Series([1, 2, 3], dtype=pl.UInt32),
        "local": pl.Series([datetime(2026, 10, 25, 2, 30)] * 3).dt.replace_time_zone("Europe/Berlin", ambiguous="earliest"),
    })
    store.write_parquet("x.parquet", frame, compression="lz4")
    back = store.read_parquet("x.parquet")
    assert back.schema == frame.schema
    assert back.cast({"zone": pl.String}).equals(frame.cast({"zone": pl.String}))


def test_sub_store_stays_lean(tmp_path):
    sub = open_store(str(tmp_path)).lean(plain=["record_id"]).sub("a")
    assert sub.lean_parquet and sub.plain_columns == {"record_id"} and sub.uri == str(tmp_path / "a")
    assert not open_store(str(tmp_path)).sub("a").lean_parquet
