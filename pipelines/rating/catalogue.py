"""Product catalogue: effective-dated CSV tables in ``tariffs/`` loaded into typed frames and DuckDB.

Every row carries ``valid_from`` (inclusive) / ``valid_to`` (exclusive, empty = open) dates, read as
local midnight in the home time zone (Europe/Berlin), so an old period rates with the tariffs valid then.
:func:`load_catalogue` validates everything first and raises one :class:`CatalogueError` listing every
problem (unknown references, overlapping validity for one key, bad prefixes, missing time bands, ...).
See ``docs/catalogue.md`` for the file format.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl

from pipelines.common.money import CURRENCY_MINOR_UNITS
from pipelines.common.partitions import digest
from schemas.contracts import SERVICES

HOME_TZ = "Europe/Berlin"
"""Catalogue validity dates are local midnights in the home operator's zone."""
UTC = ZoneInfo("UTC")
OPEN_END = datetime(9999, 1, 1, tzinfo=UTC)
"""``valid_to`` of open-ended rows (kept as a real instant so SQL range checks stay simple)."""
MAX_PREFIX_DIGITS = 15
LENGTH_SLOTS = 16
"""A number key is ``digits right-padded with zeros to 15 * 16 + number of digits`` (see :func:`number_key`)."""
KEY_SPACE = 10**MAX_PREFIX_DIGITS * LENGTH_SLOTS
CATCH_ALL = "*"
ANY = "*"
NANO = 10**9

DESTINATION_CLASSES = ("onnet", "offnet_mobile", "fixed", "premium", "international")
ZONES = ("HOME", "EU", "EUROPE2", "WORLD")
DIRECTIONS_ANY = ("MO", "MT", ANY)
RATE_ROUNDING = ("up", "half_up", "down", "half_even")
DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
HOLIDAY_DAY = 8
"""Day type of a public holiday in the band set's calendar (ISO weekdays are 1..7)."""

MATCH_COLUMNS = ("direction", "zone", "destination_class", "destination_id", "rating_group", "snssai",
                 "qos_class", "band")
MATCH_WEIGHTS = {"account_id": 1024, "plan_id": 512, "zone": 256, "destination_id": 128,
                 "destination_class": 64, "snssai": 32, "qos_class": 16, "rating_group": 8, "direction": 4,
                 "band": 2}
"""Most specific rule wins: an account override beats a plan rule beats a catalogue-wide ('*') rule,
then a roaming zone beats a destination, and so on. Ties are broken by rate_id (documented)."""


@dataclass(frozen=True)
class TableSpec:
    file: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    dated: bool = True


TABLES: dict[str, TableSpec] = {
    "plans": TableSpec("plans.csv", ("plan_id", "name", "payment_type", "monthly_fee", "currency",
                                     "band_set_id"), ("plan_id",)),
    "time_bands": TableSpec("time_bands.csv", ("band_set_id", "timezone", "holiday_calendar", "band", "days",
                                               "start", "end"), ("band_set_id", "days", "start")),
    "holidays": TableSpec("holidays.csv", ("calendar_id", "date", "name"), ("calendar_id", "date"), dated=False),
    "destinations": TableSpec("destinations.csv", ("prefix", "destination_id", "destination_class", "name"),
                              ("prefix",)),
    "rates": TableSpec("rates.csv", ("rate_id", "currency", "connect_fee", "price", "rate_unit", "first_interval",
                                     "increment", "increment_decimals", "rounding_method", "rounding_decimals",
                                     "max_cost"), ("rate_id",)),
    "plan_rates": TableSpec("plan_rates.csv", ("plan_id", "service", *MATCH_COLUMNS, "rate_id"),
                            ("plan_id", "service", *MATCH_COLUMNS)),
    "account_overrides": TableSpec("account_overrides.csv", ("account_id", "service", *MATCH_COLUMNS, "rate_id"),
                                   ("account_id", "service", *MATCH_COLUMNS)),
    "allowances": TableSpec("allowances.csv", ("allowance_id", "plan_id", "service", "direction", "zone",
                                               "destination_class", "rating_group", "quantity", "scope"),
                            ("allowance_id",)),
    "tiers": TableSpec("tiers.csv", ("tier_set_id", "tier_type", "from_units", "to_units", "price"),
                       ("tier_set_id", "from_units")),
    "roaming_zones": TableSpec("roaming_zones.csv", ("tadig", "country", "zone"), ("tadig",)),
    "iot_rates": TableSpec("iot_rates.csv", ("tadig", "service", "direction", "price", "rate_unit", "increment",
                                             "currency"), ("tadig", "service", "direction")),
    "interconnect": TableSpec("interconnect.csv", ("prefix", "carrier_id", "price", "rate_unit", "increment",
                                                   "currency"), ("prefix",)),
}
OPTIONAL_TABLES = {"account_overrides", "holidays", "tiers"}
TIER_TYPES = ("graduated", "volume")
NO_LIMIT = 2**62
"""``to_units`` of an open-ended tier."""
MAX_VOICE_SECONDS = 31 * 86_400
MAX_UNITS = 10**15
"""Largest quantity rating accepts: a voice record of at most 31 days, at most 10^15 units (bytes, SMS, events) of
anything else. A larger one is ``BAD_QUANTITY`` suspense: it is a broken record (mediation rejects absurd
durations), and one such value must not stretch a run's band calendar over years or overflow an instant."""


def quantity_ok(service: str | None, quantity: int | None) -> bool:
    """A quantity rating can price: present, not negative, not above :data:`MAX_VOICE_SECONDS` / :data:`MAX_UNITS`."""
    return quantity is not None and 0 <= quantity <= (MAX_VOICE_SECONDS if service == "voice" else MAX_UNITS)


def quantity_ok_sql(service: str, quantity: str) -> str:
    """:func:`quantity_ok` in SQL over the columns ``service`` and ``quantity``."""
    return (f"({quantity} IS NOT NULL AND {quantity} >= 0 AND {quantity} <= CASE WHEN {service} = 'voice' "
            f"THEN {MAX_VOICE_SECONDS} ELSE {MAX_UNITS} END)")


class CatalogueError(ValueError):
    """The catalogue cannot be used; ``problems`` lists every problem found (file, row, what to fix)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} catalogue problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


# --------------------------------------------------------------------------------------------- parsing
def local_midnight(day: date, tz: str = HOME_TZ) -> datetime:
    """UTC instant of local midnight starting ``day`` in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def to_nanos(text: str) -> int:
    """Exact amount text (<= 9 decimals) as integer nano-units; raises ValueError otherwise."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"amount {text!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount {text!r} must be a non-negative number")
    nanos = amount.scaleb(9)
    if nanos != nanos.to_integral_value():
        raise ValueError(f"amount {text!r} has more than 9 decimals")
    return int(nanos)


def catalogue_version(tariffs_dir: str | Path) -> str:
    """Content hash of the catalogue files rating reads (other areas' files do not change it)."""
    base = Path(tariffs_dir)
    parts: list[bytes | str] = []
    for spec in sorted(TABLES.values(), key=lambda s: s.file):
        path = base / spec.file
        if path.is_file():
            parts += [spec.file, path.read_bytes()]
    return digest(*parts)


def _read_csv(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False, empty_string_is_null=False)
    return frame.with_columns(pl.all().fill_null("").str.strip_chars()).with_row_index("row", offset=2)


def _parse_days(spec: str) -> set[int]:
    """``mon-fri``, ``sat,sun``, ``hol`` -> ISO weekday numbers (8 = holiday)."""
    out: set[int] = set()
    for token in spec.lower().replace(" ", "").split(","):
        if token == "hol":
            out.add(HOLIDAY_DAY)
        elif "-" in token:
            lo, hi = token.split("-")
            out.update(range(DAY_NAMES[lo], DAY_NAMES[hi] + 1))
        else:
            out.add(DAY_NAMES[token])
    return out


def _parse_hhmm(text: str) -> int:
    """``HH:MM`` (``24:00`` allowed) -> minutes after midnight."""
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    if not m or int(m[2]) > 59 or int(m[1]) * 60 + int(m[2]) > 1440:
        raise ValueError(f"time {text!r} is not HH:MM between 00:00 and 24:00")
    return int(m[1]) * 60 + int(m[2])


def _split_list(text: str) -> list[str]:
    return [t for t in text.split("|") if t]


# --------------------------------------------------------------------------------------------- prefixes
def prefix_range(prefix: str) -> tuple[int, int]:
    """The block of number keys a prefix covers: ``[lo, hi)``; the catch-all covers everything.

    It starts at the prefix itself as a number (so a shorter number such as ``4990``, whose padded digits equal
    those of prefix ``49900``, sorts before it) and ends after every longer number starting with it."""
    if prefix == CATCH_ALL:
        return 0, KEY_SPACE
    padded = int(prefix.ljust(MAX_PREFIX_DIGITS, "0"))
    return padded * LENGTH_SLOTS + len(prefix), (padded + 10 ** (MAX_PREFIX_DIGITS - len(prefix))) * LENGTH_SLOTS


def number_key(number: str | None) -> int | None:
    """A dialled number as an integer key that sorts like longest-prefix matching needs: its digits right-padded
    with zeros to 15, times 16, plus its length (zero padding alone would put ``4990`` inside prefix ``49900``'s
    block); ``None`` when it is not 1-15 digits."""
    if number is None or not re.fullmatch(r"[0-9]{1,15}", number):
        return None
    return int(number.ljust(MAX_PREFIX_DIGITS, "0")) * LENGTH_SLOTS + len(number)


NUMBER_KEY_SQL = "CASE WHEN regexp_full_match(coalesce({col}, ''), '[0-9]{{1,15}}') " \
                 "THEN CAST(rpad({col}, 15, '0') AS BIGINT) * 16 + length({col}) END"
"""SQL twin of :func:`number_key` (format with ``col=``)."""


def flatten_prefixes(prefixes: Iterable[str]) -> list[tuple[int, int, int]]:
    """Nested prefix blocks -> disjoint ``(lo, hi, index)`` ranges, each owned by its longest prefix.

    Longest-prefix match then becomes one range lookup (an ASOF join in DuckDB, a bisect in Python).
    """
    frame = flatten_prefix_frame(pl.Series("prefix", list(prefixes), dtype=pl.String))
    return list(frame.iter_rows())


def flatten_prefix_frame(prefixes: pl.Series) -> pl.DataFrame:
    """Vectorised :func:`flatten_prefixes`: columns ``lo, hi, idx`` (idx = position in ``prefixes``).

    Every block boundary starts an elementary interval; its owner is the longest prefix of the interval's
    first key (an equi-join per prefix length), else the catch-all. Adjacent intervals with one owner merge.
    """
    df = pl.DataFrame({"prefix": prefixes}).with_row_index("idx").with_columns(pl.col("idx").cast(pl.Int64))
    catch = df.filter(pl.col("prefix") == CATCH_ALL)["idx"]
    catch_idx = int(catch[0]) if catch.len() else None
    real = df.filter(pl.col("prefix") != CATCH_ALL).with_columns(pl.col("prefix").str.len_chars().alias("len"))
    padded = pl.col("prefix").str.pad_end(MAX_PREFIX_DIGITS, "0").cast(pl.Int64)
    real = real.with_columns(padded.alias("padded")).with_columns(   # prefix_range, vectorised
        (pl.col("padded") * LENGTH_SLOTS + pl.col("len")).alias("lo"),
        ((pl.col("padded") + pl.lit(10, pl.Int64).pow(MAX_PREFIX_DIGITS - pl.col("len"))) * LENGTH_SLOTS).alias("hi"))
    bounds = (pl.concat([real["lo"], real["hi"], pl.Series([0, KEY_SPACE], dtype=pl.Int64)])
              .unique().sort())
    elems = pl.DataFrame({"lo": bounds[:-1], "hi": bounds[1:]}).with_columns(
        (pl.col("lo") // LENGTH_SLOTS).alias("padded"), (pl.col("lo") % LENGTH_SLOTS).alias("digits"))
    elems = elems.with_columns(pl.col("padded").cast(pl.String).str.pad_start(MAX_PREFIX_DIGITS, "0").alias("key"))
    owners = []
    for length in sorted(set(real["len"].to_list())):
        # a prefix of this length owns the interval when the interval's first key lies in its block: same leading
        # digits, and at the prefix's own padded value only numbers at least as long as the prefix
        cand = elems.select("lo", "padded", "digits", pl.col("key").str.slice(0, length).alias("prefix"),
                            pl.lit(length).alias("len"))
        owners.append(cand.join(real.filter(pl.col("len") == length).select("prefix", "idx",
                                                                            pl.col("padded").alias("p_padded")),
                                on="prefix")
                      .filter((pl.col("padded") != pl.col("p_padded")) | (pl.col("digits") >= length))
                      .select("lo", "len", "idx"))
    best = (pl.concat(owners).sort("lo", "len").group_by("lo", maintain_order=True).last().select("lo", "idx")
            if owners else pl.DataFrame(schema={"lo": pl.Int64, "idx": pl.Int64}))
    out = elems.join(best, on="lo", how="left").with_columns(pl.col("idx").fill_null(pl.lit(catch_idx, pl.Int64)))
    out = out.filter(pl.col("idx").is_not_null()).sort("lo")
    run_start = (pl.col("idx") != pl.col("idx").shift(1)) | (pl.col("lo") != pl.col("hi").shift(1))
    out = out.with_columns(run_start.fill_null(True).cum_sum().alias("run"))
    return (out.group_by("run", maintain_order=True)
            .agg(pl.col("lo").first(), pl.col("hi").last(), pl.col("idx").first())
            .select("lo", "hi", pl.col("idx").cast(pl.Int64)))


LONGEST_PREFIX_SQL = """
SELECT k.*, r.* EXCLUDE (epoch_id, lo, hi)
FROM {keys} k
ASOF LEFT JOIN {ranges} r ON k.epoch_id = r.epoch_id AND k.{key_col} >= r.lo
"""
"""Reusable longest-prefix match: ``keys`` has ``epoch_id`` and a number key ``key_col`` (:func:`number_key`); ``ranges`` comes
from :meth:`Catalogue.prefix_ranges_frame`. Check ``key_col < hi`` afterwards (outside a range = no match)."""


# --------------------------------------------------------------------------------------------- catalogue
@dataclass
class Catalogue:
    """Validated, typed catalogue tables (Polars frames) plus helpers to put them into DuckDB."""

    tariffs_dir: Path
    version: str
    tables: dict[str, pl.DataFrame]
    as_of: datetime | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    # -- DuckDB ---------------------------------------------------------------------------------
    def install(self, con: duckdb.DuckDBPyConnection, schema: str = "cat") -> None:
        """Create the catalogue tables in ``schema`` of a DuckDB connection."""
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        frames = dict(self.tables)
        frames["rules"] = self.rules
        frames["dest_ranges"] = self.prefix_ranges_frame("destinations")
        frames["ic_ranges"] = self.prefix_ranges_frame("interconnect")
        frames["dest_epochs"] = self.epochs_frame("destinations")
        frames["ic_epochs"] = self.epochs_frame("interconnect")
        for name, frame in frames.items():
            con.register("_tmp_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {schema}.{name} AS SELECT * FROM _tmp_frame")
            con.unregister("_tmp_frame")

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with the catalogue installed in schema ``cat``."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        self.install(con)
        return con

    # -- derived tables -------------------------------------------------------------------------
    @cached_property
    def rules(self) -> pl.DataFrame:
        """Plan rules and account overrides in one table with a unique priority (higher wins)."""
        plan = self.tables["plan_rates"].with_columns(pl.lit(ANY).alias("account_id"))
        acct = self.tables["account_overrides"].with_columns(pl.lit(ANY).alias("plan_id"))
        cols = ["account_id", "plan_id", "service", *MATCH_COLUMNS, "rate_id", "valid_from", "valid_to"]
        both = pl.concat([plan.select(cols), acct.select(cols)])
        weight = sum((pl.col(c) != ANY).cast(pl.Int64) * w for c, w in MATCH_WEIGHTS.items())
        return (both.with_columns(weight.alias("weight"))
                .sort(["weight", "rate_id", "valid_from"], descending=[False, True, False])
                .with_row_index("priority").with_columns(pl.col("priority").cast(pl.Int64)))

    def epochs_frame(self, table: str) -> pl.DataFrame:
        """Validity epochs of a prefix table: instants between which the set of valid rows is constant."""
        return pl.DataFrame(
            [{"epoch_id": i, "epoch_start": s, "epoch_end": e} for i, (s, e, _) in enumerate(self._epochs(table))],
            schema={"epoch_id": pl.Int64, "epoch_start": pl.Datetime("us", "UTC"),
                    "epoch_end": pl.Datetime("us", "UTC")})

    def _epochs(self, table: str) -> list[tuple[datetime, datetime, list[int]]]:
        key = ("epochs", table)
        if key not in self._cache:
            frame = self.tables[table]
            vf, vt = frame["valid_from"].unique().to_list(), frame["valid_to"].unique().to_list()
            cuts = sorted({*vf, *vt, datetime(1900, 1, 1, tzinfo=UTC), OPEN_END})
            epochs = []
            for s, e in zip(cuts, cuts[1:], strict=False):
                rows = (frame.select(pl.int_range(pl.len()).alias("i"), "valid_from", "valid_to")
                        .filter((pl.col("valid_from") <= s) & (pl.col("valid_to") >= e))["i"].to_list())
                epochs.append((s, e, rows))
            self._cache[key] = epochs
        return self._cache[key]

    def prefix_ranges_frame(self, table: str) -> pl.DataFrame:
        """Disjoint key ranges per epoch for longest-prefix match, with the owning row's columns."""
        key = ("ranges", table)
        if key not in self._cache:
            self._cache[key] = self._prefix_ranges(table)
        return self._cache[key]

    def _prefix_ranges(self, table: str) -> pl.DataFrame:
        frame = self.tables[table]
        payload = frame.drop("row", "valid_from", "valid_to")
        parts = []
        for epoch_id, (_, _, valid_rows) in enumerate(self._epochs(table)):
            if not valid_rows:
                continue
            rows = pl.Series("i", valid_rows, dtype=pl.Int64)
            flat = flatten_prefix_frame(frame["prefix"].gather(rows))
            parts.append(pl.concat([flat.select(pl.lit(epoch_id, pl.Int64).alias("epoch_id"), "lo", "hi"),
                                    payload[rows.gather(flat["idx"])]], how="horizontal"))
        if not parts:
            return pl.DataFrame(schema={"epoch_id": pl.Int64, "lo": pl.Int64, "hi": pl.Int64, **payload.schema})
        return pl.concat(parts)

    # -- Python lookups (quote, explain) ----------------------------------------------------------
    def longest_prefix(self, table: str, number: str | None, at: datetime) -> dict | None:
        """The row of ``table`` whose prefix is the longest match for ``number`` at instant ``at``."""
        key = number_key(number)
        if key is None:
            return None
        cache_key = ("lpm", table)
        if cache_key not in self._cache:
            ranges = self.prefix_ranges_frame(table)
            per_epoch: dict[int, tuple[list[int], list[int], list[dict]]] = {}
            for row in ranges.iter_rows(named=True):
                los, his, payload = per_epoch.setdefault(row["epoch_id"], ([], [], []))
                los.append(row["lo"])
                his.append(row["hi"])
                payload.append(row)
            self._cache[cache_key] = per_epoch
        per_epoch = self._cache[cache_key]
        for epoch_id, (s, e, _) in enumerate(self._epochs(table)):
            if s <= at < e:
                los, his, payload = per_epoch.get(epoch_id, ([], [], []))
                i = bisect.bisect_right(los, key) - 1
                if i >= 0 and key < his[i]:
                    return payload[i]
                return None
        return None

    def rows_valid(self, table: str, at: datetime, **equal: object) -> list[dict]:
        """Rows of ``table`` valid at ``at`` whose columns equal the given values."""
        out = []
        for row in self._row_dicts(table):
            if row["valid_from"] <= at < row["valid_to"] and all(row[k] == v for k, v in equal.items()):
                out.append(row)
        return out

    def _row_dicts(self, table: str) -> list[dict]:
        key = ("rows", table)
        if key not in self._cache:
            frame = self.rules if table == "rules" else self.tables[table]
            self._cache[key] = frame.to_dicts()
        return self._cache[key]

    def rate(self, rate_id: str, at: datetime) -> dict | None:
        found = self.rows_valid("rates", at, rate_id=rate_id)
        return found[0] if found else None

    def holidays(self, calendar_id: str) -> set[date]:
        key = ("hol", calendar_id)
        if key not in self._cache:
            hol = self.tables["holidays"].filter(pl.col("calendar_id") == calendar_id)
            self._cache[key] = set(hol["date"].to_list())
        return self._cache[key]

    # -- time bands -------------------------------------------------------------------------------
    def band_calendar(self, band_set_id: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime, str]]:
        """Band segments ``(start, end, band)`` in UTC covering ``[start, end)`` for a band set.

        Bands are wall-clock ranges in the band set's own zone, so DST days are 23 or 25 hours long;
        adjacent segments with the same band are merged (a band change is what splits a call).
        """
        rows = [r for r in self._row_dicts("time_bands") if r["band_set_id"] == band_set_id]
        if not rows:
            return []
        zone = ZoneInfo(rows[0]["timezone"])
        calendar = rows[0]["holiday_calendar"]
        hol = self.holidays(calendar) if calendar else set()
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        segs: list[tuple[datetime, datetime, str]] = []
        while day <= last:
            midnight = local_midnight(day, HOME_TZ)
            day_type = HOLIDAY_DAY if day in hol else day.isoweekday()
            for r in rows:
                if day_type in r["day_types"] and r["valid_from"] <= midnight < r["valid_to"]:
                    s = _wall(day, r["start_min"], zone)
                    e = _wall(day, r["end_min"], zone)
                    if e > s:
                        segs.append((s, e, r["band"]))
            day += timedelta(days=1)
        segs.sort()
        merged: list[tuple[datetime, datetime, str]] = []
        for s, e, b in segs:
            if merged and merged[-1][2] == b and merged[-1][1] == s:
                merged[-1] = (merged[-1][0], e, b)
            else:
                merged.append((s, e, b))
        return merged

    def band_calendar_frame(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Band segments of every band set between two instants, for the SQL engine."""
        rows = []
        for band_set_id in sorted(set(self.tables["time_bands"]["band_set_id"].to_list())):
            for s, e, b in self.band_calendar(band_set_id, start, end):
                if s.second or s.microsecond or e.second or e.microsecond:
                    raise ValueError(f"band set {band_set_id}: band edge {s}..{e} is not on a whole UTC minute")
                rows.append({"band_set_id": band_set_id, "seg_start": s, "seg_end": e, "band": b})
        return pl.DataFrame(rows, schema={"band_set_id": pl.String, "seg_start": pl.Datetime("us", "UTC"),
                                          "seg_end": pl.Datetime("us", "UTC"), "band": pl.String})


def _wall(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """UTC instant of a wall-clock time (``24:00`` = next midnight) on a local day."""
    if minutes >= 1440:
        nxt = day + timedelta(days=1)
        return datetime.combine(nxt, time(0), tzinfo=zone).astimezone(UTC)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone).astimezone(UTC)


# --------------------------------------------------------------------------------------------- loading
def load_catalogue(tariffs_dir: str | Path, as_of: datetime | date | None = None) -> Catalogue:
    """Read, validate and type the catalogue; raise :class:`CatalogueError` listing every problem.

    With ``as_of`` only rows valid at that instant (or local date) are kept.
    """
    base = Path(tariffs_dir)
    problems: list[str] = []
    raw: dict[str, pl.DataFrame] = {}
    for name, spec in TABLES.items():
        path = base / spec.file
        if not path.is_file():
            if name in OPTIONAL_TABLES:
                cols = ["row", *spec.columns, *(("valid_from", "valid_to") if spec.dated else ())]
                raw[name] = pl.DataFrame({c: [] for c in cols}, schema={c: pl.String for c in cols}).with_columns(
                    pl.col("row").cast(pl.UInt32))
                continue
            problems.append(f"{spec.file}: file missing in {base}")
            continue
        frame = _read_csv(path)
        need = [*spec.columns, *(("valid_from", "valid_to") if spec.dated else ())]
        missing = [c for c in need if c not in frame.columns]
        if missing:
            problems.append(f"{spec.file}: missing column(s) {', '.join(missing)}")
            continue
        raw[name] = frame
    if problems:
        raise CatalogueError(problems)

    tables = {name: (_typed_destinations(frame, problems) if name == "destinations" else
                     _typed(name, frame, problems)) for name, frame in raw.items()}
    _check_overlaps(tables, problems)
    _check_references(tables, problems)
    _check_time_bands(tables, problems)
    if problems:
        raise CatalogueError(problems)

    at = None
    if as_of is not None:
        at = local_midnight(as_of) if not isinstance(as_of, datetime) else as_of.astimezone(UTC)
        tables = {n: (f.filter((pl.col("valid_from") <= at) & (pl.col("valid_to") > at))
                      if TABLES[n].dated else f) for n, f in tables.items()}
    return Catalogue(tariffs_dir=base, version=catalogue_version(base), tables=tables, as_of=at)


def _typed(name: str, frame: pl.DataFrame, problems: list[str]) -> pl.DataFrame:
    """Parse dates, amounts and integers; record a problem per bad cell."""
    spec = TABLES[name]
    rows = frame.to_dicts()
    out = []
    for r in rows:
        where = f"{spec.file} line {r['row']}"
        try:
            out.append(_typed_row(name, r))
        except (ValueError, KeyError, InvalidOperation, ZoneInfoNotFoundError) as exc:
            problems.append(f"{where}: {exc}")
    return pl.DataFrame(out, schema=_SCHEMAS[name], orient="row") if out else pl.DataFrame(schema=_SCHEMAS[name])


def _typed_destinations(frame: pl.DataFrame, problems: list[str]) -> pl.DataFrame:
    """Vectorised typing of the (large) destinations table, with the same messages as :func:`_typed_row`."""
    vf = pl.col("valid_from").str.to_date("%Y-%m-%d", strict=False)
    vt = pl.when(pl.col("valid_to") == "").then(None).otherwise(pl.col("valid_to").str.to_date("%Y-%m-%d", strict=False))
    df = frame.with_columns(vf.alias("_vf"), vt.alias("_vt"))
    checks = [
        (pl.col("_vf").is_null() | ((pl.col("valid_to") != "") & pl.col("_vt").is_null()),
         lambda r: f"valid_from/valid_to must be YYYY-MM-DD (got {r['valid_from']!r}, {r['valid_to']!r})"),
        (pl.col("_vt").is_not_null() & (pl.col("_vt") <= pl.col("_vf")),
         lambda r: f"valid_to {r['valid_to']} is not after valid_from {r['valid_from']}"),
        (~((pl.col("prefix") == CATCH_ALL) | pl.col("prefix").str.contains(r"^[0-9]{1,15}$")),
         lambda r: f"bad prefix {r['prefix']!r}: use 1-15 digits (E.164 without '+') or '*' for the catch-all"),
        (~pl.col("destination_class").is_in(DESTINATION_CLASSES),
         lambda r: f"destination_class {r['destination_class']!r} is not one of {', '.join(DESTINATION_CLASSES)}"),
    ]
    bad = pl.lit(False)
    for cond, message in checks:
        for r in df.filter(cond.fill_null(False)).iter_rows(named=True):
            problems.append(f"destinations.csv line {r['row']}: {message(r)}")
        bad = bad | cond.fill_null(False)

    def to_utc(col: pl.Expr) -> pl.Expr:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone(HOME_TZ).dt.convert_time_zone("UTC")

    return df.filter(~bad).select(
        pl.col("row").cast(pl.Int64), to_utc(pl.col("_vf")).alias("valid_from"),
        to_utc(pl.col("_vt")).fill_null(pl.lit(OPEN_END, pl.Datetime("us", "UTC"))).alias("valid_to"),
        "prefix", "destination_id", "destination_class", "name")


def _dates(r: dict) -> tuple[datetime, datetime]:
    try:
        vf = local_midnight(date.fromisoformat(r["valid_from"]))
        vt = local_midnight(date.fromisoformat(r["valid_to"])) if r["valid_to"] else OPEN_END
    except ValueError as exc:
        raise ValueError(f"valid_from/valid_to must be YYYY-MM-DD ({exc})") from exc
    if vt <= vf:
        raise ValueError(f"valid_to {r['valid_to']} is not after valid_from {r['valid_from']}")
    return vf, vt


def _int(r: dict, col: str, minimum: int = 0) -> int:
    try:
        value = int(r[col])
    except ValueError as exc:
        raise ValueError(f"{col} {r[col]!r} is not an integer") from exc
    if value < minimum:
        raise ValueError(f"{col} must be >= {minimum}, got {value}")
    return value


def _choice(r: dict, col: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if r[col] not in allowed:
        raise ValueError(f"{col} {r[col]!r} is not one of {', '.join(allowed)}")
    return r[col]


def _currency(r: dict) -> str:
    return _choice(r, "currency", CURRENCY_MINOR_UNITS)


def _prefix(r: dict) -> str:
    p = r["prefix"]
    if p != CATCH_ALL and not re.fullmatch(r"[0-9]{1,15}", p):
        raise ValueError(f"bad prefix {p!r}: use 1-15 digits (E.164 without '+') or '*' for the catch-all")
    return p


def _match_cols(r: dict) -> dict:
    out = {c: (r[c] or ANY) for c in MATCH_COLUMNS}
    _choice(out, "direction", DIRECTIONS_ANY)
    _choice(out, "zone", (*ZONES, ANY))
    _choice(out, "destination_class", (*DESTINATION_CLASSES, ANY))
    for c in ("rating_group", "qos_class"):
        if out[c] != ANY and not out[c].isdigit():
            raise ValueError(f"{c} {out[c]!r} must be an integer or '*'")
    if out["snssai"] != ANY and not re.fullmatch(r"[0-9]{1,3}-[0-9A-Fa-f]{6}", out["snssai"]):
        raise ValueError(f"snssai {out['snssai']!r} must look like SST-SD, e.g. 1-000001")
    return out


def _typed_row(name: str, r: dict) -> dict:
    spec = TABLES[name]
    out: dict = {"row": r["row"]}
    if spec.dated:
        out["valid_from"], out["valid_to"] = _dates(r)
    if name == "plans":
        _choice(r, "payment_type", ("prepaid", "postpaid"))
        to_nanos(r["monthly_fee"])
        out.update({c: r[c] for c in spec.columns}, currency=_currency(r))
    elif name == "time_bands":
        ZoneInfo(r["timezone"])
        try:
            day_types = sorted(_parse_days(r["days"]))
        except KeyError as exc:
            raise ValueError(f"days {r['days']!r}: use mon..sun ranges/lists or 'hol'") from exc
        s, e = _parse_hhmm(r["start"]), _parse_hhmm(r["end"])
        if e <= s:
            raise ValueError(f"band end {r['end']} is not after start {r['start']}")
        out.update({c: r[c] for c in spec.columns}, day_types=day_types, start_min=s, end_min=e)
    elif name == "holidays":
        out.update(calendar_id=r["calendar_id"], date=date.fromisoformat(r["date"]), name=r["name"])
    elif name in ("destinations", "interconnect"):
        out["prefix"] = _prefix(r)
        if name == "destinations":
            _choice(r, "destination_class", DESTINATION_CLASSES)
            out.update(destination_id=r["destination_id"], destination_class=r["destination_class"], name=r["name"])
        else:
            out.update(carrier_id=r["carrier_id"], price_nanos=to_nanos(r["price"]), price=r["price"],
                       rate_unit=_int(r, "rate_unit", 1), increment=_int(r, "increment", 1), currency=_currency(r))
    elif name == "rates":
        out.update(
            rate_id=r["rate_id"], currency=_currency(r), connect_fee=r["connect_fee"] or "0", price=r["price"],
            connect_nanos=to_nanos(r["connect_fee"] or "0"), price_nanos=to_nanos(r["price"]),
            rate_unit=_int(r, "rate_unit", 1), first_interval=_int(r, "first_interval", 1),
            increment=_int(r, "increment", 1), increment_decimals=_int(r, "increment_decimals"),
            rounding_method=_choice(r, "rounding_method", RATE_ROUNDING),
            rounding_decimals=_int(r, "rounding_decimals"),
            max_cost=r["max_cost"] or None, max_nanos=to_nanos(r["max_cost"]) if r["max_cost"] else None,
            description=r.get("description", ""), tier_set_id=r.get("tier_set_id") or None)
        if out["increment_decimals"] > 9 or out["rounding_decimals"] > 9:
            raise ValueError("increment_decimals and rounding_decimals must be 0..9")
    elif name in ("plan_rates", "account_overrides"):
        owner = "plan_id" if name == "plan_rates" else "account_id"
        _choice(r, "service", SERVICES)
        out.update({owner: r[owner] or ANY, "service": r["service"], **_match_cols(r), "rate_id": r["rate_id"]})
    elif name == "allowances":
        _choice(r, "service", SERVICES)
        _choice(r, "scope", ("line", "group"))
        unlimited = r["quantity"].lower() == "unlimited"
        zones = _split_list(r["zone"] or ANY)
        classes = _split_list(r["destination_class"] or ANY)
        for z in zones:
            _choice({"zone": z}, "zone", (*ZONES, ANY))
        for c in classes:
            _choice({"destination_class": c}, "destination_class", (*DESTINATION_CLASSES, ANY))
        out.update(allowance_id=r["allowance_id"], plan_id=r["plan_id"], service=r["service"],
                   direction=_choice({"direction": r["direction"] or ANY}, "direction", DIRECTIONS_ANY),
                   zones=zones, destination_classes=classes,
                   rating_groups=[int(g) for g in _split_list(r["rating_group"] or ANY) if g != ANY] or None,
                   unlimited=unlimited, quantity=None if unlimited else _int(r, "quantity", 1), scope=r["scope"],
                   description=r.get("description", ""), overage_rate_id=r.get("overage_rate_id") or None)
        if unlimited and out["overage_rate_id"]:
            raise ValueError("an unlimited allowance has no overage rate")
    elif name == "tiers":
        out.update(tier_set_id=r["tier_set_id"], tier_type=_choice(r, "tier_type", TIER_TYPES),
                   from_units=_int(r, "from_units"), to_units=_int(r, "to_units", 1) if r["to_units"] else NO_LIMIT,
                   price=r["price"], price_nanos=to_nanos(r["price"]))
        if out["to_units"] <= out["from_units"]:
            raise ValueError(f"to_units {r['to_units']} is not above from_units {r['from_units']}")
    elif name == "roaming_zones":
        out.update(tadig=r["tadig"], country=r["country"], zone=_choice(r, "zone", ZONES))
        if not re.fullmatch(r"[A-Z]{3}[A-Z0-9]{2}", r["tadig"]):
            raise ValueError(f"TADIG {r['tadig']!r} must be 3 capital letters (country) and 2 capital letters or digits")
    elif name == "iot_rates":
        _choice(r, "service", SERVICES)
        out.update(tadig=r["tadig"], service=r["service"],
                   direction=_choice({"direction": r["direction"] or ANY}, "direction", DIRECTIONS_ANY),
                   price=r["price"], price_nanos=to_nanos(r["price"]), rate_unit=_int(r, "rate_unit", 1),
                   increment=_int(r, "increment", 1), currency=_currency(r))
    return out


_TS = pl.Datetime("us", "UTC")
_DATED = {"valid_from": _TS, "valid_to": _TS}
_MATCH = {c: pl.String for c in MATCH_COLUMNS}
_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "plans": {"row": pl.Int64, **_DATED, "plan_id": pl.String, "name": pl.String, "payment_type": pl.String,
              "monthly_fee": pl.String, "currency": pl.String, "band_set_id": pl.String},
    "time_bands": {"row": pl.Int64, **_DATED, "band_set_id": pl.String, "timezone": pl.String,
                   "holiday_calendar": pl.String, "band": pl.String, "days": pl.String, "start": pl.String,
                   "end": pl.String, "day_types": pl.List(pl.Int64), "start_min": pl.Int64, "end_min": pl.Int64},
    "holidays": {"row": pl.Int64, "calendar_id": pl.String, "date": pl.Date, "name": pl.String},
    "destinations": {"row": pl.Int64, **_DATED, "prefix": pl.String, "destination_id": pl.String,
                     "destination_class": pl.String, "name": pl.String},
    "interconnect": {"row": pl.Int64, **_DATED, "prefix": pl.String, "carrier_id": pl.String,
                     "price_nanos": pl.Int64, "price": pl.String, "rate_unit": pl.Int64, "increment": pl.Int64,
                     "currency": pl.String},
    "rates": {"row": pl.Int64, **_DATED, "rate_id": pl.String, "currency": pl.String, "connect_fee": pl.String,
              "price": pl.String, "connect_nanos": pl.Int64, "price_nanos": pl.Int64, "rate_unit": pl.Int64,
              "first_interval": pl.Int64, "increment": pl.Int64, "increment_decimals": pl.Int64,
              "rounding_method": pl.String, "rounding_decimals": pl.Int64, "max_cost": pl.String,
              "max_nanos": pl.Int64, "description": pl.String, "tier_set_id": pl.String},
    "tiers": {"row": pl.Int64, **_DATED, "tier_set_id": pl.String, "tier_type": pl.String, "from_units": pl.Int64,
              "to_units": pl.Int64, "price": pl.String, "price_nanos": pl.Int64},
    "plan_rates": {"row": pl.Int64, **_DATED, "plan_id": pl.String, "service": pl.String, **_MATCH,
                   "rate_id": pl.String},
    "account_overrides": {"row": pl.Int64, **_DATED, "account_id": pl.String, "service": pl.String, **_MATCH,
                          "rate_id": pl.String},
    "allowances": {"row": pl.Int64, **_DATED, "allowance_id": pl.String, "plan_id": pl.String,
                   "service": pl.String, "direction": pl.String, "zones": pl.List(pl.String),
                   "destination_classes": pl.List(pl.String), "rating_groups": pl.List(pl.Int64),
                   "unlimited": pl.Boolean, "quantity": pl.Int64, "scope": pl.String, "description": pl.String,
                   "overage_rate_id": pl.String},
    "roaming_zones": {"row": pl.Int64, **_DATED, "tadig": pl.String, "country": pl.String, "zone": pl.String},
    "iot_rates": {"row": pl.Int64, **_DATED, "tadig": pl.String, "service": pl.String, "direction": pl.String,
                  "price": pl.String, "price_nanos": pl.Int64, "rate_unit": pl.Int64, "increment": pl.Int64,
                  "currency": pl.String},
}


def _check_overlaps(tables: dict[str, pl.DataFrame], problems: list[str]) -> None:
    """Two rows with the same key must not be valid at the same instant."""
    for name, spec in TABLES.items():
        frame = tables.get(name)
        if frame is None or frame.height == 0:
            continue
        if not spec.dated:
            dup = frame.filter(pl.struct(list(spec.key)).is_duplicated())
            for r in dup.iter_rows(named=True):
                problems.append(f"{spec.file} line {r['row']}: duplicate {_key_text(spec, r)}")
            continue
        ordered = frame.sort([*spec.key, "valid_from"])
        prev = ordered.select([pl.col(c).shift(1).over(list(spec.key)).alias(f"prev_{c}")
                               for c in ("valid_to", "row")])
        both = pl.concat([ordered, prev], how="horizontal").filter(pl.col("prev_valid_to") > pl.col("valid_from"))
        for r in both.iter_rows(named=True):
            problems.append(f"{spec.file} line {r['row']}: validity overlaps line {r['prev_row']} for the same "
                            f"{_key_text(spec, r)}")


def _key_text(spec: TableSpec, r: dict) -> str:
    return ", ".join(f"{k}={r[k]}" for k in spec.key)


def _check_references(t: dict[str, pl.DataFrame], problems: list[str]) -> None:
    """Every id a row refers to must exist somewhere in the catalogue."""
    def ids(table: str, col: str) -> set:
        return set(t[table][col].to_list())

    plans, rates, band_sets = ids("plans", "plan_id"), ids("rates", "rate_id"), ids("time_bands", "band_set_id")
    dest_ids, tadigs = ids("destinations", "destination_id"), ids("roaming_zones", "tadig")
    calendars = ids("holidays", "calendar_id")
    checks = [
        ("plans", "band_set_id", band_sets, "time band set"),
        ("plan_rates", "rate_id", rates, "rate"),
        ("account_overrides", "rate_id", rates, "rate"),
        ("allowances", "plan_id", plans, "plan"),
        ("iot_rates", "tadig", tadigs, "roaming partner (roaming_zones.csv)"),
    ]
    for table, col, known, what in checks:
        for r in t[table].iter_rows(named=True):
            if r[col] not in known:
                problems.append(f"{TABLES[table].file} line {r['row']}: unknown {what} {r[col]!r}")
    for r in t["plan_rates"].iter_rows(named=True):
        if r["plan_id"] != ANY and r["plan_id"] not in plans:
            problems.append(f"plan_rates.csv line {r['row']}: unknown plan {r['plan_id']!r}")
    for table in ("plan_rates", "account_overrides"):
        for r in t[table].iter_rows(named=True):
            if r["destination_id"] != ANY and r["destination_id"] not in dest_ids:
                problems.append(f"{TABLES[table].file} line {r['row']}: unknown destination {r['destination_id']!r}")
    for r in t["time_bands"].iter_rows(named=True):
        if r["holiday_calendar"] and r["holiday_calendar"] not in calendars:
            problems.append(f"time_bands.csv line {r['row']}: unknown holiday calendar {r['holiday_calendar']!r}")
    band_names = {}
    for r in t["time_bands"].iter_rows(named=True):
        band_names.setdefault(r["band_set_id"], set()).add(r["band"])
    plan_bands = {r["plan_id"]: r["band_set_id"] for r in t["plans"].iter_rows(named=True)}
    all_bands = set().union(*band_names.values()) if band_names else set()
    for r in t["plan_rates"].iter_rows(named=True):
        if r["band"] == ANY:
            continue
        known = band_names.get(plan_bands.get(r["plan_id"]), set()) if r["plan_id"] != ANY else all_bands
        if r["band"] not in known:
            problems.append(f"plan_rates.csv line {r['row']}: band {r['band']!r} is not in the plan's time band set")
    tier_sets = ids("tiers", "tier_set_id")
    for r in t["rates"].iter_rows(named=True):
        if r["tier_set_id"] and r["tier_set_id"] not in tier_sets:
            problems.append(f"rates.csv line {r['row']}: unknown tier set {r['tier_set_id']!r}")
    for tier_set in sorted(tier_sets):
        rows = t["tiers"].filter(pl.col("tier_set_id") == tier_set)
        for at in sorted(set(rows["valid_from"].to_list())):
            valid = rows.filter((pl.col("valid_from") <= at) & (pl.col("valid_to") > at)).sort("from_units")
            if valid["tier_type"].n_unique() > 1:
                problems.append(f"tiers.csv: tier set {tier_set} mixes graduated and volume tiers")
            edges = list(zip(valid["from_units"].to_list(), valid["to_units"].to_list(), strict=True))
            expect = 0
            for lo, hi in edges:
                if lo != expect:
                    problems.append(f"tiers.csv: tier set {tier_set} has a gap or overlap at {expect} units "
                                    f"(rows valid {_local_day(at)})")
                expect = hi
            if expect != NO_LIMIT:
                problems.append(f"tiers.csv: tier set {tier_set} has no open-ended last tier (rows valid {_local_day(at)})")
    _check_dependent_validity(t, problems)
    for r in t["rates"].iter_rows(named=True):
        if r["max_nanos"] is not None and r["max_nanos"] < r["connect_nanos"]:
            problems.append(f"rates.csv line {r['row']}: max_cost {r['max_cost']} is below the connect fee")
    if not (t["destinations"]["prefix"] == CATCH_ALL).any():
        problems.append("destinations.csv: no catch-all row (prefix '*'): unmatched numbers would go to suspense")


def _covers(rows: pl.DataFrame, start: datetime, end: datetime) -> bool:
    """Whether the validity spans of ``rows`` together cover ``[start, end)`` without a gap."""
    covered = start
    for lo, hi in rows.select("valid_from", "valid_to").sort("valid_from").iter_rows():
        if lo <= covered < hi:
            covered = hi
    return covered >= end


def _check_dependent_validity(t: dict[str, pl.DataFrame], problems: list[str]) -> None:
    """What a row refers to must be valid whenever the row is: an allowance's overage rate, a rate's tier set
    (otherwise a record would find an exhausted allowance without its overage rate, or a tiered rate without
    tiers, and be priced at nothing)."""
    rates = t["rates"]
    for r in t["allowances"].filter(pl.col("overage_rate_id").is_not_null()).iter_rows(named=True):
        rows = rates.filter(pl.col("rate_id") == r["overage_rate_id"])
        if rows.height == 0:
            problems.append(f"allowances.csv line {r['row']}: unknown overage rate {r['overage_rate_id']!r}")
        elif not _covers(rows, r["valid_from"], r["valid_to"]):
            problems.append(f"allowances.csv line {r['row']}: overage rate {r['overage_rate_id']} is not valid for "
                            f"the whole validity of allowance {r['allowance_id']}")
    for r in rates.filter(pl.col("tier_set_id").is_not_null()).iter_rows(named=True):
        rows = t["tiers"].filter(pl.col("tier_set_id") == r["tier_set_id"]).unique(["valid_from", "valid_to"])
        if rows.height and not _covers(rows, r["valid_from"], r["valid_to"]):
            problems.append(f"rates.csv line {r['row']}: tier set {r['tier_set_id']} is not valid for the whole "
                            f"validity of rate {r['rate_id']}")


def _check_time_bands(t: dict[str, pl.DataFrame], problems: list[str]) -> None:
    """Each band set must cover every minute of every day type exactly once, at every validity start."""
    bands = t["time_bands"]
    for band_set_id in sorted(set(bands["band_set_id"].to_list())):
        rows = bands.filter(pl.col("band_set_id") == band_set_id).to_dicts()
        if len({(r["timezone"], r["holiday_calendar"]) for r in rows}) > 1:
            problems.append(f"time_bands.csv: band set {band_set_id} mixes time zones or holiday calendars")
        has_cal = any(r["holiday_calendar"] for r in rows)
        day_types = [*range(1, 8), *([HOLIDAY_DAY] if has_cal else [])]
        for at in sorted({r["valid_from"] for r in rows}):
            valid = [r for r in rows if r["valid_from"] <= at < r["valid_to"]]
            for d in day_types:
                spans = sorted((r["start_min"], r["end_min"]) for r in valid if d in r["day_types"])
                cur = 0
                label = "holidays" if d == HOLIDAY_DAY else [k for k, v in DAY_NAMES.items() if v == d][0]
                for s, e in spans:
                    if s > cur:
                        problems.append(f"time_bands.csv: band set {band_set_id} has no band for {label} "
                                        f"{_hhmm(cur)}-{_hhmm(s)} (rows valid {_local_day(at)})")
                    elif s < cur:
                        problems.append(f"time_bands.csv: band set {band_set_id} has overlapping bands on "
                                        f"{label} at {_hhmm(s)} (rows valid {_local_day(at)})")
                    cur = max(cur, e)
                if cur < 1440:
                    problems.append(f"time_bands.csv: band set {band_set_id} has no band for {label} "
                                    f"{_hhmm(cur)}-24:00 (rows valid {_local_day(at)})")


def _local_day(at: datetime) -> str:
    """A validity instant as the catalogue date it was written as (local midnight in the home zone)."""
    return f"{at.astimezone(ZoneInfo(HOME_TZ)):%Y-%m-%d}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
