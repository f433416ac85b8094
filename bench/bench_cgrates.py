"""CGRateS compatibility: events per second through ``rate_events`` (parse + set-based DuckDB rating).

Rates ``200,000 x scale`` random calls on the tutorial2 tariff plan (timings, group interval
starts, fallbacks, unauthorised destinations) and prints JSON rows for bench/run.py; the baseline
is the plain per-event Python rater (:mod:`pipelines.rating.cgrates.reference`) on a sample, which
must give identical results.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, parse_scale, peak_rss_mb, timed  # noqa: E402
from pipelines.rating.cgrates.rater import parse_event, rate_events  # noqa: E402
from pipelines.rating.cgrates.reference import ReferenceRater  # noqa: E402
from pipelines.rating.cgrates.tariffplan import load_tariff_plan  # noqa: E402

PLAN = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cgrates" / "tutorial2"


def events(n: int) -> list[dict[str, str]]:
    rnd = random.Random(42)
    out = []
    for i in range(n):
        out.append({"id": str(i), "tenant": "cgrates.org", "category": "call",
                    "subject": rnd.choice(["1001", "1002", "1003"]),
                    "destination": rnd.choice(["1002", "1003", "2001", "3001", "voicemail", "4003"]),
                    "start_time": f"2026-03-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:"
                                  f"{rnd.randint(0, 59):02d}:00+01:00",
                    "usage": f"{rnd.randint(1, 3600)}s"})
    return out


def main() -> None:
    n = max(1000, int(200_000 * parse_scale()))
    plan = load_tariff_plan(PLAN)
    rows = events(n)
    rate_events(plan, [parse_event(i, r) for i, r in enumerate(events(100))])  # warm-up: one-off imports
    t_parse, parsed = timed(lambda: [parse_event(i, r) for i, r in enumerate(rows)])
    t_rate, results = timed(lambda: rate_events(plan, parsed))
    assert len(results) == n
    emit("cgrates", "events rated", n, "events")
    emit("cgrates", "parse throughput", round(n / t_parse), "events/s")
    emit("cgrates", "rating throughput (DuckDB)", round(n / t_rate), "events/s")
    emit("cgrates", "end-to-end throughput", round(n / (t_parse + t_rate)), "events/s")
    sample = parsed[: min(n, 20_000)]
    reference = ReferenceRater(plan)
    t_ref, ref = timed(lambda: [reference.rate(e) for e in sample])
    assert all(ref_cost == results[e.seq] for ref_cost, e in zip(ref, sample, strict=True))
    sql_rate, ref_rate = n / t_rate, len(sample) / t_ref
    emit("cgrates", "per-event Python reference rater", round(ref_rate), "events/s",
         baseline="same results, per record")
    emit("cgrates", "DuckDB rater vs per-event Python", round(sql_rate / ref_rate, 2), "x",
         ratio=f"{sql_rate / ref_rate:.2f}")
    emit("cgrates", "peak RSS", round(peak_rss_mb()), "MiB")


if __name__ == "__main__":
    main()
