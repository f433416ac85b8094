"""Mediation benchmark: generate N canonical CSV records (10M at --scale 1), mediate them end to end.

Prints records/s, peak RSS of the mediation process, and the ratio to a bare ``pl.read_csv`` of the
same files (the floor). Generation, the bare read and mediation each run in their own child process
(a forked child inherits its parent's peak RSS, so the parent stays small).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import emit, parse_scale  # noqa: E402

PER_SUBSCRIBER = 120

CHILD_MEDIATE = """
import json, resource, sys, time
from pipelines.common.settings import Settings
from pipelines.customers import import_customers
from pipelines.mediation.pipeline import mediate
root = sys.argv[1]
s = Settings(landing_uri=root + "/gen/landing", lake_uri=root + "/lake", tariffs_dir=sys.argv[2])
import_customers(s, open(root + "/gen/accounts.csv", "rb").read(), open(root + "/gen/subscriptions.csv", "rb").read())
t = time.perf_counter()
r = mediate(s, batch_records=int(sys.argv[3]))
elapsed = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": elapsed, "cpu_seconds": ru.ru_utime + ru.ru_stime, "records": r.totals()["records_in"], "balanced": r.balanced,
                  "usage": r.totals()["usage"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CHILD_GENERATE = """
import json, sys
from pipelines.generate import generate
data = generate(sys.argv[1] + "/gen", int(sys.argv[2]), "2026-10", seed=1, faults=False,
                per_subscriber=float(sys.argv[3]), data_format="csv")
print(json.dumps({"records": data.records}))
"""

CHILD_BARE = """
import json, resource, sys, time, glob
import polars as pl
files = sorted(glob.glob(sys.argv[1] + "/gen/landing/*/*.csv"))
t = time.perf_counter()
n = sum(pl.read_csv(f).height for f in files)
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t, "records": n, "cpu_seconds": ru.ru_utime + ru.ru_stime,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


CHILD_FLOOR = """
import json, sys, time, glob
import polars as pl
from pipelines.common.storage import open_store
from pipelines.mediation.pipeline import HOT_CODEC, PER_RECORD_TEXT
files = sorted(glob.glob(sys.argv[1] + "/gen/landing/*/*.csv"))
lake = open_store(sys.argv[1] + "/floor").lean(PER_RECORD_TEXT)
t = time.perf_counter()
for i, f in enumerate(files):
    lake.write_parquet(f"part-{i}.parquet", pl.read_csv(f), compression=HOT_CODEC)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""
"""Read each file and write it straight back as Parquet the way mediation writes usage (same writer and codec):
the read and write any mediation pays, with nothing in between."""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    scale = parse_scale()
    target_records = int(10_000_000 * scale)
    subscribers = max(50, target_records // PER_SUBSCRIBER)
    batch = 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-mediation-") as tmp:
        t = time.perf_counter()
        gen = child(CHILD_GENERATE, tmp, str(subscribers), str(PER_SUBSCRIBER))
        emit("mediation", "generate_seconds", round(time.perf_counter() - t, 1), "s")
        bare = child(CHILD_BARE, tmp)
        floor = child(CHILD_FLOOR, tmp)
        med = child(CHILD_MEDIATE, tmp, str(ROOT / "tariffs"), str(batch))
        assert med["records"] == gen["records"] == bare["records"], (med, bare, gen)
    rate = med["records"] / med["seconds"]
    ratio = med["seconds"] / bare["seconds"]
    emit("mediation", "records", med["records"], "records")
    emit("mediation", "mediate_records_per_s", round(rate), "rec/s", target=">= 1000000")
    emit("mediation", "mediate_seconds", round(med["seconds"], 2), "s", baseline=f"bare read {bare['seconds']:.2f} s",
         ratio=f"{ratio:.2f}x", target="<= 4x bare read")
    emit("mediation", "read_write_floor_seconds", round(floor["seconds"], 2), "s",
         target="read each file + write it as mediation writes usage, nothing else",
         ratio=f"mediation = {med['seconds'] / floor['seconds']:.1f}x this")
    emit("mediation", "mediate_cpu_seconds", round(med["cpu_seconds"], 1), "s",
         baseline=f"bare read {bare['cpu_seconds']:.1f} s (incl. interpreter start)",
         ratio=f"{med['cpu_seconds'] / bare['cpu_seconds']:.2f}x")
    emit("mediation", "load_average_1min", round(__import__("os").getloadavg()[0], 1), "",
         target="figures are wall-clock on a shared 2-core machine")
    emit("mediation", "mediate_peak_rss", round(med["rss_mb"]), "MiB", target="bounded (batch 1M records; < 4 GB at 50M)")
    emit("mediation", "bare_read_peak_rss", round(bare["rss_mb"]), "MiB")
    emit("mediation", "conservation", "balanced" if med["balanced"] else "BROKEN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
