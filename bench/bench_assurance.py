"""Benchmark: revenue-assurance run and settlement statements over a synthetic month (contract shapes).

Writes ``usage``/``rated``/``file_manifest``/``settlement_entries``/invoices to a temporary local lake
with ``write_partition`` and times ``run_assurance`` (controls, KPIs, anomaly model, no GE/report)
and ``run_settlement`` (no PDFs). ``--scale 1`` = 1,000,000 usage records.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, parse_scale, peak_rss_mb, timed  # noqa: E402
from pipelines.common.partitions import write_partition  # noqa: E402
from pipelines.common.settings import Settings  # noqa: E402
from pipelines.common.storage import open_store  # noqa: E402
from pipelines.mediation.pipeline import MANIFEST_SCHEMA  # noqa: E402
from schemas.contracts import RATED_SCHEMA, SETTLEMENT_ENTRY_SCHEMA, USAGE_SCHEMA  # noqa: E402

PERIOD = "2026-10"
SOURCES = ("msc-east", "msc-west", "smsc", "pgw-core")


def synthetic_usage(n: int) -> pl.DataFrame:
    start = datetime(2026, 9, 30, 22, tzinfo=UTC)
    i = pl.int_range(0, n, eager=True)
    frame = pl.DataFrame({"i": i}).with_columns(
        pl.format("R{}", "i").alias("record_id"),
        pl.lit(None, pl.String).alias("dedup_key"),
        pl.col("i").mod(4).replace_strict(dict(enumerate(SOURCES))).alias("source"),
        (pl.lit(start) + pl.duration(seconds=(pl.col("i") * 2_678_399 // n))).alias("start_time"),
    ).with_columns(
        pl.format("{}/{}_{}.csv", "source", "source", pl.col("start_time").dt.strftime("%Y%m%d")).alias("source_file"),
        pl.col("source").replace_strict({"msc-east": "voice", "msc-west": "voice", "smsc": "sms",
                                         "pgw-core": "data"}).alias("service"),
        pl.format("S{}", pl.col("i").mod(5000)).alias("subscription_id"),
        pl.format("A{}", pl.col("i").mod(5000)).alias("account_id"),
        (pl.col("i").mod(300) + 1).alias("quantity"),
        pl.col("start_time").dt.date().alias("usage_date"),
    )
    return frame.with_columns([pl.lit(None).cast(t).alias(c) for c, t in USAGE_SCHEMA.items()
                               if c not in frame.columns]).select(USAGE_SCHEMA.keys()).cast(USAGE_SCHEMA)


def build_lake(settings: Settings, n: int) -> None:
    lake = open_store(settings.lake_uri)
    usage = synthetic_usage(n)
    for (day,), part in usage.partition_by("usage_date", as_dict=True, maintain_order=True).items():
        write_partition(lake, "usage", {"usage_date": day.isoformat()}, "bench", part)
    rated = usage.select(
        "record_id", "account_id", "subscription_id", pl.lit("P_BASIC").alias("plan_id"),
        pl.lit("postpaid").alias("payment_type"), "service", "start_time", "usage_date",
        pl.lit(PERIOD).alias("bill_period"), "quantity", pl.lit(0).alias("quantity_included"),
        pl.col("quantity").alias("quantity_charged"),
        (pl.col("quantity").cast(pl.Decimal(38, 9)) * pl.lit(0.001).cast(pl.Decimal(38, 9))).alias("charge"),
        pl.lit("EUR").alias("currency"), pl.lit("DE").alias("destination_id"), pl.lit("peak").alias("band"),
        pl.lit("R1").alias("rate_id"), pl.lit(None, pl.String).alias("allowance_id"), pl.lit("b").alias("tariff_version"),
    ).cast(RATED_SCHEMA)
    write_partition(lake, "rated", {"period": PERIOD}, "bench", rated)
    files = (usage.group_by("source", "source_file").agg(pl.len().cast(pl.Int64).alias("records_in"),
                                                        pl.col("usage_date").min().alias("file_date"))
             .sort("source_file").with_columns(pl.int_range(1, pl.len() + 1).over("source").alias("sequence"),
                                               pl.col("source_file").alias("file_sha256"),
                                               pl.lit("processed").alias("status"),
                                               pl.col("records_in").alias("usage")))
    files = files.with_columns([pl.lit(0).alias(c) for c in ("rejected", "filtered", "suspense", "duplicate")])
    files = files.with_columns([pl.lit(None).cast(t).alias(c) for c, t in MANIFEST_SCHEMA.items()
                                if c not in files.columns]).select(MANIFEST_SCHEMA.keys()).cast(MANIFEST_SCHEMA)
    write_partition(lake, "file_manifest", {}, "bench", files)
    entries = usage.filter(pl.col("service") == "voice").select(
        "record_id", pl.format("IC_{}", pl.col("quantity").mod(3)).alias("partner_id"),
        pl.lit("interconnect").alias("partner_type"), pl.lit("payable").alias("direction"), "service",
        "start_time", "usage_date", "quantity",
        (pl.col("quantity").cast(pl.Decimal(38, 9)) * pl.lit(0.0002).cast(pl.Decimal(38, 9))).alias("amount"),
        pl.lit("EUR").alias("currency"), pl.lit("IC1").alias("rate_id"), pl.lit("peak").alias("band"),
    ).cast(SETTLEMENT_ENTRY_SCHEMA)
    write_partition(lake, "settlement_entries", {"period": PERIOD}, "bench", entries)


def main() -> int:
    scale = parse_scale()
    n = max(int(1_000_000 * scale), 10_000)
    from pipelines.assurance.run import run_assurance
    from pipelines.settlement.statements import run_settlement

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(landing_uri=f"{tmp}/landing", lake_uri=f"{tmp}/lake", warehouse_path=f"{tmp}/w.duckdb",
                            tariffs_dir=str(Path(__file__).resolve().parents[1] / "tariffs"), output_dir=f"{tmp}/out")
        build_lake(settings, n)
        seconds, run = timed(lambda: run_assurance(settings, PERIOD, data_quality=False, report=False))
        emit("assurance", "assurance run (10 controls, KPIs, anomalies)", round(seconds, 2), "s", "< 60 s at 1M records")
        emit("assurance", "usage records assured per second", int(n / seconds), "records/s")
        s_seconds, result = timed(lambda: run_settlement(settings, PERIOD, documents=False))
        emit("settlement", f"settlement statements ({result.lines} lines)", round(s_seconds, 2), "s")
        emit("assurance", "peak memory", round(peak_rss_mb(), 1), "MiB")
        emit("assurance", "findings on the synthetic month", run.findings.height, "rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
