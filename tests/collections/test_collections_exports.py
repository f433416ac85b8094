"""Spreadsheet-safe CSV and TMF676 Payment JSON; the CLI end to end on the S3 (moto) lake."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from collections_data import BASE_INVOICES, bank_file, publish_customers, publish_invoices

from pipelines.cli import main
from pipelines.collections.exports import tmf676_json
from pipelines.common.csv_safe import neutralise, safe_csv


@pytest.mark.parametrize("text", ["=1+1", "+49151", "-2+3", "@SUM(A1)", "\t=cmd", "\r=cmd",
                                  '=HYPERLINK("http://evil","x")'])
def test_dangerous_cells_are_neutralised(text):
    frame = pl.DataFrame({"name": [text], "amount": [Decimal("-12.50")]})
    rows = list(csv.reader(io.StringIO(safe_csv(frame).decode(), newline="")))
    assert rows[1][0] == "'" + text
    assert rows[1][1] == "-12.50", "numeric columns stay numbers"
    assert neutralise("plain") == "plain"


def test_tmf676_shape_exact_amounts():
    payments = pl.DataFrame([{
        "payment_id": "PAY-1", "source_payment_id": "T1", "kind": "bank", "channel": "bank_transfer",
        "event_type": "payment", "purpose": "bill_payment", "original_payment_id": None, "account_id": "ACC001",
        "invoice_id": "INV-1", "payment_reference": "TB-ACC001-202609", "received_date": date(2026, 10, 10),
        "amount": Decimal("70.10"), "currency": "EUR"}])
    allocations = pl.DataFrame([
        {"payment_id": "PAY-1", "invoice_id": "INV-1", "amount": Decimal("50.00")},
        {"payment_id": "PAY-1", "invoice_id": None, "amount": Decimal("20.10")}])
    data = tmf676_json(payments, allocations)
    assert b'"value": 70.10' in data, "money stays an exact JSON number"
    [doc] = json.loads(data, parse_float=Decimal)
    assert doc["@type"] == "Payment" and doc["status"] == "done" and doc["account"]["id"] == "ACC001"
    assert doc["totalAmount"] == {"unit": "EUR", "value": Decimal("70.10")}
    items = doc["paymentItem"]
    assert [i["item"]["@referredType"] for i in items] == ["CustomerBill", "AccountCredit"]
    assert sum(i["amount"]["value"] for i in items) == doc["amount"]["value"]
    assert tmf676_json(payments, allocations) == data


@pytest.mark.parametrize("correlator", ["\u0000num:1", "\u0000num:1, \"evil\": {\"x\": 2}", "\u0000num:",
                                        "x\", \"value\": \"\u0000num:9"])
def test_tmf676_marker_in_bank_text_stays_a_string(correlator):
    payments = pl.DataFrame([{
        "payment_id": "PAY-1", "source_payment_id": correlator, "kind": "bank", "channel": "bank_transfer",
        "event_type": "payment", "purpose": "bill_payment", "original_payment_id": None, "account_id": "ACC001",
        "invoice_id": "INV-1", "payment_reference": correlator, "received_date": date(2026, 10, 10),
        "amount": Decimal("-70.10"), "currency": "EUR"}])
    allocations = pl.DataFrame([{"payment_id": "PAY-1", "invoice_id": "INV-1", "amount": Decimal("-70.10")}],
                               schema={"payment_id": pl.String, "invoice_id": pl.String, "amount": pl.Decimal(38, 2)})
    [doc] = json.loads(tmf676_json(payments, allocations), parse_float=Decimal)
    assert doc["correlatorId"] == correlator and doc["paymentReference"] == correlator
    assert "evil" not in doc
    assert doc["amount"]["value"] == doc["paymentItem"][0]["amount"]["value"] == Decimal("-70.10")


def test_cli_on_s3_lake(s3_store_settings, tmp_path, monkeypatch, capsys):
    settings = s3_store_settings
    publish_customers(settings)
    publish_invoices(settings, BASE_INVOICES)
    monkeypatch.setenv("TELBILL_S3_ENDPOINT_URL", settings.s3.endpoint_url)
    monkeypatch.setenv("TELBILL_OUTPUT_DIR", str(tmp_path / "out"))
    bank = tmp_path / "bank.csv"
    bank.write_bytes(bank_file([("T1", "2026-10-10", "CRDT", "50.00", "Anna", "TB-ACC001-202609", "")]))
    lake = ["--lake", settings.lake_uri, "--tariffs", settings.tariffs_dir]
    assert main([*lake, "payments", "import", str(bank), "--kind", "bank"]) == 0
    assert "matched" in capsys.readouterr().out
    assert main([*lake, "payments", "import", str(bank), "--kind", "bank"]) == 0
    assert "already imported" in capsys.readouterr().out
    assert main([*lake, "collections", "train", "--accounts", "300", "--months", "8"]) == 0
    assert "holdout_auc" in capsys.readouterr().out
    assert main([*lake, "collections", "run", "--as-of", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "model: lake model store" in out and "provisioning_orders" in out
    listing = (tmp_path / "out" / "collections" / "2026-11-20" / "collections_list.csv").read_text()
    assert "ACC002" in listing and "ACC001" not in listing, "ACC001 paid; the rest are listed"
    assert main([*lake, "collections", "model-report"]) == 0
    assert "holdout_brier" in capsys.readouterr().out
    assert main([*lake, "payments", "export-tmf676", "--as-of", "2026-10-31"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["correlatorId"] == "T1"
