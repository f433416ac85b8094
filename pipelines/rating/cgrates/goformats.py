"""Go-style values in CGRateS files and events: durations and RFC 3339 instants, parsed exactly.

CGRateS keeps every duration as Go ``time.Duration`` nanoseconds and parses them with
``utils.ParseDurationWithNanosecs``: a bare integer is a count of nanoseconds ("units" for data
and SMS), anything else goes through ``time.ParseDuration`` (``45s``, ``2m10s``, ``1h0m0.5s``).
We keep the same integer nanoseconds so increments and rate units compare exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
            "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_COMPONENT = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_INTEGER = re.compile(r"[+-]?\d+")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


class GoFormatError(ValueError):
    """A value that Go (and so CGRateS) would refuse to parse."""


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration (``time.ParseDuration``), exact; ``0`` alone is allowed."""
    s = text.strip()
    sign = 1
    if s[:1] in "+-":
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        raise GoFormatError(f"invalid duration {text!r}")
    total, pos = 0, 0
    while pos < len(s):
        m = _COMPONENT.match(s, pos)
        if m is None:
            raise GoFormatError(f"invalid duration {text!r}")
        # Go scales each component exactly and truncates below one nanosecond.
        total += int(Decimal(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    return sign * total


def parse_cgr_duration(text: str) -> tuple[int, bool]:
    """CGRateS ``ParseDurationWithNanosecs``: (nanoseconds, had_unit). Empty text is zero."""
    s = text.strip()
    if s == "":
        return 0, False
    if _INTEGER.fullmatch(s):
        return int(s), False
    return parse_go_duration(s), True


@dataclass(frozen=True)
class Instant:
    """An RFC 3339 instant: UTC nanoseconds since the epoch plus the wall clock it was written in."""

    utc_ns: int
    offset_seconds: int

    @property
    def local_ns(self) -> int:
        """Nanoseconds of the written wall clock as if it were UTC (Go evaluates timings there)."""
        return self.utc_ns + self.offset_seconds * NS_PER_SECOND


def parse_rfc3339(text: str) -> Instant:
    """Parse ``2019-03-11T09:00:00Z`` / ``...+01:00`` with up to nanosecond precision."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise GoFormatError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = int((m.group(7) or "").ljust(9, "0"))
    zone = m.group(8)
    offset = 0 if zone in ("Z", "z") else (1 if zone[0] == "+" else -1) * (
        int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    try:
        wall = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise GoFormatError(f"not an RFC 3339 time: {text!r} ({exc})") from exc
    wall_ns = (int(wall.timestamp()) * NS_PER_SECOND) + frac
    return Instant(utc_ns=wall_ns - offset * NS_PER_SECOND, offset_seconds=offset)


def parse_clock(text: str) -> int:
    """Nanoseconds since midnight of ``HH:MM:SS`` (a Timings start or end time)."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})", text.strip())
    if m is None or int(m.group(1)) > 24 or int(m.group(2)) > 59 or int(m.group(3)) > 59:
        raise GoFormatError(f"not a HH:MM:SS time of day: {text!r}")
    h, mi, s = (int(g) for g in m.groups())
    return ((h * 60 + mi) * 60 + s) * NS_PER_SECOND
