"""Customer master data: import accounts and subscriptions into the lake, and load them back.

``customers/accounts`` and ``customers/subscriptions`` are single-partition datasets whose run id
is the content hash of the imported CSV, so importing the same files twice is the same run and a
changed file is a new, recognisable version. An import with any invalid row is refused as a whole
(nothing is published) with one line per problem: master data errors must be fixed, not skipped.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from pipelines.common.partitions import digest, read_published, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from schemas.contracts import ACCOUNT_SCHEMA, SUBSCRIPTION_SCHEMA
from schemas.customers import AccountModel, SubscriptionModel

ACCOUNTS = "customers/accounts"
SUBSCRIPTIONS = "customers/subscriptions"
MAX_LISTED_ERRORS = 50


class CustomerImportError(ValueError):
    """The import was refused; ``errors`` lists every problem as ``file:line: message``."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:MAX_LISTED_ERRORS]
        more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__(f"customer import refused, {len(errors)} problem(s):\n" + "\n".join(shown) + more)
        self.errors = errors


@dataclass(frozen=True)
class ImportResult:
    accounts: int
    subscriptions: int
    accounts_version: str
    subscriptions_version: str


OPTIONAL_SUBSCRIPTION_COLUMNS = ("dealer_id",)
"""Subscription CSV columns a file may leave out (then null): added to the contract after files existed."""


def _read_text_csv(data: bytes, name: str, columns: dict[str, pl.DataType],
                   optional: tuple[str, ...] = ()) -> pl.DataFrame:
    """Read a CSV with every contract column as text; missing or unexpected columns are an error
    (``optional`` columns may be missing and are then null)."""
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise CustomerImportError([f"{name}: not a readable UTF-8 CSV ({exc})"]) from exc
    frame = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in optional if c not in frame.columns)
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise CustomerImportError([f"{name}: header must be {','.join(columns)}; missing {missing}, unexpected {extra}"])
    return frame.select(list(columns)).with_columns(
        pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c).str.strip_chars()).alias(c)
        for c in columns
    )


def _parse_instant(col: str) -> pl.Expr:
    """ISO 8601 UTC instant (``2026-10-01T00:00:00Z``) or a bare date meaning 00:00 UTC."""
    text = pl.col(col)
    return pl.coalesce(
        text.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC", strict=False),
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_unit="us", strict=False).dt.convert_time_zone("UTC"),
        text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
    ).alias(col)


def _cast_errors(raw: pl.DataFrame, typed: pl.DataFrame, name: str) -> list[str]:
    """Rows where a non-empty text value did not parse into its typed column."""
    errors = []
    for col in typed.columns:
        bad = raw.with_row_index("i").filter(typed[col].is_null() & raw[col].is_not_null())
        errors += [f"{name}:{r['i'] + 2}: {col} {r[col]!r} is not a valid {typed.schema[col]}" for r in bad.iter_rows(named=True)]
    return errors


def _pandera_errors(model: type[pa.DataFrameModel], frame: pl.DataFrame, name: str, key: str) -> list[str]:
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        return [
            f"{name}:{(r['index'] + 2) if r['index'] is not None else '?'}: "
            f"{r['column']} failed {r['check']} (value {r['failure_case']!r})"
            for r in fc.sort("index", nulls_last=True).iter_rows(named=True)
        ]
    return []


def parse_accounts(data: bytes, name: str = "accounts.csv") -> pl.DataFrame:
    """Accounts CSV -> ACCOUNT_SCHEMA frame, or :class:`CustomerImportError`."""
    raw = _read_text_csv(data, name, ACCOUNT_SCHEMA)
    typed = raw.with_columns(
        pl.col(c).cast(t, strict=False) for c, t in ACCOUNT_SCHEMA.items() if t != pl.String
    )
    errors = _cast_errors(raw, typed, name) + _pandera_errors(AccountModel, typed, name, "account_id")
    ids = set(typed["account_id"].drop_nulls())
    for i, parent in enumerate(typed["parent_account_id"]):
        if parent is not None and parent not in ids:
            errors.append(f"{name}:{i + 2}: parent_account_id {parent!r} is not an account in this file")
    if errors:
        raise CustomerImportError(errors)
    return typed.sort("account_id")


def load_plans(settings: Settings) -> pl.DataFrame:
    """The plan catalogue (tariffs/plans.csv): plan_id -> payment_type."""
    return pl.read_csv(Path(settings.tariffs_dir) / "plans.csv", infer_schema=False)


def load_dealer_ids(settings: Settings) -> set[str] | None:
    """Dealer ids of tariffs/dealers.csv (any validity), or None when the catalogue has no dealer table."""
    path = Path(settings.tariffs_dir) / "dealers.csv"
    if not path.exists():
        return None
    return set(pl.read_csv(path, infer_schema=False)["dealer_id"].to_list())


def parse_subscriptions(data: bytes, accounts: pl.DataFrame, plans: pl.DataFrame,
                        name: str = "subscriptions.csv", dealers: set[str] | None = None) -> pl.DataFrame:
    """Subscriptions CSV -> SUBSCRIPTION_SCHEMA frame, checked against accounts, plans and (when given) dealers.

    ``dealer_id`` is optional (null = direct sale); settlement pays the dealer's commissions.
    """
    raw = _read_text_csv(data, name, SUBSCRIPTION_SCHEMA, OPTIONAL_SUBSCRIPTION_COLUMNS)
    typed = raw.with_columns(_parse_instant("valid_from"), _parse_instant("valid_to"))
    errors = _cast_errors(raw, typed, name) + _pandera_errors(SubscriptionModel, typed, name, "subscription_id")
    checked = typed.with_row_index("i").join(
        plans.select("plan_id", pl.col("payment_type").alias("plan_payment_type")), on="plan_id", how="left"
    ).with_columns(pl.col("account_id").is_in(accounts["account_id"].implode()).alias("known_account"))
    for r in checked.sort("i").iter_rows(named=True):
        line = f"{name}:{r['i'] + 2}"
        if not r["known_account"]:
            errors.append(f"{line}: account_id {r['account_id']!r} is not an imported account")
        if dealers is not None and r["dealer_id"] is not None and r["dealer_id"] not in dealers:
            errors.append(f"{line}: dealer_id {r['dealer_id']!r} is not in tariffs/dealers.csv")
        if r["plan_payment_type"] is None:
            errors.append(f"{line}: plan_id {r['plan_id']!r} is not in the catalogue (tariffs/plans.csv)")
        elif r["payment_type"] != r["plan_payment_type"]:
            errors.append(f"{line}: payment_type {r['payment_type']!r} does not match plan {r['plan_id']} "
                          f"({r['plan_payment_type']})")
    errors += _overlaps(typed, name)
    if errors:
        raise CustomerImportError(errors)
    return typed.sort("msisdn", "valid_from", "subscription_id")


def _overlaps(subs: pl.DataFrame, name: str) -> list[str]:
    """One MSISDN may hold only one subscription at any instant, or guiding would be ambiguous."""
    far = pl.datetime(9999, 1, 1, time_unit="us", time_zone="UTC")
    ordered = subs.filter(pl.col("valid_from").is_not_null()).sort("msisdn", "valid_from").with_columns(
        pl.col("valid_to").fill_null(far).shift(1).over("msisdn").alias("prev_to"),
        pl.col("subscription_id").shift(1).over("msisdn").alias("prev_id"),
    )
    bad = ordered.filter(pl.col("prev_to") > pl.col("valid_from"))
    return [f"{name}: msisdn {r['msisdn']} has overlapping subscriptions {r['prev_id']} and {r['subscription_id']}"
            for r in bad.iter_rows(named=True)]


def import_customers(settings: Settings, accounts_csv: bytes, subscriptions_csv: bytes) -> ImportResult:
    """Validate both files together, then publish them (accounts first: subscriptions refer to them)."""
    accounts = parse_accounts(accounts_csv)
    subs = parse_subscriptions(subscriptions_csv, accounts, load_plans(settings), dealers=load_dealer_ids(settings))
    lake = open_store(settings.lake_uri, settings.s3)
    acc_version = digest(accounts_csv)
    sub_version = digest(subscriptions_csv)
    write_partition(lake, ACCOUNTS, {}, acc_version, accounts, inputs={"accounts.csv": digest(accounts_csv, length=64)})
    write_partition(lake, SUBSCRIPTIONS, {}, sub_version, subs,
                    inputs={"subscriptions.csv": digest(subscriptions_csv, length=64), "accounts": acc_version})
    return ImportResult(accounts.height, subs.height, acc_version, sub_version)


def load_accounts(settings: Settings) -> pl.DataFrame:
    """The published accounts (ACCOUNT_SCHEMA); empty when nothing was imported yet."""
    frame = read_published(open_store(settings.lake_uri, settings.s3), ACCOUNTS)
    return pl.DataFrame(schema=ACCOUNT_SCHEMA) if frame is None else frame.select(ACCOUNT_SCHEMA.keys())


def load_subscriptions(settings: Settings) -> pl.DataFrame:
    """The published subscriptions (SUBSCRIPTION_SCHEMA); empty when nothing was imported yet."""
    frame = read_published(open_store(settings.lake_uri, settings.s3), SUBSCRIPTIONS)
    if frame is None:
        return pl.DataFrame(schema=SUBSCRIPTION_SCHEMA)
    # dealer_id was appended to the contract later: older imports read it as null
    return frame.select(pl.col(c) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in SUBSCRIPTION_SCHEMA.items())
