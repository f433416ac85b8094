"""A row is (source_file, record_offset, record_id): a PGW record with several service data containers gives
several usage rows at one byte offset, and dedup must keep each of them (repeated runs and duplicates alike)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from mediation.test_date_folder import SUBS, _file
from pipelines.common.storage import open_store
from pipelines.mediation.pipeline import in_usage_order, read_key_index, rebuild_date, stage_files

DAY = date(2026, 10, 2)


def _containers() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(all staged rows, the first container): two rows share the first call's offset, as one record's two
    service data containers would (their ids differ)."""
    rows = stage_files([_file("pgw-core_000001_20261002", {2: 2})], SUBS).candidates
    first = rows.head(1)
    second = first.with_columns(pl.lit("0" * 15 + "1").alias("record_id"), pl.lit(7).cast(pl.Int64).alias("quantity"))
    return in_usage_order(pl.concat([first, second, rows.slice(1)])), first


def test_a_repeated_run_keeps_every_container_row(tmp_path: Path) -> None:
    lake = open_store(str(tmp_path / "lake"))
    rows, _ = _containers()
    rebuild_date(lake, DAY, rows, "v1")
    rebuild_date(lake, DAY, rows, "v1")  # the run stopped before its file manifest: the same file again
    index, published = read_key_index(lake, DAY)
    assert published.height == index.height == 3
    assert sorted(published["record_id"]) == sorted(rows["record_id"])


def test_a_duplicate_of_one_container_leaves_the_other_in_usage(tmp_path: Path) -> None:
    lake = open_store(str(tmp_path / "lake"))
    rows, first = _containers()
    # an earlier file (smaller name) already delivered the first container's record
    earlier_file = first["source_file"][0].replace("000001_20261002", "000000_20261001")
    earlier = first.with_columns(pl.lit(earlier_file).alias("source_file"))
    rebuild_date(lake, DAY, earlier, "v1")
    rebuild_date(lake, DAY, rows, "v1")
    index, published = read_key_index(lake, DAY)
    assert index.height == 4 and published.height == 3
    kept = published.filter(pl.col("source_file") == rows["source_file"][0])
    assert sorted(kept["record_id"]) == sorted(set(rows["record_id"]) - {first["record_id"][0]})
