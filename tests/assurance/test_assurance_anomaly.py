"""Anomaly detector: flags a quiet source (critical -> hold) and a spike, not the normal weekend dip."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from pipelines.assurance.anomaly import VOLUME_SCHEMA, detect_anomalies
from pipelines.assurance.holds import HoldError, clear_hold, hold_status, holds_for_period
from pipelines.assurance.run import run_assurance
from pipelines.cli import main
from pipelines.common.partitions import write_partition
from pipelines.common.storage import open_store
from schemas.contracts import USAGE_SCHEMA

PERIOD = "2026-10"
START = datetime(2026, 9, 1, tzinfo=UTC)   # four weeks of baseline before the period
END = datetime(2026, 10, 31, 23, tzinfo=UTC)
QUIET = [datetime(2026, 10, 14, 9, tzinfo=UTC) + timedelta(hours=h) for h in range(5)]
SPIKE = datetime(2026, 10, 21, 15, tzinfo=UTC)


def expected_rate(hour: datetime, base: float) -> float:
    """Daily shape (busy afternoons, quiet nights) and a weekend dip to 45 %."""
    local = hour.astimezone(ZoneInfo("Europe/Berlin"))  # people follow local time, DST included
    shape = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.2, 1.1,
             1.0, 0.8, 0.6, 0.4][local.hour]
    return base * shape * (0.45 if local.weekday() >= 5 else 1.0)


def volumes(seed: int = 7, quiet: bool = False, spike: bool = False, base: float = 60) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    hour = START
    while hour <= END:
        for source, service, scale in (("pgw-1", "data", 1.0), ("msc-east", "voice", 0.5)):
            vol = int(rng.poisson(expected_rate(hour, base * scale)))
            if quiet and source == "pgw-1" and hour in QUIET:
                vol = 0
            if spike and source == "msc-east" and hour == SPIKE:
                vol = int(expected_rate(hour, base * scale) * 4)
            if vol:
                rows.append({"source": source, "service": service, "hour": hour, "volume": vol})
        hour += timedelta(hours=1)
    return pl.DataFrame(rows, schema=VOLUME_SCHEMA, orient="row")


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_normal_month_with_weekend_dips_raises_nothing(seed):
    vol = volumes(seed)
    weekend = vol.filter(pl.col("hour").dt.weekday() >= 6)
    weekday = vol.filter(pl.col("hour").dt.weekday() < 6)
    assert weekend["volume"].mean() < 0.6 * weekday["volume"].mean()  # the dip is really there
    assert detect_anomalies(vol, PERIOD).height == 0


def test_quiet_source_is_a_critical_drop():
    alerts = detect_anomalies(volumes(quiet=True), PERIOD)
    assert alerts["hour"].to_list() == QUIET
    assert set(alerts["source"]) == {"pgw-1"} and set(alerts["kind"]) == {"drop"}
    assert set(alerts["severity"]) == {"critical"} and set(alerts["run_hours"]) == {5}


def test_spike_is_a_warning():
    alerts = detect_anomalies(volumes(spike=True), PERIOD)
    assert alerts.select("source", "hour", "kind", "severity").rows() == [("msc-east", SPIKE, "spike", "warning")]


def write_usage_from_volumes(settings, vol: pl.DataFrame) -> None:
    rows = []
    for r in vol.iter_rows(named=True):
        for i in range(r["volume"]):
            rid = f"{r['source']}-{r['hour']:%Y%m%d%H}-{i}"
            rows.append({**{k: None for k in USAGE_SCHEMA}, "record_id": rid, "source": r["source"],
                         "source_file": f"{r['source']}/{r['hour']:%Y%m%d}.csv", "service": r["service"],
                         "start_time": r["hour"] + timedelta(seconds=i), "quantity": 1,
                         "usage_date": (r["hour"] + timedelta(seconds=i)).date()})
    frame = pl.DataFrame(rows, schema=USAGE_SCHEMA, orient="row")
    lake = open_store(settings.lake_uri)
    for (day,), part in frame.partition_by("usage_date", as_dict=True, maintain_order=True).items():
        write_partition(lake, "usage", {"usage_date": day.isoformat()}, "fixture", part)


def test_critical_alert_holds_the_bill_cycle_until_cleared(local_settings):
    write_usage_from_volumes(local_settings, volumes(base=20, quiet=True))
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    assert run.alerts.filter(pl.col("severity") == "critical")["hour"].to_list() == QUIET
    holds = holds_for_period(local_settings, PERIOD)
    assert [(h.source, h.service, h.reason_code, h.hours) for h in holds] == [("pgw-1", "data", "VOLUME_DROP", 5)]
    assert holds == run.holds == run.open_holds and run.status == "fail"
    assert holds_for_period(local_settings, "2026-11") == []
    with pytest.raises(HoldError, match="who cleared it and why"):
        clear_hold(local_settings, PERIOD, holds[0].hold_id, "", "", date(2026, 11, 2))
    with pytest.raises(HoldError, match="no hold"):
        clear_hold(local_settings, PERIOD, "HOLD-nope", "ana", "checked", date(2026, 11, 2))
    assert main(["--lake", local_settings.lake_uri, "assurance", "clear-hold", "--period", PERIOD,
                 "--hold-id", holds[0].hold_id, "--by", "ana.analyst", "--reason", "switch maintenance window",
                 "--on", "2026-11-02"]) == 0
    assert holds_for_period(local_settings, PERIOD) == []
    (hold, clearance), = hold_status(local_settings, PERIOD)
    assert clearance["cleared_by"] == "ana.analyst" and hold.hold_id == holds[0].hold_id
    # a rerun re-places the same hold (same id, same bytes) but its clearance stands
    again = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    assert holds_for_period(local_settings, PERIOD) == [] and again.holds == holds and again.open_holds == []
    assert again.status == "pass"
