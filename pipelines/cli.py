"""The ``telbill`` command line. Each area registers its own sub-commands.

An area module exposes ``register(subparsers)``, adding parsers whose ``func(args, settings)``
runs the command and returns a process exit code. Heavy imports stay inside those functions so
``telbill --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from pipelines.common.settings import Settings

AREAS: list[str] = [
    # one line per area; keep sorted
    "pipelines.assurance.cli",
    "pipelines.audit",
    "pipelines.billing.cli",
    "pipelines.collections.cli",
    "pipelines.settlement.cli",
    "pipelines.mediation.cli",
    "pipelines.orchestration.airflow_env",
    "pipelines.orchestration.demo",
    "pipelines.rating.cli",
    "pipelines.rating.cgrates.cli",
    "charging.cli",
    "pipelines.warehouse",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telbill",
        description="Convergent telecom billing: mediation, rating, bill cycles, collections, settlement, assurance.",
    )
    parser.add_argument("--landing", help="landing area URI (default ./var/landing or $TELBILL_LANDING_URI)")
    parser.add_argument("--lake", help="lake URI (default ./var/lake or $TELBILL_LAKE_URI)")
    parser.add_argument("--warehouse", help="DuckDB warehouse file (default ./var/warehouse.duckdb)")
    parser.add_argument("--tariffs", help="catalogue folder (default ./tariffs)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        importlib.import_module(area).register(sub)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes = {
        "landing_uri": args.landing,
        "lake_uri": args.lake,
        "warehouse_path": args.warehouse,
        "tariffs_dir": args.tariffs,
    }
    return settings.with_(**{k: v for k, v in changes.items() if v})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args, settings_from_args(args)) or 0)
    except BrokenPipeError:
        # whoever read our output stopped (`telbill mediate | head`): stop as quietly as a killed pipe would,
        # instead of a traceback (and another one when Python flushes stdout at exit)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
