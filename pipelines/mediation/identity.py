"""Record identity: the dedup key and the record id.

* ``dedup_key`` = the network's own record id where the format has one (``network_record_id``),
  otherwise ``b:`` + the first 20 hex digits of md5 over the business fields
  ``service|direction|msisdn-or-imsi|start_time(us)|other_party|quantity|charging_id|partial_seq|rating_group``
  (nulls as empty text). Partial records each have their own key (charging_id + partial_seq): a
  repeated partial is a duplicate, the next partial of the same session is not. (A digest rather
  than the text itself: the text is ~60 incompressible bytes per record and doubled the cost of
  writing the usage Parquet.)
* ``record_id`` = the first 16 hex digits of md5(source || 0x1F || dedup_key). Duplicates are
  decided on ``record_id``, i.e. within one source.

md5 runs vectorised inside DuckDB (no per-record Python); it is a stable function, so ids stay the
same across runs, machines and library upgrades (unlike Polars' own ``hash``). Pinned by tests against
``hashlib.md5``.
"""

from __future__ import annotations

from functools import lru_cache

import duckdb
import polars as pl


@lru_cache(maxsize=1)
def _connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (connecting costs ~10 ms; each call takes its own cursor)."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute("set threads = 1")  # mediation already hashes two batches at once, one per core
    return con

def business_key() -> pl.Expr:
    """``service|direction|msisdn-or-imsi|start_time(us)|other_party|quantity|charging_id|partial_seq|rating_group``."""
    def text(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.String).fill_null("")
    subscriber = pl.coalesce(pl.col("msisdn"), pl.lit("imsi:") + pl.col("imsi"), pl.lit(""))
    return pl.concat_str([text("service"), text("direction"), subscriber,
                          pl.col("start_time").dt.epoch("us").cast(pl.String).fill_null(""),
                          text("other_party"), text("quantity"), text("charging_id"), text("partial_seq"),
                          text("rating_group")], separator="|")


_BUSINESS_SQL = "select 'b:' || substr(md5(bkey), 1, 20) as dedup_key from k"
_RECORD_SQL = "select substr(md5(source || chr(31) || dedup_key), 1, 16) as record_id from k"


def _duckdb(sql: str, frame: pl.DataFrame) -> pl.Series:
    """The single column ``sql`` computes over ``frame`` (registered as ``k``)."""
    con = _connection().cursor()
    try:
        con.register("k", frame)
        return con.execute(sql).pl().to_series()
    finally:
        con.close()


def with_identity(records: pl.DataFrame) -> pl.DataFrame:
    """Add ``dedup_key``, ``record_id`` and ``usage_date`` (UTC date of start_time).

    The dedup key is the network record id where there is one (no hashing); the business-key text is
    built and hashed only for the records without one (a when/then would build it for every row). DuckDB
    then hashes two narrow columns into the record id and hands back just that column.
    """
    if records.height == 0:
        return records.with_columns(pl.lit(None, pl.String).alias("dedup_key"), pl.lit(None, pl.String).alias("record_id"),
                                    pl.col("start_time").dt.date().alias("usage_date"))
    has_nrid = records.select((pl.col("network_record_id").fill_null("") != "").alias("has"))["has"]
    dedup_key = records["network_record_id"].alias("dedup_key")
    if not has_nrid.all():
        missing = (~has_nrid).arg_true()
        hashed = _duckdb(_BUSINESS_SQL, records[missing].select(business_key().alias("bkey")))
        dedup_key = dedup_key.scatter(missing, hashed)
    record_id = _duckdb(_RECORD_SQL, pl.DataFrame([records["source"], dedup_key])).alias("record_id")
    return records.with_columns(dedup_key, record_id, pl.col("start_time").dt.date().alias("usage_date"))


def warm_up() -> None:
    """Pay DuckDB's one-off cost of scanning a Python frame (it imports pandas, about 1 s) early, on a
    worker thread, while the first files are still being read."""
    con = _connection().cursor()
    try:
        con.register("k", pl.DataFrame({"source": ["warm"]}))
        con.execute("select md5(source) from k").fetchall()
    finally:
        con.close()
