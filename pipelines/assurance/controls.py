"""Revenue-assurance controls: the SQL lives in ``warehouse/60_assurance.sql``; this module runs it.

The assurance run opens a private in-memory DuckDB with one view per published lake dataset (the
same views the warehouse builder makes), an empty view in the contract shape for every input that
is not published yet (its controls then report ``no_data``), the plan fees, and then the analyst
SQL. It reads each control's findings for one period and applies the control's threshold.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipelines.common.money import AMOUNT_SCALE, money, round_money
from pipelines.common.partitions import published_manifests
from pipelines.common.settings import Settings
from pipelines.common.storage import configure_duckdb, open_store
from pipelines.mediation.pipeline import MANIFEST_SCHEMA
from pipelines.warehouse import SQL_DIR, lake_datasets, view_name
from schemas.contracts import (
    ACCOUNT_SCHEMA,
    AMOUNT,
    ASSURANCE_FINDING_SCHEMA,
    DUNNING_STATE_SCHEMA,
    INVOICE_LINE_SCHEMA,
    INVOICE_SCHEMA,
    PAYMENT_ALLOCATION_SCHEMA,
    RATED_SCHEMA,
    SETTLEMENT_ENTRY_SCHEMA,
    SUBSCRIPTION_SCHEMA,
    USAGE_SCHEMA,
)

ASSURANCE_SQL = SQL_DIR / "60_assurance.sql"
PREPAID_SOURCE = "chf-prepaid"
DEBIT_SCHEMA: dict[str, pl.DataType] = {"source": pl.String, "source_file": pl.String,
                                        "network_record_id": pl.String, "charged_amount": AMOUNT}

FILE_MANIFEST_COLUMNS: dict[str, pl.DataType] = MANIFEST_SCHEMA
"""Mediation's ``file_manifest`` (staged for the controls in ``ra_stg_file_manifest``)."""

RATING_SUSPENSE_COLUMNS: dict[str, pl.DataType] = {"record_id": pl.String, "reason_code": pl.String,
                                                   "message": pl.String}

INPUT_VIEWS: dict[str, dict[str, pl.DataType]] = {
    "usage": USAGE_SCHEMA,
    "file_manifest": FILE_MANIFEST_COLUMNS,
    "rated": RATED_SCHEMA,
    "rating_suspense": RATING_SUSPENSE_COLUMNS,
    "invoices": INVOICE_SCHEMA,
    "invoice_lines": INVOICE_LINE_SCHEMA,
    "customers_subscriptions": SUBSCRIPTION_SCHEMA,
    "customers_accounts": ACCOUNT_SCHEMA,
    "collections_allocations": PAYMENT_ALLOCATION_SCHEMA,
    "settlement_entries": SETTLEMENT_ENTRY_SCHEMA,   # data-quality suite only
    "collections_dunning_state": DUNNING_STATE_SCHEMA,  # KPIs only (in dispute, written off)
}
"""Warehouse views the controls read, with the shape used when a dataset is not published yet."""


@dataclass(frozen=True)
class Control:
    """One documented control: its findings view and its pass/fail threshold."""

    control_id: str
    name: str
    stage: str
    view: str
    inputs: tuple[str, ...]
    max_findings: int = 0
    max_value_eur: Decimal | None = None
    leak: bool = False              # its value counts as revenue leakage

    def status(self, findings: int, value: Decimal, missing: list[str]) -> str:
        if missing:
            return "no_data"
        if findings > self.max_findings:
            return "fail"
        if self.max_value_eur is not None and value > self.max_value_eur:
            return "fail"
        return "pass"

    @property
    def threshold(self) -> str:
        text = f"findings <= {self.max_findings}"
        return text + (f" and value <= {self.max_value_eur} EUR" if self.max_value_eur is not None else "")


CONTROLS: tuple[Control, ...] = (
    Control("C01", "File sequence gaps", "network->mediation", "ra_c01_sequence_gaps", ("file_manifest",)),
    Control("C02", "Files delivered twice", "network->mediation", "ra_c02_duplicate_files", ("file_manifest",)),
    Control("C03", "Sources that went quiet", "network->mediation", "ra_c03_quiet_sources", ("usage",)),
    Control("C04", "Mediation in = out per file", "mediation", "ra_c04_mediation_balance",
            ("file_manifest", "usage")),
    Control("C05", "Usage never rated", "mediation->rating", "ra_c05_unrated_usage",
            ("usage", "rated", "rating_suspense"), leak=True),
    Control("C06", "Usage in rating suspense", "mediation->rating", "ra_c06_rating_suspense",
            ("usage", "rating_suspense")),
    Control("C07", "Rated usage not invoiced", "rating->billing", "ra_c07_unbilled_usage",
            ("rated", "invoices", "invoice_lines"), leak=True),
    Control("C08", "Active subscriptions without recurring charge", "inventory->billing",
            "ra_c08_unbilled_subscriptions", ("customers_subscriptions", "customers_accounts", "invoices",
                                              "invoice_lines"), leak=True),
    Control("C09", "Prepaid debit vs batch rating", "prepaid", "ra_c09_prepaid_debits", ("usage", "rated"),
            leak=True),
    Control("C10", "Payment allocations vs invoices", "billing->payments", "ra_c10_payment_allocations",
            ("invoices", "collections_allocations")),
)

KPI_THRESHOLDS: dict[str, Decimal] = {
    "leakage_pct": Decimal("0.1"),
    "duplicate_rate_pct": Decimal("2"),
    "reject_rate_pct": Decimal("2"),
    "suspense_max_age_days": Decimal("30"),
}
"""KPIs with an upper limit; a KPI above its limit fails the run's KPI status."""

FINDING_SCHEMA = ASSURANCE_FINDING_SCHEMA
RESULT_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String, "control_id": pl.String, "name": pl.String, "stage": pl.String, "view": pl.String,
    "findings": pl.Int64, "value_eur": AMOUNT, "threshold": pl.String, "status": pl.String,
    "inputs_missing": pl.String, "leak": pl.Boolean,
}
KPI_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String, "kpi": pl.String, "value": AMOUNT, "unit": pl.String, "threshold": AMOUNT,
    "status": pl.String,
}


def plan_fees(tariffs_dir: str) -> pl.DataFrame:
    with (Path(tariffs_dir) / "plans.csv").open(newline="", encoding="utf-8") as fh:
        rows = [{"plan_id": r["plan_id"], "monthly_fee": money(r["monthly_fee"])} for r in csv.DictReader(fh)]
    return pl.DataFrame(rows, schema={"plan_id": pl.String, "monthly_fee": AMOUNT}, orient="row")


def charging_debits(settings: Settings) -> tuple[pl.DataFrame, dict[str, str]]:
    """What the prepaid charging service debited per record, from its files in the landing area.

    The sidecar lands canonical CSV with a ``charged_amount`` column (``landing/chf-prepaid/``); mediation
    keeps only the usage contract, so the control reads the debit from the file itself and joins on
    (source, network_record_id). Returns the debits and the checksums of the files read.
    """
    landing = open_store(settings.landing_uri, settings.s3)
    rows: list[dict] = []
    files: dict[str, str] = {}
    for key in sorted(k for k in landing.list(PREPAID_SOURCE + "/") if k.endswith(".csv")):
        data = landing.read_bytes(key)
        files[f"landing/{key}"] = hashlib.sha256(data).hexdigest()
        frame = pl.read_csv(data, infer_schema=False)
        if "charged_amount" not in frame.columns or "network_record_id" not in frame.columns:
            continue
        for rid, amount in frame.select("network_record_id", "charged_amount").iter_rows():
            if rid and amount:
                rows.append({"source": PREPAID_SOURCE, "source_file": key, "network_record_id": rid,
                             "charged_amount": money(amount)})
    return pl.DataFrame(rows, schema=DEBIT_SCHEMA, orient="row") if rows else pl.DataFrame(schema=DEBIT_SCHEMA), files


def open_assurance_db(settings: Settings) -> tuple[duckdb.DuckDBPyConnection, list[str], dict[str, str]]:
    """In-memory DuckDB with the lake's views, stubs for missing inputs and the assurance SQL.

    Returns the connection, the input views that were missing, and the input runs used (for manifests).
    """
    lake = open_store(settings.lake_uri, settings.s3)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if lake.is_s3:
        configure_duckdb(con, settings.s3)
    used: dict[str, str] = {}
    present = set()
    for dataset in lake_datasets(lake):
        if view_name(dataset) not in INPUT_VIEWS:
            continue                                  # only what the controls read: run id = their inputs
        manifests = published_manifests(lake, dataset)
        files = [lake.duckdb_glob(f["key"]) for m in manifests for f in m.files]
        if not files:
            continue
        used.update({m.prefix: m.run_id for m in manifests})
        listing = ", ".join(f"'{f}'" for f in files)
        con.execute(f"CREATE OR REPLACE VIEW {view_name(dataset)} AS "
                    f"SELECT * FROM read_parquet([{listing}], union_by_name = true, hive_partitioning = false)")
        present.add(view_name(dataset))
    missing = sorted(v for v in INPUT_VIEWS if v not in present)
    for name in missing:
        con.register(f"_empty_{name}", pl.DataFrame(schema=INPUT_VIEWS[name]))
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _empty_{name}")
    con.register("_plan_fees", plan_fees(settings.tariffs_dir))
    con.execute("CREATE TABLE ra_plan_fees AS SELECT * FROM _plan_fees")
    debits, debit_files = charging_debits(settings)
    used.update(debit_files)
    con.register("_charging_records", debits)
    con.execute("CREATE TABLE ra_charging_records AS SELECT * FROM _charging_records")
    con.execute(ASSURANCE_SQL.read_text())
    # the run reads the staged usage many times: keep one copy in memory (same rows, same view name)
    con.execute("CREATE TEMP TABLE _ra_usage_cache AS SELECT * FROM ra_stg_usage")
    con.execute("CREATE OR REPLACE VIEW ra_stg_usage AS SELECT * FROM _ra_usage_cache")
    return con, missing, used


def run_controls(con: duckdb.DuckDBPyConnection, period: str,
                 missing: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(control results, findings) for one period, sorted for byte-stable output."""
    findings, results = [], []
    for control in CONTROLS:
        frame = con.execute(f"SELECT * FROM {control.view} WHERE period = ?", [period]).pl()
        frame = frame.select([pl.col(c).cast(t) for c, t in FINDING_SCHEMA.items()])
        gone = [v for v in control.inputs if v in missing]
        if gone:                                   # e.g. no invoices yet: "not billed" is not a finding
            frame = frame.clear()
        findings.append(frame)
        value = money(frame["value_eur"].sum() or 0) if frame.height else Decimal(0)
        results.append({"period": period, "control_id": control.control_id, "name": control.name,
                        "stage": control.stage, "view": control.view, "findings": frame.height, "value_eur": value,
                        "threshold": control.threshold, "status": control.status(frame.height, value, gone),
                        "inputs_missing": ",".join(gone), "leak": control.leak})
    all_findings = pl.concat(findings, how="vertical_relaxed").sort(
        ["control_id", "finding_type", "source", "source_file", "record_id", "subscription_id", "service", "detail"],
        nulls_last=True)
    return pl.DataFrame(results, schema=RESULT_SCHEMA, orient="row"), all_findings


def run_kpis(con: duckdb.DuckDBPyConnection, period: str, results: pl.DataFrame | None = None) -> pl.DataFrame:
    """The period's KPIs (view ``ra_kpis``); leakage KPIs only count controls that could run."""
    rows = con.execute("SELECT kpi, value, unit FROM ra_kpis WHERE period = ? ORDER BY kpi", [period]).fetchall()
    if results is not None and rows:
        values = {k: v for k, v, _ in rows}
        ran = results.filter(pl.col("status") != "no_data")
        leak = money(ran.filter(pl.col("leak"))["value_eur"].sum() or 0)
        unbilled = money(ran.filter(pl.col("control_id") == "C07")["value_eur"].sum() or 0)
        revenue = values.get("rated_revenue") or Decimal(0)
        pct = round_money(leak * 100 / revenue, AMOUNT_SCALE) if revenue else None
        fixed = {"leakage_value": leak, "leakage_pct": pct, "unbilled_usage_value": unbilled}
        rows = [(k, fixed.get(k, v) if k in fixed else v, u) for k, v, u in rows]
    out = []
    for kpi, value, unit in rows:
        limit = KPI_THRESHOLDS.get(kpi)
        status = "info" if limit is None else ("pass" if value is None or value <= limit else "fail")
        out.append({"period": period, "kpi": kpi, "value": value, "unit": unit, "threshold": limit, "status": status})
    return pl.DataFrame(out, schema=KPI_SCHEMA, orient="row") if out else pl.DataFrame(schema=KPI_SCHEMA)
