"""CLI for the mediation area: ``customers import``, ``generate``, ``mediate`` and ``mediation ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.common.settings import Settings


def _customers_import(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.customers import CustomerImportError, import_customers

    try:
        result = import_customers(settings, Path(args.accounts).read_bytes(), Path(args.subscriptions).read_bytes())
    except CustomerImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"imported {result.accounts} accounts (version {result.accounts_version}) and "
          f"{result.subscriptions} subscriptions (version {result.subscriptions_version})")
    return 0


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.generate import generate, upload_landing

    data = generate(args.out, args.subscribers, args.period, args.seed, faults=not args.no_faults,
                    per_subscriber=args.records_per_subscriber, data_format=args.data_format)
    print(f"wrote {len(data.files)} landing files ({data.records} records), {data.accounts_csv}, "
          f"{data.subscriptions_csv}; {len(data.faults)} faults listed in {data.out_dir / 'faults.csv'}")
    if not args.no_upload:
        n = upload_landing(data, settings)
        print(f"copied {n} files to the landing area {settings.landing_uri}")
    return 0


def _mediate(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.mediation.pipeline import mediate

    result = mediate(settings, keys=args.file or None, batch_records=args.batch_records)
    t = result.totals()
    print(f"mediated {t['files']} new files ({result.skipped_files} already processed), "
          f"{len(result.dates_rebuilt)} usage dates rebuilt")
    print(f"records in {t['records_in']} = usage {t['usage']} + filtered {t['filtered']} + rejected {t['rejected']} "
          f"+ duplicate {t['duplicate']} + suspense {t['suspense']}: "
          f"{'balanced' if result.balanced else 'NOT BALANCED'}")
    for row in result.files.filter(result.files["status"] != "processed").iter_rows(named=True):
        detail = row["reason_code"] if row["status"] == "quarantined" else f"copy of {row['duplicate_of']}"
        print(f"  {row['status']}: {row['source_file']} ({detail})")
    return 0 if result.balanced else 1


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date

    from pipelines.mediation.control import file_control_report

    print(file_control_report(settings, date.fromisoformat(args.as_of), args.quiet_days).text())
    return 0


def _recycle(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.mediation.control import recycle

    r = recycle(settings)
    print(f"re-guided {r.examined} suspense records: {r.guided} moved to usage, {r.still_suspense} still in suspense"
          + (f" (dates {', '.join(r.dates)})" if r.dates else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    med = sub.add_parser("mediate", help="mediate every landed CDR file not processed yet")
    med.add_argument("--file", action="append", help="only this landing key (repeatable)")
    med.add_argument("--batch-records", type=int, default=1_000_000,
                     help="staged records kept in memory before date partitions are rebuilt")
    med.set_defaults(func=_mediate)
    mgr = sub.add_parser("mediation", help="file control report and suspense recycling")
    msub = mgr.add_subparsers(dest="mediation_command", required=True)
    rep = msub.add_parser("report", help="sequence gaps, repeated sequences, quiet sources, suspense aging")
    rep.add_argument("--as-of", required=True, help="YYYY-MM-DD: the day the report is for")
    rep.add_argument("--quiet-days", type=int, default=None,
                     help="a source is quiet after this many days without files (default: per source from "
                          "pipelines/mediation/sources.csv, else 2)")
    rep.set_defaults(func=_report)
    rec = msub.add_parser("recycle", help="re-guide suspense with the current subscriptions")
    rec.set_defaults(func=_recycle)

    cust = sub.add_parser("customers", help="customer master data (accounts, subscriptions)")
    csub = cust.add_subparsers(dest="customers_command", required=True)
    imp = csub.add_parser("import", help="validate and publish accounts and subscriptions CSV files")
    imp.add_argument("--accounts", required=True, help="accounts CSV (ACCOUNT_SCHEMA columns)")
    imp.add_argument("--subscriptions", required=True, help="subscriptions CSV (SUBSCRIPTION_SCHEMA columns)")
    imp.set_defaults(func=_customers_import)

    gen = sub.add_parser("generate", help="deterministic sample customers and CDR files with listed faults")
    gen.add_argument("--subscribers", type=int, default=1000)
    gen.add_argument("--period", default="2026-10")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--out", default="var/generated", help="folder for accounts.csv, subscriptions.csv, landing/")
    gen.add_argument("--records-per-subscriber", type=float, default=120.0)
    gen.add_argument("--data-format", choices=("parquet", "csv"), default="parquet", help="pgw-core file format")
    gen.add_argument("--no-faults", action="store_true", help="clean data only")
    gen.add_argument("--no-upload", action="store_true", help="do not copy the files into the landing area")
    gen.set_defaults(func=_generate)
