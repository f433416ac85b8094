"""Reading the collections area's inputs from the lake, in the contract shapes, typed and empty-safe."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

import polars as pl

from pipelines.common.partitions import Manifest, digest, published_manifests, read_manifested
from pipelines.common.storage import Store
from schemas.contracts import (
    ACCOUNT_SCHEMA,
    INVOICE_SCHEMA,
    PAYMENT_INTAKE_SCHEMA,
    PAYMENT_SCHEMA,
    SUBSCRIPTION_SCHEMA,
)

INVOICES = "invoices"
PAYMENTS = "payments"
TOPUPS = "topups"
INTAKE = "collections/payment_intake"
ACCOUNTS = "customers/accounts"
SUBSCRIPTIONS = "customers/subscriptions"
HOLDS = "collections/holds"
DUNNING_STATE = "collections/dunning_state"
RESOLUTIONS = "collections/suspense_resolutions"
ALLOCATIONS = "collections/allocations"

HOLD_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.String,
    "hold_type": pl.String,      # dispute | promise_to_pay
    "start_date": pl.Date,
    "end_date": pl.Date,         # inclusive last day the hold applies
    "reference": pl.String,
    "source_file": pl.String,
}


def conform(frame: pl.DataFrame | None, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """The frame with exactly the contract columns and types (missing optional columns become null)."""
    if frame is None:
        return pl.DataFrame(schema=dict(schema))
    return frame.select(
        [(pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c) for c, t in schema.items()]
    )


def read_dataset(lake: Store, dataset: str, schema: Mapping[str, pl.DataType],
                 exclude: Mapping[str, str] | None = None,
                 keep: Callable[[Manifest], bool] | None = None) -> tuple[pl.DataFrame, str]:
    """Published rows of a dataset in its contract shape, and a digest of the runs read (for run ids)."""
    manifests = published_manifests(lake, dataset)
    if exclude:
        manifests = [m for m in manifests if any(m.partition.get(k) != v for k, v in exclude.items())]
    if keep:
        manifests = [m for m in manifests if keep(m)]
    version = digest(*(m.prefix for m in manifests)) if manifests else "none"
    return conform(read_manifested(lake, manifests), schema), version


def load_invoices(lake: Store) -> tuple[pl.DataFrame, str]:
    return read_dataset(lake, INVOICES, INVOICE_SCHEMA)


def load_accounts(lake: Store) -> tuple[pl.DataFrame, str]:
    return read_dataset(lake, ACCOUNTS, ACCOUNT_SCHEMA)


def load_subscriptions(lake: Store) -> tuple[pl.DataFrame, str]:
    return read_dataset(lake, SUBSCRIPTIONS, SUBSCRIPTION_SCHEMA)


def load_payments(lake: Store, as_of: date | None = None) -> tuple[pl.DataFrame, str]:
    """Published payments; with ``as_of``, without suspense re-matches made after that day."""
    def known(m: Manifest) -> bool:
        part = m.partition.get("file_sha", "")
        return not (as_of and part.startswith("rematch-") and part[len("rematch-"):] > f"{as_of:%Y%m%d}")

    return read_dataset(lake, PAYMENTS, PAYMENT_SCHEMA, keep=known)


def load_intake(lake: Store, exclude_file: str | None = None) -> tuple[pl.DataFrame, str]:
    return read_dataset(lake, INTAKE, PAYMENT_INTAKE_SCHEMA, {"file_sha": exclude_file} if exclude_file else None)


def load_holds(lake: Store) -> tuple[pl.DataFrame, str]:
    return read_dataset(lake, HOLDS, HOLD_SCHEMA)


def load_resolutions(lake: Store, before: str | None = None) -> tuple[pl.DataFrame, str]:
    """Suspense payments matched again later (intake-shaped); only days before ``before`` when given."""
    keep = (lambda m: m.partition.get("resolved_on", "") < before) if before else None
    return read_dataset(lake, RESOLUTIONS, PAYMENT_INTAKE_SCHEMA, keep=keep)
