"""Charging records: deterministic files, crash-safe flush, S3 landing, catalogue pricing equal to batch
quote(), subscribers from the customers dataset, and mediation reading the records back."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from chf_helpers import PREPAID, RATES, START, SUBSCRIPTIONS_CSV, run_sessions

from charging.engine import ChargingEngine
from charging.pricing import CataloguePricer, TablePricer
from charging.records import RECORD_COLUMNS, cut_files, flush, render_csv, write_files
from charging.server import ManualClock, prepaid_subscribers_from_csv, prepaid_subscribers_from_lake
from charging.store import Store
from pipelines.common.partitions import read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import CANONICAL_COLUMNS

MB = 1_000_000
ACCOUNTS_CSV = """account_id,name,currency,timezone,bill_cycle_day,tax_jurisdiction,payment_terms_days,address_line1,city,postcode,country,email,phone,parent_account_id,segment,billing_entity
A1,Anna Prepaid,EUR,Europe/Berlin,1,DE,14,Hauptstr. 1,Berlin,10115,DE,anna@example.com,491510000001,,consumer,TBM-DE
A2,Ben Prepaid,EUR,Europe/Berlin,1,DE,14,Hauptstr. 2,Berlin,10115,DE,ben@example.com,491510000002,,consumer,TBM-DE
A9,Carla Postpaid,EUR,Europe/Berlin,1,DE,14,Hauptstr. 9,Berlin,10115,DE,carla@example.com,491510000009,,consumer,TBM-DE
"""


def table_engine(db: Path, csv_path: Path) -> ChargingEngine:
    store = Store(db)
    store.upsert_subscribers(prepaid_subscribers_from_csv(csv_path))
    return ChargingEngine(store, TablePricer(RATES), ManualClock(START), validity_s=60)


def landed(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.csv"))}


def test_records_are_deterministic_and_crash_safe(tmp_path: Path, subscriptions_csv: Path) -> None:
    first, second = table_engine(tmp_path / "a.sqlite", subscriptions_csv), table_engine(tmp_path / "b.sqlite",
                                                                                          subscriptions_csv)
    run_sessions(first)
    run_sessions(second)
    flush(first.store, open_store(str(tmp_path / "landing-a")), batch_rows=4)
    # second: crash after the sequence numbers were committed, before any file was written
    cut = cut_files(second.store, batch_rows=4)
    second.store.close()
    reopened = Store(tmp_path / "b.sqlite")
    assert write_files(reopened, open_store(str(tmp_path / "landing-b"))) == cut
    assert write_files(reopened, open_store(str(tmp_path / "landing-b"))) == []  # nothing twice
    a, b = landed(tmp_path / "landing-a"), landed(tmp_path / "landing-b")
    assert a == b  # same requests, same bytes
    assert list(a) == [f"chf-prepaid/chf-prepaid_{s:06d}_20261005.csv" for s in (1, 2, 3)]
    rows = [r for data in a.values() for r in csv.DictReader(io.StringIO(data.decode()))]
    assert len(rows) == 10  # one per closed session (5 data + 5 voice), conservation
    assert tuple(rows[0]) == RECORD_COLUMNS == CANONICAL_COLUMNS + ("charged_amount",)
    debits = -sum(reopened.ledger_totals(f"{PREPAID}-money").get("debit", 0) for _ in [0])
    assert sum(Decimal(r["charged_amount"]) for r in rows) * 10**9 == debits
    voice = [r for r in rows if r["service"] == "voice"]
    assert [r["duration_s"] for r in voice] == ["61", "62", "63", "64", "65"]
    assert all(r["other_party"] == "4930123456" and r["rating_group"] == "" for r in voice)
    data = [r for r in rows if r["service"] == "data"]
    assert data[0]["quantity"] == "2200000" and data[0]["charged_amount"] == "0.030000000"
    assert data[0]["snssai"] == "1-000001" and data[0]["qos_class"] == "9" and data[0]["apn"] == "internet"


def test_records_land_on_s3(tmp_path: Path, subscriptions_csv: Path, s3_store_settings: Settings) -> None:
    engine = table_engine(tmp_path / "chf.sqlite", subscriptions_csv)
    run_sessions(engine, sessions=2)
    landing = open_store(s3_store_settings.landing_uri, s3_store_settings.s3)
    keys = flush(engine.store, landing)
    assert keys == ["chf-prepaid/chf-prepaid_000001_20261005.csv"]
    assert landing.list("chf-prepaid/") == keys
    assert landing.read_bytes(keys[0]).decode().count("\n") == 1 + 4


@pytest.fixture
def customers(local_settings: Settings) -> Settings:
    from pipelines.customers import import_customers

    import_customers(local_settings, ACCOUNTS_CSV.encode(), SUBSCRIPTIONS_CSV.encode())
    return local_settings


def test_subscribers_come_from_the_customers_dataset(customers: Settings) -> None:
    subs = prepaid_subscribers_from_lake(customers)
    assert sorted(s.msisdn for s in subs) == ["491510000001", "491510000002"]  # the postpaid one is not ours


def test_catalogue_prices_equal_batch_quote(tmp_path: Path, customers: Settings) -> None:
    from pipelines.rating.catalogue import load_catalogue
    from pipelines.rating.quote import quote

    store = Store(tmp_path / "chf.sqlite")
    store.upsert_subscribers(prepaid_subscribers_from_lake(customers))
    engine = ChargingEngine(store, CataloguePricer(customers.tariffs_dir), ManualClock(START))
    run_sessions(engine, sessions=1)
    rows = [r for d in landed_after_flush(engine, tmp_path).values() for r in csv.DictReader(io.StringIO(d.decode()))]
    catalogue = load_catalogue(customers.tariffs_dir)
    by_service = {r["service"]: r for r in rows}
    expected_voice = quote(catalogue, "PRE_PAYG", "voice", START, 61, other_party="4930123456").charge
    expected_data = quote(catalogue, "PRE_PAYG", "data", START, 2_200_000, rating_group=10, snssai="1-000001",
                          qos_class=9).charge
    assert Decimal(by_service["voice"]["charged_amount"]) == expected_voice > 0
    assert Decimal(by_service["data"]["charged_amount"]) == expected_data > 0


def landed_after_flush(engine: ChargingEngine, tmp_path: Path) -> dict[str, bytes]:
    flush(engine.store, open_store(str(tmp_path / "landing")))
    return landed(tmp_path / "landing")


def test_mediation_reads_the_records_back(tmp_path: Path, customers: Settings) -> None:
    from pipelines.mediation.pipeline import mediate

    store = Store(tmp_path / "chf.sqlite")
    store.upsert_subscribers(prepaid_subscribers_from_lake(customers))
    engine = ChargingEngine(store, CataloguePricer(customers.tariffs_dir), ManualClock(START))
    run_sessions(engine, sessions=3)
    keys = flush(store, open_store(customers.landing_uri))
    result = mediate(customers)
    assert result.balanced
    quarantined = read_published(open_store(customers.lake_uri), "mediation/quarantine")
    assert quarantined is None, quarantined.select("source_file", "reason_code", "message").to_dicts()
    usage = read_published(open_store(customers.lake_uri), "usage")
    assert usage is not None
    prepaid = usage.filter(pl.col("source") == "chf-prepaid")
    assert prepaid.height == 6 and set(prepaid["source_file"]) == set(keys)
    assert set(prepaid["subscription_id"]) == {"S1"} and set(prepaid["payment_type"]) == {"prepaid"}
    debits = -store.ledger_totals(f"{PREPAID}-money")["debit"]
    assert "charged_amount" in prepaid.columns, "mediation must carry charged_amount into usage for assurance"
    assert prepaid["charged_amount"].cast(pl.Decimal(38, 9)).sum() * 10**9 == debits


def test_record_rows_are_valid_canonical_usage(tmp_path: Path, customers: Settings) -> None:
    """The rows themselves mediate cleanly (guided, no rejects) once only the canonical columns are kept."""
    from pipelines.mediation.pipeline import mediate

    store = Store(tmp_path / "chf.sqlite")
    store.upsert_subscribers(prepaid_subscribers_from_lake(customers))
    engine = ChargingEngine(store, CataloguePricer(customers.tariffs_dir), ManualClock(START))
    run_sessions(engine, sessions=3)
    [key] = flush(store, open_store(str(tmp_path / "records")))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "records" / key).read_text())))
    open_store(customers.landing_uri).write_bytes(key, render_csv(rows, CANONICAL_COLUMNS))
    assert mediate(customers).balanced
    lake = open_store(customers.lake_uri)
    assert read_published(lake, "mediation/quarantine") is None and read_published(lake, "mediation/rejects") is None
    usage = read_published(lake, "usage").filter(pl.col("source") == "chf-prepaid").sort("record_offset")
    assert usage.height == 6 and set(usage["subscription_id"]) == {"S1"}
    assert usage["quantity"].to_list() == [int(r["quantity"]) for r in rows]
    assert usage["network_record_id"].to_list() == [r["network_record_id"] for r in rows]
