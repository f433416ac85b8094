"""Helpers for benchmark scripts: timing, peak RSS of a child process, and the JSON row format."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def parse_scale() -> float:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    return parser.parse_args().scale


def emit(area: str, metric: str, value: Any, unit: str = "", target: str = "", baseline: str = "",
         ratio: str = "") -> None:
    """Print one result row for bench/run.py."""
    print(json.dumps({"area": area, "metric": metric, "value": value, "unit": unit, "target": target,
                      "baseline": baseline, "ratio": ratio}), flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size in MiB of this process (or of its waited-for children)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit("import this module from a bench_*.py script")
