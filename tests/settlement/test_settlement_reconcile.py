"""Partner reconciliation: every mismatch class, totals, dispute amounts, and the CLI."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
from settlement_lake import entry, ts, write_entries, write_usage

from pipelines.cli import main
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.settlement.reconcile import run_reconciliation

PERIOD = "2026-10"
OURS = [  # record, msisdn, start, duration, amount
    ("u1", "491510000001", "2026-10-03T08:00:00", 120, "0.60"),   # matched
    ("u2", "491510000002", "2026-10-04T09:00:00", 60, "0.30"),    # cost mismatch (they say 0.35)
    ("u3", "491510000003", "2026-10-05T10:00:00", 100, "0.50"),   # duration mismatch (they say 105 s)
    ("u4", "491510000004", "2026-10-06T11:00:00", 30, "0.15"),    # time mismatch (they say +40 s)
    ("u5", "491510000005", "2026-10-07T12:00:00", 60, "0.30"),    # ours only
]
DECLARATION = """partner_ref,msisdn,service,start_time,duration_s,quantity,amount,currency
FR-1,491510000001,voice,2026-10-03T08:00:01Z,120,120,0.60,EUR
FR-2,491510000002,voice,2026-10-04T09:00:00Z,60,60,0.35,EUR
FR-3,491510000003,voice,2026-10-05T10:00:00Z,105,105,0.50,EUR
FR-4,491510000004,voice,2026-10-06T11:00:40Z,30,30,0.15,EUR
FR-6,491510000099,voice,2026-10-08T12:00:00Z,60,60,0.42,EUR
FR-7,491510000001,voice,2026-09-15T12:00:00Z,60,60,0.25,EUR
FR-8,491510000001,voice,2026-10-09T12:00:00Z,60,60,abc,EUR
"""


def setup_lake(settings, tmp_path: Path) -> Path:
    write_entries(settings, PERIOD, [entry(r, "FRAF1", "roaming", "payable", "voice", s, d, a) for r, _, s, d, a in OURS]
                  + [entry("x1", "ESPTE", "roaming", "payable", "voice", "2026-10-03T08:00:00", 60, "0.1")])
    write_usage(settings, [{"record_id": r, "msisdn": m, "service": "voice", "start_time": ts(s), "duration_s": d,
                            "quantity": d} for r, m, s, d, _ in OURS])
    path = tmp_path / "fraf1_2026-10.csv"
    path.write_text(DECLARATION)
    return path


def test_each_mismatch_class(local_settings, tmp_path):
    declaration = setup_lake(local_settings, tmp_path)
    result = run_reconciliation(local_settings, "FRAF1", PERIOD, declaration)
    rows = {(r["record_id"] or r["partner_ref"]): r for r in result.rows.to_dicts()}
    assert rows["u1"]["status"] == "matched" and rows["u1"]["partner_ref"] == "FR-1"  # 1 s is within tolerance
    assert (rows["u2"]["status"], rows["u2"]["reasons"], rows["u2"]["disputed_amount"]) == \
        ("mismatched", "cost", Decimal("0.05"))
    assert (rows["u3"]["status"], rows["u3"]["reasons"]) == ("mismatched", "duration")
    assert (rows["u4"]["status"], rows["u4"]["reasons"], rows["u4"]["time_diff_s"]) == ("mismatched", "time", 40)
    assert (rows["u5"]["status"], rows["u5"]["disputed_amount"]) == ("ours_only", Decimal("-0.30"))
    assert (rows["FR-6"]["status"], rows["FR-6"]["disputed_amount"]) == ("theirs_only", Decimal("0.42"))
    assert (rows["FR-7"]["status"], rows["FR-7"]["disputed_amount"]) == ("out_of_window", Decimal("0.25"))
    assert (rows["FR-8"]["status"], rows["FR-8"]["reasons"]) == ("invalid", "BAD_AMOUNT")
    # conservation: each of our 5 records and each of the 7 declared lines appears exactly once
    assert result.rows["record_id"].drop_nulls().sort().to_list() == ["u1", "u2", "u3", "u4", "u5"]
    assert sorted(result.rows["declaration_line"].drop_nulls().to_list()) == list(range(2, 9))
    totals = {r["status"]: r for r in result.totals.to_dicts() if r["currency"] == "EUR"}
    invalid = {r["status"]: r["records"] for r in result.totals.to_dicts() if r["currency"] is None}
    assert invalid["invalid"] == invalid["all"] == 1, "unreadable lines have no currency"
    assert totals["all"]["our_amount"] == Decimal("1.85")
    assert totals["all"]["their_amount"] == Decimal("2.27")
    assert totals["all"]["disputed_amount"] == Decimal("0.42")  # 0.05 + 0.42 + 0.25 - 0.30
    assert totals["mismatched"]["records"] == 3 and totals["matched"]["records"] == 1
    assert result.disputes.height == 6


def test_results_published_and_dispute_csv(local_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TELBILL_OUTPUT_DIR", local_settings.output_dir)
    declaration = setup_lake(local_settings, tmp_path)
    assert main(["--lake", local_settings.lake_uri, "--tariffs", local_settings.tariffs_dir,
                 "settlement", "reconcile", "--partner", "FRAF1", "--period", PERIOD,
                 "--declaration", str(declaration)]) == 0
    published = read_published(open_store(local_settings.lake_uri), "settlement/reconciliation",
                               {"period": PERIOD, "partner": "FRAF1"})
    assert published.height == 8
    assert published.filter(pl.col("status") == "theirs_only")["partner_ref"].to_list() == ["FR-6"]
    disputes = (Path(local_settings.output_dir) / "settlement" / PERIOD / "disputes_FRAF1.csv").read_text().splitlines()
    assert len(disputes) == 1 + 6 and disputes[0].startswith("period,partner_id,status")


def test_tolerances_are_parameters(local_settings, tmp_path):
    from pipelines.settlement.reconcile import Tolerances

    declaration = setup_lake(local_settings, tmp_path)
    loose = run_reconciliation(local_settings, "FRAF1", PERIOD, declaration,
                               Tolerances(time_s=60, duration_s=10, cost=Decimal("0.10")))
    assert loose.rows.filter(pl.col("status") == "matched").height == 4


def test_short_and_empty_lines_are_reason_coded_not_fatal():
    from pipelines.settlement.reconcile import parse_declaration

    data = (b"partner_ref,msisdn,service,start_time,duration_s,quantity,amount,currency\n"
            b"FR-1,491510000001,voice,2026-10-03T08:00:01Z,120,120,0.60,EUR\n"
            b"FR-2,491510000002\n"                                             # short line: csv gives None
            b"FR-3,491510000003,voice,2026-10-05T10:00:00Z,,60,0.50,EUR\n"     # empty duration is not 0
            b"FR-4,491510000004,voice,2026-10-06T11:00:40Z,3x,30,0.15,EUR\n"   # not a number
            b"FR-5,491510000005,voice,2026-10-06T11:00:40Z,30,30,NaN,EUR\n"
            b"FR-6,491510000006,voice,2026-10-06T11:00:40Z,30,30,0.15,EUR,extra\n")
    good, bad = parse_declaration(data)
    assert [g["partner_ref"] for g in good] == ["FR-1", "FR-6"]
    assert [(b["declaration_line"], b["partner_ref"], b["reasons"]) for b in bad] == [
        (3, "FR-2", "MISSING_FIELD"), (4, "FR-3", "MISSING_FIELD"), (5, "FR-4", "BAD_QUANTITY"),
        (6, "FR-5", "BAD_AMOUNT")]


def test_partner_text_in_dispute_csv_is_neutralised(local_settings, tmp_path):
    import csv
    import io

    declaration = setup_lake(local_settings, tmp_path)
    evil = "=cmd|' /C calc'!A0"
    declaration.write_text(DECLARATION.replace("FR-6,", f"\"{evil}\",").replace("0.42,EUR", "0.42,@SUM(A1)"))
    result = run_reconciliation(local_settings, "FRAF1", PERIOD, declaration)
    disputes = next(f for f in result.files if Path(f).name == "disputes_FRAF1.csv")
    rows = list(csv.DictReader(io.StringIO(Path(disputes).read_text(), newline="")))
    theirs = [r for r in rows if r["status"] == "theirs_only"]
    assert [(r["partner_ref"], r["currency"], r["disputed_amount"]) for r in theirs] == \
        [("'" + evil, "'@SUM(A1)", "0.420000000")]
    assert "-0.300000000" in {r["disputed_amount"] for r in rows}, "negative amounts stay plain numbers"


def test_totals_never_mix_currencies(local_settings, tmp_path):
    declaration = setup_lake(local_settings, tmp_path)
    declaration.write_text(DECLARATION.replace("0.42,EUR", "0.42,GBP"))
    result = run_reconciliation(local_settings, "FRAF1", PERIOD, declaration)
    totals = {(r["currency"], r["status"]): r for r in result.totals.to_dicts()}
    assert totals[("GBP", "all")]["their_amount"] == Decimal("0.42") and totals[("GBP", "all")]["records"] == 1
    assert totals[("EUR", "all")]["their_amount"] == Decimal("1.85")      # 2.27 - the GBP line
    assert {c for c, _ in totals} == {"EUR", "GBP", None}
    assert all(len([k for k in totals if k[0] == c]) == 7 for c in ("EUR", "GBP", None))


def test_partner_id_must_be_a_safe_name(local_settings, tmp_path):
    import pytest

    declaration = setup_lake(local_settings, tmp_path)
    for bad in ("../etc", "A.B", "A/B", "", "x" * 33, "FR AF1"):
        with pytest.raises(ValueError, match="partner id"):
            run_reconciliation(local_settings, bad, PERIOD, declaration)
    assert not list(Path(local_settings.output_dir).rglob("*etc*"))


def test_entries_of_one_record_each_end_in_one_class_in_a_stable_order(local_settings, tmp_path):
    declaration = setup_lake(local_settings, tmp_path)
    twice = [entry("u5", "FRAF1", "roaming", "payable", "voice", "2026-10-07T12:00:00", 60, a) for a in ("0.30", "0.10")]
    write_entries(local_settings, PERIOD, [entry(r, "FRAF1", "roaming", "payable", "voice", s, d, a)
                                           for r, _, s, d, a in OURS[:4]] + twice[::-1])
    first = run_reconciliation(local_settings, "FRAF1", PERIOD, declaration)
    ours_only = first.rows.filter(pl.col("status") == "ours_only")
    assert ours_only["our_amount"].to_list() == [Decimal("0.10"), Decimal("0.30")]   # both kept, ordered
    write_entries(local_settings, PERIOD, [entry(r, "FRAF1", "roaming", "payable", "voice", s, d, a)
                                           for r, _, s, d, a in OURS[:4]] + twice)
    assert run_reconciliation(local_settings, "FRAF1", PERIOD, declaration).rows.equals(first.rows)


def test_cli_refuses_unsafe_partner_and_reads_only_usage_near_the_period(local_settings, tmp_path, capsys):
    import pytest

    from pipelines.common.partitions import published_manifests

    declaration = setup_lake(local_settings, tmp_path)
    write_usage(local_settings, [{"record_id": "old", "msisdn": "491510000001", "service": "voice",
                                  "start_time": ts("2025-01-10T08:00:00"), "duration_s": 1, "quantity": 1}])
    with pytest.raises(SystemExit) as exc:
        main(["--lake", local_settings.lake_uri, "settlement", "reconcile", "--partner", "../FRAF1",
              "--period", PERIOD, "--declaration", str(declaration)])
    assert exc.value.code == 2 and "partner id" in capsys.readouterr().err
    run_reconciliation(local_settings, "FRAF1", PERIOD, declaration)
    [manifest] = published_manifests(open_store(local_settings.lake_uri), "settlement/reconciliation",
                                     {"period": PERIOD, "partner": "FRAF1"})
    usage_inputs = [k for k in manifest.inputs if k.startswith("usage/")]
    assert usage_inputs and not [k for k in usage_inputs if "2025-01" in k]
