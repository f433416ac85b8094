"""File control and suspense: sequence gaps, repeated sequence numbers, quiet sources, suspense aging
and recycling suspense after customer data changes.

All of it is computed from the published lake (``file_manifest`` and ``mediation/suspense``), with
``as_of`` passed in: nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from pipelines.common.partitions import published_manifests, read_published, run_id_for, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store
from pipelines.customers import load_subscriptions
from pipelines.mediation.guiding import guide
from pipelines.mediation.pipeline import (
    BASE_SCHEMA,
    CHANGED,
    CHANGED_SCHEMA,
    FILE_MANIFEST,
    MANIFEST_SCHEMA,
    REJECTS,
    SUSPENSE,
    SUSPENSE_SCHEMA,
    USAGE,
    USAGE_SCHEMA,
    _read,
    build_file_manifest,
    in_usage_order,
    read_key_index,
    subscriptions_version,
    surviving_copies,
    write_date,
)
from pipelines.mediation.sources import load_sources

AGE_BUCKETS = ((0, 2, "0-2 days"), (3, 7, "3-7 days"), (8, 30, "8-30 days"), (31, 10**6, "over 30 days"))


def sequence_gaps(manifest: pl.DataFrame) -> pl.DataFrame:
    """(source, missing_sequence) for every number missing between a source's first and last file."""
    rows = []
    for (source,), grp in manifest.filter(pl.col("sequence").is_not_null()).partition_by(
            "source", as_dict=True, maintain_order=True).items():
        seen = set(grp["sequence"].to_list())
        rows += [(source, s) for s in range(min(seen), max(seen) + 1) if s not in seen]
    return pl.DataFrame(rows, schema={"source": pl.String, "missing_sequence": pl.Int64}, orient="row").sort(
        "source", "missing_sequence")


def repeated_sequences(manifest: pl.DataFrame) -> pl.DataFrame:
    """(source, sequence, files) where different files carry the same sequence number."""
    return (manifest.filter(pl.col("sequence").is_not_null())
            .group_by("source", "sequence").agg(pl.col("source_file").sort().alias("files"))
            .filter(pl.col("files").list.len() > 1).sort("source", "sequence"))


def quiet_sources(manifest: pl.DataFrame, as_of: date, quiet_days: int = 2,
                  per_source: dict[str, int] | None = None) -> pl.DataFrame:
    """Sources whose newest file date is more than their allowed gap in days before ``as_of``.

    The allowed gap is ``per_source[source]`` when given (from ``sources.csv``), else ``quiet_days``.
    """
    allowed = pl.col("source").replace_strict(per_source or {}, default=quiet_days, return_dtype=pl.Int64)
    return (manifest.filter(pl.col("file_date").is_not_null())
            .group_by("source").agg(pl.col("file_date").max().alias("last_file_date"))
            .with_columns((pl.lit(as_of) - pl.col("last_file_date")).dt.total_days().alias("days_quiet"))
            .filter(pl.col("days_quiet") > allowed).sort("source"))


AGING_INPUT: dict[str, pl.DataType] = {"suspense_reason": pl.String, "usage_date": pl.Date, "quantity": pl.Int64}
"""The suspense columns :func:`suspense_aging` needs."""


def suspense_aging(suspense: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Suspense records by reason and age (days from usage date to ``as_of``)."""
    age = (pl.lit(as_of) - pl.col("usage_date")).dt.total_days()
    bucket = pl.lit(None, pl.String)
    for lo, hi, label in reversed(AGE_BUCKETS):
        bucket = pl.when(age.is_between(lo, hi)).then(pl.lit(label)).otherwise(bucket)
    return (suspense.with_columns(bucket.fill_null("future").alias("age"))
            .group_by("suspense_reason", "age").agg(pl.len().alias("records"), pl.col("quantity").sum())
            .sort("suspense_reason", "age"))


@dataclass
class ControlReport:
    as_of: date
    manifest: pl.DataFrame
    gaps: pl.DataFrame
    repeated: pl.DataFrame
    quiet: pl.DataFrame
    aging: pl.DataFrame
    quarantined: pl.DataFrame
    duplicate_files: pl.DataFrame
    notes: pl.DataFrame
    rejects: pl.DataFrame
    changed: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CHANGED_SCHEMA))
    """Processed keys whose landed object changed afterwards (as the last ``mediate`` run found them)."""

    def text(self) -> str:
        m = self.manifest
        outcome_sums = {c: int(m[c].sum()) for c in ("records_in", "usage", "filtered", "rejected", "duplicate", "suspense")}
        lines = [f"mediation report as of {self.as_of}: {m.height} files",
                 "records in {records_in} = usage {usage} + filtered {filtered} + rejected {rejected} + "
                 "duplicate {duplicate} + suspense {suspense}".format(**outcome_sums),
                 f"conservation: {'balanced' if bool(m['balanced'].all()) else 'BROKEN'}"]
        lines.append(f"sequence gaps: {self.gaps.height}")
        lines += [f"  {r['source']}: sequence {r['missing_sequence']} missing" for r in self.gaps.iter_rows(named=True)]
        lines.append(f"repeated sequence numbers: {self.repeated.height}")
        lines += [f"  {r['source']} #{r['sequence']}: {', '.join(r['files'])}" for r in self.repeated.iter_rows(named=True)]
        lines.append(f"quiet sources (as of {self.as_of}): {self.quiet.height}")
        lines += [f"  {r['source']}: last file {r['last_file_date']} ({r['days_quiet']} days)"
                  for r in self.quiet.iter_rows(named=True)]
        lines.append(f"quarantined files: {self.quarantined.height}")
        lines += [f"  {r['source_file']}: {r['reason_code']}" for r in self.quarantined.iter_rows(named=True)]
        lines.append(f"files changed after processing: {self.changed.height}"
                     + (" (NOT mediated: a processed key is immutable; land the corrected file under a new name, "
                        "e.g. the next sequence number)" if self.changed.height else ""))
        lines += [f"  {r['source_file']}: {changed_evidence(r)}" for r in self.changed.iter_rows(named=True)]
        lines.append(f"whole-file duplicates: {self.duplicate_files.height}")
        lines += [f"  {r['source_file']} = {r['duplicate_of']}" for r in self.duplicate_files.iter_rows(named=True)]
        lines.append(f"file notes: {self.notes.height}")
        lines += [f"  {r['source_file']}: {r['message']}" for r in self.notes.iter_rows(named=True)]
        lines.append("rejected records by reason:")
        lines += [f"  {r['reason_code']:<24} {r['records']:>8} records" for r in self.rejects.iter_rows(named=True)]
        lines.append("suspense by reason and age:")
        lines += [f"  {r['suspense_reason']:<24} {r['age']:<13} {r['records']:>8} records"
                  for r in self.aging.iter_rows(named=True)]
        return "\n".join(lines)


def changed_evidence(row: dict) -> str:
    """How a processed file was found changed, in one phrase (sizes, or the sha256 prefixes at equal size)."""
    if row["detected_by"] == "size":
        return f"size {row['processed_size_bytes']} -> {row['landed_size_bytes']} bytes"
    return (f"same size {row['landed_size_bytes']} bytes, sha256 {row['processed_sha256'][:12]}... -> "
            f"{row['landed_sha256'][:12]}...")


def file_control_report(settings: Settings, as_of: date, quiet_days: int | None = None) -> ControlReport:
    """The file-control report; ``quiet_days`` set = one threshold for all sources, None = per source
    from ``sources.csv`` (``expected_max_gap_hours``), 2 days for a source not in it."""
    if quiet_days is not None and quiet_days < 1:
        raise ValueError(f"quiet_days must be a whole number of days >= 1, not {quiet_days}")
    lake = open_store(settings.lake_uri, settings.s3)
    per_source = None if quiet_days is not None else {
        name: cfg.max_gap_days for name, cfg in load_sources().items() if cfg.max_gap_days is not None}
    manifest = _read(lake, FILE_MANIFEST, MANIFEST_SCHEMA)
    # only the columns the report counts by (rejects carry each record's raw text, suspense whole records)
    suspense = read_published(lake, SUSPENSE, columns=["suspense_reason", "usage_date", "quantity"])
    rejects = read_published(lake, REJECTS, columns=["reason_code"])
    return ControlReport(
        as_of=as_of, manifest=manifest, gaps=sequence_gaps(manifest), repeated=repeated_sequences(manifest),
        quiet=quiet_sources(manifest, as_of, 2 if quiet_days is None else quiet_days, per_source),
        aging=suspense_aging(suspense if suspense is not None else pl.DataFrame(schema=AGING_INPUT), as_of),
        quarantined=manifest.filter(pl.col("status") == "quarantined"),
        duplicate_files=manifest.filter(pl.col("status") == "duplicate_file"),
        notes=manifest.filter((pl.col("status") != "quarantined") & pl.col("message").is_not_null())
        .select("source_file", "message").sort("source_file"),
        rejects=rejects_by_reason(rejects if rejects is not None else pl.DataFrame(schema={"reason_code": pl.String})),
        changed=_read(lake, CHANGED, CHANGED_SCHEMA),
    )


def rejects_by_reason(rejects: pl.DataFrame) -> pl.DataFrame:
    """Rejected records per reason code (LOST_CDRS, BAD_TIMESTAMP, ...): what the per-file counts do not say."""
    return rejects.group_by("reason_code").agg(pl.len().alias("records")).sort("reason_code")


@dataclass(frozen=True)
class RecycleResult:
    examined: int
    guided: int
    still_suspense: int
    dates: tuple[str, ...]


def republish_manifest(lake: Store, version: str) -> pl.DataFrame:
    """Recompute the file manifest's outcome counts after date partitions changed."""
    current = _read(lake, FILE_MANIFEST, MANIFEST_SCHEMA)
    bases = current.with_columns((pl.col("status") == "quarantined").alias("quarantined")).select(
        BASE_SCHEMA.keys()).cast(BASE_SCHEMA)  # type: ignore[arg-type]
    full = build_file_manifest(lake, bases)
    inputs = dict(full.select("source_file", "file_sha256").iter_rows())
    write_partition(lake, FILE_MANIFEST, {}, run_id_for(inputs, subscriptions=version), full, inputs=inputs)
    return full


def recycle(settings: Settings) -> RecycleResult:
    """Re-guide every suspense record with the current subscriptions; guided ones move to usage."""
    lake = open_store(settings.lake_uri, settings.s3)
    subs = load_subscriptions(settings)
    version = subscriptions_version(lake)
    examined = guided_n = 0
    dates = []
    for m in published_manifests(lake, SUSPENSE):
        if m.rows == 0:
            continue
        part = m.partition
        suspense = _read(lake, SUSPENSE, SUSPENSE_SCHEMA, part)
        regu = guide(suspense.drop("suspense_reason", "suspense_message"), subs).select(
            SUSPENSE_SCHEMA.keys()).cast(SUSPENSE_SCHEMA)  # type: ignore[arg-type]
        examined += suspense.height
        moved = int(regu["subscription_id"].is_not_null().sum())
        if moved == 0:
            continue
        guided_n += moved
        usage = _read(lake, USAGE, USAGE_SCHEMA, part).with_columns(
            pl.lit(None, pl.String).alias("suspense_reason"), pl.lit(None, pl.String).alias("suspense_message"))
        rows = in_usage_order(pl.concat([usage, regu]))
        index, _ = read_key_index(lake, date.fromisoformat(part["usage_date"]))
        winners = surviving_copies(index)
        write_date(lake, date.fromisoformat(part["usage_date"]), index, winners, rows, version)
        dates.append(part["usage_date"])
    if dates:
        republish_manifest(lake, version)
    return RecycleResult(examined, guided_n, examined - guided_n, tuple(dates))
