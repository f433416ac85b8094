"""``telbill demo`` (what ``make demo`` runs): the whole billing chain through Airflow on sample data.

1. generate a month of CDRs (with the deliberate faults) and the matching customers;
2. land the CDR files and import the customers;
3. run the DAGs with ``airflow dags test`` (SQLite metadata under ``var/airflow``): mediation,
   rating, assurance, bill_cycle, then a bank statement paying most invoices, collections,
   settlement, assurance again and the warehouse;
4. print where the invoices, PDFs, reports and the warehouse are.

Everything lands under ``var/`` (or the ``TELBILL_*`` locations). Running it again reuses what is
already there: processed files are skipped and finalised invoices are not issued twice.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipelines.common.partitions import digest, read_published
from pipelines.common.periods import parse_period
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store


def bank_statement(invoices: pl.DataFrame, paid_on: date) -> bytes:
    """A bank statement CSV paying most invoices: 7 in 10 in full, 1 in 10 in part, 2 in 10 not at all.

    Which invoice gets which treatment follows from a hash of its number, so the demo is reproducible.
    """
    from pipelines.collections.layouts import BANK_COLUMNS

    rows = []
    for inv in invoices.sort("invoice_number").iter_rows(named=True):
        if inv["status"] != "finalised" or inv["kind"] != "invoice" or inv["amount_due"] <= 0:
            continue
        bucket = int(digest(inv["invoice_number"]), 16) % 10
        if bucket >= 8:
            continue
        amount = inv["amount_due"] if bucket < 7 else (inv["amount_due"] / 2).quantize(Decimal("0.01"))
        rows.append({
            "transaction_id": f"BNK-{digest(inv['invoice_number'], length=10).upper()}",
            "booking_date": paid_on.isoformat(), "value_date": paid_on.isoformat(), "transaction_code": "CRDT",
            "amount": str(amount), "currency": inv["currency"], "counterparty_name": inv["account_id"],
            "counterparty_iban": "", "remittance_info": f"Invoice {inv['payment_reference']}",
            "original_transaction_id": "",
        })
    frame = pl.DataFrame(rows, schema=dict.fromkeys(BANK_COLUMNS, pl.String))
    return frame.write_csv().encode()


def run_demo(settings: Settings, period: str = "2026-10", subscribers: int = 300, seed: int = 42,
             airflow_home: Path | None = None) -> dict[str, str]:
    """Run the chain end to end; returns what to look at, by name."""
    from pipelines.collections.intake import import_payments
    from pipelines.customers import import_customers
    from pipelines.generate import generate, upload_landing
    from pipelines.orchestration.airflow_env import run_dag_test

    year, month = parse_period(period)
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    home = airflow_home or Path(settings.output_dir).parent / "airflow"
    out = Path(settings.output_dir)
    started = time.perf_counter()

    def step(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {text}", flush=True)

    step(f"generating {subscribers} subscribers' usage for {period} (seed {seed})")
    data = generate(out / "generated", subscribers, period, seed, faults=True)
    upload_landing(data, settings)
    import_customers(settings, data.accounts_csv.read_bytes(), data.subscriptions_csv.read_bytes())
    step(f"landed {len(data.files)} CDR files ({data.records} records, {len(data.faults)} injected faults) "
         f"in {settings.landing_uri}")

    def dag(dag_id: str, conf: dict) -> None:
        step(f"airflow dags test {dag_id} {conf}")
        run_dag_test(dag_id, conf, home, settings)

    dag("mediation", {})
    dag("rating", {"period": period})
    dag("bill_cycle", {"period": period, "cycle_day": None, "accounts": "", "dry_run": False})
    lake = open_store(settings.lake_uri, settings.s3)
    invoices = read_published(lake, "invoices", {"period": period})
    if invoices is not None and invoices.height:
        paid_on = date(next_month.year, next_month.month, 10)
        statement = bank_statement(invoices, paid_on)
        key = f"payments/bank_statement_{paid_on:%Y%m%d}.csv"
        lake_out = out / key
        lake_out.parent.mkdir(parents=True, exist_ok=True)
        lake_out.write_bytes(statement)
        import_payments(settings, statement, "bank", key)
        step(f"imported a bank statement paying most invoices: {lake_out}")
    as_of = date(next_month.year, next_month.month, 28)
    dag("collections", {"as_of": as_of.isoformat()})
    dag("settlement", {"period": period})
    dag("assurance", {"period": period})
    dag("warehouse", {})
    step("done")
    return {
        "invoices (PDF, TMF678 JSON, GL journal)": str(Path(settings.output_dir) / "invoices" / period),
        "lake (Parquet + manifests)": settings.lake_uri,
        "warehouse (duckdb)": settings.warehouse_path,
        "assurance report": str(Path(settings.output_dir) / "assurance" / period),
        "collections list": str(Path(settings.output_dir) / "collections"),
        "settlement statements": str(Path(settings.output_dir) / "settlement" / period),
        "airflow logs": str(home / "dag-test-logs"),
        "fault ledger": str(data.out_dir / "faults.csv"),
    }


def _demo_command(args: argparse.Namespace, settings: Settings) -> int:
    where = run_demo(settings, args.period, args.subscribers, args.seed)
    print("\nResults:")
    for name, path in where.items():
        print(f"  {name:<42} {path}")
    print(f"\nQuery the warehouse:  .venv/bin/python -c \"import duckdb; "
          f"print(duckdb.connect('{settings.warehouse_path}', read_only=True).sql('select * from invoices limit 5'))\"")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run the whole chain through Airflow on generated data")
    demo.add_argument("--period", default="2026-10")
    demo.add_argument("--subscribers", type=int, default=300)
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=_demo_command)
