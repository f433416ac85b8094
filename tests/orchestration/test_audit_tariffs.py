"""Audit reruns bill with the tariff files billing used, which may differ from the ones rating used."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.audit import AuditError, audit_rerun
from pipelines.billing.cycle import bill_cycle
from pipelines.common.partitions import published_manifests, read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import generate, upload_landing
from pipelines.mediation.pipeline import mediate
from pipelines.rating.catalogue import catalogue_version
from pipelines.rating.stage import rate_period

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-10"


def _raise_vat(tariffs: Path) -> None:
    """A billing-only change: every tax rate up by 2 points (rating's catalogue version stays the same)."""
    rules = pl.read_csv(tariffs / "tax_rules.csv", infer_schema=False)
    rules.with_columns((pl.col("rate_percent").cast(pl.Decimal(10, 4)) + 2).cast(pl.String)).write_csv(
        tariffs / "tax_rules.csv")


@pytest.fixture
def rated_then_tariffs_changed(tmp_path: Path) -> tuple[Settings, Path]:
    tariffs = tmp_path / "tariffs"
    shutil.copytree(PROJECT_ROOT / "tariffs", tariffs)
    settings = Settings(landing_uri=str(tmp_path / "landing"), lake_uri=str(tmp_path / "lake"),
                        output_dir=str(tmp_path / "out"), warehouse_path=str(tmp_path / "wh.duckdb"),
                        tariffs_dir=str(tariffs))
    data = generate(tmp_path / "gen", subscribers=20, period=PERIOD, seed=7, faults=False, per_subscriber=20)
    upload_landing(data, settings)
    import_customers(settings, data.accounts_csv.read_bytes(), data.subscriptions_csv.read_bytes())
    mediate(settings)
    rate_period(settings, PERIOD)  # archives the folder as it is now, under the rating version
    before = catalogue_version(tariffs)
    _raise_vat(tariffs)
    assert catalogue_version(tariffs) == before, "the change must not touch rating's tables"
    return settings, tariffs


def test_audit_bills_with_the_files_billing_used(rated_then_tariffs_changed) -> None:
    settings, tariffs = rated_then_tariffs_changed
    bill_cycle(settings, PERIOD, documents=False)  # bills with the raised VAT
    lake = open_store(settings.lake_uri)
    version = published_manifests(lake, "invoices", {"period": PERIOD})[0].catalogue_version
    assert lake.exists(f"catalogue_snapshots/billing/version={version}/_manifest.json")
    shutil.rmtree(tariffs)
    shutil.copytree(PROJECT_ROOT / "tariffs", tariffs)  # the live folder moves on again
    result = audit_rerun(settings, PERIOD)
    assert result.differences == 0, result.summary()
    assert read_published(lake, "invoices", {"period": PERIOD})["tax_total"].sum() > 0


def test_billing_files_never_archived_are_a_clear_error(rated_then_tariffs_changed) -> None:
    """Invoices billed with files that no archive holds (and the live folder no longer has) cannot be
    audited: a clear refusal, not a report full of false differences."""
    settings, tariffs = rated_then_tariffs_changed
    bill_cycle(settings, PERIOD, documents=False)
    lake = open_store(settings.lake_uri)
    for key in lake.list("catalogue_snapshots/billing/"):
        lake.delete(key)
    shutil.rmtree(tariffs)
    shutil.copytree(PROJECT_ROOT / "tariffs", tariffs)
    with pytest.raises(AuditError, match="billing catalogue version .* is not archived"):
        audit_rerun(settings, PERIOD)
