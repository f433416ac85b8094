"""Guiding: attach each usage record to the subscription (and account) valid at its start time.

Lookup by MSISDN, or by IMSI for records that carry only an IMSI, with an as-of join on
``valid_from`` and a check against ``valid_to`` (exclusive). A record with no match goes to
suspense: ``UNKNOWN_SUBSCRIBER`` when the number was never ours, ``NO_ACTIVE_SUBSCRIPTION`` when it
is ours but no subscription covers that instant (before activation, after termination).
"""

from __future__ import annotations

import polars as pl

GUIDE_COLUMNS = ("subscription_id", "account_id", "plan_id", "payment_type")
SUSPENSE_MESSAGES = {
    "UNKNOWN_SUBSCRIBER": "no subscription has ever had this MSISDN/IMSI",
    "NO_ACTIVE_SUBSCRIPTION": "the subscriber has no subscription valid at the usage time",
}


def _asof(records: pl.DataFrame, subs: pl.DataFrame, key: str) -> pl.DataFrame:
    """As-of join on a narrow (row, key, start_time) frame, then the guide columns put back in row order:
    sorting only three columns instead of the whole record keeps guiding cheap."""
    right = subs.filter(pl.col(key).is_not_null()).select(
        key, "valid_from", "valid_to", *GUIDE_COLUMNS,
        *(["msisdn"] if key == "imsi" else []),
    ).rename({"msisdn": "_sub_msisdn"} if key == "imsi" else {}).sort("valid_from")
    narrow = records.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), key, "start_time").sort("start_time")
    joined = narrow.join_asof(
        right, left_on="start_time", right_on="valid_from", by=key, strategy="backward", check_sortedness=False)
    valid = pl.col("valid_from").is_not_null() & (pl.col("valid_to").is_null() | (pl.col("start_time") < pl.col("valid_to")))
    found = joined.sort("_row").select(
        *[pl.when(valid).then(pl.col(c)).otherwise(None).alias(c) for c in GUIDE_COLUMNS],
        *([pl.when(valid).then(pl.col("_sub_msisdn")).otherwise(None).alias("_sub_msisdn")] if key == "imsi" else []),
    )
    return pl.concat([records, found], how="horizontal")


def guide(records: pl.DataFrame, subs: pl.DataFrame) -> pl.DataFrame:
    """Records + GUIDE_COLUMNS + ``suspense_reason``/``suspense_message`` (null when guided)."""
    base = records.drop([c for c in (*GUIDE_COLUMNS, "suspense_reason", "suspense_message") if c in records.columns])
    by_msisdn = base.filter(pl.col("msisdn").is_not_null())
    by_imsi = base.filter(pl.col("msisdn").is_null())
    parts = [_asof(by_msisdn, subs, "msisdn").with_columns(pl.lit(False).alias("_by_imsi"))]
    if by_imsi.height:
        imsi = _asof(by_imsi, subs, "imsi")
        parts.append(imsi.with_columns(pl.coalesce("msisdn", "_sub_msisdn").alias("msisdn"), pl.lit(True).alias("_by_imsi"))
                     .drop("_sub_msisdn"))
    guided = pl.concat(parts, how="vertical_relaxed") if len(parts) > 1 else parts[0]
    known = (pl.when(pl.col("_by_imsi")).then(pl.col("imsi").is_in(subs["imsi"].drop_nulls().implode()))
             .otherwise(pl.col("msisdn").is_in(subs["msisdn"].implode())))
    reason = (pl.when(pl.col("subscription_id").is_not_null()).then(None)
              .when(known).then(pl.lit("NO_ACTIVE_SUBSCRIPTION")).otherwise(pl.lit("UNKNOWN_SUBSCRIBER")))
    return guided.with_columns(reason.alias("suspense_reason")).with_columns(
        pl.col("suspense_reason").replace_strict(SUSPENSE_MESSAGES, default=None, return_dtype=pl.String)
        .alias("suspense_message")).drop("_by_imsi")
