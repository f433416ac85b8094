"""Each revenue-assurance control finds exactly the injected leaks of a generated month, and no others."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from assurance_month import EXTRA_LEAKS, LEAKS, PERIOD, write_month

from pipelines.assurance.controls import CONTROLS
from pipelines.assurance.run import run_assurance
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store

KEY = {"C01": "source", "C02": "source_file", "C04": "source_file", "C05": "record_id", "C06": "record_id",
       "C07": "subscription_id", "C08": "subscription_id", "C09": "record_id", "C03": "source", "C10": "record_id"}


def found(run) -> dict[str, set[str]]:
    return {c.control_id: set(run.findings.filter(pl.col("control_id") == c.control_id)[KEY[c.control_id]].to_list())
            for c in CONTROLS}


def statuses(run) -> dict[str, str]:
    return dict(zip(run.results["control_id"], run.results["status"], strict=True))


def test_injected_leaks_found_exactly(local_settings):
    month = write_month(local_settings, LEAKS)
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    assert found(run) == month.expected
    assert {c for c, s in statuses(run).items() if s == "fail"} == {"C01", "C02", "C06", "C08", "C09"}
    assert run.inputs_missing == []
    kpis = dict(zip(run.kpis["kpi"], run.kpis["value"], strict=True))
    # leakage = never-billed P_BASIC line (10.00) + prepaid over-debit (0.20)
    assert kpis["leakage_value"] == Decimal("10.20")
    assert kpis["suspense_records"] == 1
    assert (kpis["in_dispute_total"], kpis["written_off_total"]) == (Decimal("12.34"), Decimal("5.00"))
    # 3 sources x 124 files x 8 records - 1 missing file + 1 duplicated file + 62 prepaid records = 3038 in
    assert kpis["duplicate_rate_pct"] == (Decimal(800) / Decimal(3038)).quantize(Decimal("0.000000001"),
                                                                                  rounding="ROUND_HALF_UP")
    assert kpis["leakage_pct"] == (Decimal("1020") / kpis["rated_revenue"]).quantize(Decimal("0.000000001"),
                                                                                     rounding="ROUND_HALF_UP")
    assert run.status == "fail"


def test_clean_month_passes_every_control(local_settings):
    write_month(local_settings, ())
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    assert run.findings.height == 0
    assert set(statuses(run).values()) == {"pass"}
    assert set(run.kpis["status"].to_list()) <= {"pass", "info"}
    assert run.status == "pass"


@pytest.mark.parametrize("leak", LEAKS + EXTRA_LEAKS)
def test_one_leak_one_control(local_settings, leak):
    month = write_month(local_settings, (leak,))
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    assert found(run) == month.expected
    failing = {c for c, s in statuses(run).items() if s == "fail"}
    assert failing == {c for c, keys in month.expected.items() if keys}
    assert len(failing) == 1


def test_c08_follows_service_dates_of_advance_billing(local_settings):
    """October is billed in advance on September's invoice: a line stopping at the period end has no line on
    October's invoice and is still no finding; a plan change corrected on October's invoice is none either."""
    from assurance_month import CHANGES_PLAN, NEVER_BILLED, STOPS_AT_PERIOD_END

    write_month(local_settings, ("subscription_never_billed",))
    lines = read_published(open_store(local_settings.lake_uri), "invoice_lines")
    october = lines.filter((pl.col("period") == PERIOD) & (pl.col("line_type") == "recurring"))
    assert STOPS_AT_PERIOD_END not in october["subscription_id"].to_list(), "the fixture must exercise advance billing"
    assert october.filter(pl.col("subscription_id") == CHANGES_PLAN)["amount"].to_list() == [
        Decimal("-10.00"), Decimal("4.84"), Decimal("15.48"), Decimal("30.00")]   # reversal, 15/31 + 16/31, November
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    c08 = run.findings.filter(pl.col("control_id") == "C08")
    assert c08["subscription_id"].to_list() == [NEVER_BILLED]
    assert "2026-10-01..2026-11-01" in c08["detail"][0] and c08["value_eur"][0] == Decimal("10")


def test_results_published_and_rerun_is_identical(local_settings):
    write_month(local_settings, LEAKS)
    first = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    lake = open_store(local_settings.lake_uri)
    published = read_published(lake, "assurance/findings", {"period": PERIOD})
    assert published.height == first.findings.height == 5
    results = read_published(lake, "assurance/control_results", {"period": PERIOD})
    assert results["control_id"].to_list() == [f"C{i:02d}" for i in range(1, 11)]
    before = {p: p.read_bytes() for p in Path(local_settings.lake_uri).glob("assurance/**/*") if p.is_file()}
    second = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    assert second.run_id == first.run_id
    after = {p: p.read_bytes() for p in Path(local_settings.lake_uri).glob("assurance/**/*") if p.is_file()}
    assert after == before


def test_missing_inputs_report_no_data(local_settings):
    from assurance_usage_only import write_only_usage

    write_only_usage(local_settings)
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    st = statuses(run)
    assert st["C07"] == st["C08"] == st["C01"] == "no_data"
    assert "invoices" in run.inputs_missing and "usage" not in run.inputs_missing


def test_controls_on_s3_lake(s3_store_settings):
    """A lake on the moto S3 server: DuckDB reads it through httpfs; results and holds are written back to S3."""
    from assurance_usage_only import write_only_usage

    write_only_usage(s3_store_settings)
    run = run_assurance(s3_store_settings, PERIOD, data_quality=False, report=False)
    assert statuses(run)["C03"] == "pass" and statuses(run)["C01"] == "no_data"
    lake = open_store(s3_store_settings.lake_uri, s3_store_settings.s3)
    daily = read_published(lake, "assurance/daily_volume", {"period": PERIOD})
    assert daily["volume"].sum() == 50
    assert read_published(lake, "assurance/control_results", {"period": PERIOD}).height == 10
