"""Tiny lake with usage only: the controls whose inputs are not published must say no_data."""

from __future__ import annotations

import polars as pl
from assurance_month import build

from pipelines.common.partitions import write_partition
from pipelines.common.storage import open_store
from schemas.contracts import USAGE_SCHEMA


def write_only_usage(settings) -> None:
    rows = build(()).usage[:50]
    frame = pl.DataFrame([{k: r[k] for k in USAGE_SCHEMA} for r in rows], schema=USAGE_SCHEMA, orient="row")
    for (day,), part in frame.partition_by("usage_date", as_dict=True, maintain_order=True).items():
        write_partition(open_store(settings.lake_uri, settings.s3), "usage", {"usage_date": day.isoformat()}, "fixture", part)
