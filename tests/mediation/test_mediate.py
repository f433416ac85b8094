"""End to end: a generated month with every fault, mediated into the lake; each fault caught exactly."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import SOURCES
from pipelines.mediation.control import file_control_report, recycle
from pipelines.mediation.pipeline import load_file_manifest, mediate
from schemas.contracts import USAGE_SCHEMA


def _published(settings, dataset: str) -> pl.DataFrame:
    frame = read_published(open_store(settings.lake_uri, settings.s3), dataset)
    assert frame is not None, f"{dataset} was not published"
    return frame


def _snapshot(lake_dir: str) -> dict[str, bytes]:
    root = Path(lake_dir)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _faults(mediated, kind: str) -> list:
    found = [f for f in mediated.gen.faults if f.kind == kind]
    assert found, f"the generator injected no {kind}"
    return found


@pytest.mark.parametrize("kind", ["MALFORMED_LINE", "INVALID_FIELD", "BAD_ENCODING", "NEGATIVE_DURATION",
                                  "ABSURD_DURATION", "BAD_MSISDN", "FUTURE_TIMESTAMP"])
def test_record_faults_are_rejected_with_the_exact_reason(mediated, kind: str) -> None:
    rejects = _published(mediated.settings, "mediation/rejects")
    for fault in _faults(mediated, kind):
        row = rejects.filter((pl.col("source_file") == fault.file) & (pl.col("record_offset") == fault.line))
        assert row["reason_code"].to_list() == [fault.expected.split(":")[1]], fault
        assert row["raw"][0] and row["message"][0]


def test_only_injected_faults_are_rejected(mediated) -> None:
    rejects = _published(mediated.settings, "mediation/rejects")
    injected = {(f.file, f.line) for f in mediated.gen.faults if f.expected.startswith("rejected:")}
    assert set(rejects.select("source_file", "record_offset").iter_rows()) >= injected
    resent = {f.detail.removeprefix("byte copy of ") for f in mediated.gen.faults if f.kind == "WHOLE_FILE_RESENT"}
    copies = {f.file for f in mediated.gen.faults if f.kind == "WHOLE_FILE_RESENT"}
    for file, line in rejects.select("source_file", "record_offset").iter_rows():
        assert (file, line) in injected or file in copies, (file, line, resent)


@pytest.mark.parametrize("kind", ["DUP_WITHIN_FILE", "DUP_ACROSS_FILES"])
def test_duplicates_are_caught_and_point_at_the_surviving_copy(mediated, kind: str) -> None:
    dups = _published(mediated.settings, "mediation/duplicates")
    usage = _published(mediated.settings, "usage")
    filtered = _published(mediated.settings, "mediation/filtered")
    for fault in _faults(mediated, kind):
        if fault.expected == "filtered":   # a re-sent unanswered call is not billable in either copy
            assert filtered.filter((pl.col("source_file") == fault.file) & (pl.col("record_offset") == fault.line)).height == 1
            continue
        row = dups.filter((pl.col("source_file") == fault.file) & (pl.col("record_offset") == fault.line))
        assert row.height == 1, fault
        survivor = usage.filter(pl.col("record_id") == row["record_id"][0])
        assert survivor.select("source_file", "record_offset").row(0) == (
            row["duplicate_of_file"][0], row["duplicate_of_offset"][0])


def test_whole_file_resent_is_flagged_and_all_its_records_are_duplicates(mediated) -> None:
    (fault,) = _faults(mediated, "WHOLE_FILE_RESENT")
    row = mediated.result.files.filter(pl.col("source_file") == fault.file).row(0, named=True)
    assert row["status"] == "duplicate_file"
    assert row["duplicate_of"] == fault.detail.removeprefix("byte copy of ")
    assert row["usage"] == row["suspense"] == 0
    assert row["duplicate"] + row["filtered"] + row["rejected"] == row["records_in"] > 0


def test_truncated_gzip_is_quarantined_and_the_run_goes_on(mediated) -> None:
    (fault,) = _faults(mediated, "CORRUPT_GZIP")
    quarantine = _published(mediated.settings, "mediation/quarantine")
    assert quarantine.filter(pl.col("source_file") == fault.file)["reason_code"].to_list() == ["CORRUPT_GZIP"]
    assert mediated.result.totals()["quarantined"] == 1
    assert mediated.result.totals()["usage"] > 0


def test_unknown_subscribers_go_to_suspense(mediated) -> None:
    suspense = _published(mediated.settings, "mediation/suspense")
    for fault in _faults(mediated, "UNKNOWN_SUBSCRIBER"):
        row = suspense.filter((pl.col("source_file") == fault.file) & (pl.col("record_offset") == fault.line))
        assert row["suspense_reason"].to_list() == ["UNKNOWN_SUBSCRIBER"], fault


def test_late_records_land_in_their_own_usage_date(mediated) -> None:
    usage = _published(mediated.settings, "usage")
    for fault in _faults(mediated, "LATE_ARRIVING")[:20]:
        row = usage.filter((pl.col("source_file") == fault.file) & (pl.col("record_offset") == fault.line))
        assert row.height == 1, fault
        stamp = fault.file.rsplit("_", 1)[1][:8]
        assert row["usage_date"][0] < date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:]))


def test_file_control_finds_gap_repeat_and_quiet_source(mediated) -> None:
    report = file_control_report(mediated.settings, as_of=date(2026, 11, 10), quiet_days=3)
    (gap,) = _faults(mediated, "MISSING_FILE")
    source, seq = gap.file.split("/")[0], int(gap.file.split("_")[-2])
    assert report.gaps.rows() == [(source, seq)]
    (rep,) = _faults(mediated, "REPEATED_SEQUENCE")
    assert rep.file in report.repeated["files"].explode().to_list()
    assert set(report.quiet["source"]) == set(SOURCES)
    assert report.aging["records"].sum() == mediated.result.totals()["suspense"]
    # every rejected record is counted under its reason code (the manifest only has per-file totals)
    assert report.rejects["records"].sum() == mediated.result.totals()["rejected"]
    assert report.rejects["reason_code"].is_unique().all() and report.rejects.height >= 3
    text = report.text()
    assert "balanced" in text and f"sequence {seq} missing" in text and "rejected records by reason:" in text


def test_conservation_per_file_and_per_run(mediated) -> None:
    files = mediated.result.files
    assert files["balanced"].all()
    t = mediated.result.totals()
    assert t["records_in"] == t["usage"] + t["filtered"] + t["rejected"] + t["duplicate"] + t["suspense"]
    quarantined = set(files.filter(pl.col("status") == "quarantined")["source_file"])
    expected_in = {k: n for k, n in mediated.gen.records_by_file.items() if k not in quarantined}
    assert dict(files.filter(pl.col("status") != "quarantined").select("source_file", "records_in").iter_rows()) == expected_in
    assert _published(mediated.settings, "usage").height == t["usage"]
    assert _published(mediated.settings, "mediation/filtered").height == t["filtered"]
    assert _published(mediated.settings, "mediation/duplicates").height == t["duplicate"]


def test_usage_matches_the_contract_and_ids_are_unique(mediated) -> None:
    usage = _published(mediated.settings, "usage")
    assert usage.schema == pl.Schema(USAGE_SCHEMA)
    assert usage["record_id"].is_unique().all()
    assert usage["subscription_id"].null_count() == 0
    assert set(usage["service"]) == {"voice", "sms", "data"}
    assert (usage.filter(pl.col("service") == "voice")["call_outcome"] == "answered").all()
    assert usage.filter(pl.col("partial_seq").is_not_null()).height > 0


def test_second_run_changes_nothing(mediated) -> None:
    before = _snapshot(mediated.settings.lake_uri)
    again = mediate(mediated.settings)
    assert again.files.height == 0 and again.skipped_files == len(mediated.gen.files)
    assert _snapshot(mediated.settings.lake_uri) == before


def test_recycle_moves_suspense_after_customer_fix(mediated, tmp_path: Path) -> None:
    shutil.copytree(mediated.settings.lake_uri, tmp_path / "lake")
    settings = mediated.settings.with_(lake_uri=str(tmp_path / "lake"))
    unknown = _published(settings, "mediation/suspense")
    accounts = mediated.gen.accounts_csv.read_bytes()
    subs = mediated.gen.subscriptions_csv.read_bytes()
    first_account = accounts.split(b"\n")[1].split(b",")[0]
    extra = b"".join(b"SFIX%d,%s,%s,,P_BASIC,postpaid,2024-01-01T00:00:00Z,\n" % (i, first_account, m.encode())
                     for i, m in enumerate(sorted(set(unknown["msisdn"]))))
    import_customers(settings, accounts, subs + extra)
    before = _published(settings, "usage").height
    result = recycle(settings)
    assert (result.examined, result.guided, result.still_suspense) == (unknown.height, unknown.height, 0)
    assert _published(settings, "usage").height == before + unknown.height
    manifest = load_file_manifest(settings)
    assert manifest["balanced"].all() and manifest["suspense"].sum() == 0
    assert recycle(settings).examined == 0


def test_cli_mediate_report_and_recycle(generated, tmp_path: Path, capsys) -> None:
    from pipelines.common.settings import Settings
    from pipelines.generate import upload_landing

    lake, landing = tmp_path / "lake", tmp_path / "landing"
    upload_landing(generated, Settings(landing_uri=str(landing)))
    keep = [k for k in generated.files if k.startswith("smsc/")]
    for key in generated.files:
        if key not in keep:
            (landing / key).unlink()
    opts = ["--lake", str(lake), "--landing", str(landing),
            "--tariffs", str(Path(__file__).resolve().parents[2] / "tariffs")]
    assert main([*opts, "customers", "import", "--accounts", str(generated.accounts_csv),
                 "--subscriptions", str(generated.subscriptions_csv)]) == 0
    assert main([*opts, "mediate"]) == 0
    out = capsys.readouterr().out
    assert f"mediated {len(keep)} new files" in out and "balanced" in out and "duplicate_file" in out
    assert main([*opts, "mediation", "report", "--as-of", "2026-11-01"]) == 0
    assert "whole-file duplicates: 1" in capsys.readouterr().out
    assert main([*opts, "mediation", "recycle"]) == 0
    assert "re-guided 0 suspense records" in capsys.readouterr().out


def test_warehouse_views_over_mediation(mediated, tmp_path: Path) -> None:
    import duckdb

    from pipelines.warehouse import build_warehouse

    path, skipped = build_warehouse(mediated.settings, str(tmp_path / "wh.duckdb"))
    assert not any(s.startswith("10_mediation") for s in skipped)
    con = duckdb.connect(path, read_only=True)
    t = mediated.result.totals()
    assert con.sql("select sum(records) from usage_daily").fetchone()[0] == t["usage"]
    outcome = con.sql("select sum(records_in), sum(duplicate), bool_and(balanced) from mediation_file_outcomes").fetchone()
    assert outcome == (t["records_in"], t["duplicate"], True)
    assert con.sql("select count(*) from mediation_suspense_records").fetchone()[0] == t["suspense"]


def test_every_generated_source_reaches_usage(mediated) -> None:
    usage = _published(mediated.settings, "usage")
    assert set(usage["source"]) == set(SOURCES)
    five_g = usage.filter(pl.col("source") == "pgw-5g")
    assert set(five_g["snssai"]) <= {"2-000002", "3-000003"} and five_g["subscription_id"].null_count() == 0
