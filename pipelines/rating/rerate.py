"""Rerating after a tariff correction, and what-if simulation against a draft catalogue.

``rerate_period`` writes the new version beside the published one (same partition, new run id), a
``rating_changes`` partition listing every record whose charge, rate or allowance changed, and then
publishes the new run (unless told not to). ``simulate_period`` writes nothing: it rates the period with
the current and a draft catalogue in memory and compares revenue by plan and service.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.common.partitions import publish_run, published_manifests, read_manifested, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.rating.catalogue import load_catalogue
from pipelines.rating.stage import RATED, SETTLEMENT, SUSPENSE, rate_frames, rate_period, usage_manifests
from schemas.contracts import USAGE_SCHEMA

CHANGES = "rating_changes"
_ZERO = pl.lit(0).cast(pl.Decimal(38, 9))


@dataclass(frozen=True)
class RerateReport:
    period: str
    old_run: str
    new_run: str
    records_changed: int
    accounts_changed: int
    old_total: Decimal
    new_total: Decimal
    by_account: pl.DataFrame
    published: bool

    def text(self) -> str:
        lines = [f"rerate {self.period}: run {self.old_run} -> {self.new_run}"
                 f" ({'published' if self.published else 'written beside, not published'})",
                 f"records changed: {self.records_changed}; accounts changed: {self.accounts_changed}",
                 f"usage charges: {self.old_total} -> {self.new_total} (delta {self.new_total - self.old_total})"]
        for r in self.by_account.head(20).iter_rows(named=True):
            lines.append(f"  {r['account_id']}: {r['records']} records, {r['old_charge']} -> {r['new_charge']} "
                         f"(delta {r['delta']})")
        return "\n".join(lines)


def rating_changes(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Records whose charge, rate, band, allowance or included quantity differ (or appear/disappear)."""
    cols = ["record_id", "account_id", "plan_id", "service", "charge", "rate_id", "band", "allowance_id",
            "quantity_included"]
    joined = old.select(cols).join(new.select(cols), on="record_id", how="full", suffix="_new", coalesce=True)
    changed = joined.filter(
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_new")) for c in cols[1:]]))
    return changed.select(
        "record_id",
        pl.coalesce("account_id_new", "account_id").alias("account_id"),
        pl.coalesce("plan_id_new", "plan_id").alias("plan_id"),
        pl.coalesce("service_new", "service").alias("service"),
        pl.col("charge").alias("old_charge"), pl.col("charge_new").alias("new_charge"),
        (pl.col("charge_new").fill_null(_ZERO) - pl.col("charge").fill_null(_ZERO)).cast(pl.Decimal(38, 9))
        .alias("delta"),
        pl.col("rate_id").alias("old_rate_id"), pl.col("rate_id_new").alias("new_rate_id"),
        pl.col("allowance_id").alias("old_allowance_id"), pl.col("allowance_id_new").alias("new_allowance_id"),
        pl.when(pl.col("charge").is_null()).then(pl.lit("added"))
        .when(pl.col("charge_new").is_null()).then(pl.lit("removed")).otherwise(pl.lit("changed"))
        .alias("change"),
    ).sort("record_id")


def rerate_period(settings: Settings, period: str, *, publish: bool = True,
                  catalogue_dir: str | Path | None = None) -> RerateReport:
    """Rate ``period`` again with the current catalogue beside the published run and report the changes."""
    lake = open_store(settings.lake_uri, settings.s3)
    old_manifests = published_manifests(lake, RATED, {"period": period})
    if not old_manifests:
        raise RuntimeError(f"period {period} has no published rated run: run `telbill rate --period {period}` first")
    old = read_manifested(lake, old_manifests)
    result = rate_period(settings, period, catalogue_dir, publish=False)
    new = read_manifested(lake, [result.manifests[RATED]])
    changes = rating_changes(old, new)
    part = {"period": period}
    write_partition(lake, CHANGES, part, result.run_id, changes, inputs={"old_run": old_manifests[0].run_id,
                                                                        "new_run": result.run_id},
                    catalogue_version=result.catalogue_version, publish=publish)
    if publish:
        for dataset in (RATED, SUSPENSE, SETTLEMENT):
            publish_run(lake, dataset, part, result.run_id)
    by_account = (changes.group_by("account_id")
                  .agg(pl.len().alias("records"), pl.col("old_charge").fill_null(_ZERO).sum().alias("old_charge"),
                       pl.col("new_charge").fill_null(_ZERO).sum().alias("new_charge"),
                       pl.col("delta").sum().alias("delta"))
                  .sort("delta", "account_id", descending=[True, False]))
    return RerateReport(period, old_manifests[0].run_id, result.run_id, changes.height,
                        changes["account_id"].n_unique() if changes.height else 0,
                        Decimal(old["charge"].sum() or 0), Decimal(new["charge"].sum() or 0), by_account, publish)


@dataclass(frozen=True)
class SimulationReport:
    period: str
    current_version: str
    draft_version: str
    by_plan_service: pl.DataFrame

    def text(self) -> str:
        lines = [f"simulate {self.period}: catalogue {self.current_version} (current) vs {self.draft_version} (draft)",
                 f"{'plan':<12} {'service':<8} {'records':>8} {'current':>14} {'draft':>14} {'delta':>14}"]
        for r in self.by_plan_service.iter_rows(named=True):
            lines.append(f"{r['plan_id']:<12} {r['service']:<8} {r['records']:>8} {r['current']:>14.2f} "
                         f"{r['draft']:>14.2f} {r['delta']:>14.2f}")
        tot = self.by_plan_service.select(pl.col("current", "draft", "delta").sum()).row(0)
        lines.append(f"{'total':<12} {'':<8} {'':>8} {tot[0]:>14.2f} {tot[1]:>14.2f} {tot[2]:>14.2f}")
        return "\n".join(lines)


def simulate_frames(current, draft, usage: pl.DataFrame, accounts: pl.DataFrame,  # noqa: ANN001
                    period: str) -> pl.DataFrame:
    """Revenue by plan and service under two catalogues (pure)."""
    def revenue(cat) -> pl.DataFrame:  # noqa: ANN001
        _, out = rate_frames(cat, usage, accounts, period)
        return out.rated.group_by("plan_id", "service").agg(pl.len().alias("records"),
                                                             pl.col("charge").sum().alias("revenue"))

    cur = revenue(current).rename({"revenue": "current"})
    new = revenue(draft).rename({"revenue": "draft", "records": "records_draft"})
    both = cur.join(new, on=["plan_id", "service"], how="full", coalesce=True)
    return both.select(
        "plan_id", "service", pl.max_horizontal("records", "records_draft").fill_null(0).alias("records"),
        pl.col("current").fill_null(_ZERO), pl.col("draft").fill_null(_ZERO),
        (pl.col("draft").fill_null(_ZERO) - pl.col("current").fill_null(_ZERO)).cast(pl.Decimal(38, 9))
        .alias("delta"),
    ).sort("plan_id", "service")


def simulate_period(settings: Settings, period: str, draft_dir: str | Path) -> SimulationReport:
    """Rate a past period with the current and a draft catalogue; nothing is written."""
    from pipelines.customers import load_accounts

    lake = open_store(settings.lake_uri, settings.s3)
    usage = read_manifested(lake, usage_manifests(lake, period))
    usage = pl.DataFrame(schema=USAGE_SCHEMA) if usage is None else usage
    current, draft = load_catalogue(settings.tariffs_dir), load_catalogue(draft_dir)
    table = simulate_frames(current, draft, usage, load_accounts(settings), period)
    return SimulationReport(period, current.version, draft.version, table)
