"""The rating stage against a real lake (local folder and moto S3): publish, conserve, reproduce, rerate."""

from __future__ import annotations

import argparse
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.common.partitions import published_manifests, read_published, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.rating import cli
from pipelines.rating.catalogue import load_catalogue
from pipelines.rating.explain import explain_record
from pipelines.rating.rerate import rerate_period, simulate_period
from pipelines.rating.stage import rate_frames, rate_period
from rating.generate import random_usage
from rating.helpers import (
    DEFAULT_ACCOUNTS,
    PERIOD,
    TARIFFS,
    accounts_frame,
    publish_usage,
    usage_frame,
    usage_row,
)


def _publish_accounts(settings: Settings) -> None:
    write_partition(open_store(settings.lake_uri, settings.s3), "customers/accounts", {}, "acc1",
                    accounts_frame(*DEFAULT_ACCOUNTS))


def _usage() -> pl.DataFrame:
    rows = random_usage(400, seed=11)
    rows += [usage_row("sep", "2026-09-30 21:59:59", 60, other_party="4930123456"),   # Sept 30 23:59:59 local
             usage_row("nov", "2026-10-31 23:00:00", 60, other_party="4930123456"),   # Nov 1 00:00 local
             usage_row("golden", "2026-10-05 17:59:30", 125, other_party="4412345678", plan_id="P_BIZ",
                       account_id="ACC2")]
    return usage_frame(rows)


def _run(args: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(args)
    return ns.func(ns, settings)


def test_rate_period_publishes_conserves_and_reproduces(local_settings: Settings) -> None:
    usage = _usage()
    publish_usage(local_settings, usage)
    _publish_accounts(local_settings)
    first = rate_period(local_settings, PERIOD)
    lake = open_store(local_settings.lake_uri)
    rated = read_published(lake, "rated", {"period": PERIOD})
    suspense = read_published(lake, "rating_suspense", {"period": PERIOD})
    settlement = read_published(lake, "settlement_entries", {"period": PERIOD})
    # conservation: usage in the period = rated + suspense (the 2 out-of-period rows are not in it)
    in_period = usage.height - 2
    assert first.usage_in == in_period == rated.height + suspense.height
    assert set(rated["record_id"]) | set(suspense["record_id"]) == set(usage["record_id"]) - {"sep", "nov"}
    assert not set(rated["record_id"]) & set(suspense["record_id"])
    assert rated["record_id"].is_sorted() and suspense.height > 0 and settlement.height > 0
    assert rated.filter(pl.col("record_id") == "golden")["charge"].item() == Decimal("0.399")
    assert set(rated["payment_type"]) == {"postpaid"} and set(rated["tariff_version"]) == {first.catalogue_version}
    manifest = published_manifests(lake, "rated", {"period": PERIOD})[0]
    assert manifest.catalogue_version == first.catalogue_version and manifest.rows == rated.height
    _check_warehouse_views(local_settings, rated)
    before = {k: lake.read_bytes(k) for k in lake.list("rated/") + lake.list("settlement_entries/")}
    second = rate_period(local_settings, PERIOD)
    assert second.run_id == first.run_id
    assert {k: lake.read_bytes(k) for k in lake.list("rated/") + lake.list("settlement_entries/")} == before


def _check_warehouse_views(settings: Settings, rated: pl.DataFrame) -> None:
    import duckdb

    from pipelines.warehouse import build_warehouse

    path, skipped = build_warehouse(settings)
    assert not [s for s in skipped if s.startswith("20_rating")]
    con = duckdb.connect(path, read_only=True)
    try:
        total, records = con.execute("SELECT sum(charge), sum(records) FROM rating_revenue").fetchone()
        assert (total, records) == (rated["charge"].sum(), rated.height)
        for view in ("rating_allowance_use", "rating_by_rate", "rating_suspense_summary",
                     "rating_settlement_by_partner", "rating_record_margin"):
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] > 0, view
    finally:
        con.close()


def test_rate_period_on_s3(s3_store_settings: Settings) -> None:
    publish_usage(s3_store_settings, _usage())
    result = rate_period(s3_store_settings, PERIOD, accounts=accounts_frame(*DEFAULT_ACCOUNTS))
    lake = open_store(s3_store_settings.lake_uri, s3_store_settings.s3)
    assert read_published(lake, "rated", {"period": PERIOD}).height == result.rated
    assert result.usage_in == result.rated + result.suspense


def test_old_period_rates_with_the_tariffs_valid_then(tmp_path: Path) -> None:
    draft = tmp_path / "tariffs"
    shutil.copytree(TARIFFS, draft)
    rates = (draft / "rates.csv").read_text().replace(
        "V_FIXED_OFFPEAK,EUR,0,0.03,60,60,60,4,half_up,4,,German fixed off-peak 0.03/min per started minute,2024-01-01,",
        "V_FIXED_OFFPEAK,EUR,0,0.03,60,60,60,4,half_up,4,,German fixed off-peak,2024-01-01,2026-11-01\n"
        "V_FIXED_OFFPEAK,EUR,0,0.02,60,60,60,4,half_up,4,,German fixed off-peak cheaper,2026-11-01,")
    (draft / "rates.csv").write_text(rates)
    cat = load_catalogue(draft)
    rows = [usage_row("oct", "2026-10-06 20:00:00", 60, other_party="4930123456"),
            usage_row("nov", "2026-11-03 20:00:00", 60, other_party="4930123456")]
    accounts = accounts_frame(("ACC1", None))
    _, october = rate_frames(cat, usage_frame(rows), accounts, "2026-10", apply_allowances=False)
    _, november = rate_frames(cat, usage_frame(rows), accounts, "2026-11", apply_allowances=False)
    assert october.rated["record_id"].to_list() == ["oct"] and october.rated["charge"].item() == Decimal("0.03")
    assert november.rated["record_id"].to_list() == ["nov"] and november.rated["charge"].item() == Decimal("0.02")


def test_cli_rate_explain_rerate_and_simulate(local_settings: Settings, tmp_path: Path, capsys) -> None:
    publish_usage(local_settings, _usage())
    _publish_accounts(local_settings)
    draft = tmp_path / "draft"
    shutil.copytree(TARIFFS, draft)
    settings = local_settings.with_(tariffs_dir=str(draft))
    assert _run(["catalogue", "validate", "--dir", str(draft)], settings) == 0
    assert _run(["rate", "--period", PERIOD], settings) == 0
    assert "usage records ->" in capsys.readouterr().out

    assert _run(["explain", "golden", "--period", PERIOD], settings) == 0
    text = capsys.readouterr().out
    assert "plan P_BIZ" in text and "INTL_UK" in text and "split" in text and "V_INTL_EU" in text
    assert "charge 0.399 EUR" in text
    assert _run(["explain", "no-such-record"], settings) == 1
    bad = [r for r in random_usage(400, seed=11) if r["plan_id"] == "P_GHOST"][0]["record_id"]
    assert explain_record(settings, bad, PERIOD).startswith(f"Record {bad} was not charged")

    # a tariff correction: calls to the UK and France become 0.15/min
    (draft / "rates.csv").write_text((draft / "rates.csv").read_text().replace(
        "V_INTL_EU,EUR,0,0.19,", "V_INTL_EU,EUR,0,0.15,"))
    lake = open_store(settings.lake_uri)
    old_run = published_manifests(lake, "rated", {"period": PERIOD})[0].run_id
    report = rerate_period(settings, PERIOD)
    assert report.old_run == old_run != report.new_run
    assert published_manifests(lake, "rated", {"period": PERIOD})[0].run_id == report.new_run
    assert any(k.startswith(f"rated/period={PERIOD}/run={old_run}/") for k in lake.list("rated/"))  # old kept
    changes = read_published(lake, "rating_changes", {"period": PERIOD})
    assert report.records_changed == changes.height > 0 and report.new_total < report.old_total
    golden = changes.filter(pl.col("record_id") == "golden").row(0, named=True)
    assert (golden["old_charge"], golden["new_charge"]) == (Decimal("0.399"), Decimal("0.315"))
    assert set(changes["old_rate_id"]) == {"V_INTL_EU"}
    assert report.accounts_changed == changes["account_id"].n_unique()

    (draft / "rates.csv").write_text((draft / "rates.csv").read_text().replace(
        "S_STD,EUR,0,0.09,", "S_STD,EUR,0,0.19,"))
    sim = simulate_period(settings.with_(tariffs_dir=str(TARIFFS)), PERIOD, draft)
    sms = sim.by_plan_service.filter(pl.col("service") == "sms")
    assert (sms["delta"] > 0).any() and "total" in sim.text()
    voice_delta = sim.by_plan_service.filter(pl.col("service") == "voice")["delta"].sum()
    assert voice_delta == report.new_total - report.old_total < 0
    assert _run(["simulate", "--period", PERIOD, "--catalogue", str(draft)], settings) == 0


@pytest.mark.parametrize("period", ["2026-10"])
def test_empty_period_publishes_empty_partitions(local_settings: Settings, period: str) -> None:
    result = rate_period(local_settings, period, accounts=accounts_frame(("ACC1", None)))
    assert (result.usage_in, result.rated, result.suspense) == (0, 0, 0)
    assert read_published(open_store(local_settings.lake_uri), "rated", {"period": period}).height == 0


def test_rate_period_in_small_chunks_writes_one_part_per_chunk_with_the_same_records(tmp_path: Path) -> None:
    """Streaming path: usage bucketed by allowance group, one part file per chunk, same rows as one chunk,
    and a rerun rewrites the same bytes."""
    usage = _usage()
    results, rated = {}, {}
    for name, chunk_rows in (("whole", 10**9), ("chunked", 60)):
        settings = Settings(lake_uri=str(tmp_path / name / "lake"), tariffs_dir=str(TARIFFS))
        publish_usage(settings, usage)
        results[name] = rate_period(settings, PERIOD, accounts=accounts_frame(*DEFAULT_ACCOUNTS),
                                    chunk_rows=chunk_rows)
        lake = open_store(settings.lake_uri)
        rated[name] = {ds: read_published(lake, ds, {"period": PERIOD})
                       for ds in ("rated", "rating_suspense", "settlement_entries")}
        if name == "chunked":
            manifest = published_manifests(lake, "rated", {"period": PERIOD})[0]
            assert len(manifest.files) > 1 and manifest.rows == results[name].rated
            assert all(lake.read_parquet(f["key"])["record_id"].is_sorted() for f in manifest.files)
            before = {k: lake.read_bytes(k) for k in lake.list("rated/") + lake.list("settlement_entries/")}
            rate_period(settings, PERIOD, accounts=accounts_frame(*DEFAULT_ACCOUNTS), chunk_rows=chunk_rows)
            assert {k: lake.read_bytes(k) for k in lake.list("rated/") + lake.list("settlement_entries/")} == before
    whole, chunked = results["whole"], results["chunked"]
    assert (whole.usage_in, whole.rated, whole.suspense, whole.settlement, whole.charge_total,
            whole.suspense_by_reason) == (chunked.usage_in, chunked.rated, chunked.suspense, chunked.settlement,
                                          chunked.charge_total, chunked.suspense_by_reason)
    for ds, frame in rated["whole"].items():
        keys = ["record_id", "partner_type", "partner_id"] if ds == "settlement_entries" else ["record_id"]
        assert frame.sort(keys).equals(rated["chunked"][ds].sort(keys)), ds


def test_published_parts_have_the_contract_types_and_equal_the_in_memory_engine(tmp_path: Path) -> None:
    """The lake parts (computed by DuckDB, sorted and written by Arrow) read back with the contract types and
    the same rows as ``rate_frames`` (DuckDB -> Polars), for several chunks; each part is sorted."""
    usage = _usage()
    settings = Settings(lake_uri=str(tmp_path / "lake"), tariffs_dir=str(TARIFFS))
    publish_usage(settings, usage)
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    result = rate_period(settings, PERIOD, accounts=accounts, chunk_rows=90)
    _, memory = rate_frames(load_catalogue(TARIFFS), usage, accounts, PERIOD)
    lake = open_store(settings.lake_uri)
    for ds, frame in (("rated", memory.rated), ("rating_suspense", memory.suspense),
                      ("settlement_entries", memory.settlement)):
        manifest = published_manifests(lake, ds, {"period": PERIOD})[0]
        parts = [lake.read_parquet(f["key"]) for f in manifest.files]
        keys = ["record_id", "partner_type", "partner_id"] if ds == "settlement_entries" else ["record_id"]
        assert all(p.select(keys).equals(p.select(keys).sort(keys)) for p in parts), ds
        published = pl.concat(parts).sort(keys)
        assert published.schema == frame.schema, ds
        assert published.equals(frame), ds
    assert result.rated == memory.rated.height and result.charge_total == memory.rated["charge"].sum()
    assert result.suspense_by_reason == dict(sorted(
        memory.suspense.group_by("reason_code").len().iter_rows()))
