"""Pandera models for customer master data (``telbill customers import``).

Master data is small and every error matters, so an import with any invalid row is refused as a
whole (nothing half-published); the error lists each row and reason.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

SEGMENTS = ("consumer", "business", "vip", "government")
PAYMENT_TYPES = ("prepaid", "postpaid")


class AccountModel(pa.DataFrameModel):
    """One billing account (ACCOUNT_SCHEMA)."""

    account_id: str = pa.Field(unique=True, str_matches=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = pa.Field(str_length={"min_value": 1})
    currency: str = pa.Field(str_matches=r"^[A-Z]{3}$")
    timezone: str = pa.Field(str_length={"min_value": 1})
    bill_cycle_day: pl.Int32 = pa.Field(ge=1, le=28)
    tax_jurisdiction: str = pa.Field(str_length={"min_value": 2})
    payment_terms_days: pl.Int32 = pa.Field(ge=0, le=120)
    address_line1: str = pa.Field(nullable=True)
    city: str = pa.Field(nullable=True)
    postcode: str = pa.Field(nullable=True)
    country: str = pa.Field(str_matches=r"^[A-Z]{2}$")
    email: str = pa.Field(nullable=True)
    phone: str = pa.Field(nullable=True)
    parent_account_id: str = pa.Field(nullable=True)
    segment: str = pa.Field(isin=SEGMENTS)
    billing_entity: str = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = False


class SubscriptionModel(pa.DataFrameModel):
    """One subscription (SUBSCRIPTION_SCHEMA): a line valid over ``[valid_from, valid_to)``."""

    subscription_id: str = pa.Field(str_matches=r"^[A-Za-z0-9_-]{1,64}$")
    account_id: str
    msisdn: str = pa.Field(str_matches=r"^[1-9]\d{7,14}$")
    imsi: str = pa.Field(nullable=True, str_matches=r"^\d{14,15}$")
    plan_id: str
    payment_type: str = pa.Field(isin=PAYMENT_TYPES)
    valid_from: pl.Datetime("us", "UTC")  # type: ignore[valid-type]
    valid_to: pl.Datetime("us", "UTC") = pa.Field(nullable=True)  # type: ignore[valid-type]
    dealer_id: str = pa.Field(nullable=True, str_matches=r"^[A-Za-z0-9_-]{1,64}$")

    @pa.dataframe_check
    def valid_to_after_valid_from(cls, data: pa.PolarsData) -> pl.LazyFrame:  # noqa: N805
        return data.lazyframe.select(pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col("valid_from")))

    class Config:
        strict = True
        coerce = False
