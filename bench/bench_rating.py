"""Rating benchmark: 10M usage records (x --scale) against a catalogue with 100,000 extra prefixes.

Prints JSON rows (bench/run.py): set-based engine records/s, peak RSS, two per-record Python baselines and
the ratios (``speedup_vs_per_record_python``: the reference rater doing the same work, allowance pools, tiers
and settlement included, on a >= 10,000-record sample; ``speedup_vs_quote_only``: ``quote()`` alone, less
work), and the time to load a catalogue with 200,000 prefixes.
Data is generated deterministically in DuckDB (hash of the row number); generation is not timed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import emit, parse_scale, peak_rss_mb, timed  # noqa: E402
from pipelines.common.partitions import write_partition  # noqa: E402
from pipelines.common.settings import Settings  # noqa: E402
from pipelines.common.storage import open_store  # noqa: E402
from pipelines.rating.catalogue import Catalogue, load_catalogue  # noqa: E402
from pipelines.rating.quote import RatingError, quote  # noqa: E402
from pipelines.rating.reference import reference_rate  # noqa: E402
from pipelines.rating.stage import rate_frames, rate_period  # noqa: E402
from schemas.contracts import ACCOUNT_SCHEMA, USAGE_SCHEMA  # noqa: E402

AREA = "rating"
CLASSES = ("offnet_mobile", "fixed", "international", "premium")
ROOTS = ("4930", "4940", "4989", "4916", "4917", "44", "33", "1", "91", "90", "86", "7", "55", "61")
N_ACCOUNTS = 200_000


def catalogue_with_prefixes(out: Path, n_prefixes: int, seed: int = 1) -> Path:
    """The shipped catalogue plus ``n_prefixes`` distinct extra destination prefixes (5-9 digits)."""
    shutil.copytree(ROOT / "tariffs", out)
    rng = random.Random(seed)
    existing = {line.split(",")[0] for line in (out / "destinations.csv").read_text().splitlines()[1:]}
    seen: set[str] = set()
    with (out / "destinations.csv").open("a") as fh:
        while len(seen) < n_prefixes:
            root = rng.choice(ROOTS)
            prefix = root + str(rng.randrange(10 ** 7)).zfill(7)[: rng.randrange(5, 10) - len(root)]
            if len(prefix) < 5 or prefix in seen or prefix in existing or prefix.startswith("49151") or prefix.startswith("49900"):
                continue
            seen.add(prefix)
            cls = rng.choice(CLASSES if not prefix.startswith("49") else CLASSES[:2])
            fh.write(f"{prefix},BENCH_{len(seen):06d},{cls},bench destination,2024-01-01,\n")
    return out


USAGE_SQL = """
WITH g AS (SELECT i, CAST(hash(i, 1) % 1000000007 AS BIGINT) AS h1, CAST(hash(i, 2) % 1000000007 AS BIGINT) AS h2,
                  CAST(hash(i, 3) % 1000000007 AS BIGINT) AS h3 FROM range({n}) t(i))
SELECT
    'b' || lpad(CAST(i AS VARCHAR), 10, '0') AS record_id, 'b' || CAST(i AS VARCHAR) AS dedup_key,
    'bench' AS source, 'bench.csv' AS source_file, 'x' AS file_sha256, i AS record_offset,
    NULL AS network_record_id,
    ['voice', 'voice', 'voice', 'voice', 'voice', 'data', 'data', 'sms', 'sms', 'event'][h1 % 10 + 1] AS service,
    CASE WHEN h2 % 10 = 0 THEN 'MT' ELSE 'MO' END AS direction,
    '49151' || lpad(CAST(i % {accounts} AS VARCHAR), 7, '0') AS msisdn, NULL AS imsi,
    ['4915', '4916', '4917', '4930', '4940', '4989', '44', '33', '1', '91', '90', '86', '49900', '7'][h2 % 14 + 1]
        || lpad(CAST(h3 % 100000000 AS VARCHAR), 8, '0') AS other_party,
    TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_microseconds(CAST(h3 % (30 * 86400) AS BIGINT) * 1000000)
        AS start_time,
    CAST(h2 % 600 AS BIGINT) AS duration_s,
    CAST(CASE h1 % 10 WHEN 5 THEN h3 % 50000000 WHEN 6 THEN h3 % 5000000 WHEN 7 THEN 1 WHEN 8 THEN 1
         WHEN 9 THEN 1 + h2 % 3 ELSE h2 % 600 END AS BIGINT) AS quantity,
    NULL AS uplink_bytes, NULL AS downlink_bytes, 'answered' AS call_outcome,
    CAST(CASE WHEN h1 % 10 IN (5, 6) THEN [10, 10, 10, 20, 30][h2 % 5 + 1] END AS INTEGER) AS rating_group,
    CASE WHEN h1 % 10 IN (5, 6) THEN [NULL, NULL, '1-000001', '2-000002', '3-000003'][h3 % 5 + 1] END AS snssai,
    CAST(CASE WHEN h1 % 10 IN (5, 6) THEN [9, 9, 80][h2 % 3 + 1] END AS INTEGER) AS qos_class,
    NULL AS apn,
    CASE WHEN h2 % 50 < 45 THEN NULL ELSE ['FRAF1', 'ESPTE', 'GBRCN', 'USAAT', 'TURTC'][h2 % 5 + 1] END
        AS visited_network,
    NULL AS charging_id, NULL AS partial_seq,
    CAST(TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_microseconds(CAST(h3 % (30 * 86400) AS BIGINT) * 1000000)
         AS DATE) AS usage_date,
    'S' || CAST(i % {accounts} AS VARCHAR) AS subscription_id,
    'A' || CAST(i % {accounts} AS VARCHAR) AS account_id,
    ['P_BASIC', 'P_UNLTD', 'P_FAMILY', 'P_BIZ', 'PRE_PAYG', 'PRE_BUNDLE'][(i % {accounts}) % 6 + 1] AS plan_id,
    CASE WHEN (i % {accounts}) % 6 >= 4 THEN 'prepaid' ELSE 'postpaid' END AS payment_type,
    CAST(NULL AS DECIMAL(38, 9)) AS charged_amount
FROM g
"""


def usage_frame(n: int) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    frame = con.sql(USAGE_SQL.format(n=n, accounts=N_ACCOUNTS)).pl()
    return frame.select([pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()])


def accounts_frame() -> pl.DataFrame:
    ids = [f"A{i}" for i in range(N_ACCOUNTS)]
    return pl.DataFrame({
        "account_id": ids, "timezone": ["Europe/Berlin"] * N_ACCOUNTS, "bill_cycle_day": [1] * N_ACCOUNTS,
        "currency": ["EUR"] * N_ACCOUNTS,
        "parent_account_id": [f"G{i // 4}" if i % 6 in (2, 3) else None for i in range(N_ACCOUNTS)],
    }).with_columns([pl.lit(None).cast(t).alias(c) for c, t in ACCOUNT_SCHEMA.items()
                     if c not in ("account_id", "timezone", "bill_cycle_day", "currency", "parent_account_id")]
                    ).select([pl.col(c).cast(t) for c, t in ACCOUNT_SCHEMA.items()])


def publish_bench_usage(settings: Settings, n: int, scratch: Path) -> None:
    """Publish ``n`` generated usage records per usage_date the way mediation does (not timed).

    Generated once into Parquet by DuckDB, then one day at a time through ``write_partition``, so
    generation never holds the whole period in Python memory.
    """
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2, "preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY ({USAGE_SQL.format(n=n, accounts=N_ACCOUNTS)}) TO '{scratch}' "
                "(FORMAT parquet, PARTITION_BY (usage_date))")
    con.close()
    lake = open_store(settings.lake_uri)
    for day_dir in sorted(scratch.glob("usage_date=*")):
        day = day_dir.name.split("=")[1]
        frame = (pl.read_parquet(day_dir / "*.parquet", hive_partitioning=False)
                 .with_columns(pl.lit(day).str.to_date().alias("usage_date"))
                 .select([pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()]).sort("record_id"))
        write_partition(lake, "usage", {"usage_date": day}, f"bench{n}-{day}", frame)
        del frame


def io_floor_seconds(settings: Settings, out: Path) -> float:
    """Seconds DuckDB (2 threads) takes to read the published usage and write every record back as zstd Parquet:
    the read and write any rating run pays, with no rating at all. What is left of a 10 s budget (1M records/s)
    after this is what rating itself may cost."""
    usage = str(Path(settings.lake_uri).resolve() / "usage" / "*" / "*" / "*.parquet")
    con = duckdb.connect(config={"threads": 2, "preserve_insertion_order": False})
    try:
        secs, _ = timed(lambda: con.execute(f"COPY (SELECT * FROM read_parquet('{usage}')) TO '{out}' "
                                            "(FORMAT parquet, COMPRESSION zstd)"))
    finally:
        con.close()
    return secs


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (the machine is shared: wall time alone is noisy)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quote_only_baseline(cat: Catalogue, sample: list[dict]) -> float:
    """Records/s of ``quote()`` alone per record (no allowances, tiers, settlement): the old, unequal baseline,
    timed on the same sample as the reference rater and, like it, the median of 3 runs."""
    def run() -> int:
        for r in sample:
            with contextlib.suppress(RatingError):
                quote(cat, r["plan_id"], r["service"], r["start_time"], r["quantity"], r["other_party"],
                      r["rating_group"], r["snssai"], r["qos_class"], r["visited_network"],
                      direction=r["direction"], account_id=r["account_id"])
        return len(sample)

    quote(cat, "P_BASIC", "voice", sample[0]["start_time"], 60, "4930123")  # warm the lookup caches
    return len(sample) / sorted(timed(run)[0] for _ in range(3))[1]


SAMPLE_RECORDS = 10_000


def sample_usage(n: int) -> pl.DataFrame:
    """At least ``SAMPLE_RECORDS`` bench records (all when fewer): every record of the first accounts, so
    the sample's allowance pools, groups and tier lines are whole and as full as in the benchmark."""
    accounts = min(N_ACCOUNTS, -(-SAMPLE_RECORDS * N_ACCOUNTS // n))
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 2})
    con.execute("SET TimeZone = 'UTC'")
    frame = con.sql(f"SELECT * FROM ({USAGE_SQL.format(n=n, accounts=N_ACCOUNTS)}) "
                    f"WHERE CAST(substr(account_id, 2) AS BIGINT) < {accounts}").pl()
    con.close()
    return frame.select([pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()]).sort("record_id")


def same_work_baseline(cat: Catalogue, sample: pl.DataFrame,
                       accounts: pl.DataFrame) -> tuple[float, float, bool]:
    """Records per wall second and per CPU second of the per-record reference rater doing the engine's whole
    job (each the median of 3 runs), and whether its results equal the engine's on the same sample (a cheap
    cross-check at benchmark scale)."""
    rows = sample.to_dicts()
    reference_rate(cat, rows[:50], accounts, "2026-10")  # warm the lookup caches (100k-prefix ranges)
    runs = []
    for _ in range(3):
        cpu_before = cpu_seconds()
        secs, result = timed(lambda: reference_rate(cat, rows, accounts, "2026-10"))
        runs.append((secs, cpu_seconds() - cpu_before, result))
    secs, cpu = sorted(r[0] for r in runs)[1], sorted(r[1] for r in runs)[1]
    rated, suspense, settlement = runs[0][2]
    _, out = rate_frames(cat, sample, accounts, "2026-10")
    fields = list(rated[0]) if rated else []
    agrees = (out.rated.select(fields).to_dicts() == rated
              and out.suspense.select("record_id", "reason_code").to_dicts() == suspense
              and out.settlement.select(SETTLEMENT_FIELDS).to_dicts()
              == [{k: e[k] for k in SETTLEMENT_FIELDS} for e in settlement])
    return len(rows) / secs, len(rows) / cpu, agrees


SETTLEMENT_FIELDS = ("record_id", "partner_type", "partner_id", "amount", "rate_id", "currency", "band")


def main() -> int:
    scale = parse_scale()
    n = max(1000, int(10_000_000 * scale))
    with tempfile.TemporaryDirectory() as tmp:
        big = catalogue_with_prefixes(Path(tmp) / "t200k", 200_000, seed=2)
        secs, _ = timed(lambda: load_catalogue(big).prefix_ranges_frame("destinations"))
        emit(AREA, "load_200k_prefixes_s", round(secs, 2), "s", target="< 5")

        tariffs = catalogue_with_prefixes(Path(tmp) / "t100k", 100_000)
        cat = load_catalogue(tariffs)
        settings = Settings(lake_uri=str(Path(tmp) / "lake"), tariffs_dir=str(tariffs))
        publish_bench_usage(settings, n, Path(tmp) / "gen")
        import pyarrow.dataset  # noqa: F401 - one-off import DuckDB needs to scan frames: not rating work

        # end to end: lazy read of the published usage, chunked rating, one part file per chunk, publish
        steps: dict[str, float] = {}
        cpu_before = cpu_seconds()
        elapsed, result = timed(lambda: rate_period(settings, "2026-10", accounts=accounts_frame(), timings=steps))
        cpu = cpu_seconds() - cpu_before
        assert result.usage_in == n == result.rated + result.suspense
        rate = n / elapsed
        emit(AREA, "records", n, "records")
        emit(AREA, "rate_period_records_per_s", round(rate), "rec/s", target=">= 1000000")
        emit(AREA, "rate_period_cpu_s", round(cpu, 2), "s", target=f"wall {elapsed:.2f} s")
        emit(AREA, "rate_period_records_per_cpu_s", round(n / cpu), "rec/cpu-s")
        emit(AREA, "load_average_1m", round(os.getloadavg()[0], 2))
        emit(AREA, "rated_suspense_settlement", f"{result.rated}/{result.suspense}/{result.settlement}")
        emit(AREA, "peak_rss_mb", round(peak_rss_mb()), "MiB")
        emit(AREA, "step_seconds", json.dumps(steps, sort_keys=True), "s")
        floor = io_floor_seconds(settings, Path(tmp) / "floor.parquet")
        emit(AREA, "io_floor_read_write_s", round(floor, 2), "s",
             target="read usage + write it as Parquet, no rating (DuckDB, 2 threads)",
             ratio=f"rating = {elapsed / floor:.1f}x this")

        if n <= 2_000_000:  # the pre-streaming metric (frames in memory, no lake I/O), for comparison only
            usage = usage_frame(n)
            mem_secs, (n_mem, _) = timed(lambda: rate_frames(cat, usage, accounts_frame(), "2026-10"))
            assert n_mem == n
            emit(AREA, "rate_frames_in_memory_records_per_s", round(n / mem_secs), "rec/s")
            del usage

        accounts = accounts_frame()
        sample = sample_usage(n)
        quote_rate = quote_only_baseline(cat, sample.to_dicts())
        emit(AREA, "baseline_quote_only_records_per_s", round(quote_rate), "rec/s",
             target=f"quote() per record on the same {sample.height} records, median of 3 runs: pricing only, "
                    "less work than the engine")
        ref_rate, ref_per_cpu, agrees = same_work_baseline(cat, sample, accounts)
        emit(AREA, "baseline_reference_records_per_s", round(ref_rate), "rec/s",
             target=f"reference_rate on {sample.height} records (whole pools), median of 3 runs")
        emit(AREA, "baseline_reference_records_per_cpu_s", round(ref_per_cpu), "rec/cpu-s", target="median of 3 runs")
        emit(AREA, "speedup_vs_per_record_python_per_cpu_s", round(n / cpu / ref_per_cpu, 1), "x",
             target="CPU-second ratio: steadier on a shared machine", ratio=f"{n / cpu / ref_per_cpu:.1f}")
        emit(AREA, "reference_equals_engine_on_sample", agrees, target="True")
        emit(AREA, "speedup_vs_per_record_python", round(rate / ref_rate, 1), "x", target=">= 20",
             baseline=f"{round(ref_rate)} rec/s (reference_rate, same work)", ratio=f"{rate / ref_rate:.1f}")
        emit(AREA, "speedup_vs_quote_only", round(rate / quote_rate, 1), "x",
             baseline=f"{round(quote_rate)} rec/s (quote() only)", ratio=f"{rate / quote_rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
