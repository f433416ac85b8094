"""``telbill cgrates ...``: rate events against a CGRateS tariff plan (migration compatibility)."""

from __future__ import annotations

import argparse

from pipelines.common.cli_errors import guarded


def _rate(args: argparse.Namespace) -> int:
    from pipelines.rating.cgrates.rater import rate_file

    print(rate_file(args.tariffplan, args.events, args.out, args.rounding_decimals))
    return 0


def _refusals() -> tuple[type[BaseException], ...]:
    """A tariff plan or events file that cannot be used (missing, malformed, bad option)."""
    from pipelines.rating.cgrates.tariffplan import TariffPlanError

    return (TariffPlanError, ValueError, OSError)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cgrates`` command group to the telbill CLI."""
    group = subparsers.add_parser("cgrates", help="CGRateS tariff-plan compatibility")
    sub = group.add_subparsers(dest="cgrates_command", required=True, metavar="SUBCOMMAND")
    rate = sub.add_parser("rate", help="rate EVENTS.csv against a CGRateS tariff-plan folder into COSTS.csv")
    rate.add_argument("--tariffplan", required=True, help="folder with Timings/Destinations/Rates/... .csv")
    rate.add_argument("--events", required=True,
                      help="CSV with id,tenant,category,subject,destination,start_time,usage")
    rate.add_argument("--out", required=True, help="COSTS.csv to write (id,cost,error)")
    rate.add_argument("--rounding-decimals", type=int, default=5,
                      help="CGRateS general rounding_decimals used per increment (default 5, range 0..9)")
    rate.set_defaults(func=guarded("cgrates rate", lambda args, settings: _rate(args), refusals=_refusals()))
