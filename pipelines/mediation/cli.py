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


def register(sub: argparse._SubParsersAction) -> None:
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
