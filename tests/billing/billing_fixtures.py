"""Billing fixture data (imported by conftest.py and the tests): a small lake with hand-checked accounts, written in the contract shapes.

Customers and rated usage are written with ``write_partition`` exactly as the mediation and rating
stages publish them (fixture data, not a mock); charges and adjustments go through the real import.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl

from pipelines.billing.imports import import_items
from pipelines.common.partitions import write_partition
from pipelines.common.storage import open_store
from schemas.contracts import ACCOUNT_SCHEMA, RATED_SCHEMA, SUBSCRIPTION_SCHEMA

PERIOD = "2026-10"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def account(acc_id: str, name: str, **kw: object) -> dict:
    base = {"account_id": acc_id, "name": name, "currency": "EUR", "timezone": "Europe/Berlin", "bill_cycle_day": 1,
            "tax_jurisdiction": "DE", "payment_terms_days": 14, "address_line1": "Hauptstr. 1", "city": "Berlin",
            "postcode": "10115", "country": "DE", "email": f"{acc_id.lower()}@example.org", "phone": "4915100000",
            "parent_account_id": None, "segment": "consumer", "billing_entity": "TBM"}
    base.update(kw)
    return base


# Berlin is UTC+2 in October until the 25th: local midnight of Oct d is (d-1) 22:00 UTC.
OPEN = utc(2026, 1, 1)
MID_OCTOBER = utc(2026, 10, 20, 10)

ACCOUNTS = [
    account("ACC-START", "Anna <Start> & Co"),
    account("ACC-CHANGE", "Bernd Change"),
    account("ACC-DEMO-VIP", "Vera VIP"),
    account("ACC-TAXR", "Tom Tax"),
    account("ACC-CREDIT", "Carla Credit"),
    account("ACC-FAM", "Familie Schmidt"),
    account("ACC-FAM-KID", "Kid Schmidt", parent_account_id="ACC-FAM"),
    account("ACC-DEMO-BIZ", "Biz GmbH", segment="business"),
    account("ACC-PRE", "Paula Prepaid"),
]


def sub(sid: str, acc: str, msisdn: str, plan: str, start: datetime = OPEN, end: datetime | None = None) -> dict:
    return {"subscription_id": sid, "account_id": acc, "msisdn": msisdn, "imsi": "26201" + msisdn[-10:], "plan_id": plan,
            "payment_type": "prepaid" if plan.startswith("PRE") else "postpaid", "valid_from": start, "valid_to": end}


SUBSCRIPTIONS = [
    sub("SUB-START", "ACC-START", "491510000001", "P_BASIC", start=utc(2026, 10, 10, 22)),   # from Oct 11 local
    sub("SUB-CHG", "ACC-CHANGE", "491510000002", "P_BASIC", end=utc(2026, 10, 15, 22)),      # until Oct 16 local
    sub("SUB-CHG", "ACC-CHANGE", "491510000002", "P_UNLTD", start=utc(2026, 10, 15, 22)),
    sub("SUB-DEMO-STAFF", "ACC-DEMO-VIP", "491510000003", "P_FAMILY"),
    sub("SUB-TAX", "ACC-TAXR", "491510000004", "P_BASIC"),
    sub("SUB-CRED", "ACC-CREDIT", "491510000005", "P_BASIC"),
    sub("SUB-FAM", "ACC-FAM", "491510000006", "P_FAMILY"),
    sub("SUB-FAM-PRE1", "ACC-FAM", "491510000007", "PRE_PAYG"),
    sub("SUB-FAM-PRE2", "ACC-FAM-KID", "491510000008", "PRE_PAYG"),
    sub("SUB-BIZ1", "ACC-DEMO-BIZ", "491510000009", "P_BIZ"),
    sub("SUB-BIZ2", "ACC-DEMO-BIZ", "491510000010", "P_BIZ"),
    sub("SUB-BIZ-PAYG", "ACC-DEMO-BIZ", "491510000011", "PRE_PAYG"),
    sub("SUB-PRE", "ACC-PRE", "491510000012", "PRE_PAYG"),
]


def rated(rid: str, acc: str, sid: str, plan: str, service: str, qty: int, incl: int, charge: str,
          when: datetime = MID_OCTOBER) -> dict:
    return {"record_id": rid, "account_id": acc, "subscription_id": sid, "plan_id": plan,
            "payment_type": "prepaid" if plan.startswith("PRE") else "postpaid", "service": service, "start_time": when,
            "usage_date": when.date(), "bill_period": PERIOD, "quantity": qty, "quantity_included": incl,
            "quantity_charged": qty - incl, "charge": Decimal(charge), "currency": "EUR", "destination_id": "DE_MOB",
            "band": "peak", "rate_id": "R1", "allowance_id": None, "tariff_version": "t1"}


RATED = [
    rated("r1", "ACC-START", "SUB-START", "P_BASIC", "voice", 300, 240, "0.123456789"),
    rated("r2", "ACC-START", "SUB-START", "P_BASIC", "voice", 120, 0, "0.5"),
    rated("r3", "ACC-DEMO-VIP", "SUB-DEMO-STAFF", "P_FAMILY", "data", 5_000_000_000, 4_000_000_000, "3.333333333"),
    rated("r4", "ACC-FAM", "SUB-FAM-PRE1", "PRE_PAYG", "voice", 600, 0, "1.8"),
    rated("r5", "ACC-FAM-KID", "SUB-FAM-PRE2", "PRE_PAYG", "sms", 12, 0, "1.08"),
    rated("r6", "ACC-DEMO-BIZ", "SUB-BIZ1", "P_BIZ", "voice", 36000, 0, "30.000000000"),
    rated("r7", "ACC-DEMO-BIZ", "SUB-BIZ-PAYG", "PRE_PAYG", "data", 1_000_000, 0, "0.50"),
]

CHARGES_CSV = b"""item_ref,account_id,subscription_id,charge_code,amount,item_date,description
CH-1,ACC-TAXR,SUB-TAX,ACTIVATION,,2026-10-05,
CH-2,ACC-TAXR,SUB-TAX,DEVICE_INSTALMENT,12.50,2026-10-05,Phone instalment 3/24
CH-3,ACC-TAXR,,LATE_FEE,,2026-10-07,
CH-BAD,ACC-TAXR,,NO_SUCH_CODE,1.00,2026-10-07,
"""
ADJUSTMENTS_CSV = b"""item_ref,account_id,kind,amount,item_date,reason,tax_category
AD-1,ACC-CREDIT,goodwill_credit,2.50,2026-10-12,Network outage goodwill,telecom
AD-2,ACC-CREDIT,dispute_credit,1.00,2026-10-13,Disputed premium SMS,
AD-BAD,ACC-CREDIT,goodwill_credit,-4,2026-10-13,negative,
"""
TOPUPS = [{"subscription_id": "SUB-FAM-PRE1", "account_id": "ACC-FAM", "amount": Decimal("15.00"),
           "topup_date": date(2026, 10, 3)}]


def write_customers(settings, accounts=ACCOUNTS, subs=SUBSCRIPTIONS, run: str = "c1") -> None:
    lake = open_store(settings.lake_uri, settings.s3)
    write_partition(lake, "customers/accounts", {"snapshot": "1"}, run,
                    pl.DataFrame(accounts, schema=ACCOUNT_SCHEMA, orient="row"))
    write_partition(lake, "customers/subscriptions", {"snapshot": "1"}, run,
                    pl.DataFrame(subs, schema=SUBSCRIPTION_SCHEMA, orient="row"))


def write_rated(settings, rows=RATED, period: str = PERIOD) -> None:
    lake = open_store(settings.lake_uri, settings.s3)
    write_partition(lake, "rated", {"period": period}, "r1", pl.DataFrame(rows, schema=RATED_SCHEMA, orient="row"))


def build_lake(settings) -> None:
    write_customers(settings)
    write_rated(settings)
    import_items(settings, "charges", CHARGES_CSV, "charges.csv")
    import_items(settings, "adjustments", ADJUSTMENTS_CSV, "adjustments.csv")
    lake = open_store(settings.lake_uri, settings.s3)
    write_partition(lake, "topups", {"period": PERIOD}, "t1",
                    pl.DataFrame(TOPUPS, schema={"subscription_id": pl.String, "account_id": pl.String,
                                                 "amount": pl.Decimal(18, 2), "topup_date": pl.Date}, orient="row"))
