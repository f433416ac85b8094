"""Switch-format readers: records per second per format, against a bare Polars CSV read.

Scale 1.0 = 300,000 Asterisk lines, 50,000 FreeSWITCH JSON documents and 5,000 BER MSC records
(BER decoding is a per-record Python loop through pycrate: correctness over speed). The input is
written by the project's own writers/encoders, so it is valid; the reader's checks still run.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from bench.common import emit, parse_scale, peak_rss_mb, timed  # noqa: E402
from pipelines.mediation.readers import (  # noqa: E402
    asterisk,
    ber3gpp,
    conform_records,  # noqa: E402
    freeswitch,
)

AREA = "mediation_readers"


def calls(n: int) -> pl.DataFrame:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return conform_records(pl.DataFrame({
        "source": ["msc"] * n, "source_file": ["f"] * n, "record_offset": list(range(n)),
        "network_record_id": [f"call-{i}" for i in range(n)], "service": ["voice"] * n,
        "direction": ["MO", "MT"] * (n // 2) + ["MO"] * (n % 2),
        "msisdn": [f"49151{i % 10_000_000:07d}" for i in range(n)], "imsi": [f"26202{i:010d}" for i in range(n)],
        "other_party": ["4930123456"] * n, "start_time": [start + timedelta(seconds=7 * i) for i in range(n)],
        "duration_s": [i % 600 for i in range(n)], "quantity": [i % 600 for i in range(n)],
        "call_outcome": ["answered", "answered", "busy", "unanswered"] * (n // 4) + ["answered"] * (n % 4),
        "charging_id": [str(i) for i in range(n)],
    }))


def measure(fmt: str, data: bytes, n: int, read) -> float:  # noqa: ANN001
    seconds, parsed = timed(lambda: read("msc", "f", data))
    assert parsed.records.height == n and parsed.rejects.height == 0, fmt
    rate = n / seconds
    emit(AREA, f"{fmt} read", round(rate), "records/s", baseline=f"{n} records in {seconds:.2f} s")
    return rate


def main() -> int:
    scale = parse_scale()
    n_csv, n_json, n_ber = (max(int(x * scale), 4) for x in (300_000, 50_000, 5_000))
    frame = calls(n_csv)
    data = asterisk.write_asterisk_csv(frame)
    bare_s, _ = timed(lambda: pl.read_csv(io.BytesIO(data), has_header=False, infer_schema=False))
    rate = measure("asterisk_csv", data, n_csv, asterisk.read)
    emit(AREA, "asterisk_csv vs bare Polars read_csv", round(rate * bare_s / n_csv, 3), "x of bare speed",
         baseline=f"bare read {round(n_csv / bare_s)} records/s")
    measure("freeswitch_json", freeswitch.write_freeswitch_json(frame.head(n_json)), n_json, freeswitch.read_json)
    ber3gpp._cdr()  # the 2.5 s pycrate import is a one-off per process, not per record
    measure("ber_3gpp (MSC)", ber3gpp.encode_msc_records(frame.head(n_ber)), n_ber, ber3gpp.read)
    emit(AREA, "peak RSS", round(peak_rss_mb()), "MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
