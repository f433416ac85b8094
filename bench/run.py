"""Run every ``bench/bench_*.py`` in its own process and print one table.

Each benchmark script prints JSON lines on stdout, one per measured figure:
``{"area": ..., "metric": ..., "value": ..., "unit": ..., "target": ..., "baseline": ..., "ratio": ...}``
(only area, metric, value are required). Running each in a fresh process keeps peak-memory figures
honest. ``--only mediation`` runs a subset; ``--scale`` is passed through (e.g. 0.1 for a quick look).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("area", "metric", "value", "unit", "target", "baseline", "ratio")


def _cell(value: object, width: int = 48) -> str:
    """Table cell text; long values (e.g. per-step timings) are cut so the table stays readable."""
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", help="run only benchmarks whose name contains this")
    parser.add_argument("--scale", default="1.0", help="size multiplier passed to every benchmark")
    args = parser.parse_args()
    rows: list[dict[str, str]] = []
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        if args.only and not any(o in script.stem for o in args.only):
            continue
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(script), "--scale", args.scale],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            failed.append(script.name)
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                rows.append({k: _cell(v) for k, v in json.loads(line).items()})
    widths = {c: max([len(c), *(len(r.get(c, "")) for r in rows)]) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS))
    print("  ".join("-" * widths[c] for c in COLUMNS))
    for r in rows:
        print("  ".join(r.get(c, "").ljust(widths[c]) for c in COLUMNS))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
