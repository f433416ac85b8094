"""Audit reruns: recompute a published period from the raw landing files and the catalogue as it was.

``telbill audit rerun --period 2025-06`` (and the ``audit_rerun`` DAG):

1. reads what was published for the period: the file manifest (which landed files, with their
   sha256), the rated manifest (which catalogue version) and the invoices;
2. builds a separate *audit lake* beside the real one (``<lake parent>/audit/<period>-<id>``) holding
   only the published inputs that are not recomputed (customers, billing imports, payments,
   top-ups, other periods' invoices), copied byte for byte;
3. re-mediates exactly the published landed files (checking their checksums), re-rates the period
   with the archived catalogue snapshot, and recomputes the bill cycle as a dry run;
4. diffs usage, rated usage, settlement entries and invoices against the published ones and writes a
   difference report (JSON + CSV). Expected: no differences.

The tariff folder is archived by content hash in the lake by :func:`snapshot_catalogue`: under
``catalogue_snapshots/version=<rating version>/`` whenever the pipeline rates and under
``catalogue_snapshots/billing/version=<billing version>/`` whenever a bill cycle publishes, so an old
period reruns each stage with the tariffs it used, even after the files in ``tariffs/`` changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.common.partitions import (
    MANIFEST,
    PUBLISHED,
    canonical_json,
    digest,
    published_manifests,
    read_manifested,
    read_published,
)
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store

SNAPSHOTS = "catalogue_snapshots"
RECOMPUTED = ("usage", "mediation", "file_manifest", "rated", "rating_suspense", "settlement_entries")
"""Datasets the rerun recomputes from raw inputs (never copied into the audit lake)."""
INVOICE_DATASETS = ("invoices", "invoice_lines", "invoice_tax_lines")
INVOICE_COLUMNS = ("account_id", "currency", "subtotal", "tax_total", "total", "previous_balance",
                   "payments_received", "amount_due")


class AuditError(RuntimeError):
    """The period cannot be audited (nothing published, a landed file changed, a catalogue not archived)."""


# -- catalogue archive ------------------------------------------------------------------------------
def _version_of(kind: str) -> Callable[[str | Path], str]:
    """The content version a stage records: rating's catalogue tables, or the billing catalogue."""
    if kind == "billing":
        from pipelines.billing.catalogue import load_catalogue

        return lambda folder: load_catalogue(folder).version
    from pipelines.rating.catalogue import catalogue_version

    return catalogue_version


def _snapshot_prefix(kind: str, version: str) -> str:
    return f"{SNAPSHOTS}/version={version}" if kind == "rating" else f"{SNAPSHOTS}/{kind}/version={version}"


def snapshot_catalogue(settings: Settings, tariffs_dir: str | None = None, kind: str = "rating") -> str:
    """Archive the tariff folder in the lake under the version ``kind`` records; returns the version.

    Rating archives under its catalogue version when it rates, billing under its own catalogue version
    when it publishes invoices: each stage's audit rerun then gets exactly the files that stage read,
    even when billing files (tax rules, discounts) changed between rating and billing.
    """
    source = Path(tariffs_dir or settings.tariffs_dir)
    version = _version_of(kind)(source)
    lake = open_store(settings.lake_uri, settings.s3)
    prefix = _snapshot_prefix(kind, version)
    if lake.exists(f"{prefix}/{MANIFEST}"):
        return version
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    listing = {}
    for path in files:
        rel = path.relative_to(source).as_posix()
        data = path.read_bytes()
        lake.write_bytes(f"{prefix}/files/{rel}", data)
        listing[rel] = digest(data)
    lake.write_bytes(f"{prefix}/{MANIFEST}", canonical_json({"version": version, "kind": kind, "files": listing}))
    return version


def restore_catalogue(settings: Settings, version: str, target: Path, kind: str = "rating") -> Path:
    """Materialise an archived catalogue version into ``target`` and check it hashes to ``version``.

    A version that was never archived is still usable when the current folder has it.
    """
    version_of = _version_of(kind)
    lake = open_store(settings.lake_uri, settings.s3)
    prefix = _snapshot_prefix(kind, version)
    if not lake.exists(f"{prefix}/{MANIFEST}"):
        if version_of(settings.tariffs_dir) == version:
            return Path(settings.tariffs_dir)
        raise AuditError(f"{kind} catalogue version {version} is not archived in {lake.uri_for(SNAPSHOTS)} and "
                         f"the current one is {version_of(settings.tariffs_dir)}: cannot rerun with the tariffs "
                         "of the time")
    for key in lake.list(f"{prefix}/files/"):
        rel = key[len(f"{prefix}/files/"):]
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(lake.read_bytes(key))
    if version_of(target) != version:
        raise AuditError(f"archived {kind} catalogue {version} does not hash to its version: the archive was altered")
    return target


def billing_tariffs(settings: Settings, period: str, rating_tariffs: Path, target: Path) -> Path:
    """The tariff folder the period's invoices were computed with.

    Invoices record the billing catalogue version; its archive is restored. Invoices published before
    billing archived its own files fall back to the rating archive when that has the same billing
    version (the files did not change in between); anything else is a clear error, never a silent diff.
    """
    lake = open_store(settings.lake_uri, settings.s3)
    manifests = published_manifests(lake, "invoices", {"period": period})
    version = manifests[0].catalogue_version if manifests else ""
    if not version or _version_of("billing")(rating_tariffs) == version:
        return rating_tariffs
    return restore_catalogue(settings, version, target, kind="billing")


# -- the audit lake ---------------------------------------------------------------------------------
def audit_lake_uri(lake_uri: str, period: str, audit_id: str) -> str:
    """A namespace beside the lake, so audit partitions never mix with published ones."""
    if lake_uri.startswith("s3://"):
        parent = lake_uri.rstrip("/").rsplit("/", 1)[0]
        return f"{parent}/audit/{period}-{audit_id}"
    return str(Path(lake_uri).resolve().parent / "audit" / f"{period}-{audit_id}")


def copy_inputs(lake: Store, audit: Store, period: str) -> list[str]:
    """Copy published partitions the rerun takes as given; returns the copied dataset partitions."""
    copied = []
    for key in lake.list():
        if not key.endswith("/" + PUBLISHED):
            continue
        top = key.split("/", 1)[0]
        if top in RECOMPUTED or top in (SNAPSHOTS, "audit"):
            continue
        if top in INVOICE_DATASETS and f"/period={period}/" in f"/{key}":
            continue
        run_id = json.loads(lake.read_bytes(key))["run_id"]
        base = key[: -len(PUBLISHED)]
        for obj in lake.list(f"{base}run={run_id}/"):
            audit.write_bytes(obj, lake.read_bytes(obj))
        audit.write_bytes(key, lake.read_bytes(key))
        copied.append(base.rstrip("/"))
    return copied


# -- differences ------------------------------------------------------------------------------------
@dataclass
class DatasetDiff:
    dataset: str
    published_rows: int
    rerun_rows: int
    only_published: int
    only_rerun: int
    changed: int
    examples: list[dict] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.only_published or self.only_rerun or self.changed
                    or self.published_rows != self.rerun_rows)


def diff_frames(dataset: str, published: pl.DataFrame | None, rerun: pl.DataFrame | None, keys: list[str],
                columns: list[str] | None = None) -> DatasetDiff:
    """Row-level comparison on ``keys``; ``columns`` (default: all shared) must match exactly."""
    published = published if published is not None else pl.DataFrame()
    rerun = rerun if rerun is not None else pl.DataFrame()
    if published.height == 0 or rerun.height == 0:
        return DatasetDiff(dataset, published.height, rerun.height, published.height, rerun.height, 0)
    shared = [c for c in (columns or published.columns) if c in rerun.columns and c not in keys]
    left = published.select(keys + shared)
    right = rerun.select(keys + shared)
    only_pub = left.join(right, on=keys, how="anti")
    only_new = right.join(left, on=keys, how="anti")
    joined = left.join(right, on=keys, how="inner", suffix="__rerun")
    mismatch = pl.lit(False)
    for c in shared:
        mismatch = mismatch | ~pl.col(c).eq_missing(pl.col(f"{c}__rerun"))
    changed = joined.filter(mismatch)
    examples = [
        {k: str(v) for k, v in row.items()} for row in changed.sort(keys).head(5).to_dicts()
    ] + [{"only_published": str(r)} for r in only_pub.sort(keys).head(3)[keys].to_dicts()] \
      + [{"only_rerun": str(r)} for r in only_new.sort(keys).head(3)[keys].to_dicts()]
    return DatasetDiff(dataset, published.height, rerun.height, only_pub.height, only_new.height, changed.height,
                       examples)


@dataclass
class AuditResult:
    period: str
    audit_id: str
    audit_lake: str
    catalogue_version: str
    files: int
    diffs: list[DatasetDiff]
    report_path: str = ""

    @property
    def differences(self) -> int:
        return sum(d.differs for d in self.diffs)

    def summary(self) -> str:
        lines = [f"audit rerun of {self.period} (catalogue {self.catalogue_version}, {self.files} landed files, "
                 f"audit lake {self.audit_lake})"]
        for d in self.diffs:
            state = "DIFFERS" if d.differs else "same"
            lines.append(f"  {d.dataset:<20} published {d.published_rows:>8}  rerun {d.rerun_rows:>8}  "
                         f"only-published {d.only_published}  only-rerun {d.only_rerun}  changed {d.changed}  {state}")
        lines.append("no differences" if not self.differences else f"{self.differences} dataset(s) differ")
        if self.report_path:
            lines.append(f"report: {self.report_path}")
        return "\n".join(lines)


def audit_rerun(settings: Settings, period: str, catalogue_dir: str | None = None) -> AuditResult:
    """Recompute ``period`` from raw inputs into an audit lake and diff it with what was published.

    ``catalogue_dir`` overrides the archived catalogue (a what-if audit: "what would have changed").
    """
    from pipelines.billing.cycle import bill_cycle
    from pipelines.billing.frames import invoices_frame
    from pipelines.mediation.pipeline import mediate
    from pipelines.rating.stage import rate_period, usage_manifests

    lake = open_store(settings.lake_uri, settings.s3)
    file_manifest = read_published(lake, "file_manifest")
    rated_manifests = published_manifests(lake, "rated", {"period": period})
    if file_manifest is None or not rated_manifests:
        raise AuditError(f"nothing published to audit for {period} in {settings.lake_uri}: "
                         "mediate and rate the period first")
    version = rated_manifests[0].catalogue_version
    files = dict(file_manifest.select("source_file", "file_sha256").iter_rows())
    audit_id = digest(canonical_json({"files": files, "catalogue": catalogue_dir or version,
                                      "rated": rated_manifests[0].run_id}), length=12)
    landing = open_store(settings.landing_uri, settings.s3)
    for key, sha in sorted(files.items()):
        if hashlib.sha256(landing.read_bytes(key)).hexdigest() != sha:
            raise AuditError(f"landed file {key} no longer matches the checksum it was mediated with ({sha}): "
                             "raw files must never be modified")
    audit_settings = settings.with_(lake_uri=audit_lake_uri(settings.lake_uri, period, audit_id))
    audit = open_store(audit_settings.lake_uri, settings.s3)
    for key in audit.list():  # a previous rerun with the same id: start clean so results are the rerun's own
        audit.delete(key)
    copy_inputs(lake, audit, period)

    with tempfile.TemporaryDirectory(prefix="telbill-audit-catalogue-") as tmp:
        tariffs = catalogue_dir or str(restore_catalogue(settings, version, Path(tmp) / "rating"))
        audit_settings = audit_settings.with_(tariffs_dir=tariffs)
        mediate(audit_settings, keys=sorted(files))
        rate_period(audit_settings, period)
        # billing reruns with the files it read when it published (they may have changed after rating);
        # a what-if catalogue_dir replaces both
        billed_with = catalogue_dir or str(billing_tariffs(settings, period, Path(tariffs), Path(tmp) / "billing"))
        drafts = bill_cycle(audit_settings.with_(tariffs_dir=billed_with), period, dry_run=True, documents=False)

    diffs = []
    pub_usage = read_manifested(lake, usage_manifests(lake, period))
    new_usage = read_manifested(audit, usage_manifests(audit, period))
    diffs.append(diff_frames("usage", pub_usage, new_usage, ["record_id"]))
    for dataset in ("rated", "rating_suspense", "settlement_entries"):
        keys = ["record_id"] + (["partner_id", "partner_type"] if dataset == "settlement_entries" else [])
        diffs.append(diff_frames(dataset, read_published(lake, dataset, {"period": period}),
                                 read_published(audit, dataset, {"period": period}), keys))
    invoices = read_published(lake, "invoices", {"period": period})
    if invoices is not None:
        invoices = invoices.filter((pl.col("kind") == "invoice") & (pl.col("status") != "voided"))
        if "revision" in invoices.columns:
            invoices = invoices.sort("revision").unique("account_id", keep="last")
    rerun_invoices = invoices_frame(drafts.invoices) if drafts.invoices else None
    diffs.append(diff_frames("invoices", invoices, rerun_invoices, ["account_id"], list(INVOICE_COLUMNS)))

    result = AuditResult(period, audit_id, audit_settings.lake_uri, catalogue_dir or version, len(files), diffs)
    out = Path(settings.output_dir) / "audit" / f"{period}-{audit_id}"
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "period": period, "audit_id": audit_id, "catalogue_version": result.catalogue_version,
        "landed_files": files, "differences": result.differences,
        "datasets": [d.__dict__ for d in diffs],
    }
    (out / "audit_report.json").write_bytes(canonical_json(report))
    pl.DataFrame([{k: v for k, v in d.__dict__.items() if k != "examples"} for d in diffs]).write_csv(
        out / "audit_report.csv")
    result.report_path = str(out / "audit_report.json")
    return result


def _rerun_command(args: argparse.Namespace, settings: Settings) -> int:
    result = audit_rerun(settings, args.period, catalogue_dir=args.catalogue)
    print(result.summary())
    return 0 if not result.differences else 3


def _snapshot_command(args: argparse.Namespace, settings: Settings) -> int:
    print(f"catalogue archived as version {snapshot_catalogue(settings)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="audit reruns of published periods")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    rerun = asub.add_parser("rerun", help="recompute a period from raw files and diff it with what was published "
                                          "(exit code 3 when anything differs)")
    rerun.add_argument("--period", required=True, help="YYYY-MM")
    rerun.add_argument("--catalogue", help="rerun with this catalogue folder instead of the archived one")
    rerun.set_defaults(func=_rerun_command)
    snap = asub.add_parser("snapshot-catalogue", help="archive the current catalogue in the lake")
    snap.set_defaults(func=_snapshot_command)


