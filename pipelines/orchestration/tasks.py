"""What each Airflow task runs: one function per task, explicit inputs in, a location (URI) out.

DAG files in ``dags/`` only wire these together and pass their return values (short strings and
lists of strings) through XCom. Settings are built once per task at the edge with
:meth:`Settings.from_env`, which is where the DAG's ``TELBILL_*`` environment reaches the code.
"""

from __future__ import annotations

from datetime import date, datetime

from pipelines.common.periods import parse_period
from pipelines.common.settings import Settings


class NotReady(RuntimeError):
    """A precondition of a task is not met yet (rating incomplete, assurance hold open)."""


def resolve_period(period: str | None, logical_date: datetime | date | None) -> str:
    """The explicit ``period`` param wins; a scheduled run bills the month before its logical date."""
    if period:
        parse_period(period)
        return period
    if logical_date is None:
        raise ValueError("no period given and no logical date to derive it from")
    year, month = logical_date.year, logical_date.month
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


# -- mediation -------------------------------------------------------------------------------------
def mediation_batches(settings: Settings, batch_size: int = 20) -> list[list[str]]:
    """Landed files not mediated yet, in name order, cut into batches for mapped tasks."""
    from pipelines.mediation.distributed import pending_keys

    keys = pending_keys(settings)
    return [keys[i:i + batch_size] for i in range(0, len(keys), batch_size)]


def stage_mediation_batch(settings: Settings, keys: list[str]) -> list[str]:
    """Parse, validate, identify and guide a batch of files (parallel-safe); returns staged URIs."""
    from pipelines.mediation.distributed import stage_files

    return stage_files(settings, keys)


def publish_mediation(settings: Settings) -> str:
    """Fold every staged file into the usage partitions and the file manifest (one writer)."""
    from pipelines.mediation.distributed import publish_staged

    result = publish_staged(settings)
    totals = result.totals()
    if not result.balanced:
        raise RuntimeError(f"mediation conservation broken: {totals}")
    changed = result.changed_files["source_file"].to_list()
    note = f"; {len(changed)} processed files changed after processing, NOT mediated: {changed}" if changed else ""
    return f"{settings.lake_uri}/usage ({totals}){note}"


# -- rating ----------------------------------------------------------------------------------------
def periods_with_usage(settings: Settings, period: str | None) -> list[str]:
    """The period param, or every period with published usage (rerating is idempotent)."""
    if period:
        parse_period(period)
        return [period]
    from pipelines.common.partitions import published_manifests
    from pipelines.common.storage import open_store

    lake = open_store(settings.lake_uri, settings.s3)
    days = {m.partition["usage_date"] for m in published_manifests(lake, "usage")}
    return sorted({d[:7] for d in days})


def rate(settings: Settings, period: str) -> str:
    """Rate the period (rating also archives the catalogue version for audit reruns)."""
    from pipelines.rating.stage import rate_period

    result = rate_period(settings, period)
    return f"{settings.lake_uri}/rated/period={period}/run={result.run_id}"


def rating_complete(settings: Settings, period: str) -> str:
    """Raise :class:`NotReady` unless the published rating of ``period`` read today's published usage
    and today's catalogue (so a late file or a tariff fix since then forces a rerate first)."""
    from pipelines.common.partitions import published_manifests
    from pipelines.common.storage import open_store
    from pipelines.rating.catalogue import catalogue_version
    from pipelines.rating.stage import usage_manifests

    lake = open_store(settings.lake_uri, settings.s3)
    rated = published_manifests(lake, "rated", {"period": period})
    if not rated:
        raise NotReady(f"period {period} has not been rated yet: run the rating DAG or `telbill rate`")
    manifest = rated[0]
    current = {m.prefix: m.run_id for m in usage_manifests(lake, period)}
    used = {k: v for k, v in manifest.inputs.items() if k.startswith("usage/")}
    if used != current:
        changed = sorted(set(current.items()) ^ set(used.items()))
        raise NotReady(f"usage of {period} changed since it was rated ({len(changed)} partition(s), e.g. "
                       f"{changed[:3]}): rerate first")
    version = catalogue_version(settings.tariffs_dir)
    if manifest.catalogue_version != version:
        raise NotReady(f"{period} was rated with catalogue {manifest.catalogue_version}, the catalogue is now "
                       f"{version}: rerate first")
    return manifest.run_id


# -- bill cycle ------------------------------------------------------------------------------------
def assurance_gate(settings: Settings, period: str) -> str:
    """Raise :class:`NotReady` while a critical assurance hold blocks finalising ``period``."""
    from pipelines.assurance.holds import holds_for_period

    holds = holds_for_period(settings, period)
    if holds:
        listed = "; ".join(f"{h.hold_id} {h.reason_code} {h.source}/{h.service}: {h.message}" for h in holds)
        raise NotReady(f"{len(holds)} assurance hold(s) block the {period} bill cycle: {listed}. "
                       f"Clear with `telbill assurance clear-hold`.")
    return "clear"


def bill(settings: Settings, period: str, cycle_day: int | None, accounts: list[str] | None,
         dry_run: bool) -> str:
    import os

    from pipelines.billing.cycle import bill_cycle

    result = bill_cycle(settings, period, cycle_day=cycle_day, accounts=accounts or None, dry_run=dry_run,
                        workers=os.cpu_count() or 1)
    if result.errors:
        raise RuntimeError(f"bill cycle {period}: {len(result.errors)} account(s) failed: {result.errors[:5]}")
    return result.written.get("invoices", f"{settings.lake_uri}/invoices/period={period} (dry run)")


# -- after billing ---------------------------------------------------------------------------------
def collect(settings: Settings, as_of: date) -> str:
    from pipelines.collections.run import collections_run

    result = collections_run(settings, as_of)
    return f"{settings.lake_uri}/collections as_of={as_of} run={result.run_id}"


def settle(settings: Settings, period: str) -> str:
    from pipelines.settlement.statements import run_settlement

    result = run_settlement(settings, period)
    return f"{settings.lake_uri}/settlement period={period} run={result.run_id}"


def assure(settings: Settings, period: str) -> str:
    from pipelines.assurance.run import run_assurance

    result = run_assurance(settings, period)
    return result.files.get("report", f"{settings.lake_uri}/assurance period={period} run={result.run_id}")


def build_warehouse(settings: Settings) -> str:
    from pipelines.warehouse import build_warehouse as build

    path, _skipped = build(settings)
    return path


def audit(settings: Settings, period: str) -> str:
    """Audit rerun of ``period``; fails the task when anything differs from what was published."""
    from pipelines.audit import audit_rerun

    result = audit_rerun(settings, period)
    print(result.summary())
    if result.differences:
        raise RuntimeError(f"audit rerun of {period} differs from what was published: {result.report_path}")
    return result.report_path
