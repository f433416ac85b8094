"""``mediate``: landed CDR files -> usage partitions, outcome datasets and a file manifest.

Per new file (one not in ``file_manifest``): unwrap gzip, detect the format, read, validate
(Pandera), filter what is not billable, give every record its identity, guide it to a
subscription. Then, per usage date touched, the date's partitions are rebuilt from the persistent
key index and the previous published rows:

* the persistent key index of date D = record ids of its usage, suspense and duplicates (every
  candidate record ever seen). The surviving copy of a duplicate is the smallest
  ``(source_file, record_offset)``, so the result for a set of files does not depend on the order or
  batches they arrived in (a later, smaller-named file takes over and the earlier copy becomes the
  duplicate).
* ``usage/usage_date=D`` (guided survivors), ``mediation/suspense/usage_date=D`` (unguided survivors),
  ``mediation/duplicates/usage_date=D`` (every other copy, pointing at the survivor),
  ``mediation/file_counts/usage_date=D`` (per file: usage, suspense, duplicate counts).
* ``mediation/rejects/file=F``, ``mediation/filtered/file=F``, ``mediation/quarantine/file=F`` per file.
* ``file_manifest``: one row per landed file with counts per outcome; conservation per file is
  ``records_in = usage + filtered + rejected + duplicate + suspense`` (checked at the end of every run).

A whole file delivered twice (same sha256) is marked ``duplicate_file`` in the manifest and its
records go through the same record-level dedup, so all of them end as duplicates of the first copy
(a rejected line is rejected in both copies: nothing is hidden).

Memory is bounded: files are read and staged in groups of at most ``stage_bytes`` (64 MiB) or 64
files, and staged records are flushed into the date partitions whenever ``batch_records`` is reached.

Two cores: groups are staged on ``WORKERS`` threads (Polars and DuckDB release the GIL; the pure-Python
BER decoder holds a lock around pycrate's shared objects) and folded in strictly in group order, and a
flush rebuilds two dates at once; outputs do not depend on timing (each date is rebuilt by one task
from rows sorted into usage order).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from pipelines.common.cli_errors import S3_CREDENTIALS_HINT, is_credentials_error
from pipelines.common.partitions import (
    MANIFEST,
    PUBLISHED,
    digest,
    partition_prefix,
    published_manifests,
    read_manifest,
    read_manifested,
    read_published,
    run_id_for,
    write_partition,
)
from pipelines.common.settings import Settings
from pipelines.common.storage import StorageError, Store, open_store
from pipelines.customers import SUBSCRIPTIONS, load_subscriptions
from pipelines.mediation import readers as readers_pkg
from pipelines.mediation.guiding import guide
from pipelines.mediation.identity import warm_up as identity_warm_up
from pipelines.mediation.identity import with_identity
from pipelines.mediation.readers import READERS, UnreadableFile, open_cdr_bytes, time_fold_note
from pipelines.mediation.readers.canonical import raw_lines
from pipelines.mediation.readers.detect import reader_for
from pipelines.mediation.sources import SourceConfig, source_config
from pipelines.mediation.validate import FILTER_SCHEMA, split_billable, validate_records
from schemas.contracts import RAW_USAGE_SCHEMA, REJECT_SCHEMA, USAGE_SCHEMA

USAGE = "usage"
SUSPENSE = "mediation/suspense"
DUPLICATES = "mediation/duplicates"
FILE_COUNTS = "mediation/file_counts"
REJECTS = "mediation/rejects"
FILTERED = "mediation/filtered"
QUARANTINE = "mediation/quarantine"
FILE_MANIFEST = "file_manifest"
CHANGED = "mediation/changed_files"

TEXT_FORMATS = {"canonical_csv", "asterisk_csv", "freeswitch_csv"}
_NAME_RE = re.compile(r"_(\d{1,12})_(\d{8})(?:\.[A-Za-z0-9]+)+$")

SUSPENSE_SCHEMA: dict[str, pl.DataType] = {**USAGE_SCHEMA, "suspense_reason": pl.String, "suspense_message": pl.String}
INDEX_SCHEMA: dict[str, pl.DataType] = {"record_id": pl.String, "source_file": pl.String, "record_offset": pl.Int64,
                                        "file_sha256": pl.String}
ROW_KEY = ("source_file", "record_offset", "record_id")
"""Identifies one staged row: where it was read and which record it is (several rows can share an offset)."""
DUPLICATE_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String, "source_file": pl.String, "record_offset": pl.Int64, "file_sha256": pl.String,
    "usage_date": pl.Date, "duplicate_of_file": pl.String, "duplicate_of_offset": pl.Int64,
}
COUNTS_SCHEMA: dict[str, pl.DataType] = {"source_file": pl.String, "usage": pl.Int64, "suspense": pl.Int64,
                                         "duplicate": pl.Int64}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {"source": pl.String, "source_file": pl.String, "file_sha256": pl.String,
                                             "size_bytes": pl.Int64, "reason_code": pl.String, "message": pl.String}
BASE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String, "source_file": pl.String, "file_id": pl.String, "sequence": pl.Int64,
    "file_date": pl.Date, "file_sha256": pl.String, "size_bytes": pl.Int64, "format": pl.String,
    "quarantined": pl.Boolean, "reason_code": pl.String, "message": pl.String,
    "records_in": pl.Int64, "rejected": pl.Int64, "filtered": pl.Int64,
    "first_start_time": pl.Datetime("us", "UTC"), "last_start_time": pl.Datetime("us", "UTC"),
}
MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    **{k: v for k, v in BASE_SCHEMA.items() if k != "quarantined"},
    "status": pl.String, "duplicate_of": pl.String, "usage": pl.Int64, "suspense": pl.Int64,
    "duplicate": pl.Int64, "balanced": pl.Boolean,
}
OUTCOMES = ("usage", "filtered", "rejected", "duplicate", "suspense")
CHANGED_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String, "source_file": pl.String, "processed_size_bytes": pl.Int64, "landed_size_bytes": pl.Int64,
    "processed_sha256": pl.String, "landed_sha256": pl.String, "detected_by": pl.String,
}
"""``mediation/changed_files``: processed keys whose landed object no longer matches the file manifest."""
HOT_CODEC = "lz4"
"""Parquet codec of the per-date partitions mediation rewrites (usage, suspense, duplicates, counts)."""
PER_RECORD_TEXT = ("record_id", "dedup_key", "network_record_id", "charging_id", "other_party", "raw")
"""Text columns (nearly) unique per record: written without Parquet dictionaries (they only cost CPU there)."""
STAGE_FILES = 64
"""Files staged (validated, identified, guided) together at most; ``stage_bytes`` bounds their size."""
WORKERS = 2
"""Threads that stage groups of files and rebuild dates concurrently (one per core of the target machine)."""


def load_readers() -> None:
    """Import every reader module so it registers its format (the BER reader may not exist yet)."""
    import importlib

    for name in ("canonical", "asterisk", "freeswitch", "ber3gpp"):
        try:
            importlib.import_module(f"{readers_pkg.__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{readers_pkg.__name__}.{name}":
                raise


def detect(file_key: str, body: bytes) -> str:
    from pipelines.mediation.readers.detect import HEAD_BYTES, detect_format

    return detect_format(file_key, body[:HEAD_BYTES])


def parse_name(key: str) -> tuple[str, int | None, date | None]:
    """(source, sequence, file date) from ``<source>/<source>_<seq>_<YYYYMMDD>.<ext>``; unknown parts None."""
    source = key.split("/", 1)[0] if "/" in key else "unsorted"
    m = _NAME_RE.search(key.rsplit("/", 1)[-1])
    if not m:
        return source, None, None
    try:
        day = datetime.strptime(m.group(2), "%Y%m%d").date()
    except ValueError:
        day = None
    return source, int(m.group(1)), day


@dataclass
class StagedFile:
    """Everything one file produced before the date partitions are rebuilt (candidates stay batched)."""

    base: dict
    rejects: pl.DataFrame
    filtered: pl.DataFrame
    candidates: pl.DataFrame | None = None   # set by :func:`stage_file` (one file on its own)


@dataclass
class StagedBatch:
    files: list[StagedFile]
    candidates: pl.DataFrame      # SUSPENSE_SCHEMA (guided or not), all files of the batch


def _raw_lookup(fmt: str, body: bytes):  # noqa: ANN202
    def lookup(bad: pl.DataFrame) -> list[str]:
        if fmt in TEXT_FORMATS:
            return raw_lines(body, bad["record_offset"].to_list())
        cols = [c for c in bad.columns if c not in {"index", "reason_code"}]
        return bad.select(pl.struct(cols).struct.json_encode())[:, 0].to_list()
    return lookup


def _base(key: str, raw: bytes) -> dict:
    source, seq, file_date = parse_name(key)
    return {"source": source, "source_file": key, "file_id": digest(key), "sequence": seq, "file_date": file_date,
            "file_sha256": hashlib.sha256(raw).hexdigest(), "size_bytes": len(raw), "format": None,
            "quarantined": False, "reason_code": None, "message": None, "records_in": 0, "rejected": 0,
            "filtered": 0, "first_start_time": None, "last_start_time": None}


def _by_file(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {k: v for (k,), v in frame.partition_by("source_file", as_dict=True).items()}


def stage_files(items: list[tuple[str, bytes]], subs: pl.DataFrame,
                sources: dict[str, SourceConfig] | None = None) -> StagedBatch:
    """Read, validate, filter, identify and guide a batch of landed files (pure: bytes in, frames out).

    ``sources`` is the per-source configuration (default: ``pipelines/mediation/sources.csv``); local-time
    formats are read in their source's switch time zone.

    Each file is read on its own (a file that cannot be read is quarantined, the others go on); the
    records of the whole batch are then validated, identified and guided together, so the fixed
    cost of those steps is paid once per batch, not once per file.
    """
    bases: dict[str, dict] = {}
    records: list[pl.DataFrame] = []
    reader_rejects: dict[str, pl.DataFrame] = {}
    lookups = {}
    for key, raw in items:
        base = bases[key] = _base(key, raw)
        try:
            body = open_cdr_bytes(key, raw)
            fmt = detect(key, body)
            base["format"] = fmt
            if fmt not in READERS:
                raise UnreadableFile("NO_READER", f"{key}: format {fmt} has no reader installed")
            zone = source_config(base["source"], sources).switch_timezone
            parsed = reader_for(fmt, zone)(base["source"], key, body)
        except UnreadableFile as exc:
            base.update(quarantined=True, reason_code=exc.reason_code, message=exc.message)
            continue
        records.append(parsed.records)
        reader_rejects[key] = parsed.rejects.cast(REJECT_SCHEMA)  # type: ignore[arg-type]
        lookups[key] = _raw_lookup(fmt, body)
        base["records_in"] = parsed.records.height + parsed.rejects.height
        base["message"] = time_fold_note(parsed.facts)  # repeated DST hour: how its stamps were placed

    def raw_lookup(bad: pl.DataFrame) -> list[str]:
        raws: list[str] = [""] * bad.height
        for key, group in _by_file(bad.with_row_index("_pos")).items():
            for pos, text in zip(group["_pos"].to_list(), lookups[key](group.drop("_pos")), strict=True):
                raws[pos] = text
        return raws

    batch = pl.concat(records, how="vertical_relaxed") if records else pl.DataFrame(
        schema={c: t for c, t in SUSPENSE_SCHEMA.items() if c in RAW_USAGE_SCHEMA})
    good, rejects = validate_records(batch, {k: b["file_date"] for k, b in bases.items()}, raw_lookup)
    billable, filtered = split_billable(good)
    shas = {k: b["file_sha256"] for k, b in bases.items()}
    identified = with_identity(billable).with_columns(
        pl.col("source_file").replace_strict(shas, return_dtype=pl.String).alias("file_sha256"))
    candidates = guide(identified, subs).select(SUSPENSE_SCHEMA.keys()).cast(SUSPENSE_SCHEMA)  # type: ignore[arg-type]
    rejects_by, filtered_by = _by_file(rejects), _by_file(filtered)
    span = dict(((k, (lo, hi)) for k, lo, hi in pl.concat([candidates.select("source_file", "start_time"),
                                                          filtered.select("source_file", "start_time")])
                 .group_by("source_file").agg(pl.col("start_time").min().alias("lo"),
                                              pl.col("start_time").max().alias("hi")).iter_rows()))
    staged = []
    for key, base in bases.items():
        file_rejects = pl.concat([reader_rejects.get(key, pl.DataFrame(schema=REJECT_SCHEMA)),
                                  rejects_by.get(key, pl.DataFrame(schema=REJECT_SCHEMA))]
                                 ).sort("record_offset", maintain_order=True)  # stable: file findings share offsets
        file_filtered = filtered_by.get(key, pl.DataFrame(schema=FILTER_SCHEMA))
        lo, hi = span.get(key, (None, None))
        base.update(rejected=file_rejects.height, filtered=file_filtered.height, first_start_time=lo, last_start_time=hi)
        staged.append(StagedFile(base, file_rejects, file_filtered))
    return StagedBatch(staged, candidates)


def stage_file(key: str, raw: bytes, subs: pl.DataFrame) -> StagedFile:
    """One file on its own, with its candidates (a convenience for tests and one-off checks)."""
    batch = stage_files([(key, raw)], subs)
    staged = batch.files[0]
    staged.candidates = batch.candidates
    return staged


# ----------------------------------------------------------------------------------------------
# lake state
# ----------------------------------------------------------------------------------------------
def read_partition(lake: Store, dataset: str, partition: dict[str, str]) -> pl.DataFrame | None:
    """The published data of exactly one partition, without listing the whole dataset."""
    prefix = partition_prefix(dataset, partition)
    pointer = f"{prefix}/{PUBLISHED}"
    if not lake.exists(pointer):
        return None
    run_id = json.loads(lake.read_bytes(pointer))["run_id"]
    return read_manifested(lake, [read_manifest(lake, f"{prefix}/run={run_id}/{MANIFEST}")])


def _read(lake: Store, dataset: str, schema: dict[str, pl.DataType], where: dict[str, str] | None = None) -> pl.DataFrame:
    frame = read_partition(lake, dataset, where) if where else read_published(lake, dataset)
    if frame is None:
        return pl.DataFrame(schema=schema)
    # columns appended to a contract later (e.g. usage.charged_amount) are null in older partitions
    return frame.select(pl.col(c) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in schema.items()).cast(schema)  # type: ignore[arg-type]


def read_key_index(lake: Store, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(key index, surviving rows) of one usage date as published.

    The persistent key index is not a dataset of its own: it is the union of the date's usage and
    suspense rows (the surviving copies) and its duplicates (every other copy), so each record is
    written once and the index cannot drift from what was published.
    """
    part = {"usage_date": day.isoformat()}
    rows = pl.concat([_read(lake, USAGE, USAGE_SCHEMA, part).with_columns(
        pl.lit(None, pl.String).alias("suspense_reason"), pl.lit(None, pl.String).alias("suspense_message")),
        _read(lake, SUSPENSE, SUSPENSE_SCHEMA, part)])
    dups = _read(lake, DUPLICATES, DUPLICATE_SCHEMA, part)
    index = pl.concat([rows.select(INDEX_SCHEMA.keys()), dups.select(INDEX_SCHEMA.keys())])
    return index, rows


def in_usage_order(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows (SUSPENSE_SCHEMA) sorted by ``(usage_date, guided first, start_time, record_id)``.

    Within one date that is the order every usage and suspense partition is written in
    (``start_time, record_id``), with the guided rows first so each part is a zero-copy slice.
    Fast path: the first three keys fold into one integer (UTC day x 2 + unguided, then the
    microsecond of the day) and ``record_id``, 16 lowercase hex digits, sorts like the unsigned
    integer it spells; two numeric keys sort far faster than four mixed ones. Anything else
    (an id of another shape, an instant before 1970) takes the plain sort.
    """
    hex16 = pl.col("record_id").str.contains("^[0-9a-f]{16}$").fill_null(False).all()
    after_1970 = (pl.col("start_time").min() >= datetime(1970, 1, 1, tzinfo=UTC)).fill_null(False)
    if rows.height and rows.select(hex16 & after_1970).item():
        day, us = 86_400_000_000, pl.col("start_time").dt.epoch("us")
        rid = pl.col("record_id").str.to_integer(base=16, dtype=pl.UInt64)
        return rows.sort((us // day * 2 + pl.col("subscription_id").is_null().cast(pl.Int64)) * day + us % day, rid)
    return rows.sort(pl.col("usage_date"), pl.col("subscription_id").is_null(), pl.col("start_time"), pl.col("record_id"))


def by_usage_date(candidates: pl.DataFrame) -> Iterator[tuple[date, pl.DataFrame]]:
    """Candidate rows per usage date, each in usage order: one sort, then zero-copy slices."""
    ordered = in_usage_order(candidates)
    offset = 0
    for run in ordered["usage_date"].rle().to_list():
        yield run["value"], ordered.slice(offset, run["len"])
        offset += run["len"]


def surviving_copies(index: pl.DataFrame) -> pl.DataFrame:
    """The surviving copy of every record id: its smallest ``(source_file, record_offset)``.

    Duplicates are rare, so only the contested ids are sorted (and none when every id is unique).
    """
    if index["record_id"].n_unique() == index.height:
        return index
    contested = index["record_id"].is_duplicated()
    first = (index.filter(contested).sort("record_id", "source_file", "record_offset")
             .unique("record_id", keep="first", maintain_order=True))
    return pl.concat([index.filter(~contested), first])


def rebuild_date(lake: Store, day: date, new_rows: pl.DataFrame, version: str) -> None:
    """Fold new candidate rows for one usage date (in usage order, see :func:`by_usage_date`) into its
    key index and published partitions.

    A file already in the index (a run that stopped before its file manifest was written is being
    repeated) keeps its first copy of each row. A row is ``(source_file, record_offset, record_id)``: one
    PGW record with several service data containers gives several rows at the same offset.
    """
    old_index, old_rows = read_key_index(lake, day)
    index = pl.concat([old_index, new_rows.select(INDEX_SCHEMA.keys())])
    rows = pl.concat([old_rows, new_rows]) if old_rows.height else new_rows
    if old_index.height and not set(old_index["source_file"].unique()).isdisjoint(new_rows["source_file"].unique()):
        index = index.unique(list(ROW_KEY), keep="first", maintain_order=True)
        rows = rows.unique(list(ROW_KEY), keep="first", maintain_order=True)
    winners = surviving_copies(index)
    if winners.height < index.height:
        losers = index.join(winners, on=list(ROW_KEY), how="anti")
        rows = rows.join(losers.select(ROW_KEY), on=list(ROW_KEY), how="anti")
    if rows is not new_rows:  # merged with earlier rows or thinned: put back in usage order
        rows = in_usage_order(rows)
    write_date(lake, day, index, winners, rows, version)


def write_date(lake: Store, day: date, index: pl.DataFrame, winners: pl.DataFrame, rows: pl.DataFrame,
               version: str) -> None:
    """Publish one date's usage, suspense, duplicates and per-file counts."""
    part = {"usage_date": day.isoformat()}
    inputs = dict(index.select("source_file", "file_sha256").unique().sort("source_file").iter_rows())
    run_id = run_id_for(inputs, subscriptions=version)
    guided = rows.height - rows["subscription_id"].null_count()
    if rows["subscription_id"].head(guided).null_count() == 0:  # in usage order: guided rows come first
        usage, suspense = rows.head(guided).select(USAGE_SCHEMA.keys()), rows.slice(guided)
    else:
        usage = rows.filter(pl.col("subscription_id").is_not_null()).select(USAGE_SCHEMA.keys())
        suspense = rows.filter(pl.col("subscription_id").is_null())
    dups = (index.join(winners, on=list(ROW_KEY), how="anti")
            .join(winners.select("record_id", pl.col("source_file").alias("duplicate_of_file"),
                                 pl.col("record_offset").alias("duplicate_of_offset")), on="record_id")
            .with_columns(pl.lit(day).alias("usage_date")).select(DUPLICATE_SCHEMA.keys())
            .sort(*ROW_KEY))
    counts = (pl.concat([
        usage.group_by("source_file").agg(pl.len().cast(pl.Int64).alias("usage")),
        suspense.group_by("source_file").agg(pl.len().cast(pl.Int64).alias("suspense")),
        dups.group_by("source_file").agg(pl.len().cast(pl.Int64).alias("duplicate")),
    ], how="diagonal").group_by("source_file").agg(pl.col("usage", "suspense", "duplicate").sum())
        .select(COUNTS_SCHEMA.keys()).cast(COUNTS_SCHEMA).sort("source_file"))  # type: ignore[arg-type]
    extra = {"usage": usage.height, "suspense": suspense.height, "duplicates": dups.height}
    # lz4: about twice as fast to write as zstd for these hot, re-written partitions (a little larger);
    # lean: pyarrow's writer, no text statistics, no dictionaries for per-record ids (~25-40 % less CPU)
    lake = lake.lean(PER_RECORD_TEXT)
    write_partition(lake, USAGE, part, run_id, usage, inputs=inputs, extra=extra, compression=HOT_CODEC)
    write_partition(lake, SUSPENSE, part, run_id, suspense, inputs=inputs, compression=HOT_CODEC)
    write_partition(lake, DUPLICATES, part, run_id, dups, inputs=inputs, compression=HOT_CODEC)
    write_partition(lake, FILE_COUNTS, part, run_id, counts, inputs=inputs, compression=HOT_CODEC)


def write_file_outputs(lake: Store, staged: StagedFile) -> None:
    """Per-file outcome partitions (independent of every other file)."""
    base = staged.base
    lake = lake.lean(PER_RECORD_TEXT)
    part = {"file": base["file_id"]}
    run_id = run_id_for({base["source_file"]: base["file_sha256"]})
    inputs = {base["source_file"]: base["file_sha256"]}
    if base["quarantined"]:
        row = pl.DataFrame([{k: base[k] for k in QUARANTINE_SCHEMA}], schema=QUARANTINE_SCHEMA)
        write_partition(lake, QUARANTINE, part, run_id, row, inputs=inputs)
    if staged.rejects.height:
        write_partition(lake, REJECTS, part, run_id, staged.rejects, inputs=inputs, compression=HOT_CODEC)
    if staged.filtered.height:
        write_partition(lake, FILTERED, part, run_id, staged.filtered.sort("record_offset"), inputs=inputs,
                        compression=HOT_CODEC)


def subscriptions_version(lake: Store) -> str:
    manifests = published_manifests(lake, SUBSCRIPTIONS)
    return manifests[0].run_id if manifests else "none"


def build_file_manifest(lake: Store, bases: pl.DataFrame) -> pl.DataFrame:
    """Base rows + outcome counts from every date -> the manifest, with statuses and conservation."""
    counts = _read(lake, FILE_COUNTS, COUNTS_SCHEMA).group_by("source_file").agg(
        pl.col("usage", "suspense", "duplicate").sum())
    first_copy = bases.group_by("file_sha256").agg(pl.col("source_file").min().alias("first_copy"))
    m = (bases.join(counts, on="source_file", how="left").join(first_copy, on="file_sha256", how="left")
         .with_columns(pl.col("usage", "suspense", "duplicate").fill_null(0))
         .with_columns(
             pl.when(pl.col("quarantined")).then(pl.lit("quarantined"))
             .when(pl.col("first_copy") != pl.col("source_file")).then(pl.lit("duplicate_file"))
             .otherwise(pl.lit("processed")).alias("status"),
             pl.when(pl.col("first_copy") != pl.col("source_file")).then(pl.col("first_copy"))
             .otherwise(None).alias("duplicate_of"),
             (pl.col("records_in") == pl.sum_horizontal(*OUTCOMES)).alias("balanced"),
         ))
    return m.select(MANIFEST_SCHEMA.keys()).cast(MANIFEST_SCHEMA).sort("source_file")  # type: ignore[arg-type]


def load_file_manifest(settings: Settings) -> pl.DataFrame:
    return _read(open_store(settings.lake_uri, settings.s3), FILE_MANIFEST, MANIFEST_SCHEMA)


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
@dataclass
class MediationResult:
    """What one ``mediate`` run did; ``files`` holds the manifest rows of the files it processed."""

    files: pl.DataFrame
    dates_rebuilt: list[str] = field(default_factory=list)
    skipped_files: int = 0
    """Keys already processed whose landed object still matches the manifest (as far as was checked)."""
    changed_files: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CHANGED_SCHEMA))
    """Processed keys whose landed object changed since (:data:`CHANGED_SCHEMA`): reported, never mediated."""

    def totals(self) -> dict[str, int]:
        cols = ("records_in", *OUTCOMES)
        return {c: int(self.files[c].sum()) for c in cols} | {
            "files": self.files.height,
            "quarantined": int((self.files["status"] == "quarantined").sum()),
            "duplicate_files": int((self.files["status"] == "duplicate_file").sum()),
        }

    @property
    def balanced(self) -> bool:
        t = self.totals()
        return bool(self.files["balanced"].all()) and t["records_in"] == sum(t[o] for o in OUTCOMES)


def is_cdr_key(key: str) -> bool:
    """Landed objects named ``.*`` or ``_*`` (markers, partial uploads) are not CDR files."""
    return not key.rsplit("/", 1)[-1].startswith((".", "_"))


def landed_keys(landing: Store) -> list[str]:
    return [k for k in landing.list() if is_cdr_key(k)]


class MediationInputError(RuntimeError):
    """``mediate`` refused to start (nothing was read or written); ``reason_code`` says why."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code


def _s3_bucket_state(store: Store) -> str | None:
    """None when the store's bucket answers, else why not (``missing`` or the S3 error text)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines.common.storage import s3_client

    bucket = store.uri[len("s3://"):].split("/", 1)[0]
    try:
        s3_client(store.s3).head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return "missing" if code in {"404", "NoSuchBucket", "NotFound"} else f"{code or 'error'}: {exc}"
    except BotoCoreError as exc:
        return f"{exc}{S3_CREDENTIALS_HINT if is_credentials_error(exc) else ''}"
    return None


def require_stores(landing: Store, lake: Store) -> None:
    """Refuse to start on a landing area that does not exist or a store that cannot be reached.

    Without this a mistyped ``--landing`` "mediates 0 new files" and exits 0. An existing, empty landing
    area is fine; a local lake folder is created on first write, an S3 lake's bucket must exist.
    """
    if landing.is_s3:
        state = _s3_bucket_state(landing)
        if state == "missing":
            bucket = landing.uri[len("s3://"):].split("/", 1)[0]
            raise MediationInputError("LANDING_MISSING", f"landing area {landing.uri} does not exist "
                                                         f"(no bucket {bucket})")
        if state:
            raise MediationInputError("STORE_UNREACHABLE", f"cannot reach the landing area {landing.uri}: {state}")
    elif not Path(landing.uri).is_dir():
        raise MediationInputError("LANDING_MISSING", f"landing area {landing.uri} does not exist (no such folder)")
    if lake.is_s3 and (state := _s3_bucket_state(lake)):
        raise MediationInputError("STORE_UNREACHABLE", f"cannot reach the lake {lake.uri}: "
                                                       + ("no such bucket" if state == "missing" else state))


def landed_sizes(landing: Store) -> dict[str, int]:
    """Every landed object with its size in bytes, from the listing alone (no object is read): what lets every
    run notice a processed key whose object was replaced, without re-reading the landing area."""
    try:
        return landing.list_sizes()
    except Exception as exc:  # boto3 and OS errors both mean the same to the caller
        raise StorageError(f"cannot list the landing area {landing.uri}: {exc}") from exc


def changed_after_processing(landing: Store, manifest: pl.DataFrame, sizes: dict[str, int], keys: Iterable[str],
                             verify: bool = False, rehash: Iterable[str] = ()) -> pl.DataFrame:
    """Processed ``keys`` whose landed object differs from what the manifest recorded (:data:`CHANGED_SCHEMA`).

    A different listed size proves a change without reading anything; an equal size is only re-hashed when
    ``verify`` is set (that reads the file) or the key is in ``rehash`` (found changed before: re-checked every
    run until it matches again). A key no longer landed is not a change (landing retention). Changed files are
    read once to record their new sha256: there are few of them.
    """
    processed = {r[0]: r[1:] for r in manifest.select("source_file", "size_bytes", "file_sha256").iter_rows()}
    rehash = set(rehash)
    rows = []
    for key in sorted(set(keys) | rehash):
        if key not in processed or key not in sizes:
            continue
        size, sha = processed[key]
        if sizes[key] == size and not verify and key not in rehash:
            continue
        landed_sha = hashlib.sha256(landing.read_bytes(key)).hexdigest()
        if landed_sha == sha:
            continue
        rows.append({"source": parse_name(key)[0], "source_file": key, "processed_size_bytes": size,
                     "landed_size_bytes": sizes[key], "processed_sha256": sha, "landed_sha256": landed_sha,
                     "detected_by": "size" if sizes[key] != size else "sha256"})
    return pl.DataFrame(rows, schema=CHANGED_SCHEMA).sort("source_file")


def publish_changed(lake: Store, changed: pl.DataFrame) -> None:
    """Publish the changed-file list when it differs from the published one (also when it becomes empty), so
    ``mediation report`` shows it; a run that finds nothing new writes nothing."""
    if changed.equals(_read(lake, CHANGED, CHANGED_SCHEMA)):
        return
    inputs = dict(changed.select("source_file", "landed_sha256").iter_rows())
    write_partition(lake, CHANGED, {}, run_id_for(inputs), changed, inputs=inputs)


@dataclass
class DateFolder:
    """Candidate rows waiting to be folded into their usage dates (:func:`rebuild_date`).

    Rows are held per date in usage order and flushed whenever ``limit`` rows are held, which bounds
    memory whatever the input size; a flush rebuilds dates on ``pool`` (dates are independent, so two
    at once keep both cores busy) or one after the other without a pool.

    A flush on the way keeps the ``keep_open`` newest dates pending (unless they alone hold ``limit``
    rows): files arrive in file-date order and a file of local date F also holds the last hours of UTC
    date F-1, so the newest dates are still receiving rows, and rebuilding them now would mean reading
    them back and rewriting them at the next flush (at 10M records that was most dates, twice).
    """

    lake: Store
    version: str
    limit: int
    pool: ThreadPoolExecutor | None = None
    keep_open: int = 2
    pending: dict[date, list[pl.DataFrame]] = field(default_factory=lambda: defaultdict(list))
    held: int = 0
    rebuilt: set[date] = field(default_factory=set)

    def add(self, candidates: pl.DataFrame) -> None:
        for day, rows in by_usage_date(candidates):
            self.pending[day].append(rows)
        self.held += candidates.height
        if self.held >= self.limit:
            self.flush(keep_open=self.keep_open)

    def _rebuild(self, day: date) -> None:
        parts = self.pending[day]
        rows = parts[0] if len(parts) == 1 else in_usage_order(pl.concat(parts))
        rebuild_date(self.lake, day, rows, self.version)

    def _held(self, day: date) -> int:
        return sum(part.height for part in self.pending[day])

    def flush(self, keep_open: int = 0) -> None:
        """Rebuild the pending dates, all but the ``keep_open`` newest (all when those hold ``limit`` rows)."""
        days = sorted(self.pending)
        if keep_open and len(days) > keep_open and sum(map(self._held, days[-keep_open:])) < self.limit:
            days = days[:-keep_open]
        list(self.pool.map(self._rebuild, days) if self.pool else map(self._rebuild, days))
        self.rebuilt.update(days)
        for day in days:
            self.held -= self._held(day)
            del self.pending[day]


def staging_groups(landing: Store, keys: list[str], stage_bytes: int) -> Iterator[list[tuple[str, bytes]]]:
    """Landed files read in order and grouped: at most ``stage_bytes`` (or STAGE_FILES files) per group."""
    items: list[tuple[str, bytes]] = []
    size = 0
    for key in keys:
        raw = landing.read_bytes(key)
        items.append((key, raw))
        size += len(raw)
        if size >= stage_bytes or len(items) >= STAGE_FILES:
            yield items
            items, size = [], 0
    if items:
        yield items


def mediate(settings: Settings, keys: Iterable[str] | None = None, batch_records: int = 1_000_000,
            stage_bytes: int = 64 << 20, verify: bool = False) -> MediationResult:
    """Mediate every landed file not processed yet (or only ``keys``); see the module docstring.

    A processed key is immutable: one whose landed object changed since (a different listed size, or with
    ``verify`` a different sha256) is not read again but listed in ``changed_files`` and published to
    ``mediation/changed_files`` (keys found earlier are re-hashed every run until they match again or are
    gone). Raises :class:`MediationInputError` before anything is read when the landing area does not
    exist, a store cannot be reached or a requested key is not landed.
    """
    load_readers()
    landing = open_store(settings.landing_uri, settings.s3)
    lake = open_store(settings.lake_uri, settings.s3)
    require_stores(landing, lake)
    sizes = landed_sizes(landing)
    if keys is not None:
        wanted = sorted(set(keys))  # a key given twice is one file
        if missing := [k for k in wanted if k not in sizes]:
            raise MediationInputError("NOT_LANDED", f"not in the landing area {landing.uri}: {', '.join(missing)}")
    else:
        wanted = [k for k in sizes if is_cdr_key(k)]
    manifest = _read(lake, FILE_MANIFEST, MANIFEST_SCHEMA)
    done = set(manifest["source_file"])
    flagged = _read(lake, CHANGED, CHANGED_SCHEMA)["source_file"].to_list()
    changed = changed_after_processing(landing, manifest, sizes, [k for k in wanted if k in done], verify, flagged)
    # date-major order keeps each batch's usage dates together (fewer partition rewrites); the
    # result does not depend on the order (see the module docstring)
    new = sorted((k for k in wanted if k not in done), key=lambda k: (str(parse_name(k)[2]), k))
    subs = load_subscriptions(settings)
    version = subscriptions_version(lake)
    bases: list[dict] = []

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="mediate") as pool:
        folder = DateFolder(lake, version, batch_records, pool)

        def collect(batch: StagedBatch) -> None:
            for staged in batch.files:
                write_file_outputs(lake, staged)
                bases.append(staged.base)
            folder.add(batch.candidates)

        # groups are staged on worker threads (Polars and DuckDB release the GIL) while this thread reads the
        # next files and folds finished groups in, strictly in group order
        in_flight: deque[Future[StagedBatch]] = deque()
        warm = pool.submit(identity_warm_up)
        for items in staging_groups(landing, new, stage_bytes):
            in_flight.append(pool.submit(stage_files, items, subs))
            if len(in_flight) >= WORKERS:
                collect(in_flight.popleft().result())
        while in_flight:
            collect(in_flight.popleft().result())
        warm.result()
        folder.flush()
    rebuilt = folder.rebuilt
    old_bases = manifest.join(pl.DataFrame({"source_file": [b["source_file"] for b in bases]}, schema={"source_file": pl.String}),
                              on="source_file", how="anti").with_columns((pl.col("status") == "quarantined").alias("quarantined"))
    all_bases = pl.concat([old_bases.select(BASE_SCHEMA.keys()).cast(BASE_SCHEMA),  # type: ignore[arg-type]
                           pl.DataFrame(bases, schema=BASE_SCHEMA)])
    full = build_file_manifest(lake, all_bases)
    if new or rebuilt:
        inputs = dict(full.select("source_file", "file_sha256").iter_rows())
        write_partition(lake, FILE_MANIFEST, {}, run_id_for(inputs, subscriptions=version), full, inputs=inputs)
    publish_changed(lake, changed)
    changed_wanted = set(changed["source_file"]) & set(wanted)
    result = MediationResult(full.filter(pl.col("source_file").is_in(new)), sorted(d.isoformat() for d in rebuilt),
                             skipped_files=len(wanted) - len(new) - len(changed_wanted), changed_files=changed)
    if not full["balanced"].all():
        bad = full.filter(~pl.col("balanced"))["source_file"].to_list()
        raise RuntimeError(f"conservation broken for {bad}: records in != usage+filtered+rejected+duplicate+suspense")
    return result
