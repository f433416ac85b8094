"""Exports people open: spreadsheet-safe CSV, and payments as TM Forum TMF676 Payment JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import polars as pl

from pipelines.common.money import minor_units

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
NUMERIC = (pl.Decimal, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64,
           pl.Float32, pl.Float64)


def neutralise(text: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula (OWASP CSV injection advice)."""
    return "'" + text if text.startswith(DANGEROUS_FIRST) else text


def _cell(value: object, numeric: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text if numeric else neutralise(text)


def safe_csv(frame: pl.DataFrame) -> bytes:
    """CSV bytes where every text cell starting with = + - @ TAB or CR is prefixed with ``'``.

    Columns typed as numbers (amounts, counts, scores) are written as plain numbers: a negative
    amount like ``-12.50`` is a number, not a formula. Lists are joined with ``; ``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180; CR inside a cell gets quoted
    writer.writerow([neutralise(c) for c in frame.columns])
    numeric = [isinstance(t, NUMERIC) for t in frame.dtypes]
    lists = [isinstance(t, pl.List) for t in frame.dtypes]
    for row in frame.iter_rows():
        writer.writerow([
            neutralise("; ".join(map(str, v))) if lists[i] and v is not None else _cell(v, numeric[i])
            for i, v in enumerate(row)
        ])
    return buf.getvalue().encode()


_NUM = "\u0000num:"


def _money(amount: Decimal, currency: str) -> dict:
    """TMF Money: value as an exact JSON number (never through float)."""
    return {"unit": currency, "value": f"{_NUM}{amount.quantize(Decimal(1).scaleb(-minor_units(currency)))}"}


def tmf676_payment(payment: dict, allocations: list[dict], base_href: str = "/tmf-api/payment/v4/payment") -> dict:
    """One payment in the TMF676 Payment shape, with its allocations as ``paymentItem``."""
    status = {"payment": "done", "reversal": "reversed", "chargeback": "chargedBack"}[payment["event_type"]]
    method = {"bank_transfer": "bankTransfer", "card": "bankCard", "wallet": "digitalWallet",
              "retail": "cash", "dealer": "cash"}[payment["channel"]]
    doc = {
        "id": payment["payment_id"],
        "href": f"{base_href}/{payment['payment_id']}",
        "@type": "Payment",
        "paymentDate": f"{payment['received_date'].isoformat()}T00:00:00Z",
        "status": status,
        "correlatorId": payment["source_payment_id"],
        "description": f"{payment['kind']} {payment['event_type']} via {payment['channel']}",
        "amount": _money(payment["amount"], payment["currency"]),
        "totalAmount": _money(payment["amount"], payment["currency"]),
        "account": {"id": payment["account_id"], "@referredType": "BillingAccount", "@type": "AccountRef"},
        "paymentMethod": {"@type": "PaymentMethodRefOrValue", "@referredType": method, "name": method},
        "channel": {"id": payment["channel"], "name": payment["channel"], "@type": "ChannelRef"},
        "paymentItem": [
            {"@type": "PaymentItem", "id": f"{payment['payment_id']}-{i}",
             "amount": _money(a["amount"], payment["currency"]),
             "item": ({"id": a["invoice_id"], "@referredType": "CustomerBill", "@type": "EntityRef"}
                      if a["invoice_id"] else {"id": payment["account_id"], "@referredType": "AccountCredit",
                                               "@type": "EntityRef"})}
            for i, a in enumerate(allocations, start=1)
        ],
    }
    if payment.get("payment_reference"):
        doc["paymentReference"] = payment["payment_reference"]
    if payment.get("original_payment_id"):
        doc["relatedPayment"] = {"id": payment["original_payment_id"], "@type": "PaymentRef"}
    return doc


def tmf676_json(payments: pl.DataFrame, allocations: pl.DataFrame) -> bytes:
    """A JSON array of TMF676 Payments (sorted by id, amounts as exact numbers): same data, same bytes."""
    by_payment: dict[str, list[dict]] = {}
    wanted = allocations.filter(pl.col("payment_id").is_in(payments["payment_id"].implode()))
    for a in wanted.sort("payment_id", "invoice_id", nulls_last=True).iter_rows(named=True):
        by_payment.setdefault(a["payment_id"], []).append(a)
    docs = [tmf676_payment(p, by_payment.get(p["payment_id"], []))
            for p in payments.sort("payment_id").iter_rows(named=True)]
    # one payment per line: readable, and json's fast C encoder (any indent falls back to pure Python)
    text = "[\n" + ",\n".join(json.dumps(d, sort_keys=True, ensure_ascii=False) for d in docs) + "\n]"
    return (_unquote_numbers(text) + "\n").encode()


def _unquote_numbers(text: str) -> str:
    """Turn the marked money strings back into bare JSON numbers, digit for digit."""
    marker = json.dumps(_NUM)[1:-1]          # how json escapes the marker inside a string
    out, start = [], 0
    while True:
        i = text.find('"' + marker, start)
        if i < 0:
            out.append(text[start:])
            return "".join(out)
        j = text.find('"', i + 1)
        out.append(text[start:i])
        out.append(text[i + 1 + len(marker):j])
        start = j + 1
