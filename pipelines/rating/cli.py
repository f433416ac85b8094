"""``telbill catalogue validate`` and the rating commands (``rate``, ``explain``, ``rerate``, ``simulate``)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    cat = sub.add_parser("catalogue", help="product catalogue (tariffs/) tools")
    cat_sub = cat.add_subparsers(dest="catalogue_command", required=True, metavar="ACTION")
    validate = cat_sub.add_parser("validate", help="load the catalogue and list every problem")
    validate.add_argument("--dir", help="catalogue folder (default: --tariffs or ./tariffs)")
    validate.set_defaults(func=lambda args, settings: _validate(args.dir or settings.tariffs_dir))

    rate = sub.add_parser("rate", help="rate the usage of a bill period and publish rated, suspense, settlement")
    rate.add_argument("--period", required=True, help="bill period YYYY-MM")
    rate.set_defaults(func=lambda args, settings: _rate(settings, args.period))

    explain = sub.add_parser("explain", help="explain in plain words how a usage record was charged")
    explain.add_argument("record_id")
    explain.add_argument("--period", help="bill period YYYY-MM (default: search every published period)")
    explain.set_defaults(func=lambda args, settings: _explain(settings, args.record_id, args.period))

    rerate = sub.add_parser("rerate", help="rerate a period with the current catalogue; report what changed")
    rerate.add_argument("--period", required=True)
    rerate.add_argument("--no-publish", action="store_true", help="write the new version but keep the old published")
    rerate.set_defaults(func=lambda args, settings: _rerate(settings, args.period, not args.no_publish))

    simulate = sub.add_parser("simulate", help="what-if: rate a period against a draft catalogue (writes nothing)")
    simulate.add_argument("--period", required=True)
    simulate.add_argument("--catalogue", required=True, help="draft catalogue folder")
    simulate.set_defaults(func=lambda args, settings: _simulate(settings, args.period, args.catalogue))


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


def _rate(settings, period: str) -> int:  # noqa: ANN001
    from pipelines.rating.stage import rate_period

    result = rate_period(settings, period)
    print(result.summary())
    return 0


def _explain(settings, record_id: str, period: str | None) -> int:  # noqa: ANN001
    from pipelines.rating.explain import explain_record

    text = explain_record(settings, record_id, period)
    if text is None:
        print(f"record {record_id} is not in any published rated or suspense partition", file=sys.stderr)
        return 1
    print(text)
    return 0


def _rerate(settings, period: str, publish: bool) -> int:  # noqa: ANN001
    from pipelines.rating.rerate import rerate_period

    report = rerate_period(settings, period, publish=publish)
    print(report.text())
    return 0


def _simulate(settings, period: str, draft: str) -> int:  # noqa: ANN001
    from pipelines.rating.rerate import simulate_period

    report = simulate_period(settings, period, draft)
    print(report.text())
    return 0
