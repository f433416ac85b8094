"""Rerating after a tariff correction, and what-if simulation against a draft catalogue.

``rerate_period`` writes the new version beside the published one (same partition, new run id), a
``rating_changes`` partition listing every record whose charge, rate or allowance changed, and then
publishes the new run (unless told not to). ``simulate_period`` writes nothing: it rates the period with
the current and a draft catalogue in memory and compares revenue by plan and service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


class PeriodNotReady(RuntimeError):
    """The period cannot be rerated yet (it was never rated); the CLI prints it as one line, exit code 2."""

_ZERO = pl.lit(0).cast(pl.Decimal(38, 9))


def plain(amount: Decimal | int | None, *, sign: bool = False) -> str:
    """An exact amount as plain text, without exponent or trailing zeros: ``0E-9`` -> ``0``, ``0.399000000`` ->
    ``0.399`` (``sign``: ``+``/``-`` on a non-zero delta). Nothing is rounded."""
    value = Decimal(amount or 0).normalize()
    return format(value, "+f" if sign and value else "f")


REPORT_ACCOUNTS = 20


@dataclass(frozen=True)
class RerateReport:
    period: str
    old_run: str
    new_run: str
    records_changed: int
    accounts_changed: int
    old_total: Decimal
    new_total: Decimal
    by_account: pl.DataFrame  # sorted by absolute delta, largest first, then account_id
    published: bool
    old_suspense: dict[str, int] = field(default_factory=dict)  # rating suspense by reason, before and after
    new_suspense: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        shown = self.by_account.head(REPORT_ACCOUNTS)
        lines = [f"rerate {self.period}: run {self.old_run} -> {self.new_run}"
                 f" ({'published' if self.published else 'written beside, not published'})",
                 f"records changed: {self.records_changed}; accounts changed: {self.accounts_changed}",
                 f"usage charges: {plain(self.old_total)} -> {plain(self.new_total)} "
                 f"(delta {plain(self.new_total - self.old_total, sign=True)})",
                 *suspense_lines(self.old_suspense, self.new_suspense, "before", "after")]
        if shown.height:
            lines.append(f"accounts with the largest changes ({shown.height} of {self.by_account.height}, by absolute "
                         f"delta; every record: dataset {CHANGES}/period={self.period}):")
        for r in shown.iter_rows(named=True):
            lines.append(f"  {r['account_id']}: {r['records']} records, {plain(r['old_charge'])} -> "
                         f"{plain(r['new_charge'])} (delta {plain(r['delta'], sign=True)})")
        return "\n".join(lines)


def suspense_lines(old: dict[str, int], new: dict[str, int], old_name: str, new_name: str) -> list[str]:
    """Rating suspense before/after, in total and by reason: records moving into suspense leave the revenue
    figures silently, so the count must be shown beside them."""
    total_old, total_new = sum(old.values()), sum(new.values())
    lines = [f"rating suspense (records not charged): {total_old} ({old_name}) -> {total_new} ({new_name}), "
             f"{_signed(total_new - total_old)}"]
    for reason in sorted(old.keys() | new.keys()):
        a, b = old.get(reason, 0), new.get(reason, 0)
        lines.append(f"  {reason}: {a} -> {b} ({_signed(b - a)})")
    return lines


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def _reasons(suspense: pl.DataFrame | None) -> dict[str, int]:
    if suspense is None or not suspense.height:
        return {}
    counts = suspense.group_by("reason_code").len()
    return dict(sorted(zip(counts["reason_code"].to_list(), counts["len"].to_list(), strict=True)))


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
        raise PeriodNotReady(f"period {period} has no published rated run: run `telbill rate --period {period}` first")
    old = read_manifested(lake, old_manifests)
    # read before the new run is published: afterwards the published suspense is the new one
    old_suspense = _reasons(read_manifested(lake, published_manifests(lake, SUSPENSE, {"period": period}),
                                            ["reason_code"]))
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
                  .sort(pl.col("delta").abs(), "account_id", descending=[True, False]))
    return RerateReport(period, old_manifests[0].run_id, result.run_id, changes.height,
                        changes["account_id"].n_unique() if changes.height else 0,
                        Decimal(old["charge"].sum() or 0), Decimal(new["charge"].sum() or 0), by_account, publish,
                        old_suspense, dict(result.suspense_by_reason))


@dataclass(frozen=True)
class SimulationReport:
    period: str
    current_version: str
    draft_version: str
    by_plan_service: pl.DataFrame  # plan_id, service, records, current, draft, delta, suspense_current, suspense_draft
    suspense_current: dict[str, int] = field(default_factory=dict)  # rating suspense by reason
    suspense_draft: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        lines = [f"simulate {self.period}: catalogue {self.current_version} (current) vs {self.draft_version} (draft)",
                 f"{'plan':<12} {'service':<8} {'records':>8} {'current':>16} {'draft':>16} {'delta':>16} "
                 f"{'suspense cur':>12} {'suspense draft':>14}"]
        for r in self.by_plan_service.iter_rows(named=True):
            lines.append(f"{r['plan_id'] or '-':<12} {r['service'] or '-':<8} {r['records']:>8} "
                         f"{plain(r['current']):>16} {plain(r['draft']):>16} {plain(r['delta'], sign=True):>16} "
                         f"{r['suspense_current']:>12} {r['suspense_draft']:>14}")
        t = self.by_plan_service.select(pl.col("records", "current", "draft", "delta", "suspense_current",
                                               "suspense_draft").sum()).row(0, named=True)
        lines.append(f"{'total':<12} {'':<8} {t['records'] or 0:>8} {plain(t['current']):>16} {plain(t['draft']):>16} "
                     f"{plain(t['delta'], sign=True):>16} {t['suspense_current'] or 0:>12} {t['suspense_draft'] or 0:>14}")
        lines += suspense_lines(self.suspense_current, self.suspense_draft, "current", "draft")
        moved = sum(self.suspense_draft.values()) - sum(self.suspense_current.values())
        if moved > 0:
            lines.append(f"warning: the draft sends {moved} more records to rating suspense; their revenue is missing "
                         f"from the draft column until a rule prices them")
        return "\n".join(lines)


@dataclass(frozen=True)
class Simulation:
    """Pure result of :func:`simulate_frames`."""

    by_plan_service: pl.DataFrame
    suspense_current: dict[str, int]
    suspense_draft: dict[str, int]


def simulate_frames(current, draft, usage: pl.DataFrame, accounts: pl.DataFrame,  # noqa: ANN001
                    period: str) -> Simulation:
    """Revenue and rating suspense by plan and service under two catalogues (pure).

    ``records`` counts every record of the period (rated + suspense; the same under both catalogues), so a rule
    the draft drops shows as suspense, not only as revenue going to 0."""
    def rate(cat) -> tuple[pl.DataFrame, dict[str, int]]:  # noqa: ANN001
        _, out = rate_frames(cat, usage, accounts, period)
        keys = ["plan_id", "service"]
        rated = out.rated.group_by(keys).agg(pl.len().alias("rated"), pl.col("charge").sum().alias("revenue"))
        held = out.suspense.group_by(keys).agg(pl.len().alias("suspense"))
        both = rated.join(held, on=keys, how="full", coalesce=True, nulls_equal=True)
        return both, _reasons(out.suspense)

    (cur, sus_cur), (new, sus_new) = rate(current), rate(draft)
    cur = cur.rename({"revenue": "current", "rated": "rated_current", "suspense": "suspense_current"})
    new = new.rename({"revenue": "draft", "rated": "rated_draft", "suspense": "suspense_draft"})
    both = cur.join(new, on=["plan_id", "service"], how="full", coalesce=True, nulls_equal=True)
    count = lambda c: pl.col(c).fill_null(0)  # noqa: E731
    table = both.select(
        "plan_id", "service",
        (count("rated_current") + count("suspense_current")).cast(pl.Int64).alias("records"),
        pl.col("current").fill_null(_ZERO), pl.col("draft").fill_null(_ZERO),
        (pl.col("draft").fill_null(_ZERO) - pl.col("current").fill_null(_ZERO)).cast(pl.Decimal(38, 9))
        .alias("delta"),
        count("suspense_current").cast(pl.Int64).alias("suspense_current"),
        count("suspense_draft").cast(pl.Int64).alias("suspense_draft"),
    ).sort("plan_id", "service", nulls_last=True)
    return Simulation(table, sus_cur, sus_new)


def simulate_period(settings: Settings, period: str, draft_dir: str | Path) -> SimulationReport:
    """Rate a past period with the current and a draft catalogue; nothing is written."""
    from pipelines.customers import load_accounts

    lake = open_store(settings.lake_uri, settings.s3)
    usage = read_manifested(lake, usage_manifests(lake, period))
    usage = pl.DataFrame(schema=USAGE_SCHEMA) if usage is None else usage
    current, draft = load_catalogue(settings.tariffs_dir), load_catalogue(draft_dir)
    sim = simulate_frames(current, draft, usage, load_accounts(settings), period)
    return SimulationReport(period, current.version, draft.version, sim.by_plan_service, sim.suspense_current,
                            sim.suspense_draft)
