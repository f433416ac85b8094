"""The billing chain end to end through Airflow (`airflow dags test`, SQLite metadata in tmp_path):
mediation -> rating -> bill_cycle (triggered with its params form) -> assurance -> warehouse, and
audit reruns that report zero differences, or the difference a deliberate tariff change makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.audit import AuditError, audit_rerun
from pipelines.common.partitions import published_manifests, read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import generate, upload_landing
from pipelines.orchestration.airflow_env import DagRunFailed, run_dag_test

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-10"
# the tests walk one chain in order (the audit reruns need the finalised cycle): `make test` passes
# --dist loadfile, so one xdist worker runs a whole file, in file order


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("chain")
    settings = Settings(landing_uri=str(root / "landing"), lake_uri=str(root / "lake"),
                        warehouse_path=str(root / "warehouse.duckdb"), tariffs_dir=str(PROJECT_ROOT / "tariffs"),
                        output_dir=str(root / "out"))
    data = generate(root / "gen", subscribers=60, period=PERIOD, seed=5, faults=True)
    upload_landing(data, settings)
    import_customers(settings, data.accounts_csv.read_bytes(), data.subscriptions_csv.read_bytes())
    home = root / "airflow"
    run_dag_test("mediation", {}, home, settings)
    run_dag_test("rating", {"period": PERIOD}, home, settings)
    return settings, home


def test_mediation_and_rating_dags_publish_balanced_usage(chain):
    settings, _ = chain
    lake = open_store(settings.lake_uri)
    manifest = read_published(lake, "file_manifest")
    assert manifest is not None and manifest["balanced"].all()
    outcomes = manifest.select(pl.col("usage", "filtered", "rejected", "duplicate", "suspense").sum()).row(0)
    assert int(manifest["records_in"].sum()) == sum(outcomes)
    rated = published_manifests(lake, "rated", {"period": PERIOD})
    assert rated and rated[0].extra["usage_in"] == rated[0].extra["rated"] + rated[0].extra["suspense"]
    assert lake.list("catalogue_snapshots/"), "the rating DAG archives the catalogue for audits"


def test_bill_cycle_form_dry_run_then_finalise(chain):
    settings, home = chain
    lake = open_store(settings.lake_uri)
    accounts = read_published(lake, "customers/accounts")
    one = accounts.filter(pl.col("parent_account_id").is_null()).sort("account_id")["account_id"][0]
    run_dag_test("bill_cycle", {"period": PERIOD, "cycle_day": None, "accounts": one, "dry_run": True},
                 home, settings)
    assert read_published(lake, "invoices", {"period": PERIOD}) is None, "a dry run finalises nothing"
    run_dag_test("bill_cycle", {"period": PERIOD, "cycle_day": None, "accounts": "", "dry_run": False},
                 home, settings)
    invoices = read_published(lake, "invoices", {"period": PERIOD})
    assert invoices is not None and invoices.height > 0
    assert (invoices["status"] == "finalised").all()
    assert sorted(invoices["invoice_number"].to_list()) == invoices["invoice_number"].sort().to_list()
    pdfs = sorted((Path(settings.output_dir) / "invoices" / PERIOD).glob("*.pdf"))
    assert len(pdfs) == invoices.height


def test_assurance_and_warehouse_dags(chain):
    settings, home = chain
    run_dag_test("bill_cycle", {"period": PERIOD, "cycle_day": None, "accounts": "", "dry_run": False},
                 home, settings)  # rerun of a finalised cycle: a no-op, not a second invoice
    run_dag_test("assurance", {"period": PERIOD}, home, settings)
    run_dag_test("warehouse", {}, home, settings)
    con = duckdb.connect(settings.warehouse_path, read_only=True)
    try:
        invoices = con.execute("select count(*), count(distinct invoice_number) from invoices").fetchone()
        usage = con.execute("select count(*) from usage").fetchone()[0]
    finally:
        con.close()
    assert invoices[0] == invoices[1] > 0
    assert usage > 0


def test_audit_rerun_dag_reports_no_difference(chain):
    settings, home = chain
    result = run_dag_test("audit_rerun", {"period": PERIOD}, home, settings)
    assert result.state == "success"
    report = sorted((Path(settings.output_dir) / "audit").glob(f"{PERIOD}-*/audit_report.json"))
    assert report


def test_audit_rerun_reports_a_deliberate_tariff_change(chain, tmp_path):
    settings, _ = chain
    same = audit_rerun(settings, PERIOD)
    assert same.differences == 0, same.summary()
    draft = tmp_path / "tariffs"
    shutil.copytree(PROJECT_ROOT / "tariffs", draft)
    rates = pl.read_csv(draft / "rates.csv", infer_schema=False)
    price_col = next(c for c in rates.columns if c in ("price", "price_per_unit", "rate_per_unit"))
    bumped = rates.with_columns(
        pl.when(pl.col(price_col).is_not_null() & (pl.col(price_col) != ""))
        .then((pl.col(price_col).cast(pl.Decimal(38, 9)) * 2).cast(pl.String))
        .otherwise(pl.col(price_col)).alias(price_col))
    bumped.write_csv(draft / "rates.csv")
    changed = audit_rerun(settings, PERIOD, catalogue_dir=str(draft))
    diffs = {d.dataset: d for d in changed.diffs}
    assert diffs["rated"].changed > 0
    assert diffs["invoices"].changed > 0
    assert diffs["usage"].differs is False, "a tariff change does not change mediation"


def test_bad_period_is_refused_by_the_form(chain):
    settings, home = chain
    with pytest.raises(DagRunFailed, match="2026-13"):
        run_dag_test("rating", {"period": "2026-13"}, home, settings)


def test_audit_refuses_a_period_with_nothing_published(tmp_path):
    empty = Settings(landing_uri=str(tmp_path / "landing"), lake_uri=str(tmp_path / "lake"),
                     output_dir=str(tmp_path / "out"), tariffs_dir=str(PROJECT_ROOT / "tariffs"))
    with pytest.raises(AuditError, match="nothing published to audit for 2025-06"):
        audit_rerun(empty, "2025-06")


def test_audit_refuses_a_landed_file_that_changed(chain, tmp_path):
    """Raw files are never modified; if one was, the audit says which instead of silently differing."""
    settings, _ = chain
    landing = tmp_path / "landing"
    shutil.copytree(settings.landing_uri, landing)
    victim = sorted(p for p in landing.rglob("*.csv") if p.is_file())[0]
    victim.write_bytes(victim.read_bytes() + b"\n")
    with pytest.raises(AuditError, match="no longer matches the checksum"):
        audit_rerun(settings.with_(landing_uri=str(landing)), PERIOD)
