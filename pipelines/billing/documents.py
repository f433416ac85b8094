"""Invoice documents: PDF (Jinja2 + WeasyPrint), TMF678 CustomerBill JSON and the GL journal CSV.

Safety: Jinja2 autoescapes every value; WeasyPrint gets a URL fetcher that serves only files inside
``invoice_templates/`` and refuses everything else (no network, no file read driven by data).
Reproducibility: no clocks; PDF dates come from the issue date and the PDF identifier from the
invoice id, so a rerun gives the same PDF text (and in practice the same bytes).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.billing.compute import GL, InvoiceDraft, Line
from pipelines.common.money import minor_units
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store

TEMPLATES = Path(__file__).resolve().parents[2] / "invoice_templates"
OPERATOR = {"name": "Telbill Mobile", "address": "Telbill Mobile GmbH, Beispielstraße 1, 10115 Berlin, Germany",
            "vat_id": "DE000000000", "web": "telbill.example", "iban": "DE02 1001 0010 0000 0000 00"}
TMF_STATE = {"draft": "new", "finalised": "validated", "voided": "withdrawn"}  # CustomerBillStateType
TMF_TYPE = {"recurring": "recurringCharge", "usage": "usageCharge", "one_off": "oneTimeCharge",
            "discount": "discount", "commitment": "commitmentTrueUp", "adjustment": "adjustment"}


class TemplateAssetFetcher:
    """Serves only the project's own template assets; every other URL is refused (and recorded)."""

    def __init__(self, root: Path = TEMPLATES) -> None:
        self.root = root.resolve()
        self.refused: list[str] = []
        self._fail_on_errors = False  # WeasyPrint reads this: a refused asset is skipped, not fatal

    def fetch(self, url: str, headers: Any = None) -> Any:  # WeasyPrint's URLFetcher interface
        from urllib.parse import unquote, urlsplit

        from weasyprint.urls import URLFetcherResponse, URLFetchingError

        parts = urlsplit(url)
        path = Path(unquote(parts.path)).resolve() if parts.scheme == "file" else None
        if path is None or not path.is_relative_to(self.root) or not path.is_file():
            self.refused.append(url)
            raise URLFetchingError(f"refused to fetch {url!r}: only invoice template assets are served")
        return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": _mime(path)})

    __call__ = fetch


def _mime(path: Path) -> str:
    return {".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}.get(path.suffix, "application/octet-stream")


@lru_cache(maxsize=1)
def _environment():  # noqa: ANN202
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True,
                                                                                            default_for_string=True))


# -- the view model (pure) ---------------------------------------------------------------------------
def _amt(value: Decimal, currency: str) -> str:
    return f"{value:,.{minor_units(currency)}f}"


def _qty(service: str | None, quantity: int | None) -> str:
    if quantity is None:
        return ""
    if service == "voice":
        return f"{quantity // 60}:{quantity % 60:02d} min"
    if service == "data":
        return f"{Decimal(quantity) / Decimal(1_000_000):,.2f} MB"
    return f"{quantity:,}"


def _detail(ln: Line) -> str:
    if ln.line_type == "usage":
        return f"{_qty(ln.service, ln.quantity)} ({_qty(ln.service, ln.quantity_included)} included)"
    if ln.line_type == "recurring" and ln.service_start and ln.service_end:
        return f"{ln.service_start} to {ln.service_end - timedelta(days=1)}"
    return ln.ref or ""


def view_model(d: InvoiceDraft) -> dict[str, Any]:
    """Everything the template prints, as display strings (rounding already done in the amounts)."""
    cur = d.currency
    groups: dict[str, list[dict[str, str]]] = {}
    for ln in d.lines:
        title = f"Line {ln.msisdn}" if ln.msisdn else "Account charges and credits"
        groups.setdefault(title, []).append({"description": ln.description, "detail": _detail(ln),
                                             "amount": _amt(ln.amount, cur)})
    usage = [{"msisdn": ln.msisdn or "", "service": ln.service or "", "used": _qty(ln.service, ln.quantity),
              "included": _qty(ln.service, ln.quantity_included), "charged": _qty(ln.service, ln.quantity_charged),
              "amount": _amt(ln.amount, cur)} for ln in d.lines if ln.line_type == "usage"]
    prepaid = [{"msisdn": p.msisdn, "plan_id": p.plan_id, "service": p.service, "used": _qty(p.service, p.quantity),
                "charge": _amt(p.charge, cur), "topups": _amt(p.topups, cur)} for p in d.prepaid]
    taxes = [{"name": t.name, "tax_category": t.tax_category, "rate": f"{t.rate * 100:.2f}%",
              "base": _amt(t.base, cur), "amount": _amt(t.amount, cur)} for t in d.tax_lines]
    return {
        "title": "Credit note" if d.kind == "credit_note" else "Invoice", "number": d.invoice_number or "DRAFT",
        "status": d.status, "account_id": d.account_id, "account_name": d.account_name, "address": dict(d.address),
        "period_start": d.period_start, "period_last": d.period_end - timedelta(days=1), "issue_date": d.issue_date,
        "due_date": d.due_date, "currency": cur, "related": d.related_invoice_number,
        "previous_balance": _amt(d.previous_balance, cur), "payments_received": _amt(-d.payments_received, cur),
        "subtotal": _amt(d.subtotal, cur), "tax_total": _amt(d.tax_total, cur), "total": _amt(d.total, cur),
        "amount_due": _amt(d.amount_due, cur) + f" {cur}", "payment_reference": d.payment_reference,
        "groups": [{"title": k, "lines": v} for k, v in groups.items()], "usage": usage, "prepaid": prepaid,
        "taxes": taxes,
    }


_BETWEEN_TAGS = re.compile(r">\s+<")


def render_html(d: InvoiceDraft) -> str:
    """The invoice as HTML; whitespace between tags is dropped (it only adds boxes for WeasyPrint to lay out)."""
    html = _environment().get_template("invoice.html.j2").render(inv=view_model(d), operator=OPERATOR)
    return _BETWEEN_TAGS.sub("><", html)


def render_pdf(d: InvoiceDraft, fetcher: TemplateAssetFetcher | None = None) -> bytes:
    """One invoice as PDF bytes; metadata dates from the issue date, identifier from the invoice id."""
    html = _html_class()(string=render_html(d), base_url=TEMPLATES.as_uri() + "/", url_fetcher=fetcher or _fetcher())
    return html.write_pdf(stylesheets=[_stylesheet()], pdf_identifier=d.invoice_id.encode(), font_config=_font_config())


@lru_cache(maxsize=1)
def _html_class():  # noqa: ANN202
    """WeasyPrint's ``HTML`` with ``invoice_templates/invoice_ua.css`` as the user-agent stylesheet.

    Matching the full HTML5 user-agent sheet against every element was about a sixth of a render; the
    invoice uses a dozen elements. ``_ua_stylesheets`` is WeasyPrint's hook (70.x); should a later
    version drop it, the override is simply not called and the full sheet is used (slower, same look).
    """
    from weasyprint import CSS, HTML

    ua = CSS(filename=str(TEMPLATES / "invoice_ua.css"), url_fetcher=_fetcher())

    class InvoiceHTML(HTML):
        def _ua_stylesheets(self, forms: bool = False) -> list:
            return [ua]

    return InvoiceHTML


@lru_cache(maxsize=1)
def _fetcher() -> TemplateAssetFetcher:
    return TemplateAssetFetcher()


@lru_cache(maxsize=1)
def _font_config():  # noqa: ANN202 - fonts are loaded once per process
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@lru_cache(maxsize=1)
def _stylesheet():  # noqa: ANN202 - parsed once per process (about a third of a render otherwise)
    from weasyprint import CSS

    return CSS(filename=str(TEMPLATES / "invoice.css"), base_url=TEMPLATES.as_uri() + "/", url_fetcher=_fetcher(),
               font_config=_font_config())


def _warm() -> None:
    """Pool initialiser: load templates, the stylesheet and fonts once per worker process."""
    _environment().get_template("invoice.html.j2")
    # one tiny render: fonts, shaping caches and cffi type parsing are paid here, not by the first invoice
    _html_class()(string="<p>Telbill 0.00 EUR <strong>1</strong></p>", url_fetcher=_fetcher()).write_pdf(
        stylesheets=[_stylesheet()], font_config=_font_config())


def _render_one(d: InvoiceDraft) -> tuple[str, bytes, float]:
    import time

    start = time.process_time()
    pdf = render_pdf(d)
    return d.invoice_id, pdf, time.process_time() - start


class PdfRenderer:
    """A pool of rendering processes kept for many batches (start-up paid once):
    ``with PdfRenderer(2) as r: r.render(drafts)``. One worker renders in this process."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.cpu_s = 0.0
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> PdfRenderer:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_warm,
                                             mp_context=_pool_context())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def render(self, drafts: Sequence[InvoiceDraft]) -> dict[str, bytes]:
        if self._pool is None or len(drafts) < 2:
            results = [_render_one(d) for d in drafts]
        else:
            chunk = max(1, len(drafts) // (self.workers * 8))
            results = list(self._pool.map(_render_one, drafts, chunksize=chunk))
        self.cpu_s += sum(r[2] for r in results)
        return {invoice_id: pdf for invoice_id, pdf, _ in results}


def render_many(drafts: Sequence[InvoiceDraft], workers: int = 1, stats: dict | None = None) -> dict[str, bytes]:
    """PDFs for many invoices, spread over ``workers`` processes (1 = in this process).

    ``stats`` (optional) receives ``cpu_s``: CPU seconds spent rendering, start-up excluded."""
    with PdfRenderer(workers) as renderer:
        pdfs = renderer.render(drafts)
    if stats is not None:
        stats["cpu_s"] = renderer.cpu_s
    return pdfs


def _pool_context():  # noqa: ANN202
    """Workers fork from a small server process with WeasyPrint preloaded, not from the (possibly
    multi-GB) bill-cycle process: no copy-on-write storms or garbage-collector walks over its heap."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipelines.billing.documents", "weasyprint", "jinja2"])
    return ctx


# -- TMF678 CustomerBill ------------------------------------------------------------------------------
def _money(value: Decimal, currency: str) -> dict[str, Any]:
    return {"unit": currency, "value": value}


def _ts(day: Any) -> str:
    return f"{day}T00:00:00Z"


def tmf678(d: InvoiceDraft) -> dict[str, Any]:
    """A TMF678 ``CustomerBill`` with its ``AppliedCustomerBillingRate`` items embedded (exact amounts)."""
    cur = d.currency
    href = f"/tmf-api/customerBillManagement/v5/customerBill/{d.invoice_id}"
    rates = []
    for no, ln in enumerate(d.lines, start=1):
        rate = {
            "@type": "AppliedCustomerBillingRate", "id": f"{d.invoice_id}-{no}",
            "href": f"/tmf-api/customerBillManagement/v5/appliedCustomerBillingRate/{d.invoice_id}-{no}",
            "name": ln.charge_code, "description": ln.description, "date": _ts(d.issue_date), "isBilled": True,
            "type": TMF_TYPE.get(ln.line_type, ln.line_type),
            "bill": {"@type": "BillRef", "id": d.invoice_id, "href": href},
            "billingAccount": {"@type": "BillingAccountRef", "id": d.account_id},
            "taxExcludedAmount": _money(ln.amount, cur),
            "characteristic": [{"@type": "Characteristic", "name": "preciseAmount", "valueType": "string",
                                "value": str(ln.amount_precise)},
                               {"@type": "Characteristic", "name": "taxCategory", "valueType": "string",
                                "value": ln.tax_category}],
        }
        if ln.service_start and ln.service_end:
            rate["periodCoverage"] = {"startDateTime": _ts(ln.service_start), "endDateTime": _ts(ln.service_end)}
        if ln.subscription_id:
            rate["product"] = {"@type": "ProductRef", "id": ln.subscription_id, "name": ln.msisdn or ""}
        rates.append(rate)
    return {
        "@type": "CustomerBill", "id": d.invoice_id, "href": href, "billNo": d.invoice_number or "",
        "category": "creditNote" if d.kind == "credit_note" else "normal", "state": TMF_STATE[d.status],
        "runType": "onCycle" if d.kind == "invoice" else "offCycle",
        "billDate": _ts(d.issue_date), "lastUpdate": _ts(d.issue_date), "paymentDueDate": _ts(d.due_date),
        "billingPeriod": {"startDateTime": _ts(d.period_start), "endDateTime": _ts(d.period_end)},
        "amountDue": _money(d.amount_due, cur), "remainingAmount": _money(d.amount_due, cur),
        "taxExcludedAmount": _money(d.subtotal, cur), "taxIncludedAmount": _money(d.total, cur),
        "taxItem": [{"@type": "TaxItem", "taxCategory": f"{t.tax_code}/{t.tax_category}", "taxRate": t.rate,
                     "taxAmount": _money(t.amount, cur)} for t in d.tax_lines],
        "billingAccount": {"@type": "BillingAccountRef", "id": d.account_id, "name": d.account_name},
        "billDocument": [{"@type": "AttachmentRef", "id": d.invoice_id, "name": f"{d.invoice_number}.pdf",
                          "mimeType": "application/pdf"}],
        "paymentMethod": [], "appliedPayment": [],
        "relatedParty": [{"@type": "RelatedPartyRefOrPartyRoleRef", "role": "billIssuer", "id": d.billing_entity}],
        "financialAccount": {"@type": "FinancialAccountRef", "id": d.account_id},
        "appliedCustomerBillingRate": rates,
        "characteristic": [{"@type": "Characteristic", "name": "paymentReference", "valueType": "string",
                            "value": d.payment_reference}],
    }


def canonical_json(value: Any, indent: str = "") -> str:
    """Sorted keys, two-space indent, Decimals written as exact JSON numbers (never via float)."""
    import json

    nxt = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{nxt}{json.dumps(str(k), ensure_ascii=False)}: {canonical_json(v, nxt)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(nxt + canonical_json(v, nxt) for v in value) + "\n" + indent + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


def tmf678_json(d: InvoiceDraft) -> bytes:
    return (canonical_json(tmf678(d)) + "\n").encode()


# -- GL journal -----------------------------------------------------------------------------------------
def gl_journal(invoices: pl.DataFrame, lines: pl.DataFrame, taxes: pl.DataFrame) -> pl.DataFrame:
    """Finalised invoices and credit notes: revenue and tax credited per GL account, receivables
    debited with the totals. Debits equal credits (tested)."""
    final = invoices.filter(pl.col("status") == "finalised").select("invoice_id", "billing_entity", "currency")
    keys = ["billing_entity", "period", "gl_account", "currency"]
    revenue = pl.concat([
        lines.join(final, on=["invoice_id", "currency"]).select(*keys, net=-pl.col("amount").cast(pl.Decimal(38, 2))),
        taxes.join(final, on=["invoice_id", "currency"]).select(*keys, net=-pl.col("amount").cast(pl.Decimal(38, 2))),
        invoices.filter(pl.col("status") == "finalised").select(
            "billing_entity", "period", gl_account=pl.lit(GL["receivable"]), currency="currency",
            net=pl.col("total").cast(pl.Decimal(38, 2))),
    ])
    zero = pl.lit(0).cast(pl.Decimal(38, 2))
    return (revenue.group_by(keys).agg(pl.col("net").sum())
            .with_columns(debit=pl.when(pl.col("net") > 0).then(pl.col("net")).otherwise(zero),
                          credit=pl.when(pl.col("net") < 0).then(-pl.col("net")).otherwise(zero))
            .select(*keys, "debit", "credit").sort(keys))


def gl_csv(journal: pl.DataFrame) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["billing_entity", "period", "gl_account", "debit", "credit", "currency"])
    for r in journal.iter_rows(named=True):
        w.writerow([r["billing_entity"], r["period"], r["gl_account"], f"{r['debit']:.2f}", f"{r['credit']:.2f}",
                    r["currency"]])
    return buf.getvalue().encode()


# -- writing --------------------------------------------------------------------------------------------
def document_key(d: InvoiceDraft, ext: str) -> str:
    return f"invoices/{d.period}/{d.invoice_number or d.invoice_id}.{ext}"


def write_documents(settings: Settings, period: str, drafts: Sequence[InvoiceDraft], workers: int = 1) -> list[str]:
    """PDF + TMF678 JSON per invoice into the output store, and the period's GL journal; returns keys."""
    out = open_store(settings.output_dir, settings.s3)
    keys = []
    pdfs = render_many(drafts, workers)
    for d in sorted(drafts, key=lambda d: d.invoice_id):
        for ext, data in (("pdf", pdfs[d.invoice_id]), ("json", tmf678_json(d))):
            out.write_bytes(document_key(d, ext), data)
            keys.append(document_key(d, ext))
    return keys


def write_journal(settings: Settings, period: str, frames: dict[str, pl.DataFrame]) -> str:
    """The period's GL journal, rebuilt from the published invoices (so voids and credit notes show)."""
    out = open_store(settings.output_dir, settings.s3)
    key = f"gl/{period}/journal.csv"
    out.write_bytes(key, gl_csv(gl_journal(frames["invoices"], frames["invoice_lines"], frames["invoice_tax_lines"])))
    return key
