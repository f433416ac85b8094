"""Settlement statements with hand-checked totals, rounding, FX conversion, dealers, documents, reruns."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader
from settlement_lake import entry, ts, write_entries, write_rated, write_subscriptions, write_usage

from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.settlement.reference import ReferenceError
from pipelines.settlement.statements import run_settlement

PERIOD = "2026-10"

ENTRIES = [
    # roaming FRAF1 (EUR): voice 0.0125 + 0.0150 = 0.0275 -> 0.03; data 1.234567891 -> 1.23
    entry("r1", "FRAF1", "roaming", "payable", "voice", "2026-10-03T08:00:00", 120, "0.0125"),
    entry("r2", "FRAF1", "roaming", "payable", "voice", "2026-10-04T09:00:00", 60, "0.0150"),
    entry("r3", "FRAF1", "roaming", "payable", "data", "2026-10-05T10:00:00", 1_000_000, "1.234567891"),
    # roaming GBRCN (GBP at 1.158600): data 2.005 GBP -> 2.01 GBP, 2.322993 EUR -> 2.32;
    # sms 0.105 GBP -> 0.11 GBP, 0.121653 EUR -> 0.12
    entry("r4", "GBRCN", "roaming", "payable", "data", "2026-10-06T10:00:00", 5_000_000, "2.005", "GBP"),
    entry("r5", "GBRCN", "roaming", "payable", "sms", "2026-10-06T11:00:00", 1, "0.105", "GBP"),
    # inbound roaming USAAT (USD at 0.934200): 0.50 USD -> 0.4671 EUR -> 0.47 receivable
    entry("r6", "USAAT", "roaming", "receivable", "voice", "2026-10-07T12:00:00", 60, "0.5", "USD"),
    # interconnect: peak 90 s + 30 s = 2 minutes, 0.018 -> 0.02; offpeak 600 s 0.05; incoming 120 s 0.012 -> 0.01
    entry("r7", "IC_CARRIER1", "interconnect", "payable", "voice", "2026-10-08T09:00:00", 90, "0.0135"),
    entry("r8", "IC_CARRIER1", "interconnect", "payable", "voice", "2026-10-08T10:00:00", 30, "0.0045"),
    entry("r9", "IC_CARRIER1", "interconnect", "payable", "voice", "2026-10-08T22:00:00", 600, "0.05", band="offpeak"),
    entry("r10", "IC_CARRIER1", "interconnect", "receivable", "voice", "2026-10-09T09:00:00", 120, "0.012"),
    # content STREAMCO: basis 2.00 + 1.99 = 3.99, 45 % share = 1.7955 -> 1.80
    entry("r11", "STREAMCO", "content", "payable", "data", "2026-10-10T20:00:00", 10_000, "2.00"),
    entry("r12", "STREAMCO", "content", "payable", "data", "2026-10-11T20:00:00", 10_000, "1.99"),
]


def sub(sid: str, plan: str, valid_from: str, valid_to: str | None, dealer: str | None) -> dict:
    return {"subscription_id": sid, "account_id": "A" + sid, "msisdn": "491510000" + sid[-3:], "imsi": "26201" + sid,
            "plan_id": plan, "payment_type": "postpaid", "valid_from": ts(valid_from),
            "valid_to": ts(valid_to) if valid_to else None, "dealer_id": dealer}


SUBSCRIPTIONS = [
    sub("S001", "P_BASIC", "2026-10-05T10:00:00", None, "D_BER01"),               # activation 40.00
    sub("S002", "P_UNLTD", "2026-09-01T10:00:00", None, "D_BER01"),               # residual 5 % of 30 = 1.50
    sub("S003", "P_BASIC", "2026-10-02T10:00:00", "2026-10-20T10:00:00", "D_BER01"),  # activation + charge-back
    sub("S004", "P_BASIC", "2026-09-01T10:00:00", None, None),                    # no dealer
    sub("S005", "P_FAMILY", "2026-08-01T10:00:00", "2026-10-10T10:00:00", "D_HAM02"),  # residual 4 % of 45; 70 d > 60
]


def line(lines: pl.DataFrame, partner: str, service: str, **where: str) -> dict:
    frame = lines.filter((pl.col("partner_id") == partner) & (pl.col("service") == service))
    for k, v in where.items():
        frame = frame.filter(pl.col(k) == v)
    assert frame.height == 1, frame
    return frame.row(0, named=True)


@pytest.fixture
def settled(local_settings):
    write_entries(local_settings, PERIOD, ENTRIES)
    write_subscriptions(local_settings, SUBSCRIPTIONS)
    return local_settings, run_settlement(local_settings, PERIOD)


def test_statement_lines_are_hand_checked(settled):
    settings, _ = settled
    lines = read_published(open_store(settings.lake_uri), "settlement/statement_lines", {"period": PERIOD})
    voice = line(lines, "FRAF1", "voice")
    assert (voice["records"], voice["quantity"], voice["minutes"]) == (2, 180, Decimal("3"))
    assert voice["amount_precise"] == Decimal("0.0275") and voice["amount"] == Decimal("0.03")
    assert voice["amount_eur"] == Decimal("0.03") and voice["traffic_type"] == "outbound roaming"
    assert line(lines, "FRAF1", "data")["amount"] == Decimal("1.23")
    assert voice["rate_ids"] == "R_FRAF1_voice"
    gb_data = line(lines, "GBRCN", "data")
    assert (gb_data["currency"], gb_data["amount"], gb_data["fx_rate"], gb_data["amount_eur"]) == \
        ("GBP", Decimal("2.01"), Decimal("1.1586"), Decimal("2.32"))
    assert line(lines, "GBRCN", "sms")["amount_eur"] == Decimal("0.12")
    us = line(lines, "USAAT", "voice")
    assert (us["direction"], us["amount"], us["amount_eur"]) == ("receivable", Decimal("0.50"), Decimal("0.47"))
    peak = line(lines, "IC_CARRIER1", "voice", band="peak", direction="payable")
    assert (peak["records"], peak["minutes"], peak["amount"]) == (2, Decimal("2"), Decimal("0.02"))
    assert peak["traffic_type"] == "outgoing termination"
    assert line(lines, "IC_CARRIER1", "voice", band="offpeak")["amount"] == Decimal("0.05")
    assert line(lines, "IC_CARRIER1", "voice", direction="receivable")["amount"] == Decimal("0.01")
    content = line(lines, "STREAMCO", "data")
    assert (content["basis_amount"], content["share_pct"], content["amount_precise"], content["amount"]) == \
        (Decimal("3.99"), Decimal("45"), Decimal("1.7955"), Decimal("1.80"))
    assert line(lines, "D_BER01", "activation")["amount"] == Decimal("80.00")
    assert line(lines, "D_BER01", "chargeback")["amount"] == Decimal("40.00")
    assert line(lines, "D_BER01", "residual")["amount"] == Decimal("1.50")
    assert line(lines, "D_HAM02", "residual")["amount"] == Decimal("1.80")
    assert lines.filter(pl.col("partner_id") == "D_HAM02").height == 1  # no charge-back after 70 days


def test_statement_totals_are_sums_of_rounded_lines(settled):
    settings, result = settled
    totals = read_published(open_store(settings.lake_uri), "settlement/statements", {"period": PERIOD})
    got = {r["partner_id"]: (r["payable_eur"], r["receivable_eur"], r["net_eur"]) for r in totals.to_dicts()}
    assert got == {
        "FRAF1": (Decimal("1.26"), Decimal("0"), Decimal("-1.26")),
        "GBRCN": (Decimal("2.44"), Decimal("0"), Decimal("-2.44")),
        "USAAT": (Decimal("0"), Decimal("0.47"), Decimal("0.47")),
        "IC_CARRIER1": (Decimal("0.07"), Decimal("0.01"), Decimal("-0.06")),
        "STREAMCO": (Decimal("1.80"), Decimal("0"), Decimal("-1.80")),
        "D_BER01": (Decimal("81.50"), Decimal("40.00"), Decimal("-41.50")),
        "D_HAM02": (Decimal("1.80"), Decimal("0"), Decimal("-1.80")),
    }
    assert result.statements == 7
    # conservation: every entry is on exactly one line
    lines = read_published(open_store(settings.lake_uri), "settlement/statement_lines", {"period": PERIOD})
    usage_lines = lines.filter(pl.col("partner_type") != "dealer")
    assert usage_lines["records"].sum() == len(ENTRIES)


def test_csv_and_pdf_per_partner(settled):
    settings, result = settled
    out = Path(settings.output_dir) / "settlement" / PERIOD
    assert sorted(p.name for p in out.glob("*.pdf")) == sorted(
        f"{t}_{p}.pdf" for t, p in [("roaming", "FRAF1"), ("roaming", "GBRCN"), ("roaming", "USAAT"),
                                     ("interconnect", "IC_CARRIER1"), ("content", "STREAMCO"),
                                     ("dealer", "D_BER01"), ("dealer", "D_HAM02")])
    text = "".join(page.extract_text() for page in PdfReader(out / "roaming_GBRCN.pdf").pages)
    assert "Telbill UK Roaming Partner" in text and "2026-10" in text
    assert "2.32" in text and "2.44 EUR" in text and "Net due to partner" in text
    csv_text = (out / "content_STREAMCO.csv").read_text()
    assert "1.7955" in csv_text.splitlines()[1] and csv_text.splitlines()[0].startswith("period,partner_id")


def test_rerun_writes_identical_bytes(settled):
    settings, first = settled
    lake = Path(settings.lake_uri)
    before = {p: p.read_bytes() for p in lake.glob("settlement/**/*") if p.is_file()}
    second = run_settlement(settings, PERIOD, documents=False)
    assert second.run_id == first.run_id
    after = {p: p.read_bytes() for p in lake.glob("settlement/**/*") if p.is_file()}
    assert after == before


def test_missing_exchange_rate_is_a_clear_error(local_settings):
    write_entries(local_settings, PERIOD, [entry("x1", "TURTC", "roaming", "payable", "voice",
                                                 "2026-10-03T08:00:00", 60, "1.0", "JPY")])
    with pytest.raises(ReferenceError, match="no exchange rate for JPY"):
        run_settlement(local_settings, PERIOD, documents=False)


def test_settlement_on_s3(s3_store_settings):
    write_entries(s3_store_settings, PERIOD, ENTRIES[:3])
    result = run_settlement(s3_store_settings, PERIOD, documents=False)
    totals = read_published(open_store(s3_store_settings.lake_uri, s3_store_settings.s3), "settlement/statements",
                            {"period": PERIOD})
    assert result.statements == 1 and totals["payable_eur"].to_list() == [Decimal("1.26")]


def test_content_share_from_rated_usage_on_the_partners_rating_group(local_settings):
    """Rating writes no content entries: the basis is the retail charge of usage on rating group 20."""
    usage = [("c1", 20, "1.20"), ("c2", 20, "0.79"), ("c3", 10, "5.00"), ("c4", 20, "0")]  # c4 zero-rated
    write_usage(local_settings, [{"record_id": r, "service": "data", "rating_group": g, "quantity": 1000,
                                  "start_time": ts("2026-10-05T10:00:00")} for r, g, _ in usage])
    write_rated(local_settings, PERIOD, [{"record_id": r, "service": "data", "quantity": 1000, "charge": Decimal(c),
                                          "payment_type": "postpaid", "start_time": ts("2026-10-05T10:00:00")}
                                         for r, _, c in usage])
    result = run_settlement(local_settings, PERIOD, documents=False)
    lines = read_published(open_store(local_settings.lake_uri), "settlement/statement_lines", {"period": PERIOD})
    assert result.statements == 1
    content = line(lines, "STREAMCO", "data")
    # basis 1.20 + 0.79 + 0 = 1.99; 45 % = 0.8955 -> 0.90
    assert (content["records"], content["basis_amount"], content["amount_precise"], content["amount"]) == \
        (3, Decimal("1.99"), Decimal("0.8955"), Decimal("0.90"))


def test_cli_run(local_settings, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("TELBILL_OUTPUT_DIR", local_settings.output_dir)
    write_entries(local_settings, PERIOD, ENTRIES[:3])
    assert main(["--lake", local_settings.lake_uri, "--tariffs", local_settings.tariffs_dir, "settlement", "run",
                 "--period", PERIOD]) == 0
    out = capsys.readouterr().out
    assert "1 statements, 2 lines" in out and "roaming_FRAF1.pdf" in out


def test_statement_csv_neutralises_partner_names(settled):
    import csv
    import io

    from pipelines.settlement.statements import LINES_DATASET, statement_csv

    settings, _ = settled
    lines = read_published(open_store(settings.lake_uri), LINES_DATASET, {"period": PERIOD})
    evil = "=cmd|' /C calc'!A0"
    mine = lines.filter(pl.col("partner_id") == "D_BER01").with_columns(pl.lit(evil).alias("partner_name"))
    rows = list(csv.DictReader(io.StringIO(statement_csv(mine).decode(), newline="")))
    assert rows and {r["partner_name"] for r in rows} == {"'" + evil}
    assert [r["amount_eur"] for r in rows] == [str(v) for v in mine["amount_eur"]], "amounts stay plain numbers"


def test_document_names_keep_dots_in_partner_ids(settled, tmp_path):
    from pipelines.settlement.documents import write_documents
    from pipelines.settlement.statements import LINES_DATASET, STATEMENTS_DATASET

    settings, _ = settled
    lake = open_store(settings.lake_uri)
    totals = read_published(lake, STATEMENTS_DATASET, {"period": PERIOD}).filter(pl.col("partner_id") == "FRAF1")
    lines = read_published(lake, LINES_DATASET, {"period": PERIOD})
    dotted = pl.col("partner_id").replace("FRAF1", "FR.AF1")
    written = write_documents(tmp_path / "docs", lines.with_columns(dotted), totals.with_columns(dotted))
    assert sorted(Path(p).name for p in written) == ["roaming_FR.AF1.csv", "roaming_FR.AF1.pdf"]
    with pytest.raises(ValueError, match="would leave"):
        write_documents(tmp_path / "docs", lines, totals.with_columns(pl.lit("../x").alias("partner_id")))
