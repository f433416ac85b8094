"""The storage layer behaves the same on a local folder and on S3 (moto server); money is exact."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import polars as pl
import pytest

from pipelines.common.money import MoneyError, money, round_money, round_to_currency, to_minor
from pipelines.common.partitions import published_manifests, read_published, write_partition
from pipelines.common.storage import StorageError, configure_duckdb, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "lake"))
    s3 = request.getfixturevalue("s3_settings")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/lake", s3)


def test_write_read_list(store):
    store.write_bytes("a/b/one.txt", b"1")
    store.write_bytes("a/two.txt", b"2")
    assert store.read_bytes("a/b/one.txt") == b"1"
    assert store.list("a/") == ["a/b/one.txt", "a/two.txt"]
    assert store.exists("a/two.txt") and not store.exists("a/three.txt")
    with pytest.raises(StorageError, match="cannot read"):
        store.read_bytes("missing.txt")


def test_partition_commit_and_publish(store):
    frame = pl.DataFrame({"x": [1, 2, 3]})
    m1 = write_partition(store, "demo", {"period": "2026-10"}, "run1", frame, inputs={"f": "abc"})
    assert m1.rows == 3
    first = store.read_bytes(m1.files[0]["key"])
    write_partition(store, "demo", {"period": "2026-10"}, "run1", frame, inputs={"f": "abc"})
    assert store.read_bytes(m1.files[0]["key"]) == first, "rewrite must give identical bytes"
    write_partition(store, "demo", {"period": "2026-10"}, "run2", pl.DataFrame({"x": [9]}), publish=False)
    assert [m.run_id for m in published_manifests(store, "demo")] == ["run1"]
    assert read_published(store, "demo")["x"].to_list() == [1, 2, 3]


def test_duckdb_reads_store(store):
    m = write_partition(store, "demo", {"p": "1"}, "r", pl.DataFrame({"x": [1, 2]}))
    con = duckdb.connect()
    if store.is_s3:
        configure_duckdb(con, store.s3)
    total = con.execute(f"select sum(x) from read_parquet('{store.duckdb_glob(m.files[0]['key'])}')").fetchone()
    assert total == (3,)


@pytest.mark.parametrize(
    ("amount", "decimals", "mode", "expected"),
    [("1.005", 2, "half_up", "1.01"), ("1.005", 2, "down", "1.00"), ("1.001", 2, "up", "1.01"),
     ("-1.005", 2, "half_up", "-1.01"), ("2.5", 0, "half_even", "2")],
)
def test_rounding(amount, decimals, mode, expected):
    assert round_money(money(amount), decimals, mode) == Decimal(expected)


def test_money_refuses_float_and_minor_units():
    with pytest.raises(MoneyError):
        money(0.1)
    assert to_minor(round_to_currency(money("12.345"), "EUR"), "EUR") == 1235
    with pytest.raises(MoneyError, match="unknown currency"):
        round_to_currency(money("1"), "XXX")
