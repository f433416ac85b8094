"""Correcting finalised invoices (void, credit note) and verifying a finalised cycle.

A finalised invoice is immutable: voiding only changes its status (its number stays used, so the
series stays gapless) and a rerun of the cycle then issues revision + 1 with a new number. A credit
note is its own numbered document (series CN) with negative lines, in the original's period.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

import polars as pl

from pipelines.billing.catalogue import load_catalogue
from pipelines.billing.compute import (
    InvoiceDraft,
    invoice_id_for,
    make_line,
    tax_lines,
)
from pipelines.billing.cycle import (
    assign_numbers,
    compute_drafts,
    find_invoice,
    load_inputs,
    publish_invoices,
    published_period,
)
from pipelines.billing.frames import draft_from_rows
from pipelines.common.money import money
from pipelines.common.settings import Settings


def _published_draft(settings: Settings, invoice_number: str) -> tuple[InvoiceDraft, dict[str, pl.DataFrame]]:
    inv = find_invoice(settings, invoice_number)
    frames = published_period(settings, inv["period"])
    lines = frames["invoice_lines"].filter(pl.col("invoice_id") == inv["invoice_id"]).to_dicts()
    taxes = frames["invoice_tax_lines"].filter(pl.col("invoice_id") == inv["invoice_id"]).to_dicts()
    return draft_from_rows(inv, lines, taxes), frames


def void_invoice(settings: Settings, invoice_number: str, reason: str) -> str:
    draft, frames = _published_draft(settings, invoice_number)
    if draft.status != "finalised":
        raise ValueError(f"{invoice_number} is {draft.status}; only finalised invoices can be voided")
    inv = frames["invoices"].filter(pl.col("invoice_id") == draft.invoice_id).with_columns(
        status=pl.lit("voided"), status_reason=pl.lit(reason))
    publish_invoices(settings, draft.period, [], {"void": invoice_number}, "", status_changes=inv)
    from pipelines.billing.documents import document_key, tmf678_json, write_journal
    from pipelines.common.storage import open_store

    voided = replace(draft, status="voided", status_reason=reason)
    open_store(settings.output_dir, settings.s3).write_bytes(document_key(voided, "json"), tmf678_json(voided))
    write_journal(settings, draft.period, published_period(settings, draft.period))
    return (f"voided {invoice_number} ({draft.account_id}, {draft.period}); rerun `telbill bill-cycle --period "
            f"{draft.period} --accounts {draft.account_id}` to reissue it")


def issue_credit_note(settings: Settings, invoice_number: str, reason: str, issue_date: date,
                      net_amount: str | Decimal | None = None) -> InvoiceDraft:
    """Credit the whole invoice (every line and tax negated) or a net amount of telecom charges."""
    original, frames = _published_draft(settings, invoice_number)
    if original.status != "finalised" or original.kind != "invoice":
        raise ValueError(f"{invoice_number} is a {original.status} {original.kind}; credit a finalised invoice")
    prior = frames["invoices"].filter((pl.col("related_invoice_number") == invoice_number)
                                      & (pl.col("kind") == "credit_note"))
    revision = prior.height
    if net_amount is None:
        lines = tuple(replace(ln, amount_precise=-ln.amount_precise, amount=-ln.amount, line_type="credit")
                      for ln in original.lines)
        taxes = tuple(replace(t, base=-t.base, amount_precise=-t.amount_precise, amount=-t.amount)
                      for t in original.tax_lines)
    else:
        amount = money(net_amount)
        if not 0 < amount <= original.subtotal:
            raise ValueError(f"credit amount must be > 0 and <= the invoice's net {original.subtotal}")
        lines = (make_line(-amount, original.currency, line_type="credit", charge_code="CREDIT",
                           description=f"Credit: {reason}", tax_category="telecom", gl_account="4950",
                           ref=invoice_number),)
        cat = load_catalogue(settings.tariffs_dir)
        taxes = tuple(tax_lines(lines, cat, original.jurisdiction, original.issue_date, original.currency))
    note = replace(original, invoice_id=invoice_id_for(original.account_id, original.period, f"credit_note:{invoice_number}",
                                                       revision),
                   kind="credit_note", status="draft", invoice_number=None, issue_date=issue_date,
                   due_date=issue_date, lines=lines, tax_lines=taxes, previous_balance=Decimal(0),
                   payments_received=Decimal(0), related_invoice_number=invoice_number, status_reason=reason,
                   revision=revision)
    [note] = assign_numbers(settings, [note])
    publish_invoices(settings, note.period, [note], {"credit_note": invoice_number}, "")
    from pipelines.billing.documents import write_documents, write_journal

    write_documents(settings, note.period, [note])
    write_journal(settings, note.period, published_period(settings, note.period))
    return note


@dataclass
class VerifyReport:
    period: str
    checked: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def message(self) -> str:
        if self.ok:
            return f"{self.period}: verified {self.checked} finalised invoice(s): no differences"
        return f"{self.period}: {len(self.differences)} difference(s) in {self.checked} finalised invoice(s)"


def _fingerprint(d: InvoiceDraft) -> dict[str, object]:
    return {
        "lines": [(ln.line_type, ln.charge_code, ln.subscription_id, ln.quantity, ln.amount_precise, ln.amount)
                  for ln in d.lines],
        "taxes": [(t.tax_code, t.tax_category, t.base, t.amount) for t in d.tax_lines],
        "subtotal": d.subtotal, "tax_total": d.tax_total, "total": d.total,
        "previous_balance": d.previous_balance, "payments_received": d.payments_received,
    }


def _rows_by_invoice(frame: pl.DataFrame) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in frame.iter_rows(named=True):
        out.setdefault(row["invoice_id"], []).append(row)
    return out


def verify_cycle(settings: Settings, period: str, accounts: list[str] | None = None) -> VerifyReport:
    """Recompute every finalised invoice of the period from today's lake and compare, field by field."""
    frames = published_period(settings, period)
    final = frames["invoices"].filter((pl.col("status") == "finalised") & (pl.col("kind") == "invoice"))
    if accounts:
        final = final.filter(pl.col("account_id").is_in(accounts))
    report = VerifyReport(period)
    inputs = load_inputs(settings, period)
    cat = load_catalogue(settings.tariffs_dir)
    # balances are recomputed as they stood: ignore this period's own invoices
    inputs = replace(inputs, invoices=inputs.invoices.filter(pl.col("period") != period))
    by_account = {r["account_id"]: r for r in final.to_dicts()}
    revisions = {a: int(r["revision"]) for a, r in by_account.items()}
    as_of = {r["issue_date"] for r in by_account.values()}
    issue = as_of.pop() if len(as_of) == 1 else None
    drafts, _, errors = compute_drafts(inputs, cat, period, sorted(a for a in by_account if a in inputs.accounts),
                                       revisions, issue)
    recomputed = {d.account_id: d for d in drafts}
    for acc, code, msg in errors:
        report.differences.append(f"{acc}: cannot recompute: {code}: {msg}")
    lines_by = _rows_by_invoice(frames["invoice_lines"])
    taxes_by = _rows_by_invoice(frames["invoice_tax_lines"])
    for acc, row in sorted(by_account.items()):
        report.checked += 1
        lines, taxes = lines_by.get(row["invoice_id"], []), taxes_by.get(row["invoice_id"], [])
        published = _fingerprint(draft_from_rows(row, lines, taxes))
        again = recomputed.get(acc)
        if again is None:
            report.differences.append(f"{row['invoice_number']} ({acc}): no longer billable")
            continue
        fresh = _fingerprint(again)
        for key in published:
            if published[key] != fresh[key]:
                report.differences.append(f"{row['invoice_number']} ({acc}): {key} published {published[key]} "
                                          f"recomputed {fresh[key]}")
    return report
