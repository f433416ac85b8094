"""Invoice drafts <-> the three published datasets (invoices, invoice_lines, invoice_tax_lines).

Rows are sorted before writing so the same invoices always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

import polars as pl

from pipelines.billing.compute import InvoiceDraft, Line, TaxLine
from schemas.contracts import INVOICE_LINE_SCHEMA, INVOICE_SCHEMA, INVOICE_TAX_LINE_SCHEMA

INVOICE_EXTRA: dict[str, pl.DataType] = {
    "revision": pl.Int32,                # 0, then +1 for each void-and-reissue
    "jurisdiction": pl.String,
    "account_name": pl.String,
    "related_invoice_number": pl.String,  # credit note -> the invoice it credits
    "status_reason": pl.String,           # why voided / why credited
}
INVOICES_SCHEMA = {**INVOICE_SCHEMA, **INVOICE_EXTRA}


def invoice_row(d: InvoiceDraft) -> dict:
    return {
        "invoice_id": d.invoice_id, "invoice_number": d.invoice_number, "account_id": d.account_id,
        "billing_entity": d.billing_entity, "period": d.period, "period_start": d.period_start,
        "period_end": d.period_end, "status": d.status, "kind": d.kind, "issue_date": d.issue_date,
        "due_date": d.due_date, "currency": d.currency, "subtotal": d.subtotal, "tax_total": d.tax_total,
        "total": d.total, "previous_balance": d.previous_balance, "payments_received": d.payments_received,
        "amount_due": d.amount_due, "payment_reference": d.payment_reference, "revision": d.revision,
        "jurisdiction": d.jurisdiction, "account_name": d.account_name,
        "related_invoice_number": d.related_invoice_number, "status_reason": d.status_reason,
    }


def line_rows(d: InvoiceDraft) -> list[dict]:
    out = []
    for no, ln in enumerate(d.lines, start=1):
        row = {f.name: getattr(ln, f.name) for f in fields(Line)}
        row.update(invoice_id=d.invoice_id, line_no=no, account_id=d.account_id, period=d.period, currency=d.currency)
        out.append(row)
    return out


def tax_rows(d: InvoiceDraft) -> list[dict]:
    out = []
    for t in d.tax_lines:
        row = {f.name: getattr(t, f.name) for f in fields(TaxLine)}
        row.update(invoice_id=d.invoice_id, account_id=d.account_id, period=d.period, currency=d.currency)
        out.append(row)
    return out


def _frame(rows: list[dict], schema: dict[str, pl.DataType], sort: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return frame.select(list(schema)).sort(sort)


def invoices_frame(drafts: Iterable[InvoiceDraft]) -> pl.DataFrame:
    return _frame([invoice_row(d) for d in drafts], INVOICES_SCHEMA, ["invoice_id"])


LINE_FIELDS = tuple(f.name for f in fields(Line))


def lines_frame(drafts: Iterable[InvoiceDraft]) -> pl.DataFrame:
    """Column by column (a row dict per line is the slow part at 100,000 accounts)."""
    cols: dict[str, list] = {name: [] for name in INVOICE_LINE_SCHEMA}
    own = [n for n in LINE_FIELDS if n in cols]
    for d in drafts:
        n = len(d.lines)
        cols["invoice_id"] += [d.invoice_id] * n
        cols["account_id"] += [d.account_id] * n
        cols["period"] += [d.period] * n
        cols["currency"] += [d.currency] * n
        cols["line_no"] += range(1, n + 1)
        for name in own:
            cols[name] += [getattr(ln, name) for ln in d.lines]
    return pl.DataFrame(cols, schema=INVOICE_LINE_SCHEMA).sort(["invoice_id", "line_no"])


def tax_frame(drafts: Iterable[InvoiceDraft]) -> pl.DataFrame:
    return _frame([r for d in drafts for r in tax_rows(d)], INVOICE_TAX_LINE_SCHEMA,
                  ["invoice_id", "tax_category", "tax_code"])


def lines_from_rows(rows: Iterable[dict]) -> tuple[Line, ...]:
    names = [f.name for f in fields(Line)]
    return tuple(Line(**{n: r[n] for n in names}) for r in sorted(rows, key=lambda r: r["line_no"]))


def taxes_from_rows(rows: Iterable[dict]) -> tuple[TaxLine, ...]:
    names = [f.name for f in fields(TaxLine)]
    return tuple(TaxLine(**{n: r[n] for n in names})
                 for r in sorted(rows, key=lambda r: (r["tax_category"], r["tax_code"])))


def draft_from_rows(inv: dict, lines: Iterable[dict], taxes: Iterable[dict], address: dict | None = None) -> InvoiceDraft:
    """Rebuild a published invoice (for credit notes, documents and verification)."""
    return InvoiceDraft(
        invoice_id=inv["invoice_id"], account_id=inv["account_id"], account_name=inv.get("account_name") or "",
        billing_entity=inv["billing_entity"], period=inv["period"], period_start=inv["period_start"],
        period_end=inv["period_end"], issue_date=inv["issue_date"], due_date=inv["due_date"], currency=inv["currency"],
        jurisdiction=inv.get("jurisdiction") or "", revision=int(inv.get("revision") or 0),
        lines=lines_from_rows(lines), tax_lines=taxes_from_rows(taxes), prepaid=(),
        previous_balance=inv["previous_balance"], payments_received=inv["payments_received"],
        address=address or {}, kind=inv["kind"], status=inv["status"], invoice_number=inv["invoice_number"],
        related_invoice_number=inv.get("related_invoice_number"), status_reason=inv.get("status_reason"),
    )
