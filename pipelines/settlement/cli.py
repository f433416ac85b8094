"""``telbill settlement run|reconcile``: partner statements and partner reconciliation."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - Settings
    from pipelines.settlement.statements import run_settlement

    result = run_settlement(settings, args.period, documents=not args.no_documents)
    print(f"settlement {result.period}: {result.statements} statements, {result.lines} lines (run {result.run_id})")
    for path in result.documents:
        print(f"  {path}")
    return 0


def _reconcile(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - Settings
    from decimal import Decimal

    from pipelines.settlement.reconcile import Tolerances, run_reconciliation

    tol = Tolerances(match_window_s=args.match_window, time_s=args.time_tolerance,
                     duration_s=args.duration_tolerance, cost=Decimal(args.cost_tolerance))
    result = run_reconciliation(settings, args.partner, args.period, args.declaration, tol)
    print(f"reconciliation {args.partner} {args.period} (run {result.run_id})")
    for row in result.totals.iter_rows(named=True):
        print(f"  {row['currency'] or '-':<4} {row['status']:<14} {row['records']:>8}  ours {row['our_amount']:>16}  "
              f"theirs {row['their_amount']:>16}  disputed {row['disputed_amount']:>16}")
    for path in result.files:
        print(f"  {path}")
    return 0


def _partner_id(text: str) -> str:
    from pipelines.settlement.reconcile import check_partner_id

    try:
        return check_partner_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("settlement", help="partner settlement statements and reconciliation")
    ssub = st.add_subparsers(dest="settlement_command", required=True)
    run = ssub.add_parser("run", help="statements per partner for a period (lake + CSV + PDF)")
    run.add_argument("--period", required=True, help="YYYY-MM")
    run.add_argument("--no-documents", action="store_true", help="skip CSV/PDF files (lake datasets only)")
    run.set_defaults(func=_run)
    rec = ssub.add_parser("reconcile", help="compare a partner's declaration with our settlement entries")
    rec.add_argument("--partner", required=True, type=_partner_id,
                     help="partner id (TADIG, carrier id, content partner id): [A-Za-z0-9_-]{1,32}")
    rec.add_argument("--period", required=True, help="YYYY-MM")
    rec.add_argument("--declaration", required=True, help="partner declaration CSV (see docs/settlement.md)")
    rec.add_argument("--match-window", type=int, default=600, help="seconds within which records may pair")
    rec.add_argument("--time-tolerance", type=int, default=2, help="seconds of start-time difference tolerated")
    rec.add_argument("--duration-tolerance", type=int, default=1, help="seconds of duration difference tolerated")
    rec.add_argument("--cost-tolerance", default="0.01", help="amount difference tolerated (exact decimal)")
    rec.set_defaults(func=_reconcile)
