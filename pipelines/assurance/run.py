"""``telbill assurance run --period P``: controls, KPIs, anomalies, holds, data quality and the report.

Everything is computed from the published lake, so rerunning with the same inputs writes the same
bytes (run id = hash of the input runs, the plan table and the period).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl

from pipelines.assurance.anomaly import VOLUME_SCHEMA, AnomalyModel, detect_anomalies
from pipelines.assurance.controls import open_assurance_db, run_controls, run_kpis
from pipelines.assurance.holds import Hold, holds_for_period, holds_from_alerts, place_holds
from pipelines.common.partitions import run_id_for, write_partition
from pipelines.common.periods import period_bounds_utc
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store

HOME_ZONE = "Europe/Berlin"
BASELINE_WEEKS = 4

DAILY_SCHEMA: dict[str, pl.DataType] = {"period": pl.String, "source": pl.String, "day": pl.Date,
                                        "volume": pl.Int64}


@dataclass
class AssuranceRun:
    period: str
    run_id: str
    results: pl.DataFrame
    findings: pl.DataFrame
    kpis: pl.DataFrame
    alerts: pl.DataFrame
    holds: list[Hold]
    daily: pl.DataFrame
    inputs_missing: list[str]
    dq: pl.DataFrame | None = None
    files: dict[str, str] = field(default_factory=dict)
    open_holds: list[Hold] = field(default_factory=list)

    @property
    def status(self) -> str:
        failed = (self.results["status"] == "fail").any() or (self.kpis["status"] == "fail").any()
        return "fail" if failed or self.open_holds else "pass"


def hourly_volume_sql(con, period: str):  # noqa: ANN001, ANN201 - duckdb connection, polars frame
    """Hourly records per source and service for the period plus the baseline weeks before it."""
    start, end = period_bounds_utc(period, 1, HOME_ZONE)
    frame = con.execute(
        "SELECT source, service, date_trunc('hour', start_time) AS hour, count(*)::BIGINT AS volume FROM usage "
        "WHERE start_time >= ? AND start_time < ? AND source IS NOT NULL GROUP BY ALL ORDER BY ALL",
        [start - timedelta(weeks=BASELINE_WEEKS), end]).pl()
    return frame.select([pl.col(c).cast(t) for c, t in VOLUME_SCHEMA.items()])


def daily_volume(volume: pl.DataFrame, period: str) -> pl.DataFrame:
    """Records per source and local day inside the period (the report's volume chart)."""
    start, end = period_bounds_utc(period, 1, HOME_ZONE)
    frame = (volume.filter((pl.col("hour") >= start) & (pl.col("hour") < end))
             .group_by("source", pl.col("hour").dt.convert_time_zone(HOME_ZONE).dt.date().alias("day"))
             .agg(pl.col("volume").sum().cast(pl.Int64)).with_columns(pl.lit(period).alias("period")))
    return frame.select(list(DAILY_SCHEMA)).sort("source", "day")


def run_assurance(settings: Settings, period: str, *, data_quality: bool = True, report: bool = True,
                  model: AnomalyModel | None = None) -> AssuranceRun:
    """Run every control for ``period``, publish ``assurance/*`` datasets, place holds, write the report."""
    con, missing, used = open_assurance_db(settings)
    try:
        results, findings = run_controls(con, period, missing)
        kpis = run_kpis(con, period, results)
        volume = hourly_volume_sql(con, period)
        dq = None
        if data_quality:
            from pipelines.assurance.dq import run_data_quality

            dq = run_data_quality(con, period, Path(settings.output_dir) / "assurance" / period / "data_docs")
    finally:
        con.close()
    alerts = detect_anomalies(volume, period, model)
    holds = holds_from_alerts(alerts)
    daily = daily_volume(volume, period)
    inputs = dict(used)
    inputs["tariffs/plans.csv"] = hashlib.sha256((Path(settings.tariffs_dir) / "plans.csv").read_bytes()).hexdigest()
    run_id = run_id_for(inputs, period=period, stage="assurance", model=repr(model or AnomalyModel()))
    run = AssuranceRun(period, run_id, results, findings, kpis, alerts, holds, daily, missing, dq)
    lake = open_store(settings.lake_uri, settings.s3)
    datasets = {"assurance/control_results": results, "assurance/findings": findings, "assurance/kpis": kpis,
                "assurance/alerts": alerts, "assurance/daily_volume": daily}
    if dq is not None:
        datasets["assurance/dq_results"] = dq
    for name, frame in datasets.items():
        manifest = write_partition(lake, name, {"period": period}, run_id, frame, inputs=inputs,
                                   extra={"inputs_missing": missing})
        run.files[name] = manifest.prefix
    place_holds(settings, holds)
    run.open_holds = holds_for_period(settings, period)   # a hold an analyst cleared no longer blocks
    if report:
        from pipelines.assurance.report import write_report

        run.files["report"] = write_report(run, Path(settings.output_dir) / "assurance" / period / "report.html")
    return run
