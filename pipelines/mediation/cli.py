"""CLI for the mediation area: ``customers import``, ``generate``, ``mediate`` and ``mediation ...``.

Exit codes: 0 done; 1 conservation broken; 2 refused (bad arguments, a missing landing area, file or key,
a store that cannot be reached: one ``telbill <command>: error: ...`` line, no traceback); 3 ``mediate
--strict`` found processed files that changed after processing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from pipelines.common.cli_errors import Command, Refused, guarded, period_arg
from pipelines.common.settings import Settings

CHANGED_EXIT = 3
"""``mediate --strict`` exit code when processed keys changed after processing (1 is conservation, 2 refusal)."""
MAX_LISTED_KEYS = 10


def _one_line_errors(name: str, command: Command) -> Command:
    """``command`` with storage, S3 and refused-input errors as one stderr line and exit code 2."""
    from pipelines.mediation.pipeline import MediationInputError

    return guarded(name, command, refusals=(MediationInputError,))


def _iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days >= 1")
    return days


def _listed(keys: list[str]) -> str:
    more = f" ... and {len(keys) - MAX_LISTED_KEYS} more" if len(keys) > MAX_LISTED_KEYS else ""
    return ", ".join(keys[:MAX_LISTED_KEYS]) + more


def _read_input(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise Refused(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None


def _customers_import(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.customers import CustomerImportError, import_customers

    accounts, subscriptions = _read_input(args.accounts, "accounts"), _read_input(args.subscriptions, "subscriptions")
    try:
        result = import_customers(settings, accounts, subscriptions)
    except CustomerImportError as exc:
        raise Refused(str(exc)) from None
    print(f"imported {result.accounts} accounts (version {result.accounts_version}) and "
          f"{result.subscriptions} subscriptions (version {result.subscriptions_version})")
    return 0


def overwritten_keys(settings: Settings, files: dict[str, Path]) -> list[str]:
    """Keys of ``files`` (landing key -> generated file) already landed with other content: copying would
    replace a file mediation may have processed, which it then never reads again."""
    from pipelines.common.storage import open_store
    from pipelines.mediation.pipeline import landed_sizes

    landing = open_store(settings.landing_uri, settings.s3)
    if not landing.is_s3 and not Path(landing.uri).is_dir():
        return []
    sizes = landed_sizes(landing)
    return sorted(key for key, path in files.items() if key in sizes and (
        sizes[key] != path.stat().st_size or landing.read_bytes(key) != path.read_bytes()))


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.generate import generate, upload_landing

    data = generate(args.out, args.subscribers, args.period, args.seed, faults=not args.no_faults,
                    per_subscriber=args.records_per_subscriber, data_format=args.data_format)
    print(f"wrote {len(data.files)} landing files ({data.records} records), {data.accounts_csv}, "
          f"{data.subscriptions_csv}; {len(data.faults)} faults listed in {data.out_dir / 'faults.csv'}")
    if args.no_upload:
        return 0
    clash = overwritten_keys(settings, {key: data.landing_dir / key for key in data.files})
    if clash and not args.force:
        raise Refused(f"refusing to overwrite {len(clash)} landed files that have other content under the same name "
                      f"in {settings.landing_uri} (mediation never re-reads a processed key, so their new records "
                      f"would be lost): {_listed(clash)}; nothing was copied. Use fresh --landing/--lake folders, "
                      "--no-upload, or --force")
    n = upload_landing(data, settings)
    print(f"copied {n} files to the landing area {settings.landing_uri}")
    if clash:
        print(f"warning: --force overwrote {len(clash)} landed files; `telbill mediate` reports those it already "
              f"processed as changed and does not mediate them", file=sys.stderr)
    return 0


def _mediate(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.mediation.pipeline import mediate

    result = mediate(settings, keys=args.file or None, batch_records=args.batch_records, verify=args.verify)
    t = result.totals()
    changed = result.changed_files
    print(f"mediated {t['files']} new files ({result.skipped_files} already processed"
          + (f", {changed.height} changed after processing: NOT mediated" if changed.height else "")
          + f"), {len(result.dates_rebuilt)} usage dates rebuilt")
    print(f"records in {t['records_in']} = usage {t['usage']} + filtered {t['filtered']} + rejected {t['rejected']} "
          f"+ duplicate {t['duplicate']} + suspense {t['suspense']}: "
          f"{'balanced' if result.balanced else 'NOT BALANCED'}")
    for row in result.files.filter(result.files["status"] != "processed").iter_rows(named=True):
        detail = row["reason_code"] if row["status"] == "quarantined" else f"copy of {row['duplicate_of']}"
        print(f"  {row['status']}: {row['source_file']} ({detail})")
    _print_changed(changed)
    if not result.balanced:
        return 1
    return CHANGED_EXIT if changed.height and args.strict else 0


def _print_changed(changed) -> None:  # noqa: ANN001 - a CHANGED_SCHEMA frame (polars imported lazily)
    """Every processed key whose landed object changed, on stdout, and one warning on stderr."""
    from pipelines.mediation.control import changed_evidence

    for row in changed.iter_rows(named=True):
        print(f"  changed after processing: {row['source_file']} ({changed_evidence(row)})")
    if changed.height:
        print(f"warning: {changed.height} processed landed files changed afterwards and were NOT mediated; "
              "a processed key is immutable: land the corrected file under a new name (next sequence number). "
              "Listed in `telbill mediation report`.", file=sys.stderr)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.mediation.control import file_control_report

    print(file_control_report(settings, args.as_of, args.quiet_days).text())
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
    med.add_argument("--verify", action="store_true",
                     help="re-hash every processed file still landed (finds a changed file of the same size; "
                          "reads the whole landing area)")
    med.add_argument("--strict", action="store_true",
                     help=f"exit {CHANGED_EXIT} when a processed file changed after processing (default: exit 0, "
                          "listed on stdout, warned on stderr and in `mediation report`)")
    med.set_defaults(func=_one_line_errors("mediate", _mediate))
    mgr = sub.add_parser("mediation", help="file control report and suspense recycling")
    msub = mgr.add_subparsers(dest="mediation_command", required=True)
    rep = msub.add_parser("report", help="sequence gaps, repeated sequences, quiet sources, suspense aging")
    rep.add_argument("--as-of", required=True, type=_iso_day, help="YYYY-MM-DD: the day the report is for")
    rep.add_argument("--quiet-days", type=_positive_days, default=None,
                     help="a source is quiet after this many days without files (default: per source from "
                          "pipelines/mediation/sources.csv, else 2)")
    rep.set_defaults(func=_one_line_errors("mediation report", _report))
    rec = msub.add_parser("recycle", help="re-guide suspense with the current subscriptions")
    rec.set_defaults(func=_one_line_errors("mediation recycle", _recycle))

    cust = sub.add_parser("customers", help="customer master data (accounts, subscriptions)")
    csub = cust.add_subparsers(dest="customers_command", required=True)
    imp = csub.add_parser("import", help="validate and publish accounts and subscriptions CSV files")
    imp.add_argument("--accounts", required=True, help="accounts CSV (ACCOUNT_SCHEMA columns)")
    imp.add_argument("--subscriptions", required=True, help="subscriptions CSV (SUBSCRIPTION_SCHEMA columns)")
    imp.set_defaults(func=_one_line_errors("customers import", _customers_import))

    gen = sub.add_parser("generate", help="deterministic sample customers and CDR files with listed faults")
    gen.add_argument("--subscribers", type=int, default=1000)
    gen.add_argument("--period", default="2026-10", type=period_arg, help="month to generate, YYYY-MM")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--out", default="var/generated", help="folder for accounts.csv, subscriptions.csv, landing/")
    gen.add_argument("--records-per-subscriber", type=float, default=120.0)
    gen.add_argument("--data-format", choices=("parquet", "csv"), default="parquet", help="pgw-core file format")
    gen.add_argument("--no-faults", action="store_true", help="clean data only")
    gen.add_argument("--no-upload", action="store_true", help="do not copy the files into the landing area")
    gen.add_argument("--force", action="store_true",
                     help="overwrite landed files of the same name that have other content (mediate then reports "
                          "the processed ones as changed and does not mediate them)")
    gen.set_defaults(func=_one_line_errors("generate", _generate))
