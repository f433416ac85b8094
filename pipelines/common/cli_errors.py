"""One-line refusals for ``telbill`` commands.

Expected failures (an input the command refuses, a store that cannot be reached, missing S3 credentials) print
one ``telbill <command>: error: ...`` line on stderr and exit with :data:`REFUSED_EXIT`; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pipelines.common.settings import Settings

Command = Callable[[argparse.Namespace, Settings], int]
REFUSED_EXIT = 2
S3_CREDENTIALS_HINT = (" (S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile; endpoint: "
                       "TELBILL_S3_ENDPOINT_URL)")


class Refused(Exception):
    """A command refused before doing anything (bad input, missing folder, ...): one line, exit code 2."""


def period_arg(value: str) -> str:
    """argparse type: a strict ``YYYY-MM`` label (:func:`pipelines.common.periods.parse_period`), so a bad period
    is a usage error (exit 2), not a traceback."""
    from pipelines.common.periods import parse_period

    try:
        parse_period(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def is_credentials_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is botocore's missing or partial credentials error."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (NoCredentialsError, PartialCredentialsError)):
            return True
        seen = seen.__cause__
    return False


def guarded(name: str, command: Command, refusals: tuple[type[BaseException], ...] = (),
            store_context: Callable[[Settings], str] | None = None) -> Command:
    """``command`` with its expected failures as one stderr line and exit code 2.

    ``refusals``: the area's own refusal types (besides :class:`Refused`), printed as they are. Storage and S3
    errors are printed after ``store_context(settings)`` (e.g. which lake), with a hint when credentials are missing.
    """
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from pipelines.common.storage import StorageError

        try:
            return command(args, settings)
        except (Refused, *refusals) as exc:
            print(f"telbill {name}: error: {exc}", file=sys.stderr)
        except (StorageError, BotoCoreError, ClientError) as exc:
            context = store_context(settings) if store_context else ""
            hint = S3_CREDENTIALS_HINT if is_credentials_error(exc) else ""
            print(f"telbill {name}: error: {context}{one_line(exc)}{hint}", file=sys.stderr)
        return REFUSED_EXIT
    return run
