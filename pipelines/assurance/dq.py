"""Great Expectations suites on the stage outputs of a period, with HTML Data Docs.

GE runs on pandas frames in an ephemeral context (its SQL datasource through duckdb-engine is
broken, see STACK.md), progress bars off. The rows come from the same DuckDB views the controls
use; money stays Decimal (GE compares Decimal objects exactly). Data Docs go under the run's output
folder with a fixed run name and time, so two runs of the same period write comparable pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipelines.common.periods import parse_period
from schemas.contracts import CALL_OUTCOMES, SERVICES

DQ_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String, "suite": pl.String, "expectation": pl.String, "column": pl.String,
    "success": pl.Boolean, "element_count": pl.Int64, "unexpected_count": pl.Int64,
}

# suite -> (SQL selecting the period's rows with ? = period, [expectations as (type, kwargs)])
SUITES: dict[str, tuple[str, list[tuple[str, dict]]]] = {
    "usage": (
        "SELECT record_id, source, service, quantity, duration_s, start_time, call_outcome, msisdn FROM ra_stg_usage "
        "WHERE ra_period = ?",
        [("ExpectColumnValuesToNotBeNull", {"column": "record_id"}),
         ("ExpectColumnValuesToBeUnique", {"column": "record_id"}),
         ("ExpectColumnValuesToNotBeNull", {"column": "source"}),
         ("ExpectColumnValuesToNotBeNull", {"column": "start_time"}),
         ("ExpectColumnValuesToBeInSet", {"column": "service", "value_set": list(SERVICES)}),
         ("ExpectColumnValuesToBeInSet", {"column": "call_outcome", "value_set": list(CALL_OUTCOMES)}),
         ("ExpectColumnValuesToBeBetween", {"column": "quantity", "min_value": 0}),
         ("ExpectColumnValuesToBeBetween", {"column": "duration_s", "min_value": 0, "max_value": 86400}),
         ("ExpectColumnValuesToMatchRegex", {"column": "msisdn", "regex": r"^[1-9][0-9]{6,14}$"})],
    ),
    "rated": (
        "SELECT record_id, service, payment_type, quantity, quantity_included, quantity_charged, charge, currency "
        "FROM rated WHERE bill_period = ?",
        [("ExpectColumnValuesToNotBeNull", {"column": "record_id"}),
         ("ExpectColumnValuesToBeUnique", {"column": "record_id"}),
         ("ExpectColumnValuesToBeBetween", {"column": "charge", "min_value": 0}),
         ("ExpectColumnValuesToBeBetween", {"column": "quantity_included", "min_value": 0}),
         ("ExpectColumnValuesToBeInSet", {"column": "payment_type", "value_set": ["prepaid", "postpaid"]}),
         ("ExpectColumnValuesToNotBeNull", {"column": "currency"})],
    ),
    "settlement_entries": (
        "SELECT record_id, partner_id, partner_type, direction, amount, currency FROM settlement_entries "
        "WHERE strftime(start_time AT TIME ZONE 'Europe/Berlin', '%Y-%m') = ?",
        [("ExpectColumnValuesToNotBeNull", {"column": "partner_id"}),
         ("ExpectColumnValuesToBeInSet", {"column": "partner_type", "value_set": ["roaming", "interconnect", "content"]}),
         ("ExpectColumnValuesToBeInSet", {"column": "direction", "value_set": ["payable", "receivable"]}),
         ("ExpectColumnValuesToBeBetween", {"column": "amount", "min_value": 0}),
         ("ExpectColumnValuesToNotBeNull", {"column": "currency"})],
    ),
    "invoices": (
        "SELECT invoice_id, account_id, status, kind, currency, subtotal, tax_total, total FROM invoices WHERE period = ?",
        [("ExpectColumnValuesToBeUnique", {"column": "invoice_id"}),
         ("ExpectColumnValuesToNotBeNull", {"column": "account_id"}),
         ("ExpectColumnValuesToBeInSet", {"column": "status", "value_set": ["draft", "finalised", "voided"]}),
         ("ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": ["invoice", "credit_note"]}),
         ("ExpectColumnValuesToNotBeNull", {"column": "total"})],
    ),
}


def run_data_quality(con, period: str, docs_dir: Path) -> pl.DataFrame:  # noqa: ANN001 - duckdb connection
    """Validate each stage output that has rows in the period; write Data Docs; one row per expectation."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    docs_dir = docs_dir.resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(site_name="assurance", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    source = ctx.data_sources.add_pandas("telbill")
    year, month = parse_period(period)
    run_id = RunIdentifier(run_name=f"assurance-{period}", run_time=datetime(year, month, 1, tzinfo=UTC))
    rows: list[dict] = []
    for name, (sql, expectations) in SUITES.items():
        frame = con.execute(sql, [period]).df()
        if frame.empty:
            continue
        batch_def = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("period")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for kind, kwargs in expectations:
            suite.add_expectation(getattr(gx.expectations, kind)(**kwargs))
        validation = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{name}-{period}", data=batch_def,
                                                                            suite=suite))
        result = validation.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        for r in result.results:
            cfg = r.expectation_config
            rows.append({"period": period, "suite": name, "expectation": cfg.type,
                         "column": cfg.kwargs.get("column"), "success": bool(r.success),
                         "element_count": r.result.get("element_count"),
                         "unexpected_count": r.result.get("unexpected_count")})
    ctx.build_data_docs(site_names=["assurance"])          # once, for every suite of the run
    frame = pl.DataFrame(rows, schema=DQ_SCHEMA, orient="row") if rows else pl.DataFrame(schema=DQ_SCHEMA)
    return frame.sort("suite", "expectation", "column", nulls_last=True)
