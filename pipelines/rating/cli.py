"""``telbill catalogue validate`` and the rating commands (``rate``, ``explain``, ``rerate``, ``simulate``).

Exit codes: 0 done; 1 ``catalogue validate`` found problems or ``explain`` found no such record; 2 the command was
refused with a one-line reason on stderr (bad period, lake missing or unreachable, period without usage, period
not rated yet, catalogue unreadable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pipelines.common.cli_errors import Refused, guarded, period_arg

PERIOD_HELP = "bill period YYYY-MM (four-digit year, two-digit month 01-12), e.g. 2026-10"


def register(sub: argparse._SubParsersAction) -> None:
    cat = sub.add_parser("catalogue", help="product catalogue (tariffs/) tools")
    cat_sub = cat.add_subparsers(dest="catalogue_command", required=True, metavar="ACTION")
    validate = cat_sub.add_parser("validate", help="load the catalogue and list every problem")
    validate.add_argument("--dir", help="catalogue folder (default: --tariffs or ./tariffs)")
    validate.set_defaults(func=lambda args, settings: _validate(args.dir or settings.tariffs_dir))

    rate = sub.add_parser("rate", help="rate the usage of a bill period and publish rated, suspense, settlement")
    rate.add_argument("--period", required=True, type=period_arg, help=PERIOD_HELP)
    rate.add_argument("--allow-empty", action="store_true",
                      help="publish the period even when no published usage record falls in it (default: refuse, "
                           "exit 2)")
    rate.set_defaults(func=_guarded("rate", lambda args, settings: _rate(settings, args.period, args.allow_empty)))

    explain = sub.add_parser("explain", help="explain in plain words how a usage record was charged")
    explain.add_argument("record_id")
    explain.add_argument("--period", type=period_arg,
                         help=PERIOD_HELP + " (default: search every published period)")
    explain.set_defaults(func=_guarded("explain", lambda args, settings: _explain(settings, args.record_id,
                                                                                  args.period)))

    rerate = sub.add_parser("rerate", help="rerate a period with the current catalogue; report what changed")
    rerate.add_argument("--period", required=True, type=period_arg,
                        help=PERIOD_HELP + "; the period must have been rated (`telbill rate`) before")
    rerate.add_argument("--no-publish", action="store_true", help="write the new version but keep the old published")
    rerate.set_defaults(func=_guarded("rerate", lambda args, settings: _rerate(settings, args.period,
                                                                               not args.no_publish)))

    simulate = sub.add_parser("simulate", help="what-if: rate a period against a draft catalogue (writes nothing)")
    simulate.add_argument("--period", required=True, type=period_arg, help=PERIOD_HELP)
    simulate.add_argument("--catalogue", required=True, help="draft catalogue folder")
    simulate.set_defaults(func=_guarded("simulate", lambda args, settings: _simulate(settings, args.period,
                                                                                     args.catalogue)))


def _guarded(command: str, run: Callable) -> Callable:
    """``run`` with refusals, an unreadable catalogue and lake or S3 errors as one stderr line and exit code 2."""
    from pipelines.rating.catalogue import CatalogueError
    from pipelines.rating.rerate import PeriodNotReady

    return guarded(command, run, refusals=(PeriodNotReady, CatalogueError),
                   store_context=lambda settings: f"cannot use the lake {settings.lake_uri}: ")


def _require_lake(settings) -> None:  # noqa: ANN001
    """A local lake folder that does not exist is a typo or a missing `make demo`, never an empty lake to create."""
    uri = settings.lake_uri
    if not uri.startswith("s3://") and not Path(uri).is_dir():
        raise Refused(f"lake {uri} does not exist (nothing was mediated there; check --lake or $TELBILL_LAKE_URI)")


def _require_catalogue(folder: str, what: str = "catalogue folder", option: str = "--tariffs") -> None:
    if not Path(folder).is_dir():
        raise Refused(f"{what} {folder} does not exist (check {option})")


def _require_usage(settings, period: str, command: str) -> None:  # noqa: ANN001
    from pipelines.rating.stage import period_has_usage

    if not period_has_usage(settings, period):
        hint = " or pass --allow-empty to publish an empty period" if command == "rate" else ""
        raise Refused(f"period {period} has no published usage in {settings.lake_uri}: nothing to {command} "
                      f"(run `telbill mediate` for that period's files first{hint})")


def _validate(tariffs_dir: str) -> int:
    from pipelines.rating.catalogue import CatalogueError, load_catalogue

    try:
        cat = load_catalogue(tariffs_dir)
    except CatalogueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    counts = ", ".join(f"{name} {frame.height}" for name, frame in cat.tables.items())
    print(f"catalogue {tariffs_dir} is valid (version {cat.version}): {counts}")
    return 0


def _rate(settings, period: str, allow_empty: bool) -> int:  # noqa: ANN001
    from pipelines.rating.stage import rate_period

    _require_lake(settings)
    _require_catalogue(settings.tariffs_dir)
    if not allow_empty:
        _require_usage(settings, period, "rate")
    result = rate_period(settings, period)
    print(result.summary())
    return 0


def _explain(settings, record_id: str, period: str | None) -> int:  # noqa: ANN001
    from pipelines.rating.explain import explain_record

    _require_lake(settings)
    text = explain_record(settings, record_id, period)
    if text is None:
        where = f"period {period}" if period else "any period"
        print(f"record {record_id} is not in the published rated, rating suspense or mediation suspense data "
              f"of {where} (rejected, filtered and duplicate records: see docs/mediation.md)", file=sys.stderr)
        return 1
    print(text)
    return 0


def _rerate(settings, period: str, publish: bool) -> int:  # noqa: ANN001
    from pipelines.rating.rerate import rerate_period

    _require_lake(settings)
    _require_catalogue(settings.tariffs_dir)
    report = rerate_period(settings, period, publish=publish)
    print(report.text())
    return 0


def _simulate(settings, period: str, draft: str) -> int:  # noqa: ANN001
    from pipelines.rating.rerate import simulate_period

    _require_lake(settings)
    _require_catalogue(settings.tariffs_dir)
    _require_catalogue(draft, "draft catalogue folder", "--catalogue")
    _require_usage(settings, period, "simulate")
    report = simulate_period(settings, period, draft)
    print(report.text())
    return 0
