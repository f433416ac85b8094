"""Mediation fixtures: one generated month (with every fault) mediated once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from pipelines.common.settings import Settings
from pipelines.customers import import_customers
from pipelines.generate import GeneratedData, generate, upload_landing
from pipelines.mediation.pipeline import MediationResult, mediate

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def settings_in(root: Path) -> Settings:
    return Settings(landing_uri=str(root / "landing"), lake_uri=str(root / "lake"),
                    warehouse_path=str(root / "warehouse.duckdb"), tariffs_dir=str(PROJECT_ROOT / "tariffs"),
                    output_dir=str(root / "out"))


@dataclass
class Mediated:
    gen: GeneratedData
    settings: Settings
    result: MediationResult


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return generate(tmp_path_factory.mktemp("gen"), 100, "2026-10", seed=42, per_subscriber=25)


@pytest.fixture(scope="session")
def mediated(generated: GeneratedData, tmp_path_factory: pytest.TempPathFactory) -> Mediated:
    settings = settings_in(tmp_path_factory.mktemp("mediated"))
    upload_landing(generated, settings)
    import_customers(settings, generated.accounts_csv.read_bytes(), generated.subscriptions_csv.read_bytes())
    return Mediated(generated, settings, mediate(settings))


def lake_snapshot(lake_dir: str | Path) -> dict[str, bytes]:
    """Every object in a local lake, by key (for byte-level idempotency checks)."""
    root = Path(lake_dir)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def canonical_csv(rows: list[dict]) -> bytes:
    """A canonical CSV file from partial row dicts (missing columns empty)."""
    from schemas.contracts import CANONICAL_COLUMNS

    lines = [",".join(CANONICAL_COLUMNS)]
    for row in rows:
        lines.append(",".join(str(row.get(c, "")) for c in CANONICAL_COLUMNS))
    return ("\n".join(lines) + "\n").encode()


def published(settings: Settings, dataset: str) -> pl.DataFrame:
    from pipelines.common.partitions import read_published
    from pipelines.common.storage import open_store

    frame = read_published(open_store(settings.lake_uri, settings.s3), dataset)
    assert frame is not None, f"{dataset} was not published"
    return frame


@pytest.fixture
def make_csv():
    """The :func:`canonical_csv` helper as a fixture (test modules here are not importable packages)."""
    return canonical_csv
