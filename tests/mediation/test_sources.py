"""Per-source configuration: switch time zones reach the readers, quiet thresholds reach the report."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.common.partitions import read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import generate, upload_landing
from pipelines.mediation.control import quiet_sources
from pipelines.mediation.pipeline import mediate
from pipelines.mediation.readers.asterisk import write_asterisk_csv
from pipelines.mediation.readers.canonical import read_canonical_csv
from pipelines.mediation.sources import load_sources, parse_sources, source_config

ROOT = Path(__file__).resolve().parents[2]
SUBS = (
    "subscription_id,account_id,msisdn,imsi,plan_id,payment_type,valid_from,valid_to\n"
    "S1,A1,491510000001,,P_BASIC,postpaid,2026-01-01T00:00:00Z,\n"
)
ACCOUNTS = (
    "account_id,name,currency,timezone,bill_cycle_day,tax_jurisdiction,payment_terms_days,address_line1,city,"
    "postcode,country,email,phone,parent_account_id,segment,billing_entity\n"
    "A1,Anna,EUR,Europe/Berlin,1,DE,14,Hauptstr. 1,Berlin,10115,DE,a@example.com,491510000001,,consumer,TBM-DE\n"
)


def settings_in(root) -> Settings:
    return Settings(landing_uri=str(root / "landing"), lake_uri=str(root / "lake"),
                    warehouse_path=str(root / "warehouse.duckdb"), tariffs_dir=str(ROOT / "tariffs"), output_dir=str(root / "out"))


def published(settings: Settings, dataset: str) -> pl.DataFrame:
    frame = read_published(open_store(settings.lake_uri), dataset)
    assert frame is not None, dataset
    return frame


def _call(network_id: str, start: datetime) -> dict:
    return {"network_record_id": network_id, "service": "voice", "direction": "MO", "msisdn": "491510000001",
            "other_party": "4930123456", "start_time": start, "duration_s": 60, "quantity": 60,
            "call_outcome": "answered"}


def test_shipped_table_is_valid_and_msc_west_is_berlin() -> None:
    table = load_sources()
    assert table["msc-west"].switch_timezone == "Europe/Berlin"
    assert source_config("no-such-source").switch_timezone == "UTC"
    assert table["pgw-core"].max_gap_days == 4 and table["chf-prepaid"].max_gap_days == 1


@pytest.mark.parametrize("bad", ["x,Mars/Base,24,\n", "x,UTC,0,\n", "x,UTC,24,\nx,UTC,24,\n"])
def test_bad_table_rows_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="line"):
        parse_sources("source,switch_timezone,expected_max_gap_hours,description\n" + bad)


def test_asterisk_local_time_is_read_in_the_source_zone(tmp_path) -> None:
    """The same Master.csv bytes: msc-west (Berlin) gives the true UTC instants, an unconfigured source reads UTC."""
    truth = [datetime(2026, 10, 3, 8, 15, tzinfo=UTC), datetime(2026, 10, 3, 22, 30, tzinfo=UTC),
             datetime(2026, 10, 26, 9, 0, tzinfo=UTC)]     # CEST (+2), the next local day, CET (+1) after DST
    calls = pl.DataFrame([_call(f"AST{i}", t) for i, t in enumerate(truth)])
    body = write_asterisk_csv(calls, "Europe/Berlin")
    assert b'"2026-10-03 10:15:00"' in body and b'"2026-10-04 00:30:00"' in body and b'"2026-10-26 10:00:00"' in body
    settings = settings_in(tmp_path)
    import_customers(settings, ACCOUNTS.encode(), SUBS.encode())
    landing = tmp_path / "landing"
    for source in ("msc-west", "pbx-utc"):
        (landing / source).mkdir(parents=True)
        (landing / source / f"{source}_000001_20261026.csv").write_bytes(body)
    assert mediate(settings).balanced
    usage = published(settings, "usage").sort("source", "network_record_id")
    west = usage.filter(pl.col("source") == "msc-west")
    assert west["start_time"].to_list() == truth
    assert west["usage_date"].to_list() == [date(2026, 10, 3), date(2026, 10, 3), date(2026, 10, 26)]
    utc = usage.filter(pl.col("source") == "pbx-utc")["start_time"].to_list()
    assert [(u - t).total_seconds() for u, t in zip(utc, truth, strict=True)] == [7200, 7200, 3600]


def test_generated_msc_west_times_match_the_generator(tmp_path) -> None:
    """msc-west is generated as Berlin-time Asterisk CDRs, written in end order as Asterisk appends them;
    mediated start times equal the generator's UTC truth (the same seed written as plain canonical CSV).
    (Calls in the repeated autumn hour are placed by their stamps or by file order: tests/mediation_readers/
    test_dst.py; this small month has none.)"""
    gen = generate(tmp_path / "gen", 40, "2026-10", seed=5, per_subscriber=20, faults=False)
    plain = generate(tmp_path / "plain", 40, "2026-10", seed=5, per_subscriber=20, faults=False, data_format="csv")
    truth = pl.concat([read_canonical_csv("msc-west", k, (plain.landing_dir / k).read_bytes()).records
                       for k in plain.files if k.startswith("msc-west/")]).filter(pl.col("service") == "voice")
    for key in (k for k in gen.files if k.startswith("msc-west/")):
        body = (gen.landing_dir / key).read_bytes()
        ends = [line.split(b",")[11] for line in (gzip.decompress(body) if key.endswith(".gz") else body).splitlines()]
        assert ends == sorted(ends), f"{key} is not in end order"   # same day and zone: text order = time order
    settings = settings_in(tmp_path / "run")
    upload_landing(gen, settings)
    import_customers(settings, gen.accounts_csv.read_bytes(), gen.subscriptions_csv.read_bytes())
    assert mediate(settings).balanced
    got = pl.concat([published(settings, "usage"), published(settings, "mediation/suspense")], how="diagonal_relaxed")
    west = got.filter(pl.col("source") == "msc-west").select("network_record_id", pl.col("start_time").alias("got"))
    joined = truth.select("network_record_id", "start_time").join(west, on="network_record_id", how="inner")
    assert joined.height > 20
    assert (joined["got"] == joined["start_time"]).all()


def test_quiet_threshold_per_source() -> None:
    manifest = pl.DataFrame({"source": ["a", "b", "c"], "file_date": [date(2026, 11, 1)] * 3})
    quiet = quiet_sources(manifest, date(2026, 11, 4), quiet_days=2, per_source={"a": 1, "b": 4})
    assert quiet["source"].to_list() == ["a", "c"]
