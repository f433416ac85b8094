"""Fixture data for collections tests: accounts, lines and invoices written in the contract shapes.

These are input datasets written with the real ``write_partition`` (fixture data, not mocks), so the
collections code reads them exactly as it reads what the customers and billing areas publish.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl

from pipelines.collections import lake as lk
from pipelines.collections.lake import conform
from pipelines.common.partitions import write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import ACCOUNT_SCHEMA, INVOICE_SCHEMA, SUBSCRIPTION_SCHEMA

ACCOUNTS = [
    # account_id, segment, email, phone
    ("ACC001", "consumer", "anna@example.org", "491510000001"),
    ("ACC002", "consumer", "ben@example.org", "491510000002"),
    ("ACC003", "vip", "vip@example.org", "491510000003"),
    ("ACC004", "government", "gov@example.org", "491510000004"),
    ("ACC005", "business", "=HYPERLINK(\"http://evil\")", "491510000005"),
]


def account_rows() -> pl.DataFrame:
    rows = [{"account_id": a, "name": f"Customer {a}", "currency": "EUR", "timezone": "Europe/Berlin",
             "bill_cycle_day": 1, "tax_jurisdiction": "DE", "payment_terms_days": 14, "country": "DE",
             "email": e, "phone": p, "segment": s, "billing_entity": "TBM-DE"} for a, s, e, p in ACCOUNTS]
    rows[4]["name"] = "-2+3 Ltd"
    return conform(pl.DataFrame(rows), ACCOUNT_SCHEMA)


def subscription_rows() -> pl.DataFrame:
    rows = []
    for i, (acc, *_rest) in enumerate(ACCOUNTS, start=1):
        rows.append({"subscription_id": f"SUB{i:03d}", "account_id": acc, "msisdn": f"49151000000{i}",
                     "imsi": f"26201000000000{i}", "plan_id": "P_BASIC", "payment_type": "postpaid",
                     "valid_from": datetime(2026, 1, 1), "valid_to": None})
    rows.append({"subscription_id": "SUB099", "account_id": "ACC002", "msisdn": "491510000099",
                 "imsi": "262010000000099", "plan_id": "PRE_PAYG", "payment_type": "prepaid",
                 "valid_from": datetime(2026, 1, 1), "valid_to": None})
    frame = pl.DataFrame(rows).with_columns(pl.col("valid_from").dt.replace_time_zone("UTC"),
                                            pl.col("valid_to").cast(pl.Datetime("us", "UTC")))
    return conform(frame, SUBSCRIPTION_SCHEMA)


def invoice(account: str, period: str, total: str, issue: date, *, status: str = "finalised",
            terms: int = 14) -> dict:
    """An invoice header in INVOICE_SCHEMA; reference is TB-<account>-<period>."""
    amount = Decimal(total)
    return {"invoice_id": f"INV-{account}-{period}", "invoice_number": f"TB{period}{account[-3:]}",
            "account_id": account, "billing_entity": "TBM-DE", "period": period, "period_start": issue,
            "period_end": issue, "status": status, "kind": "invoice", "issue_date": issue,
            "due_date": issue + timedelta(days=terms), "currency": "EUR", "subtotal": amount,
            "tax_total": Decimal("0.00"), "total": amount, "previous_balance": Decimal("0.00"),
            "payments_received": Decimal("0.00"), "amount_due": amount,
            "payment_reference": f"TB-{account}-{period.replace('-', '')}"}


def publish_invoices(settings: Settings, rows: list[dict]) -> None:
    lake = open_store(settings.lake_uri, settings.s3)
    frame = conform(pl.DataFrame(rows, infer_schema_length=None), INVOICE_SCHEMA)
    for (period,), part in frame.sort("invoice_id").group_by(["period"], maintain_order=True):
        write_partition(lake, lk.INVOICES, {"period": period}, f"fixture-{period}", part)


def publish_customers(settings: Settings) -> None:
    lake = open_store(settings.lake_uri, settings.s3)
    write_partition(lake, lk.ACCOUNTS, {"snapshot": "fixture"}, "fixture", account_rows())
    write_partition(lake, lk.SUBSCRIPTIONS, {"snapshot": "fixture"}, "fixture", subscription_rows())


BASE_INVOICES = [
    invoice("ACC001", "2026-09", "50.00", date(2026, 10, 1)),
    invoice("ACC002", "2026-09", "80.00", date(2026, 10, 1)),
    invoice("ACC003", "2026-09", "40.00", date(2026, 10, 1)),
    invoice("ACC004", "2026-09", "60.00", date(2026, 10, 1)),
    invoice("ACC005", "2026-09", "120.00", date(2026, 10, 1)),
]


def bank_file(rows: list[tuple]) -> bytes:
    """A bank statement CSV; rows are (id, value_date, code, amount, name, remittance, original)."""
    head = "transaction_id,booking_date,value_date,transaction_code,amount,currency,counterparty_name," \
           "counterparty_iban,remittance_info,original_transaction_id\n"
    body = "".join(f'{i},{d},{d},{c},{a},EUR,"{n}",DE89370400440532013000,"{r}",{o}\n'
                   for i, d, c, a, n, r, o in rows)
    return (head + body).encode()
