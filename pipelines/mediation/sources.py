"""Per-source configuration: the switch's time zone and how long a source may stay silent.

``pipelines/mediation/sources.csv`` (columns ``source,switch_timezone,expected_max_gap_hours,description``)
is a small, reviewed table shipped with the code, one row per landing source (the first folder of a
landing key):

* ``switch_timezone``: IANA zone of the switch's wall clock. Only formats that log local time without
  an offset use it (Asterisk cdr_csv, FreeSWITCH mod_cdr_csv / mod_json_cdr stamps); canonical CSV/Parquet
  and 3GPP BER carry UTC or an explicit offset and ignore it.
* ``expected_max_gap_hours``: a source is *quiet* in ``telbill mediation report`` once its newest file
  is more than this many hours (rounded up to whole days) before the report date, unless
  ``--quiet-days`` overrides it for all sources.

A source not in the table uses UTC and the report's default quiet threshold. An unknown zone or a
non-positive gap makes the table invalid (raised at load time, not per record).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SOURCES_CSV = Path(__file__).with_name("sources.csv")
DEFAULT_TIMEZONE = "UTC"
COLUMNS = ("source", "switch_timezone", "expected_max_gap_hours", "description")


@dataclass(frozen=True)
class SourceConfig:
    source: str
    switch_timezone: str = DEFAULT_TIMEZONE
    expected_max_gap_hours: int | None = None
    description: str = ""

    @property
    def max_gap_days(self) -> int | None:
        """The quiet threshold in whole days (a 36-hour gap allows 2 days)."""
        return None if self.expected_max_gap_hours is None else -(-self.expected_max_gap_hours // 24)


def parse_sources(text: str) -> dict[str, SourceConfig]:
    """The source table from CSV text; raises ``ValueError`` naming the bad row."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"sources table columns must be {COLUMNS}, got {reader.fieldnames}")
    out: dict[str, SourceConfig] = {}
    for line, row in enumerate(reader, start=2):
        name, zone, gap = row["source"].strip(), row["switch_timezone"].strip() or DEFAULT_TIMEZONE, row["expected_max_gap_hours"].strip()
        if not name or name in out:
            raise ValueError(f"sources table line {line}: empty or repeated source {name!r}")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"sources table line {line}: unknown time zone {zone!r}") from exc
        hours = int(gap) if gap else None
        if hours is not None and hours <= 0:
            raise ValueError(f"sources table line {line}: expected_max_gap_hours must be positive")
        out[name] = SourceConfig(name, zone, hours, row["description"].strip())
    return out


@lru_cache(maxsize=4)
def load_sources(path: Path = SOURCES_CSV) -> dict[str, SourceConfig]:
    return parse_sources(path.read_text(encoding="utf-8"))


def source_config(source: str, sources: dict[str, SourceConfig] | None = None) -> SourceConfig:
    """The configuration of ``source`` (defaults for a source not in the table)."""
    table = load_sources() if sources is None else sources
    return table.get(source, SourceConfig(source))
