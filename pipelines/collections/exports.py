"""Payments as TM Forum TMF676 Payment JSON (spreadsheet-safe CSV lives in pipelines.common.csv_safe)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import polars as pl

from pipelines.common.money import minor_units

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
    """Turn the marked money strings back into bare JSON numbers, digit for digit.

    Only a Money ``"value"`` member whose whole string is the marker plus a plain decimal is unquoted.
    Text from outside (a bank transaction id in ``correlatorId``, a reference) cannot reach that
    pattern: json escapes its quotes, so it stays a JSON string even if it carries the marker.
    """
    return _MONEY_VALUE.sub(lambda m: '"value": ' + m.group(1), text)


_MONEY_VALUE = re.compile('"value": "' + re.escape(json.dumps(_NUM)[1:-1]) + r'(-?[0-9]+(?:\.[0-9]+)?)"')
