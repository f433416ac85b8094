"""``telbill assurance run|holds|clear-hold``: revenue-assurance controls and bill-cycle holds."""

from __future__ import annotations

import argparse
from datetime import date


def _run(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - Settings
    from pipelines.assurance.display import amount_text, kpi_text
    from pipelines.assurance.run import run_assurance

    run = run_assurance(settings, args.period, data_quality=not args.no_dq, report=not args.no_report)
    print(f"assurance {run.period}: {run.status.upper()} (run {run.run_id})")
    for r in run.results.iter_rows(named=True):
        print(f"  {r['control_id']} {r['status']:<7} {r['findings']:>6} findings  {amount_text(r['value_eur']):>18}  {r['name']}")
    for k in run.kpis.iter_rows(named=True):
        limit = f", limit {kpi_text(k['threshold'], k['unit'])}" if k["threshold"] is not None else ""
        print(f"  KPI {k['kpi']:<22} {kpi_text(k['value'], k['unit'])} ({k['status']}{limit})")
    print(f"  alerts: {run.alerts.height}, holds: {len(run.holds)} from this run, {len(run.open_holds)} open")
    if run.inputs_missing:
        print(f"  inputs not published yet: {', '.join(run.inputs_missing)}")
    for name, where in sorted(run.files.items()):
        print(f"  {name}: {where}")
    return 0 if run.status == "pass" or not args.strict else 1


def _holds(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - Settings
    from pipelines.assurance.holds import hold_status

    for hold, clearance in hold_status(settings, args.period):
        state = f"cleared by {clearance['cleared_by']} on {clearance['cleared_on']}" if clearance else "OPEN"
        print(f"{hold.hold_id}  {state}\n  {hold.message}\n  {hold.first_hour} .. {hold.last_hour}")
    return 0


def _clear(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - Settings
    from pipelines.assurance.holds import clear_hold

    path = clear_hold(settings, args.period, args.hold_id, args.by, args.reason, date.fromisoformat(args.on))
    print(f"cleared {args.hold_id}: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ra = sub.add_parser("assurance", help="revenue-assurance controls, KPIs, anomalies and bill-cycle holds")
    rsub = ra.add_subparsers(dest="assurance_command", required=True)
    run = rsub.add_parser("run", help="run every control for a period; write assurance/* datasets and the report")
    run.add_argument("--period", required=True, help="YYYY-MM")
    run.add_argument("--no-dq", action="store_true", help="skip the Great Expectations suites")
    run.add_argument("--no-report", action="store_true", help="skip the HTML report")
    run.add_argument("--strict", action="store_true", help="exit 1 when any control, KPI or hold fails")
    run.set_defaults(func=_run)
    holds = rsub.add_parser("holds", help="list holds on a period's bill cycle")
    holds.add_argument("--period", required=True)
    holds.set_defaults(func=_holds)
    clear = rsub.add_parser("clear-hold", help="record that an analyst cleared a hold")
    clear.add_argument("--period", required=True)
    clear.add_argument("--hold-id", required=True)
    clear.add_argument("--by", required=True, help="who cleared it")
    clear.add_argument("--reason", required=True, help="why it no longer blocks the bill cycle")
    clear.add_argument("--on", required=True, help="date of the decision, YYYY-MM-DD")
    clear.set_defaults(func=_clear)
