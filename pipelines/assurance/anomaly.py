"""Volume anomalies per source and service: each hour against its own weekly baseline.

Model (robust, per series = source x service):

* hourly record counts on a complete hour grid (an hour with no records counts 0), from the series'
  first hour to the last hour seen in any series (so a source that stops is seen, and hours after
  the data ends are not judged);
* the baseline of an hour is the **median** of the same hour-of-week (local Europe/Berlin weekday and
  hour) in the *other* weeks of the window (the period plus up to four weeks before it), its spread
  the **MAD** (median absolute deviation) scaled by 1.4826, floored at sqrt(median) (Poisson noise) and 1;
* ``z = (volume - median) / spread``; a **drop** when z <= -4 and volume < half the median, a **spike**
  when z >= 4 and volume > three times the median, judged only where the median is at least 5 records/hour;
* an hour with **no records at all** where the median is at least 8 is a drop too (silence: under
  Poisson noise that happens with probability < 0.04 %), so a dead source is caught even at modest volume;
* a run of ``critical_hours`` (3) or more consecutive drop hours is **critical**: it puts a hold on
  the period's bill cycle (see :mod:`pipelines.assurance.holds`). Other alerts are warnings.

Because each hour is compared with the same hour of other weeks, the normal night and weekend dips
are part of the baseline and raise nothing.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from pipelines.common.partitions import digest
from pipelines.common.periods import period_bounds_utc
from schemas.contracts import UTC_TS

HOME_ZONE = "Europe/Berlin"

VOLUME_SCHEMA: dict[str, pl.DataType] = {"source": pl.String, "service": pl.String, "hour": UTC_TS,
                                         "volume": pl.Int64}
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String, "period": pl.String, "source": pl.String, "service": pl.String, "hour": UTC_TS,
    "hour_of_week": pl.Int32, "volume": pl.Int64, "baseline": pl.Float64, "spread": pl.Float64,
    "z_score": pl.Float64, "kind": pl.String, "severity": pl.String, "run_start": UTC_TS, "run_hours": pl.Int32,
}


@dataclass(frozen=True)
class AnomalyModel:
    z_threshold: float = 4.0
    min_baseline: float = 5.0
    drop_ratio: float = 0.5
    spike_ratio: float = 3.0
    silence_baseline: float = 8.0   # an empty hour is a drop when the baseline is at least this (P < 0.04 %)
    critical_hours: int = 3
    min_other_weeks: int = 2


def hourly_volume(usage: pl.DataFrame) -> pl.DataFrame:
    """Record count per source, service and UTC hour."""
    if usage.is_empty():
        return pl.DataFrame(schema=VOLUME_SCHEMA)
    return (usage.group_by("source", "service", pl.col("start_time").dt.truncate("1h").alias("hour"))
            .agg(pl.len().cast(pl.Int64).alias("volume"))
            .select(list(VOLUME_SCHEMA)).sort("source", "service", "hour"))


def complete_grid(volume: pl.DataFrame) -> pl.DataFrame:
    """Every hour of every series from its first hour to the last hour of any series, zeros filled."""
    if volume.is_empty():
        return volume
    last = volume["hour"].max()
    firsts = volume.group_by("source", "service").agg(pl.col("hour").min().alias("first")).sort("source", "service")
    grids = [pl.DataFrame({"source": r["source"], "service": r["service"],
                           "hour": pl.datetime_range(r["first"], last, "1h", time_zone="UTC", eager=True)})
             for r in firsts.iter_rows(named=True)]
    grid = pl.concat(grids).with_columns(pl.col("hour").cast(UTC_TS))
    return (grid.join(volume, on=["source", "service", "hour"], how="left")
            .with_columns(pl.col("volume").fill_null(0)).sort("source", "service", "hour"))


def _with_hour_of_week(frame: pl.DataFrame) -> pl.DataFrame:
    local = pl.col("hour").dt.convert_time_zone(HOME_ZONE)
    return frame.with_columns(((local.dt.weekday() - 1) * 24 + local.dt.hour()).cast(pl.Int32).alias("hour_of_week"))


def detect_anomalies(volume: pl.DataFrame, period: str, model: AnomalyModel | None = None) -> pl.DataFrame:
    """Alert rows for the hours of ``period`` whose volume breaks its weekly baseline."""
    model = model or AnomalyModel()
    start, end = period_bounds_utc(period, 1, HOME_ZONE)
    grid = _with_hour_of_week(complete_grid(volume))
    alerts: list[dict] = []
    for (source, service), series in grid.partition_by("source", "service", as_dict=True, maintain_order=True).items():
        by_how: dict[int, list[tuple]] = {}
        for hour, how, vol in series.select("hour", "hour_of_week", "volume").iter_rows():
            by_how.setdefault(how, []).append((hour, vol))
        series_alerts = []
        for hour, how, vol in series.select("hour", "hour_of_week", "volume").iter_rows():
            if not start <= hour < end:
                continue
            others = [v for h, v in by_how[how] if abs((h - hour).total_seconds()) >= 6 * 86400]
            if len(others) < model.min_other_weeks:
                continue
            med = statistics.median(others)
            if med < model.min_baseline:
                continue
            mad = statistics.median([abs(v - med) for v in others])
            spread = max(1.4826 * mad, math.sqrt(med), 1.0)
            z = (vol - med) / spread
            kind = None
            if (z <= -model.z_threshold and vol < model.drop_ratio * med) or (vol == 0 and med >= model.silence_baseline):
                kind = "drop"
            elif z >= model.z_threshold and vol > model.spike_ratio * med:
                kind = "spike"
            if kind:
                series_alerts.append({"period": period, "source": source, "service": service, "hour": hour,
                                      "hour_of_week": how, "volume": vol, "baseline": float(med), "spread": spread,
                                      "z_score": round(z, 6), "kind": kind})
        alerts += _mark_runs(series_alerts, model)
    if not alerts:
        return pl.DataFrame(schema=ALERT_SCHEMA)
    return pl.DataFrame(alerts, schema=ALERT_SCHEMA, orient="row").sort("source", "service", "hour")


def _mark_runs(alerts: list[dict], model: AnomalyModel) -> list[dict]:
    """Group consecutive hours of the same kind into runs; long drop runs are critical."""
    runs: list[list[dict]] = []
    for a in alerts:
        prev = runs[-1][-1] if runs else None
        if prev and prev["kind"] == a["kind"] and a["hour"] - prev["hour"] == timedelta(hours=1):
            runs[-1].append(a)
        else:
            runs.append([a])
    out = []
    for run in runs:
        critical = run[0]["kind"] == "drop" and len(run) >= model.critical_hours
        for a in run:
            out.append({**a, "severity": "critical" if critical else "warning", "run_start": run[0]["hour"],
                        "run_hours": len(run),
                        "alert_id": "AL-" + digest(a["period"], a["source"], a["service"], a["hour"].isoformat(),
                                                   length=12)})
    return out
