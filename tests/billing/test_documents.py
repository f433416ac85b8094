"""Documents: PDF text (pdftotext), autoescaping, the asset-only URL fetcher, TMF678 JSON, GL journal,
and byte-identical reruns (also on the moto S3 server)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from billing_fixtures import PERIOD, build_lake

from pipelines.billing import bill_cycle
from pipelines.billing.cycle import published_period
from pipelines.billing.documents import TemplateAssetFetcher, gl_journal, render_html, render_pdf, tmf678_json
from pipelines.common.storage import open_store


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def cycle(billing_lake):
    return bill_cycle(billing_lake, PERIOD)


def by_account(result, account_id):
    return next(d for d in result.finalised if d.account_id == account_id)


def test_pdf_shows_every_section(cycle, billing_lake, tmp_path):
    # first bill: October 45.00 - 10% and November in advance 45.00 - 10% = 81.00;
    # USF 0.81; VAT 81.81 x 0.19 = 15.5439 -> 15.54; total 97.35
    fam = by_account(cycle, "ACC-FAM")
    out = open_store(billing_lake.output_dir)
    text = pdf_text(out.read_bytes(f"invoices/{PERIOD}/{fam.invoice_number}.pdf"), tmp_path)
    for expected in ("Telbill Mobile", "Familie Schmidt", fam.invoice_number, "2026-10-01 to 2026-10-31",
                     "Summary", "Line 491510000006", "Family Share 30", "-4.50", "Tax breakdown", "VAT 19%",
                     "19.00%", "15.54", "Universal service fee", "0.81", "Prepaid lines", "491510000007", "15.00",
                     "Family Share 30, in advance", "Amount due: 97.35 EUR", "2026-11-15", fam.payment_reference):
        assert expected in text, expected


def test_pdf_usage_summary_shows_allowance(cycle, billing_lake, tmp_path):
    vip = by_account(cycle, "ACC-DEMO-VIP")
    text = pdf_text(open_store(billing_lake.output_dir).read_bytes(f"invoices/{PERIOD}/{vip.invoice_number}.pdf"),
                    tmp_path)
    assert "Usage summary" in text and "5,000.00 MB" in text and "4,000.00 MB" in text


def test_template_autoescapes_customer_data(cycle, tmp_path):
    start = by_account(cycle, "ACC-START")
    html = render_html(start)
    assert "Anna &lt;Start&gt; &amp; Co" in html and "<Start>" not in html
    evil = replace(start, account_name='<img src="file:///etc/passwd"><script>x()</script>',
                   address={"address_line1": "<b>bold</b>"})
    html = render_html(evil)
    assert "<img" not in html and "<script" not in html and "<b>" not in html
    assert '&lt;img src=&#34;file:///etc/passwd&#34;&gt;' in html
    assert '<img src="file:///etc/passwd">' in pdf_text(render_pdf(evil), tmp_path).replace("\n", "")


def test_fetcher_serves_only_template_assets(cycle):
    from weasyprint import HTML
    from weasyprint.urls import URLFetchingError

    fetcher = TemplateAssetFetcher()
    ok = fetcher.fetch((Path(__file__).resolve().parents[2] / "invoice_templates" / "invoice.css").as_uri())
    assert b"@page" in ok.read()
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/x.png", "https://example.org/a.css",
                (Path(__file__).resolve().parents[2] / "invoice_templates" / ".." / "pyproject.toml").as_uri()):
        with pytest.raises(URLFetchingError):
            fetcher.fetch(url)
    html = '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"><img src="file:///etc/hostname">hi'
    HTML(string=html, url_fetcher=TemplateAssetFetcher()).write_pdf()  # renders, fetching nothing
    fetcher2 = TemplateAssetFetcher()
    HTML(string=html, url_fetcher=fetcher2).write_pdf()
    assert sorted(fetcher2.refused) == ["file:///etc/hostname", "http://127.0.0.1:9/x.css"]


def test_tmf678_customer_bill_fields(cycle, billing_lake):
    biz = by_account(cycle, "ACC-DEMO-BIZ")
    doc = json.loads(open_store(billing_lake.output_dir).read_bytes(f"invoices/{PERIOD}/{biz.invoice_number}.json"),
                     parse_float=Decimal)
    for field in ("id", "href", "billNo", "billDate", "billingPeriod", "paymentDueDate", "amountDue", "remainingAmount",
                  "taxExcludedAmount", "taxIncludedAmount", "taxItem", "billingAccount", "state", "category",
                  "runType", "billDocument", "@type"):
        assert field in doc, field
    assert doc["@type"] == "CustomerBill" and doc["state"] == "validated" and doc["billNo"] == biz.invoice_number
    from pipelines.billing.documents import TMF_STATE

    tmf_states = {"new", "onHold", "validated", "sent", "settled", "partiallyPaid", "withdrawn"}  # TMF678 enum
    assert set(TMF_STATE.values()) <= tmf_states
    assert doc["billingPeriod"] == {"startDateTime": "2026-10-01T00:00:00Z", "endDateTime": "2026-11-01T00:00:00Z"}
    assert doc["taxIncludedAmount"] == {"unit": "EUR", "value": Decimal("300.48")}
    assert doc["taxExcludedAmount"]["value"] == Decimal("250.00")
    assert sum(t["taxAmount"]["value"] for t in doc["taxItem"]) == Decimal("50.48")
    rates = doc["appliedCustomerBillingRate"]
    line = ["recurringCharge", "discount", "recurringCharge", "discount"]  # October, November in advance
    assert [r["type"] for r in rates] == [*line, "usageCharge", *line, "commitmentTrueUp"]
    for r in rates:
        assert r["@type"] == "AppliedCustomerBillingRate" and r["isBilled"] is True
        assert r["bill"]["id"] == biz.invoice_id and {"unit", "value"} <= set(r["taxExcludedAmount"])
    assert sum(r["taxExcludedAmount"]["value"] for r in rates) == Decimal("250.00")
    assert b"300.48" in tmf678_json(biz), "amounts are exact JSON numbers, not floats or strings"


def test_gl_journal_balances(cycle, billing_lake):
    journal = gl_journal(**{k: v for k, v in zip(("invoices", "lines", "taxes"),
                                                   published_period(billing_lake, PERIOD).values(), strict=True)})
    # receivables 641.61 (sum of invoice totals) + discounts 60.24 + credits 3.50 debited
    assert journal["debit"].sum() == journal["credit"].sum() == Decimal("705.35")
    receivable = journal.filter(pl.col("gl_account") == "1200")
    assert receivable["debit"].to_list() == [sum((d.total for d in cycle.finalised), Decimal(0))]
    csv_text = open_store(billing_lake.output_dir).read_bytes(f"gl/{PERIOD}/journal.csv").decode()
    assert csv_text.splitlines()[0] == "billing_entity,period,gl_account,debit,credit,currency"
    assert "TBM,2026-10,4050,0.00,140.00,EUR" in csv_text  # B2B true-up: 250 - (80 recurring + 30 usage)


def _snapshot(settings) -> dict[str, bytes]:
    """Every lake and output object (Parquet, manifests, PDFs, JSON, GL CSV), by key."""
    snap = {}
    for uri, store in (("lake", open_store(settings.lake_uri, settings.s3)),
                       ("out", open_store(settings.output_dir, settings.s3))):
        for key in store.list():
            snap[f"{uri}/{key}"] = store.read_bytes(key)
    return snap


def test_byte_identical_rerun_from_scratch(tmp_path, local_settings):
    runs = []
    for name in ("a", "b"):
        settings = local_settings.with_(lake_uri=str(tmp_path / name / "lake"), output_dir=str(tmp_path / name / "out"))
        build_lake(settings)
        bill_cycle(settings, PERIOD, workers=2 if name == "a" else 1)  # pool or in-process: same bytes
        runs.append(_snapshot(settings))
    assert runs[0].keys() == runs[1].keys()
    assert any(k.endswith(".json") and "invoices/" in k for k in runs[0])
    assert any(k.endswith(".pdf") for k in runs[0])
    diff = [k for k in runs[0] if runs[0][k] != runs[1][k]]
    assert diff == []
    pdf = next(k for k in runs[0] if k.endswith(".pdf"))
    assert pdf_text(runs[0][pdf], tmp_path) == pdf_text(runs[1][pdf], tmp_path)


def test_cycle_on_s3(s3_store_settings, tmp_path):
    """Lake and documents on the moto S3 server give the same invoices as a local folder."""
    settings = s3_store_settings.with_(output_dir=s3_store_settings.lake_uri.replace("/lake", "/out"))
    build_lake(settings)
    result = bill_cycle(settings, PERIOD)
    assert len(result.finalised) == 7
    out = open_store(settings.output_dir, settings.s3)
    assert f"invoices/{PERIOD}/TBM-INV-00000001.pdf" in out.list("invoices/")
    assert published_period(settings, PERIOD)["invoices"]["total"].sum() == Decimal("641.61")


def test_warehouse_views(cycle, billing_lake):
    import duckdb

    from pipelines.warehouse import build_warehouse

    path, skipped = build_warehouse(billing_lake)
    assert not any(s.startswith("30_billing") for s in skipped)
    con = duckdb.connect(path, read_only=True)
    assert con.execute("select count(*) from billing_identity_breaks").fetchone() == (0,)
    assert con.execute("select sum(total) from billing_invoice_summary where status = 'finalised'").fetchone() == (
        Decimal("641.61"),)
    assert con.execute("select sum(amount) from billing_tax_summary where tax_code = 'VAT19' and tax_category = 'device'"
                       ).fetchone() == (Decimal("2.38"),)
    con.close()


def test_pdf_uses_lean_styles_and_one_font_family(cycle, tmp_path):
    """Throughput choices (docs/billing.md, Performance) keep the look: DejaVu Sans only (the page
    counter no longer falls back to a serif font), the invoice's own small user-agent sheet, and a
    tag-only whitespace strip that leaves the text intact."""
    from pipelines.billing.documents import _html_class

    fam = by_account(cycle, "ACC-FAM")
    path = tmp_path / "fam.pdf"
    path.write_bytes(render_pdf(fam))
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    names = {line.split()[0].split("+", 1)[-1] for line in fonts.splitlines()[2:]}
    assert names == {"DejaVu-Sans", "DejaVu-Sans-Bold"}
    import weasyprint

    assert "_ua_stylesheets" in vars(weasyprint.HTML), "WeasyPrint's hook is gone: the lean UA sheet is not used"
    assert len(_html_class()(string="<p>x</p>")._ua_stylesheets()) == 1
    assert "> <" not in render_html(fam) and "Please pay to" in render_html(fam)
    assert "Page 1 of 1" in pdf_text(path.read_bytes(), tmp_path)
