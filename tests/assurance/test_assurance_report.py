"""The full run: Great Expectations suites with Data Docs, the one-page HTML report with inline SVG, the CLI."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from assurance_month import LEAKS, PERIOD, write_month

from pipelines.cli import main
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store


def test_cli_run_writes_report_data_docs_and_datasets(local_settings, capsys, monkeypatch):
    monkeypatch.setenv("TELBILL_OUTPUT_DIR", local_settings.output_dir)
    write_month(local_settings, LEAKS)
    code = main(["--lake", local_settings.lake_uri, "--tariffs", local_settings.tariffs_dir, "assurance", "run",
                 "--period", PERIOD, "--strict"])
    assert code == 1  # injected leaks fail the run in strict mode
    out = capsys.readouterr().out
    assert "assurance 2026-10: FAIL" in out and "C08 fail" in out
    assert "E-" not in out, "amounts are formatted for people, not Decimal reprs"
    lines = {ln.split()[0] if not ln.strip().startswith("KPI") else ln.split()[1]: ln for ln in out.splitlines()[1:]
             if ln.strip()}
    assert "10.00 EUR" in lines["C08"] and "0.00 EUR" in lines["C03"]
    assert "10.20 EUR (info)" in lines["leakage_value"]
    assert "1.717 % (fail, limit 0.100 %)" in lines["leakage_pct"]   # 10.20 / 594.03, half-up at 3 places
    assert "28 days (pass, limit 30 days)" in lines["suspense_max_age_days"]
    kpis = read_published(open_store(local_settings.lake_uri), "assurance/kpis", {"period": PERIOD})
    assert kpis.schema["value"] == pl.Decimal(38, 9), "the dataset stays exact"
    lake = open_store(local_settings.lake_uri)
    dq = read_published(lake, "assurance/dq_results", {"period": PERIOD})
    assert set(dq["suite"]) == {"usage", "rated", "invoices", "settlement_entries"} and dq["success"].all()
    folder = Path(local_settings.output_dir) / "assurance" / PERIOD
    html = (folder / "report.html").read_text()
    assert html.count("<svg") == 2 and "<script" not in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from a network
    assert "ra_c08_unbilled_subscriptions" in html and "S009" in html and "Leakage % of revenue" in html
    assert "E-9" not in html and "10.20 EUR" in html and "0.00 EUR" in html
    assert 'stroke="#cc0000"' in html  # the missing file is marked on the volume chart
    assert (folder / "data_docs" / "index.html").exists()
    assert list((folder / "data_docs" / "validations").rglob("*.html"))


def test_bad_usage_fails_its_suite(local_settings):
    from pipelines.assurance.run import run_assurance

    month = write_month(local_settings, ())
    dup = {**month.usage[0], "charged_amount": None, "source_file": "msc-east/replayed.csv", "quantity": -5}
    write_month(local_settings, (), extra_usage=[dup])
    run = run_assurance(local_settings, PERIOD, report=False)
    failed = run.dq.filter(~pl.col("success"))
    assert set(zip(failed["suite"], failed["column"], strict=True)) == {("usage", "record_id"), ("usage", "quantity")}
