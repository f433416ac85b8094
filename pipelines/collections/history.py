"""Deterministic payment-behaviour history for training and testing the recovery model.

Each account has a latent propensity to pay ``z ~ N(0, 1)`` plus month-to-month "hardship" shocks
that persist (an AR(1) process), so past behaviour predicts future behaviour without revealing it
exactly. Per monthly invoice the account pays on time, late (after a delay that grows as propensity
falls), partially, or not at all; some payments are returned by the bank a few days later. The output
has the same shapes as the lake (ACCOUNT_SCHEMA, INVOICE_SCHEMA, PAYMENT_SCHEMA), so the model is
trained on generated history exactly as it would be on the warehouse's own. Same seed, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from pipelines.collections.lake import conform
from pipelines.common.partitions import digest
from schemas.contracts import ACCOUNT_SCHEMA, INVOICE_SCHEMA, PAYMENT_SCHEMA

SEGMENTS = ("consumer", "business", "vip", "government")
SEGMENT_WEIGHTS = (0.80, 0.15, 0.03, 0.02)
PAYMENT_TERMS_DAYS = 14


@dataclass(frozen=True)
class History:
    accounts: pl.DataFrame
    invoices: pl.DataFrame
    payments: pl.DataFrame
    propensity: pl.DataFrame        # account_id, z: the latent truth (for tests and docs, never a feature)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _cents(value: int) -> Decimal:
    return Decimal(int(value)).scaleb(-2)


def _month_start(start: date, months: int) -> date:
    y, m = divmod(start.month - 1 + months, 12)
    return date(start.year + y, m + 1, 1)


def generate_history(n_accounts: int = 1500, months: int = 12, seed: int = 7,
                     start: date = date(2025, 10, 1)) -> History:
    """Invoices and payments for ``n_accounts`` over ``months`` monthly bills starting at ``start``."""
    rng = np.random.default_rng(seed)
    accounts, invoices, payments, truth = [], [], [], []
    for n in range(n_accounts):
        acc = f"H{seed:02d}{n:06d}"
        z = float(rng.normal())
        segment = SEGMENTS[int(rng.choice(len(SEGMENTS), p=SEGMENT_WEIGHTS))]
        base_cents = int(np.exp(rng.normal(np.log(3500), 0.5)))
        joined = int(rng.integers(0, max(1, months // 3)))
        shock = 0.0
        truth.append((acc, z))
        accounts.append({"account_id": acc, "name": f"History customer {n}", "currency": "EUR",
                         "timezone": "Europe/Berlin", "bill_cycle_day": 1, "tax_jurisdiction": "DE",
                         "payment_terms_days": PAYMENT_TERMS_DAYS, "country": "DE", "segment": segment,
                         "email": f"{acc.lower()}@example.org", "phone": f"49151{n:07d}",
                         "billing_entity": "TBM-DE"})
        for m in range(joined, months):
            shock = 0.7 * shock + float(rng.normal(0, 0.8))
            issue = _month_start(start, m)
            due = issue + timedelta(days=PAYMENT_TERMS_DAYS)
            total = max(500, int(base_cents * np.exp(rng.normal(0, 0.15))))
            period = f"{_month_start(start, m - 1):%Y-%m}"
            inv_id = f"INV-{acc}-{period}"
            ref = f"TB-{acc}-{period.replace('-', '')}"
            invoices.append({"invoice_id": inv_id, "invoice_number": f"G{seed}-{n}-{m}", "account_id": acc,
                             "billing_entity": "TBM-DE", "period": period, "period_start": issue,
                             "period_end": issue, "status": "finalised", "kind": "invoice", "issue_date": issue,
                             "due_date": due, "currency": "EUR", "subtotal": _cents(total),
                             "tax_total": Decimal("0.00"), "total": _cents(total),
                             "previous_balance": Decimal("0.00"), "payments_received": Decimal("0.00"),
                             "amount_due": _cents(total), "payment_reference": ref})
            will = z + shock
            if rng.random() < _sigmoid(1.6 + 1.6 * will):
                paid_on = due - timedelta(days=int(rng.integers(0, 10)))
                parts = [(paid_on, total)]
            elif rng.random() < _sigmoid(0.9 + 1.4 * will):
                delay = 1 + int(rng.exponential(8 + 25 * (1 - _sigmoid(will))))
                paid_on = due + timedelta(days=delay)
                if rng.random() < 0.2:
                    half = total // 2
                    parts = [(paid_on, half), (paid_on + timedelta(days=int(rng.integers(5, 40))), total - half)]
                else:
                    parts = [(paid_on, total)]
            else:
                parts = []            # not paid in time; maybe much later
                if rng.random() < _sigmoid(0.5 + will):
                    parts = [(due + timedelta(days=int(rng.integers(30, 90))), total)]
            for k, (day, cents) in enumerate(parts):
                pid = "PAY-" + digest("history", str(seed), acc, str(m), str(k))
                row = {"payment_id": pid, "source_payment_id": pid, "kind": "bank", "channel": "bank_transfer",
                       "event_type": "payment", "purpose": "bill_payment", "account_id": acc,
                       "invoice_id": inv_id, "match_method": "reference", "payment_reference": ref,
                       "received_date": day, "amount": _cents(cents), "currency": "EUR",
                       "source_file": "generated", "file_sha256": "", "record_offset": 0}
                payments.append(row)
                if rng.random() < 0.06 * (1 - _sigmoid(will)):
                    payments.append({**row, "payment_id": pid + "-R", "source_payment_id": pid + "-R",
                                     "event_type": "reversal", "original_payment_id": pid,
                                     "received_date": day + timedelta(days=int(rng.integers(2, 8))),
                                     "amount": -_cents(cents)})
            if not parts and rng.random() < 0.5:
                break                 # unpaid and disconnected: no further bills
    return History(
        accounts=conform(pl.DataFrame(accounts), ACCOUNT_SCHEMA),
        invoices=conform(pl.DataFrame(invoices, infer_schema_length=None), INVOICE_SCHEMA).sort("invoice_id"),
        payments=conform(pl.DataFrame(payments, infer_schema_length=None), PAYMENT_SCHEMA).sort("payment_id"),
        propensity=pl.DataFrame(truth, schema={"account_id": pl.String, "z": pl.Float64}, orient="row"),
    )
