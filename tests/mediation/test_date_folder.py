"""The date folder keeps the newest usage dates open between flushes; what it publishes does not change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from pipelines.common.partitions import published_manifests
from pipelines.common.storage import open_store
from pipelines.mediation.pipeline import (
    DUPLICATES,
    FILE_COUNTS,
    SUSPENSE,
    USAGE,
    DateFolder,
    read_key_index,
    stage_files,
)
from schemas.contracts import CANONICAL_COLUMNS, SUBSCRIPTION_SCHEMA

SUBS = pl.DataFrame([{"subscription_id": "S1", "account_id": "A1", "msisdn": "491511234567", "imsi": None,
                      "plan_id": "P_BASIC", "payment_type": "postpaid", "valid_from": datetime(2024, 1, 1, tzinfo=UTC),
                      "valid_to": None}], schema=SUBSCRIPTION_SCHEMA)


def canonical_csv(rows: list[dict]) -> bytes:
    lines = [",".join(CANONICAL_COLUMNS), *(",".join(str(r.get(c, "")) for c in CANONICAL_COLUMNS) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


def published_bytes(root: Path) -> dict[str, bytes]:
    """Every published data file's bytes by partition (superseded runs stay beside them, unpublished)."""
    lake = open_store(str(root))
    return {f"{m.prefix}/{i}": lake.read_bytes(f["key"]) for dataset in (USAGE, SUSPENSE, DUPLICATES, FILE_COUNTS)
            for m in published_manifests(lake, dataset) for i, f in enumerate(m.files)}


def _file(name: str, days: dict[int, int]) -> tuple[str, bytes]:
    """A canonical file with ``n`` answered calls on each October day given."""
    rows = [{"network_record_id": f"{name}-{day}-{i}", "service": "voice", "direction": "MO", "msisdn": "491511234567",
             "other_party": "4930123456", "start_time": f"2026-10-{day:02d}T{i % 24:02d}:00:00Z", "duration_s": 60,
             "quantity": 60, "call_outcome": "answered"} for day, n in days.items() for i in range(n)]
    return f"msc-east/{name}.csv", canonical_csv(rows)


GROUPS = [
    [_file("msc-east_000001_20261002", {1: 3, 2: 10})],
    [_file("msc-east_000002_20261003", {2: 2, 3: 10})],
    [_file("msc-east_000003_20261004", {3: 2, 4: 10}), _file("msc-east_000004_20261005", {4: 2, 5: 10})],
    [_file("msc-east_000005_20261006", {5: 2, 6: 10})],
]


def _fold(root: Path, limit: int, keep_open: int) -> tuple[DateFolder, list[list[date]]]:
    lake = open_store(str(root))
    folder = DateFolder(lake, "v1", limit, keep_open=keep_open)
    pending_after = []
    for group in GROUPS:
        folder.add(stage_files(group, SUBS).candidates)
        pending_after.append(sorted(folder.pending))
    folder.flush()
    return folder, pending_after


def test_newest_dates_stay_open_until_the_end(tmp_path: Path) -> None:
    folder, pending_after = _fold(tmp_path / "lake", limit=30, keep_open=2)
    oct_ = {d: date(2026, 10, d) for d in range(1, 7)}
    assert pending_after == [[oct_[1], oct_[2]], [oct_[1], oct_[2], oct_[3]], [oct_[4], oct_[5]], [oct_[5], oct_[6]]]
    assert folder.held == 0 and not folder.pending and folder.rebuilt == set(oct_.values())
    index, rows = read_key_index(folder.lake, oct_[5])
    assert rows.height == 12 and index.height == 12, "Oct 5 got rows from two groups and was written once, at the end"


def test_open_dates_holding_the_limit_are_flushed(tmp_path: Path) -> None:
    """Memory stays bounded: when the newest dates alone reach the limit, they are rebuilt too."""
    folder = DateFolder(open_store(str(tmp_path / "lake")), "v1", 12, keep_open=2)
    folder.add(stage_files(GROUPS[0], SUBS).candidates)
    assert not folder.pending and folder.held == 0


def test_keeping_dates_open_publishes_the_same_bytes(tmp_path: Path) -> None:
    for name, limit, keep in (("open", 30, 2), ("eager", 30, 0), ("one", 1, 2), ("all", 10**6, 2)):
        _fold(tmp_path / name, limit, keep)
    snapshots = {name: published_bytes(tmp_path / name) for name in ("open", "eager", "one", "all")}
    assert len(snapshots["open"]) == 4 * 6 and len({frozenset(s.items()) for s in snapshots.values()}) == 1
