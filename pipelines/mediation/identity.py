"""Record identity: the dedup key and the record id.

* ``dedup_key`` = the network's own record id where the format has one (``network_record_id``),
  otherwise ``b:`` + 16 hex digits of XXH3-64 over the business fields
  ``service|direction|msisdn-or-imsi|start_time(us)|other_party|quantity|charging_id|partial_seq|rating_group``
  (nulls as empty text, UTF-8). Partial records each have their own key (charging_id + partial_seq): a
  repeated partial is a duplicate, the next partial of the same session is not. (A digest rather
  than the text itself: the text is ~60 incompressible bytes per record and doubled the cost of
  writing the usage Parquet.)
* ``record_id`` = 16 lowercase hex digits of XXH3-64(source || 0x1F || dedup_key), i.e. exactly
  ``xxhash.xxh3_64_hexdigest(...)``. Duplicates are decided on ``record_id``, i.e. within one source.

XXH3-64 (seed 0) is a specified, frozen hash (xxHash >= 0.8: the same bits on every machine and
version, which the persistent key index needs: a file re-sent after an upgrade must still be caught;
Polars' own ``hash`` is explicitly not stable across versions). It runs vectorised in Rust through the
``polars-hash`` plugin, about 50x cheaper than md5 in DuckDB, and a test pins it to the reference
``xxhash`` library. 64 bits, like the 16 hex digits of md5 used before: the chance that two different
records of one source and day collide stays below 1e-5 even at 10M records a day.
"""

from __future__ import annotations

import polars as pl
import polars_hash as plh
import pyarrow as pa


def business_key() -> pl.Expr:
    """``service|direction|msisdn-or-imsi|start_time(us)|other_party|quantity|charging_id|partial_seq|rating_group``."""
    def text(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.String).fill_null("")
    subscriber = pl.coalesce(pl.col("msisdn"), pl.lit("imsi:") + pl.col("imsi"), pl.lit(""))
    return pl.concat_str([text("service"), text("direction"), subscriber,
                          pl.col("start_time").dt.epoch("us").cast(pl.String).fill_null(""),
                          text("other_party"), text("quantity"), text("charging_id"), text("partial_seq"),
                          text("rating_group")], separator="|")


def hex16(values: pl.Series) -> pl.Series:
    """UInt64 without nulls -> 16 lowercase hex digits of the integer (big-endian, as ``hexdigest``).

    Polars has no integer-to-hex; the big-endian bytes become an 8-byte binary column (zero copy
    through Arrow) that Polars hex-encodes natively.
    """
    big_endian = values.to_numpy().astype(">u8")
    raw = pa.Array.from_buffers(pa.binary(8), len(big_endian), [None, pa.py_buffer(big_endian)])
    return pl.Series(values.name, raw, dtype=pl.Binary).bin.encode("hex")


def xxh3_hex(text: pl.Series) -> pl.Series:
    """16 hex digits of XXH3-64 of each (non-null) UTF-8 string."""
    return hex16(text.to_frame().select(plh.col(text.name).nchash.xxh3_64())[:, 0])


def with_identity(records: pl.DataFrame) -> pl.DataFrame:
    """Add ``dedup_key``, ``record_id`` and ``usage_date`` (UTC date of start_time)."""
    if records.height == 0:
        return records.with_columns(pl.lit(None, pl.String).alias("dedup_key"), pl.lit(None, pl.String).alias("record_id"),
                                    pl.col("start_time").dt.date().alias("usage_date"))
    with_nrid = records["network_record_id"].fill_null("") != ""
    dedup_key = records["network_record_id"].alias("dedup_key")
    if not with_nrid.all():
        business = records.select(business_key().filter(~with_nrid).alias("k"))["k"]
        digests = xxh3_hex(business).to_frame("h").select(pl.lit("b:") + pl.col("h"))[:, 0]
        dedup_key = dedup_key.clone().scatter((~with_nrid).arg_true(), digests)
    source_key = records.select(pl.concat_str([pl.col("source"), pl.lit("\x1f"), dedup_key]).alias("s"))["s"]
    return records.with_columns(dedup_key, xxh3_hex(source_key).alias("record_id"),
                                pl.col("start_time").dt.date().alias("usage_date"))
