"""Immutable, manifested partitions in the lake: the commit protocol every stage uses.

Layout: ``<dataset>/<key>=<value>/.../run=<run_id>/part-NNNN.parquet`` then ``_manifest.json``
(written last: the commit point; object stores have no atomic rename). A partition has one
*published* run, named by ``<dataset>/<key>=<value>/.../_published.json``; an audit rerun writes
beside it. Run ids are content hashes of the inputs, never clock values, so a rerun with the same
inputs is recognisably the same run and writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.common.storage import Store

MANIFEST = "_manifest.json"
PUBLISHED = "_published.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def digest(*parts: bytes | str, length: int = 16) -> str:
    """Short, stable sha256 hex digest of the parts (order matters)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:length]


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace variance: same value, same bytes."""
    return (json.dumps(value, sort_keys=True, indent=2, default=str, ensure_ascii=False) + "\n").encode()


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the project's own code and SQL, recorded in every manifest for audit reruns."""
    h = hashlib.sha256()
    for folder in ("pipelines", "schemas", "warehouse", "invoice_templates", "charging"):
        base = PROJECT_ROOT / folder
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in {".py", ".sql", ".html", ".css", ".j2"}:
                h.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run_id_for(inputs: Mapping[str, str], **params: Any) -> str:
    """Run id derived from input checksums, parameters and the code version (never from the clock).

    Including the code version means a rerun with changed code writes a new run beside the published
    one instead of rewriting the published run's files in place.
    """
    return digest(canonical_json({"inputs": dict(inputs), "params": params, "code": code_version()}))


@dataclass(frozen=True)
class Manifest:
    """What a partition holds and what it was made from."""

    dataset: str
    partition: dict[str, str]
    run_id: str
    files: list[dict[str, Any]]
    rows: int
    inputs: dict[str, str] = field(default_factory=dict)
    code_version: str = ""
    catalogue_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return run_prefix(self.dataset, self.partition, self.run_id)


def partition_prefix(dataset: str, partition: Mapping[str, str]) -> str:
    return "/".join([dataset, *(f"{k}={v}" for k, v in partition.items())])


def run_prefix(dataset: str, partition: Mapping[str, str], run_id: str) -> str:
    return f"{partition_prefix(dataset, partition)}/run={run_id}"


@dataclass(frozen=True)
class ParquetPart:
    """A part already written as a local Parquet file (e.g. by DuckDB's ``COPY``): uploaded byte for byte."""

    path: Path
    rows: int


def write_partition(
    store: Store,
    dataset: str,
    partition: Mapping[str, str],
    run_id: str,
    frames: pl.DataFrame | Iterable[pl.DataFrame | ParquetPart],
    *,
    inputs: Mapping[str, str] | None = None,
    catalogue_version: str = "",
    extra: Mapping[str, Any] | None = None,
    publish: bool = True,
    compression: str = "zstd",
) -> Manifest:
    """Write data files, then the manifest (commit), then optionally mark the run published.

    Writing the same frames again rewrites the same bytes, so a retried task is harmless. A
    :class:`ParquetPart` is uploaded as it is (its writer is responsible for reproducible bytes).
    """
    parts = [frames] if isinstance(frames, pl.DataFrame) else frames  # streamed: one part in memory at a time
    prefix = run_prefix(dataset, partition, run_id)
    files = []
    for i, frame in enumerate(parts):
        key = f"{prefix}/part-{i:04d}.parquet"
        if isinstance(frame, ParquetPart):
            store.write_bytes(key, frame.path.read_bytes())
            files.append({"key": key, "rows": frame.rows})
            continue
        store.write_parquet(key, frame, compression)
        files.append({"key": key, "rows": frame.height})
    manifest = Manifest(
        dataset=dataset,
        partition=dict(partition),
        run_id=run_id,
        files=files,
        rows=sum(f["rows"] for f in files),
        inputs=dict(sorted((inputs or {}).items())),
        code_version=code_version(),
        catalogue_version=catalogue_version,
        extra=dict(extra or {}),
    )
    store.write_bytes(f"{prefix}/{MANIFEST}", canonical_json(asdict(manifest)))
    if publish:
        publish_run(store, dataset, partition, run_id)
    return manifest


def publish_run(store: Store, dataset: str, partition: Mapping[str, str], run_id: str) -> None:
    """Make ``run_id`` the partition's published run (it must already be committed)."""
    prefix = run_prefix(dataset, partition, run_id)
    if not store.exists(f"{prefix}/{MANIFEST}"):
        raise RuntimeError(f"cannot publish {prefix}: it has no manifest (the write did not commit)")
    store.write_bytes(f"{partition_prefix(dataset, partition)}/{PUBLISHED}", canonical_json({"run_id": run_id}))


def read_manifest(store: Store, key: str) -> Manifest:
    return Manifest(**json.loads(store.read_bytes(key)))


def published_manifests(store: Store, dataset: str, where: Mapping[str, str] | None = None) -> list[Manifest]:
    """Manifests of the published run of every partition of ``dataset`` (optionally filtered)."""
    out = []
    for key in store.list(dataset + "/"):
        if not key.endswith("/" + PUBLISHED):
            continue
        run_id = json.loads(store.read_bytes(key))["run_id"]
        manifest = read_manifest(store, f"{key[: -len(PUBLISHED)]}run={run_id}/{MANIFEST}")
        if where and any(manifest.partition.get(k) != v for k, v in where.items()):
            continue
        out.append(manifest)
    return sorted(out, key=lambda m: m.prefix)


def read_manifested(store: Store, manifests: Iterable[Manifest], columns: list[str] | None = None) -> pl.DataFrame | None:
    """Concatenate the data of committed partitions (``None`` when there is none); ``columns``: only those."""
    frames = [store.read_parquet(f["key"], columns) for m in manifests for f in m.files]
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def read_published(store: Store, dataset: str, where: Mapping[str, str] | None = None,
                   columns: list[str] | None = None) -> pl.DataFrame | None:
    """The published data of a dataset: the only data readers should trust (``columns``: only those, which
    every partition of the dataset must have)."""
    return read_manifested(store, published_manifests(store, dataset, where), columns)
