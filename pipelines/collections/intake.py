"""Payment intake: parse a file, drop duplicates, match each payment to an invoice or account, publish.

Outcome of every line (conservation: lines in = matched + top_up + duplicate + suspense):
- ``matched``: a bill payment, reversal or chargeback tied to an account (and to an invoice when its
  payment reference names one); it goes to the ``payments`` dataset and the allocation ledger.
- ``top_up``: a prepaid top-up tied to a line (by MSISDN); published in ``topups`` (the dataset the
  bill cycle reads for the prepaid summary), never in ``payments`` and never allocated to invoices.
- ``duplicate``: the payment id was already imported (from this or an earlier file).
- ``suspense``: held with a reason code (unreadable line, no match, currency mismatch, unknown original).

Matching order for a payment: payment reference (structured field, else any token of the bank
remittance text) -> account number quoted by the payer -> MSISDN (wallet / retail). Reversals and
chargebacks are matched to the payment they undo.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import polars as pl

from pipelines.collections import lake as lk
from pipelines.collections.layouts import ParsedLine, PaymentEvent, parse_payment_file
from pipelines.common.partitions import digest, published_manifests, run_id_for, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import PAYMENT_INTAKE_SCHEMA, PAYMENT_SCHEMA, TOPUP_SCHEMA

TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/]*[A-Za-z0-9]|[A-Za-z0-9]")


@dataclass
class MatchIndex:
    """What a payment can be matched against, built once per import."""

    references: dict[str, tuple[str | None, str, str]]        # reference -> (invoice_id|None, account, currency)
    accounts: dict[str, str]                                  # account_id -> currency
    lines: dict[str, list[tuple[date, date | None, str, str]]]  # msisdn -> [(from, to, account, subscription)]
    payments: dict[str, dict] = field(default_factory=dict)   # payment_id -> matched payment row
    reversed_ids: set[str] = field(default_factory=set)
    seen_ids: set[str] = field(default_factory=set)


def payment_id_for(kind: str, source_payment_id: str) -> str:
    return "PAY-" + digest(kind, source_payment_id)


def build_index(invoices: pl.DataFrame, accounts: pl.DataFrame, subscriptions: pl.DataFrame,
                intake: pl.DataFrame, resolutions: pl.DataFrame | None = None) -> MatchIndex:
    """Reference, account and MSISDN lookups plus what earlier imports already hold."""
    currencies = dict(zip(accounts["account_id"].to_list(), accounts["currency"].to_list(), strict=True))
    for acc, cur in invoices.select("account_id", "currency").unique().sort("account_id").iter_rows():
        currencies.setdefault(acc, cur)
    references: dict[str, tuple[str | None, str, str]] = {}
    for inv_id, acc, cur, ref, status in invoices.sort("invoice_id").select(
        "invoice_id", "account_id", "currency", "payment_reference", "status"
    ).iter_rows():
        if ref:
            references[_norm(ref)] = (inv_id if status == "finalised" else None, acc, cur)
    lines: dict[str, list[tuple[date, date | None, str, str]]] = {}
    for msisdn, acc, sub, vf, vt in subscriptions.sort("valid_from", "subscription_id").select(
        "msisdn", "account_id", "subscription_id", "valid_from", "valid_to"
    ).iter_rows():
        lines.setdefault(msisdn, []).append((vf.date(), vt.date() if vt else None, acc, sub))
    index = MatchIndex(references, currencies, lines)
    live = intake.filter(pl.col("outcome").is_in(["matched", "top_up"]))
    if resolutions is not None:
        live = pl.concat([live, resolutions.filter(pl.col("outcome").is_in(["matched", "top_up"]))
                          .select(live.columns)])
    for row in live.iter_rows(named=True):
        index.payments[row["payment_id"]] = row
        if row["original_payment_id"]:
            index.reversed_ids.add(row["original_payment_id"])
    index.seen_ids.update(intake.filter(pl.col("outcome") != "duplicate")["payment_id"].to_list())
    return index


def _norm(reference: str) -> str:
    return reference.strip().upper()


def _line_for_msisdn(index: MatchIndex, msisdn: str | None, on: date) -> tuple[str, str] | None:
    """(account, subscription) of the line holding ``msisdn`` on a date."""
    for valid_from, valid_to, account, sub in reversed(index.lines.get(msisdn or "", [])):
        if valid_from <= on and (valid_to is None or on < valid_to):
            return account, sub
    return None


def match_payment(ev: PaymentEvent, index: MatchIndex) -> tuple[dict, str | None, str | None]:
    """(match fields, reason_code, message) for a bill payment or top-up; reason None when matched."""
    if ev.purpose == "top_up":
        line = _line_for_msisdn(index, ev.msisdn, ev.received_date)
        if line is None:
            return {}, "UNKNOWN_MSISDN", f"top-up for MSISDN {ev.msisdn!r} with no line on {ev.received_date}"
        found = {"account_id": line[0], "subscription_id": line[1], "invoice_id": None, "match_method": "msisdn"}
        return _with_currency(found, ev, index)
    candidates = [ev.payment_reference] if ev.payment_reference else []
    candidates += TOKEN.findall(ev.remittance_text)
    for token in candidates:
        hit = index.references.get(_norm(token))
        if hit:
            invoice_id, account, _ = hit
            found = {"account_id": account, "invoice_id": invoice_id, "match_method": "reference",
                     "payment_reference": _norm(token)}
            return _with_currency(found, ev, index)
    for token in ([ev.account_ref] if ev.account_ref else []) + TOKEN.findall(ev.remittance_text):
        if token in index.accounts:
            return _with_currency({"account_id": token, "invoice_id": None, "match_method": "account"}, ev, index)
    line = _line_for_msisdn(index, ev.msisdn, ev.received_date)
    if line:
        return _with_currency({"account_id": line[0], "invoice_id": None, "match_method": "msisdn"}, ev, index)
    quoted = ev.payment_reference or ev.account_ref or ev.remittance_text.strip() or "nothing"
    return {}, "NO_MATCH", f"no known payment reference, account or MSISDN (payer quoted {quoted!r})"


def _with_currency(found: dict, ev: PaymentEvent, index: MatchIndex) -> tuple[dict, str | None, str | None]:
    expected = index.accounts.get(found["account_id"])
    if expected and expected != ev.currency:
        return found, "CURRENCY_MISMATCH", f"paid in {ev.currency}, account {found['account_id']} bills in {expected}"
    return found, None, None


def match_reversal(ev: PaymentEvent, kind: str, index: MatchIndex) -> tuple[dict, str | None, str | None]:
    """Tie a reversal / chargeback to the payment it undoes (same account, same invoice, same amount)."""
    original_id = payment_id_for(kind, ev.original_source_id or "")
    original = index.payments.get(original_id)
    found = {"original_payment_id": original_id}
    if original is None or original["event_type"] != "payment":
        return found, "ORIGINAL_NOT_FOUND", f"{ev.event_type} of {ev.original_source_id!r}, which is not a matched payment"
    if original_id in index.reversed_ids:
        return found, "ALREADY_REVERSED", f"payment {ev.original_source_id!r} was already reversed"
    if ev.amount != -original["amount"] or ev.currency != original["currency"]:
        return found, "REVERSAL_AMOUNT_MISMATCH", (
            f"{ev.event_type} of {ev.amount} {ev.currency} does not undo {original['amount']} {original['currency']}")
    found.update(account_id=original["account_id"], invoice_id=original["invoice_id"], match_method="original",
                 purpose=original["purpose"], payment_reference=original["payment_reference"])
    return found, None, None


def classify(lines: list[ParsedLine], kind: str, index: MatchIndex, source_file: str, sha: str,
             rematch: bool = False) -> list[dict]:
    """One intake row per line with its outcome; updates ``index`` so later lines see earlier ones."""
    rows = []
    for line in lines:
        base = {"source_file": source_file, "file_sha256": sha, "record_offset": line.line_no, "kind": kind}
        ev = line.event
        if ev is None:
            rows.append({**base, "payment_id": "PAY-" + digest(kind, sha, str(line.line_no)),
                         "outcome": "suspense", "reason_code": line.reason_code, "message": line.message})
            continue
        pid = payment_id_for(kind, ev.source_payment_id)
        row = {**base, "payment_id": pid, "source_payment_id": ev.source_payment_id, "channel": ev.channel,
               "event_type": ev.event_type, "purpose": ev.purpose, "received_date": ev.received_date,
               "amount": ev.amount, "currency": ev.currency, "payer_name": ev.payer_name,
               "payment_reference": ev.payment_reference, "msisdn": ev.msisdn, "account_ref": ev.account_ref,
               "remittance_info": ev.remittance_text or None, "original_source_id": ev.original_source_id}
        if pid in index.seen_ids and not rematch:
            rows.append({**row, "outcome": "duplicate", "reason_code": "DUPLICATE_PAYMENT",
                         "message": f"payment {ev.source_payment_id!r} was already imported"})
            continue
        index.seen_ids.add(pid)
        if ev.event_type == "payment":
            found, code, message = match_payment(ev, index)
        else:
            found, code, message = match_reversal(ev, kind, index)
        row.update(found)
        if code:
            rows.append({**row, "outcome": "suspense", "reason_code": code, "message": message})
            continue
        outcome = "top_up" if row["purpose"] == "top_up" else "matched"
        rows.append({**row, "outcome": outcome, "reason_code": None, "message": None})
        index.payments[pid] = row
        if row.get("original_payment_id"):
            index.reversed_ids.add(row["original_payment_id"])
    return rows


@dataclass(frozen=True)
class IntakeResult:
    file_sha256: str
    duplicate_file: bool
    counts: dict[str, int]
    amounts: dict[str, Decimal]
    intake_prefix: str | None = None
    payments_prefix: str | None = None


def _summary(intake: pl.DataFrame) -> tuple[dict[str, int], dict[str, Decimal]]:
    counts = {o: 0 for o in ("matched", "top_up", "duplicate", "suspense")}
    amounts = {o: Decimal("0.00") for o in counts}
    for outcome, n, total in intake.group_by("outcome").agg(pl.len(), pl.col("amount").sum()).iter_rows():
        counts[outcome] = n
        amounts[outcome] = total if total is not None else Decimal("0.00")
    return counts, amounts


def import_payments(settings: Settings, data: bytes, kind: str, source_file: str) -> IntakeResult:
    """Import one payment file into ``payments`` and ``collections/payment_intake``.

    Re-importing a file with the same checksum writes nothing and reports ``duplicate_file``.
    """
    lake = open_store(settings.lake_uri, settings.s3)
    sha = hashlib.sha256(data).hexdigest()
    part = {"file_sha": sha[:16]}
    intake_prior, intake_v = lk.load_intake(lake)
    if sha in set(intake_prior["file_sha256"].to_list()):
        return IntakeResult(sha, True, {}, {})
    lines = parse_payment_file(data, kind)
    invoices, inv_v = lk.load_invoices(lake)
    accounts, acc_v = lk.load_accounts(lake)
    subs, sub_v = lk.load_subscriptions(lake)
    resolutions, res_v = lk.load_resolutions(lake)
    index = build_index(invoices, accounts, subs, intake_prior, resolutions)
    rows = classify(lines, kind, index, source_file, sha)
    intake = lk.conform(pl.DataFrame(rows, schema_overrides={"amount": pl.Decimal(18, 2)}, infer_schema_length=None)
                        if rows else None, PAYMENT_INTAKE_SCHEMA).sort("record_offset")
    published = intake.filter(pl.col("outcome") == "matched").select(list(PAYMENT_SCHEMA))
    topups = lk.conform(intake.filter(pl.col("outcome") == "top_up").rename({"received_date": "topup_date"}),
                        TOPUP_SCHEMA)
    inputs = {"file": sha, "invoices": inv_v, "accounts": acc_v, "subscriptions": sub_v, "intake": intake_v,
              "resolutions": res_v}
    run_id = run_id_for(inputs, kind=kind)
    counts, amounts = _summary(intake)
    extra = {"source_file": source_file, "kind": kind, "counts": counts, "amounts": {k: str(v) for k, v in amounts.items()}}
    pm = write_partition(lake, lk.PAYMENTS, part, run_id, published, inputs=inputs, extra=extra)
    write_partition(lake, lk.TOPUPS, part, run_id, topups, inputs=inputs, extra=extra)
    im = write_partition(lake, lk.INTAKE, part, run_id, intake, inputs=inputs, extra=extra)
    return IntakeResult(sha, False, counts, amounts, im.prefix, pm.prefix)


# -- suspense re-matching ----------------------------------------------------------------------------
REMATCHABLE = ("NO_MATCH", "UNKNOWN_MSISDN", "ORIGINAL_NOT_FOUND")
"""Suspense reasons that later data (a new invoice, a new line, the original payment) can resolve."""


def event_from_intake(row: dict) -> PaymentEvent:
    """The payment event an intake row was made from (for re-matching it later)."""
    return PaymentEvent(
        source_payment_id=row["source_payment_id"], channel=row["channel"], event_type=row["event_type"],
        purpose=row["purpose"], original_source_id=row["original_source_id"], received_date=row["received_date"],
        amount=row["amount"], currency=row["currency"], payment_reference=row["payment_reference"],
        remittance_text=row["remittance_info"] or "", account_ref=row["account_ref"], msisdn=row["msisdn"],
        payer_name=row["payer_name"] or "",
    )


@dataclass(frozen=True)
class RematchResult:
    on: date
    candidates: int
    resolved: int
    amount_resolved: Decimal


def rematch_suspense(settings: Settings, on: date) -> RematchResult:
    """Match suspense payments again against today's invoices, lines and payments.

    Resolved rows go to ``collections/suspense_resolutions`` (partition ``resolved_on``, intake-shaped,
    outcome matched / top_up / suspense with the current reason) and to ``payments`` / ``topups`` under
    ``file_sha=rematch-YYYYMMDD``. Rerunning the same day recomputes that day's partitions.
    """
    lake = open_store(settings.lake_uri, settings.s3)
    day = on.isoformat()
    intake, intake_v = lk.load_intake(lake)
    earlier, res_v = lk.load_resolutions(lake, before=day)
    resolved_before = set(earlier.filter(pl.col("outcome").is_in(["matched", "top_up"]))["payment_id"].to_list())
    candidates = intake.filter((pl.col("outcome") == "suspense") & pl.col("reason_code").is_in(REMATCHABLE)
                               & (pl.col("received_date") <= on) & ~pl.col("payment_id").is_in(list(resolved_before)))
    invoices, inv_v = lk.load_invoices(lake)
    accounts, acc_v = lk.load_accounts(lake)
    subs, sub_v = lk.load_subscriptions(lake)
    index = build_index(invoices, accounts, subs, intake, earlier)
    rows = []
    for row in candidates.sort("received_date", "payment_id").iter_rows(named=True):
        line = ParsedLine(row["record_offset"], "", event_from_intake(row))
        [out] = classify([line], row["kind"], index, row["source_file"], row["file_sha256"], rematch=True)
        rows.append({**row, **out})
    frame = lk.conform(pl.DataFrame(rows, schema_overrides={"amount": pl.Decimal(18, 2)}, infer_schema_length=None)
                       if rows else None, PAYMENT_INTAKE_SCHEMA).sort("payment_id")
    inputs = {"invoices": inv_v, "accounts": acc_v, "subscriptions": sub_v, "intake": intake_v, "resolutions": res_v}
    run_id = run_id_for(inputs, on=day)
    part = {"file_sha": f"rematch-{on:%Y%m%d}"}
    topups = lk.conform(frame.filter(pl.col("outcome") == "top_up").rename({"received_date": "topup_date"}),
                        TOPUP_SCHEMA)
    matched = frame.filter(pl.col("outcome") == "matched").select(list(PAYMENT_SCHEMA))
    for dataset, rows_out in ((lk.PAYMENTS, matched), (lk.TOPUPS, topups)):
        # no empty partition per day in the datasets the bill cycle reads; rewrite one that exists
        if rows_out.height or published_manifests(lake, dataset, part):
            write_partition(lake, dataset, part, run_id, rows_out, inputs=inputs)
    write_partition(lake, lk.RESOLUTIONS, {"resolved_on": day}, run_id,
                    frame.with_columns(pl.lit(on).alias("resolved_on")), inputs=inputs)
    done = frame.filter(pl.col("outcome").is_in(["matched", "top_up"]))
    return RematchResult(on, candidates.height, done.height, done["amount"].sum() if done.height else Decimal("0.00"))
