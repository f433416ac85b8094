"""Helpers shared by the CGRateS compatibility tests (imported by module name: unique on purpose)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "cgrates"
HEADER = ("id", "tenant", "category", "subject", "destination", "start_time", "usage")


def write_events(path: Path, rows: Iterable[Sequence[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def read_costs(path: Path) -> list[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["id", "cost", "error"]
        return [tuple(r) for r in reader]  # type: ignore[misc]


def write_plan(folder: Path, files: dict[str, str]) -> Path:
    """A small tariff plan written from inline CSV text (header lines start with '#')."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text.strip() + "\n", encoding="utf-8")
    return folder
