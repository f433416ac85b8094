"""One HTML page per assurance run: KPIs, controls with status, holds, charts as inline SVG."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.assurance.charts import daily_volume_svg, leakage_svg
from pipelines.assurance.display import amount_text, kpi_text, number_text
from pipelines.common.periods import iter_dates, period_dates

TEMPLATES = Path(__file__).resolve().parent / "templates"
FINDINGS_LIMIT = 10
ALERTS_LIMIT = 40
KPI_LABELS = {
    "leakage_pct": ("Leakage % of revenue", "%"), "leakage_value": ("Leakage value", "EUR"),
    "unbilled_usage_value": ("Unbilled usage", "EUR"), "suspense_value": ("Suspense value (est.)", "EUR"),
    "suspense_records": ("Suspense records", ""), "suspense_max_age_days": ("Oldest suspense (days)", ""),
    "duplicate_rate_pct": ("Duplicate rate", "%"), "reject_rate_pct": ("Reject rate", "%"),
    "rated_revenue": ("Rated revenue", "EUR"), "invoiced_total": ("Invoiced", "EUR"),
    "collected_total": ("Collected", "EUR"), "outstanding_total": ("Outstanding", "EUR"),
    "in_dispute_total": ("In dispute (overdue)", "EUR"), "written_off_total": ("Written off", "EUR"),
}


def chart_marks(findings: pl.DataFrame, alerts: pl.DataFrame) -> list[tuple[str, date, str]]:
    """Days to mark on the volume chart: missing files, quiet days (gap) and anomaly hours."""
    marks = set()
    for f in findings.filter(pl.col("control_id").is_in(["C01", "C03"])).iter_rows(named=True):
        text = f["detail"] if f["control_id"] == "C03" else (f["source_file"] or "")
        m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", text.rsplit("/", 1)[-1] if f["control_id"] == "C01" else text)
        if m:
            marks.add((f["source"], date(int(m[1]), int(m[2]), int(m[3])), "gap"))
    if alerts.height:
        local = alerts.with_columns(pl.col("hour").dt.convert_time_zone("Europe/Berlin").dt.date().alias("day"))
        for source, day in local.select("source", "day").unique().iter_rows():
            marks.add((source, day, "anomaly"))
    return sorted(marks)


def render_report(run) -> str:  # noqa: ANN001 - AssuranceRun (import cycle)
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined)
    start, end = period_dates(run.period)
    days = iter_dates(start, end)
    series: dict[str, list[tuple[date, int]]] = {}
    for source, day, volume in run.daily.select("source", "day", "volume").iter_rows():
        series.setdefault(source, []).append((day, volume))
    bars = [(f"{r['control_id']} {r['name']}", r["value_eur"]) for r in run.results.iter_rows(named=True)
            if r["leak"] or r["control_id"] == "C06"]
    kpis = []
    order = list(KPI_LABELS)
    for k in sorted(run.kpis.iter_rows(named=True), key=lambda r: order.index(r["kpi"]) if r["kpi"] in order else 99):
        label, _ = KPI_LABELS.get(k["kpi"], (k["kpi"], k["unit"]))
        kpis.append({"label": label, "text": kpi_text(k["value"], k["unit"]), "status": k["status"],
                     "threshold": kpi_text(k["threshold"], k["unit"]) if k["threshold"] is not None else ""})
    findings = (run.findings.with_columns(pl.int_range(pl.len()).over("control_id").alias("_n"))
                .filter(pl.col("_n") < FINDINGS_LIMIT).to_dicts())
    for f in findings:
        f["value_text"] = amount_text(f["value_eur"]) if f["value_eur"] is not None else ""
    controls = [{**r, "value_text": amount_text(r["value_eur"]) if r["value_eur"] is not None else ""}
                for r in run.results.to_dicts()]
    alerts = [{**a, "baseline_text": number_text(Decimal(str(a["baseline"])), 1) if a["baseline"] is not None else ""}
              for a in run.alerts.head(ALERTS_LIMIT).to_dicts()]
    dq = None
    if run.dq is not None and run.dq.height:
        dq = (run.dq.group_by("suite").agg(pl.len().alias("total"), (~pl.col("success")).sum().alias("failed"))
              .sort("suite").to_dicts())
    return env.get_template("report.html.j2").render(
        period=run.period, run_id=run.run_id, status=run.status, kpis=kpis, holds=run.open_holds, controls=controls,
        volume_svg=daily_volume_svg(series, days, chart_marks(run.findings, run.alerts)), leakage_svg=leakage_svg(bars),
        findings=findings, findings_limit=FINDINGS_LIMIT, alerts=alerts,
        alerts_more=run.alerts.height > ALERTS_LIMIT, dq=dq, inputs_missing=run.inputs_missing)


def write_report(run, path: Path) -> str:  # noqa: ANN001 - AssuranceRun
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(run), encoding="utf-8")
    return str(path)
