"""The rating stage: read a bill period's usage from the lake, rate it, publish rated/suspense/settlement.

``rate_period`` is I/O at the edges around the pure :func:`rate_frames` (frames in, frames out). The run id
is a content hash of the input manifests, the catalogue version and the code version, so the same inputs
give the same run id and the same bytes; an audit rerun (``publish=False``) writes beside the published run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipelines.common.partitions import (
    Manifest,
    code_version,
    publish_run,
    published_manifests,
    read_manifested,
    run_id_for,
    write_partition,
)
from pipelines.common.periods import parse_period, period_bounds_utc
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store
from pipelines.rating.catalogue import Catalogue, load_catalogue
from pipelines.rating.engine import EngineOutput, prepare, rate_usage
from schemas.contracts import ACCOUNT_SCHEMA, RATED_SCHEMA, SETTLEMENT_ENTRY_SCHEMA, USAGE_SCHEMA

RATED = "rated"
SUSPENSE = "rating_suspense"
SETTLEMENT = "settlement_entries"
USAGE = "usage"
SUSPENSE_COLUMNS = ("record_id", "reason_code", "message")


@dataclass(frozen=True)
class RatingResult:
    """What a rating run read and wrote."""

    period: str
    run_id: str
    catalogue_version: str
    usage_in: int
    rated: int
    suspense: int
    settlement: int
    charge_total: Decimal
    manifests: dict[str, Manifest] = field(default_factory=dict)
    suspense_by_reason: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.suspense_by_reason.items())) or "none"
        where = ", ".join(m.prefix for m in self.manifests.values())
        return (f"period {self.period}: {self.usage_in} usage records -> {self.rated} rated + {self.suspense} "
                f"suspense ({reasons}); {self.settlement} settlement entries; charges {self.charge_total} "
                f"(catalogue {self.catalogue_version}, run {self.run_id})\nwrote {where}")


def usage_window(period: str) -> tuple[date, date]:
    """UTC usage dates that can hold usage of a period for any cycle day (1..28) and time zone."""
    year, month = parse_period(period)
    start = date(year, month, 1) - timedelta(days=1)
    end = (date(year + 1, 1, 28) if month == 12 else date(year, month + 1, 28)) + timedelta(days=2)
    return start, end


def usage_manifests(lake: Store, period: str) -> list[Manifest]:
    lo, hi = usage_window(period)
    out = []
    for m in published_manifests(lake, USAGE):
        day = m.partition.get("usage_date")
        if day is not None and lo.isoformat() <= day < hi.isoformat():
            out.append(m)
    return out


def account_periods(accounts: pl.DataFrame, period: str) -> pl.DataFrame:
    """Each account's bill period ``[period_start, period_end)`` in UTC, and its allowance group."""
    combos = accounts.select("bill_cycle_day", "timezone").unique().to_dicts()
    bounds = [{**c, "period_start": (b := period_bounds_utc(period, c["bill_cycle_day"], c["timezone"]))[0],
               "period_end": b[1]} for c in combos]
    frame = pl.DataFrame(bounds, schema={"bill_cycle_day": pl.Int32, "timezone": pl.String,
                                         "period_start": pl.Datetime("us", "UTC"),
                                         "period_end": pl.Datetime("us", "UTC")})
    return (accounts.select("account_id", "bill_cycle_day", "timezone", "parent_account_id")
            .join(frame, on=["bill_cycle_day", "timezone"], how="left")
            .select("account_id", "parent_account_id", "period_start", "period_end"))


CHUNK_ROWS = 1_000_000
"""Rate at most about this many records at once. Chunks split by allowance group, so every allowance
and tier pool is rated whole inside one chunk; results are merged and sorted, so chunking never changes
them (it bounds memory)."""


def rate_frames(cat: Catalogue, usage: pl.DataFrame, accounts: pl.DataFrame, period: str, *,
                apply_allowances: bool = True, chunk_rows: int = CHUNK_ROWS) -> tuple[int, EngineOutput]:
    """Pure stage core: usage + accounts -> (usage records in the period, engine output)."""
    usage = usage.select([pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()])
    acct = account_periods(accounts.select([pl.col(c).cast(t) for c, t in ACCOUNT_SCHEMA.items()]), period)
    utc_start, utc_end = period_bounds_utc(period)
    con = duckdb.connect()
    try:
        prepare(con, cat)
        con.register("usage_all", usage)
        con.register("acct", acct)
        con.execute(f"""
            CREATE TEMP VIEW usage_period AS
            SELECT u.*, '{period}' AS bill_period,
                   coalesce(a.parent_account_id, u.account_id) AS group_id
            FROM usage_all u LEFT JOIN acct a ON a.account_id = u.account_id
            WHERE CASE WHEN a.account_id IS NOT NULL
                       THEN u.start_time >= a.period_start AND u.start_time < a.period_end
                       ELSE u.start_time >= TIMESTAMPTZ '{utc_start.isoformat()}'
                            AND u.start_time < TIMESTAMPTZ '{utc_end.isoformat()}' END
        """)
        n_in = con.execute("SELECT count(*) FROM usage_period").fetchone()[0]
        chunks = max(1, -(-n_in // chunk_rows))
        outs = []
        for i in range(chunks):
            con.execute(f"""CREATE OR REPLACE TEMP VIEW usage_chunk AS SELECT * FROM usage_period
                            WHERE hash(coalesce(group_id, '')) % {chunks} = {i}""")
            outs.append(rate_usage(con, cat, "usage_chunk", apply_allowances=apply_allowances))
    finally:
        con.close()
    if len(outs) == 1:
        return n_in, _typed(outs[0])
    merged = EngineOutput(pl.concat([o.rated for o in outs]).sort("record_id"),
                          pl.concat([o.suspense for o in outs]).sort("record_id"),
                          pl.concat([o.settlement for o in outs]).sort("record_id", "partner_type", "partner_id"))
    return n_in, _typed(merged)


def _typed(out: EngineOutput) -> EngineOutput:
    """Contract columns first with contract types, extra explain columns after."""
    def order(frame: pl.DataFrame, contract: dict[str, pl.DataType]) -> pl.DataFrame:
        first = [pl.col(c).cast(t) for c, t in contract.items()]
        return frame.select([*first, *[c for c in frame.columns if c not in contract]])

    rated = order(out.rated, RATED_SCHEMA).with_columns(
        pl.col("precise_charge").cast(pl.Decimal(38, 9)),
        *[pl.col(c).cast(pl.Int64) for c in ("allowance_used_before", "band_segments", "tier_before", "tier_total")])
    suspense = out.suspense.select([*SUSPENSE_COLUMNS, *[c for c in out.suspense.columns
                                                         if c not in SUSPENSE_COLUMNS]])
    return EngineOutput(rated, suspense, order(out.settlement, SETTLEMENT_ENTRY_SCHEMA))


def rate_period(settings: Settings, period: str, catalogue_dir: str | Path | None = None, *,
                accounts: pl.DataFrame | None = None, publish: bool = True,
                apply_allowances: bool = True) -> RatingResult:
    """Rate every usage record whose start falls in its account's bill period; publish the results."""
    lake = open_store(settings.lake_uri, settings.s3)
    cat = load_catalogue(catalogue_dir or settings.tariffs_dir)
    manifests = usage_manifests(lake, period)
    usage = read_manifested(lake, manifests)
    if usage is None:
        usage = pl.DataFrame(schema=USAGE_SCHEMA)
    inputs = {m.prefix: m.run_id for m in manifests}
    if accounts is None:
        from pipelines.customers import ACCOUNTS, load_accounts

        accounts = load_accounts(settings)
        inputs.update({m.prefix: m.run_id for m in published_manifests(lake, ACCOUNTS)})
    else:
        inputs["accounts(frame)"] = _frame_digest(accounts)
    n_in, out = rate_frames(cat, usage, accounts, period, apply_allowances=apply_allowances)
    run_id = run_id_for(inputs, period=period, catalogue=cat.version, code=code_version(),
                        allowances=apply_allowances)
    if n_in != out.rated.height + out.suspense.height:
        raise RuntimeError(f"conservation broken for {period}: {n_in} in, {out.rated.height} rated, "
                           f"{out.suspense.height} suspense (a rating bug: please report it)")
    part = {"period": period}
    extra = {"usage_in": n_in, "rated": out.rated.height, "suspense": out.suspense.height}
    written = {}
    for dataset, frame in ((RATED, out.rated), (SUSPENSE, out.suspense), (SETTLEMENT, out.settlement)):
        written[dataset] = write_partition(lake, dataset, part, run_id, frame, inputs=inputs,
                                           catalogue_version=cat.version, extra=extra, publish=False)
    if publish:  # only once all three runs are committed: readers never see a half-rated period
        for dataset in written:
            publish_run(lake, dataset, part, run_id)
    reasons = dict(out.suspense.group_by("reason_code").len().iter_rows()) if out.suspense.height else {}
    total = out.rated["charge"].sum() if out.rated.height else Decimal(0)
    return RatingResult(period, run_id, cat.version, n_in, out.rated.height, out.suspense.height,
                        out.settlement.height, Decimal(total), written, reasons)


def _frame_digest(frame: pl.DataFrame) -> str:
    import hashlib
    import io

    buf = io.BytesIO()
    frame.sort(frame.columns).write_ipc(buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()[:16]
