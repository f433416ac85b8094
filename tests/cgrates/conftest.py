"""Fixtures for the CGRateS compatibility tests: the copied tariff plans and a CLI runner."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

from pipelines.cli import main

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "cgrates"
HEADER = ("id", "tenant", "category", "subject", "destination", "start_time", "usage")

Runner = Callable[..., dict[str, tuple[str, str]]]


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


@pytest.fixture
def rate_cli(tmp_path: Path) -> Runner:
    """Run ``telbill cgrates rate`` end to end; returns {id: (cost, error)}."""
    counter = iter(range(1_000_000))

    def run(plan: str | Path, rows: Sequence[Sequence[str]], rounding_decimals: int | None = None,
            ) -> dict[str, tuple[str, str]]:
        n = next(counter)
        events = write_events(tmp_path / f"events{n}.csv", rows)
        out = tmp_path / f"costs{n}.csv"
        plan_dir = PLANS / plan if isinstance(plan, str) else plan
        argv = ["cgrates", "rate", "--tariffplan", str(plan_dir), "--events", str(events), "--out", str(out)]
        if rounding_decimals is not None:
            argv += ["--rounding-decimals", str(rounding_decimals)]
        assert main(argv) == 0
        costs = read_costs(out)
        assert [c[0] for c in costs] == [r[0] for r in rows], "one output row per input row, in input order"
        return {c[0]: (c[1], c[2]) for c in costs}

    return run


def write_plan(folder: Path, files: dict[str, str]) -> Path:
    """A small tariff plan written from inline CSV text (header lines start with '#')."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text.strip() + "\n", encoding="utf-8")
    return folder
