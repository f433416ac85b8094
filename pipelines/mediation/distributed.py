"""Mediation split for many workers: stage files in parallel, publish them with one writer.

``mediate`` does both in one process. Airflow's ``mediation`` DAG instead maps
:func:`stage_files` over batches of files (any worker, any order: each file's outputs depend only on
the file and the subscriptions) and then runs :func:`publish_staged` once, which folds the staged
candidates into the usage date partitions exactly as ``mediate`` does. Because the surviving copy
of a duplicate is chosen by ``(source_file, record_offset)``, the published result is the same
whichever worker staged which file, in whatever order (tested).

Staged candidates live in ``mediation/staged/file=<file_id>`` until they are published, then are
removed (the per-date partitions and the key index hold them from then on).
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from pipelines.common.partitions import published_manifests, run_id_for, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import load_subscriptions
from pipelines.mediation.pipeline import (
    BASE_SCHEMA,
    CHANGED,
    CHANGED_SCHEMA,
    FILE_MANIFEST,
    MANIFEST_SCHEMA,
    SUSPENSE_SCHEMA,
    DateFolder,
    MediationResult,
    _read,
    build_file_manifest,
    changed_after_processing,
    landed_keys,
    landed_sizes,
    load_readers,
    publish_changed,
    subscriptions_version,
    write_file_outputs,
)
from pipelines.mediation.pipeline import (
    stage_files as stage_batch,
)

STAGED = "mediation/staged"


def _jsonable(base: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in base.items()}


def _base_frame(bases: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(bases, schema={k: (pl.String if v in (pl.Date, pl.Datetime("us", "UTC")) else v)
                                        for k, v in BASE_SCHEMA.items()})
    return frame.with_columns(
        pl.col("file_date").str.to_date("%Y-%m-%d"),
        pl.col("first_start_time", "last_start_time").str.to_datetime(time_unit="us", time_zone="UTC"),
    ).cast(BASE_SCHEMA)  # type: ignore[arg-type]


def pending_keys(settings: Settings) -> list[str]:
    """Landed files not in the published file manifest yet, in name order."""
    landing = open_store(settings.landing_uri, settings.s3)
    lake = open_store(settings.lake_uri, settings.s3)
    done = set(_read(lake, FILE_MANIFEST, MANIFEST_SCHEMA)["source_file"])
    return [k for k in landed_keys(landing) if k not in done]


def stage_files(settings: Settings, keys: list[str]) -> list[str]:
    """Stage a batch of files (read, validate, filter, identify, guide) in one pass, as ``mediate`` does;
    per-file outcomes are written now, candidates wait in ``mediation/staged`` for :func:`publish_staged`."""
    load_readers()
    landing = open_store(settings.landing_uri, settings.s3)
    lake = open_store(settings.lake_uri, settings.s3)
    batch = stage_batch([(key, landing.read_bytes(key)) for key in sorted(keys)], load_subscriptions(settings))
    by_file = {key: rows for (key,), rows in batch.candidates.partition_by("source_file", as_dict=True).items()}
    written = []
    for staged in batch.files:
        write_file_outputs(lake, staged)
        base = staged.base
        inputs = {base["source_file"]: base["file_sha256"]}
        candidates = by_file.get(base["source_file"], batch.candidates.clear())
        manifest = write_partition(lake, STAGED, {"file": base["file_id"]}, run_id_for(inputs),
                                   candidates, inputs=inputs, extra={"base": _jsonable(base)})
        written.append(lake.uri_for(manifest.prefix))
    return written


def publish_staged(settings: Settings, batch_records: int = 1_000_000) -> MediationResult:
    """Fold every staged, unpublished file into the usage partitions and the file manifest; list (and publish
    to ``mediation/changed_files``) the processed keys whose landed object changed since, as ``mediate`` does."""
    lake = open_store(settings.lake_uri, settings.s3)
    landing = open_store(settings.landing_uri, settings.s3)
    manifest = _read(lake, FILE_MANIFEST, MANIFEST_SCHEMA)
    done = set(manifest["source_file"])
    sizes = landed_sizes(landing)
    changed = changed_after_processing(landing, manifest, sizes, [k for k in sizes if k in done],
                                       rehash=_read(lake, CHANGED, CHANGED_SCHEMA)["source_file"].to_list())
    staged = [m for m in published_manifests(lake, STAGED) if m.extra["base"]["source_file"] not in done]
    staged.sort(key=lambda m: m.extra["base"]["source_file"])
    version = subscriptions_version(lake)
    folder = DateFolder(lake, version, batch_records)  # memory bounded by the batch, as in ``mediate``
    for m in staged:
        for f in m.files:
            folder.add(lake.read_parquet(f["key"]).cast(SUSPENSE_SCHEMA))  # type: ignore[arg-type]
    folder.flush()
    new_bases = _base_frame([m.extra["base"] for m in staged])
    new_files = set(new_bases["source_file"])
    old_bases = (manifest.filter(~pl.col("source_file").is_in(list(new_files)))
                 .with_columns((pl.col("status") == "quarantined").alias("quarantined"))
                 .select(BASE_SCHEMA.keys()).cast(BASE_SCHEMA))  # type: ignore[arg-type]
    full = build_file_manifest(lake, pl.concat([old_bases, new_bases]))
    if staged:
        inputs = dict(full.select("source_file", "file_sha256").iter_rows())
        write_partition(lake, FILE_MANIFEST, {}, run_id_for(inputs, subscriptions=version), full, inputs=inputs)
        for m in staged:  # committed above: the staged copies are no longer needed
            for key in lake.list(m.prefix.rsplit("/run=", 1)[0] + "/"):
                lake.delete(key)
    publish_changed(lake, changed)
    if not full["balanced"].all():
        bad = full.filter(~pl.col("balanced"))["source_file"].to_list()
        raise RuntimeError(f"conservation broken for {bad}: records in != usage+filtered+rejected+duplicate+suspense")
    return MediationResult(full.filter(pl.col("source_file").is_in(list(new_files))),
                           sorted(d.isoformat() for d in folder.rebuilt), changed_files=changed)


