"""Fixtures for the CGRateS compatibility tests: the copied tariff plans and a CLI runner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from cgrates_support import PLANS, read_costs, write_events

from pipelines.cli import main

Runner = Callable[..., dict[str, tuple[str, str]]]


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
