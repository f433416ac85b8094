"""``telbill bill-cycle`` and ``telbill billing ...`` (imports, void, credit notes)."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from pipelines.common.settings import Settings


def _bill_cycle(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.billing.cycle import bill_cycle
    from pipelines.billing.lifecycle import verify_cycle

    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    accounts = [a for a in (args.accounts or "").split(",") if a] or None
    if args.verify:
        report = verify_cycle(settings, args.period, accounts=accounts)
        print(report.message)
        for diff in report.differences:
            print("  " + diff)
        return 0 if report.ok else 1
    result = bill_cycle(settings, args.period, cycle_day=args.cycle_day, accounts=accounts, dry_run=args.dry_run,
                        finalise=not args.draft, as_of=as_of, documents=not args.no_documents,
                        workers=args.workers or os.cpu_count() or 1, override_holds=args.override_holds)
    print(result.message)
    for acc, code, msg in result.errors:
        print(f"  error {acc}: {code}: {msg}")
    for name, prefix in sorted(result.written.items()):
        print(f"  {name}: {prefix}")
    if result.documents:
        print(f"  documents: {len(result.documents)} file(s) in {settings.output_dir}")
    return 1 if result.errors else 0


def _import(kind: str):  # noqa: ANN202
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from pipelines.billing.imports import import_items

        r = import_items(settings, kind, Path(args.file).read_bytes(), name=Path(args.file).name)
        print(f"{args.file}: {r.rows_in} row(s): {r.imported} imported into {r.dataset}, {r.rejected} rejected "
              f"(see billing/import_rejects batch={r.batch})")
        return 0 if r.rejected == 0 else 2
    return run


def _void(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.billing.lifecycle import void_invoice

    print(void_invoice(settings, args.invoice, args.reason))
    return 0


def _credit(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.billing.lifecycle import issue_credit_note

    amount = args.amount if args.amount else None
    note = issue_credit_note(settings, args.invoice, args.reason, date.fromisoformat(args.date), net_amount=amount)
    print(f"credit note {note.invoice_number} for {args.invoice}: total {note.total} {note.currency}")
    return 0


def _reported(run):  # noqa: ANN001, ANN202
    """Whole-run problems (unknown account, bad catalogue, unknown invoice) print one line, exit 2."""
    def wrapped(args: argparse.Namespace, settings: Settings) -> int:
        from pipelines.billing.catalogue import CatalogueError
        from pipelines.billing.compute import BillingError

        try:
            return run(args, settings)
        except (BillingError, CatalogueError, ValueError) as exc:
            print(f"error: {exc}")
            return 2
    return wrapped


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bill-cycle", help="bill a period: invoices, PDFs, TMF678 JSON, GL journal")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--cycle-day", type=int, help="bill only accounts with this bill cycle day")
    p.add_argument("--accounts", help="comma-separated account ids (default: all)")
    p.add_argument("--dry-run", action="store_true", help="compute and report, write nothing")
    p.add_argument("--draft", action="store_true", help="publish drafts, do not finalise or number")
    p.add_argument("--verify", action="store_true", help="recompute the finalised cycle and report differences")
    p.add_argument("--as-of", help="issue date YYYY-MM-DD (default: each account's period end)")
    p.add_argument("--no-documents", action="store_true", help="skip PDF/JSON/GL output")
    p.add_argument("--workers", type=int, help="PDF rendering processes (default: CPU count)")
    p.add_argument("--override-holds", metavar="REASON",
                   help="finance only: finalise despite open assurance holds (the reason is recorded)")
    p.set_defaults(func=_reported(_bill_cycle))

    b = sub.add_parser("billing", help="billing items, voids and credit notes")
    bs = b.add_subparsers(dest="billing_command", required=True)
    for kind in ("charges", "adjustments"):
        q = bs.add_parser(f"import-{kind}", help=f"import a CSV of {kind} (layout in docs/billing.md)")
        q.add_argument("file")
        q.set_defaults(func=_reported(_import(kind)))
    v = bs.add_parser("void", help="void a finalised invoice (reissue by rerunning its bill cycle)")
    v.add_argument("--invoice", required=True, help="invoice number")
    v.add_argument("--reason", required=True)
    v.set_defaults(func=_reported(_void))
    c = bs.add_parser("credit-note", help="issue a credit note against a finalised invoice")
    c.add_argument("--invoice", required=True, help="invoice number")
    c.add_argument("--reason", required=True)
    c.add_argument("--date", required=True, help="issue date YYYY-MM-DD")
    c.add_argument("--amount", help="net amount to credit on telecom charges (default: the whole invoice)")
    c.set_defaults(func=_reported(_credit))
