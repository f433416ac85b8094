"""Set-based rating in DuckDB: every usage record of a bill period priced in a handful of SQL statements.

Pipeline (each step one statement over all records, no per-record Python):
1. enrich: roaming zone (TADIG), plan and band set, destination by longest prefix (ASOF join over
   flattened prefix ranges), interconnect carrier, time band at the start instant;
2. split voice calls at band boundaries (band calendar built per day in the tariff's zone, DST-aware);
3. match the most specific rule once per distinct key (plan, account override, service, direction,
   zone, destination, rating group, slice, QoS, band), not once per record;
4. suspense: records that cannot be rated, with a reason code;
5. allowances: running totals per pool (line or family/business group) in usage order, the crossing
   record split into included and charged parts; what an allowance does not cover is priced with its
   overage rate when it has one;
6. price blocks (first interval, then increments) in integer nano-units with explicit rounding;
   final rounding and max-cost cap per record;
7. settlement entries: roaming IOT (payable to the visited TADIG) and interconnect termination.

The Python twin for one record is :func:`pipelines.rating.quote.quote`; tests prove they agree.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from pipelines.rating.catalogue import (
    ANY,
    KEY_SPACE,
    NUMBER_KEY_SQL,
    Catalogue,
    CatalogueError,
    quantity_ok_sql,
)

SQL_MACROS = """
CREATE OR REPLACE MACRO pow10i(e) AS CAST(power(10, e) AS HUGEINT);
CREATE OR REPLACE MACRO ceil_div(n, d) AS (n + d - 1) // d;
CREATE OR REPLACE MACRO div_round(n, d, method) AS CASE
    WHEN method = 'down' THEN n // d
    WHEN method = 'up' THEN (n + d - 1) // d
    WHEN method = 'half_up' THEN (2 * n + d) // (2 * d)
    ELSE n // d + CASE WHEN 2 * (n % d) > d OR (2 * (n % d) = d AND (n // d) % 2 = 1) THEN 1 ELSE 0 END
END;
CREATE OR REPLACE MACRO block_cost(price_nanos, len, unit, decimals, method) AS
    div_round(CAST(price_nanos AS HUGEINT) * len, CAST(unit AS HUGEINT) * pow10i(9 - decimals), method)
    * pow10i(9 - decimals);
CREATE OR REPLACE MACRO nanos_to_amount(n) AS CAST(n AS DECIMAL(38, 0)) * CAST(0.000000001 AS DECIMAL(10, 9));
CREATE OR REPLACE MACRO div_round_wide(n, d, method) AS CASE
    WHEN n >= 0 AND n < 2305843009213693952 AND d > 0 AND d <= 1000000000000000000
        THEN CAST(div_round(CAST(n AS BIGINT), CAST(d AS BIGINT), method) AS HUGEINT)
    ELSE div_round(CAST(n AS HUGEINT), CAST(d AS HUGEINT), method)
END;
"""
"""Reusable increment-rounding building blocks (integer nano-units, n >= 0): also for the CGRateS importer.

``div_round_wide`` is ``div_round`` on HUGEINT inputs, computed in BIGINT whenever ``2n + d`` fits (every
real charge): the same result, about 50x less CPU than HUGEINT division (measured per record)."""

SUSPENSE_REASONS = {
    "NOT_GUIDED": "the record has no account or plan (mediation could not guide it), or its account is not in the "
                  "customer data",
    "NO_PLAN": "the plan is not in the catalogue at the record's start",
    "UNKNOWN_NETWORK": "the visited network (TADIG) has no roaming zone",
    "UNKNOWN_DESTINATION": "no destination prefix matches the called number",
    "BAD_QUANTITY": "the quantity is missing, negative or absurd (voice over 31 days, over 10^15 units)",
    "NO_BAND": "the plan's time band set has no band at the record's start, or for part of the call",
    "NO_TARIFF": "no rate in the catalogue matches the record",
}


@dataclass(frozen=True)
class EngineOutput:
    """Frames produced by one engine run (sorted, contract-typed)."""

    rated: pl.DataFrame
    suspense: pl.DataFrame
    settlement: pl.DataFrame


def _epochs_frame(cat: Catalogue) -> pl.DataFrame:
    """Instants where any rule, rate, plan, zone or allowance row starts or stops being valid."""
    cuts = set()
    for name in ("rates", "plans", "allowances", "roaming_zones", "iot_rates"):
        cuts |= set(cat.tables[name]["valid_from"].to_list()) | set(cat.tables[name]["valid_to"].to_list())
    cuts |= set(cat.rules["valid_from"].to_list()) | set(cat.rules["valid_to"].to_list())
    from datetime import UTC, datetime

    cuts.add(datetime(1900, 1, 1, tzinfo=UTC))
    ordered = sorted(cuts)
    return pl.DataFrame({"rule_epoch": list(range(len(ordered))), "epoch_start": ordered},
                        schema={"rule_epoch": pl.Int64, "epoch_start": pl.Datetime("us", "UTC")})


def prepare(con: duckdb.DuckDBPyConnection, cat: Catalogue) -> None:
    """Install catalogue tables and macros in a connection (once per connection)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    # never turn an ASOF join into a nested loop on a (mis-)estimated small input: 100k prefix ranges
    con.execute("SET asof_loop_join_threshold = 0")
    con.execute("SET preserve_insertion_order = false")  # every output is ordered explicitly
    cat.install(con)
    con.execute(SQL_MACROS)
    con.register("_ep", _epochs_frame(cat))
    con.execute("CREATE OR REPLACE TABLE cat.rule_epochs AS SELECT * FROM _ep")
    con.unregister("_ep")
    override_accounts = sorted(set(cat.tables["account_overrides"]["account_id"].to_list()))
    con.register("_oa", pl.DataFrame({"account_id": override_accounts}, schema={"account_id": pl.String}))
    con.execute("CREATE OR REPLACE TABLE cat.override_accounts AS SELECT * FROM _oa")
    con.unregister("_oa")
    _create_enum_types(con)
    epochs = con.execute("SELECT count(*) FROM (SELECT epoch_start FROM cat.dest_epochs "
                         "UNION SELECT epoch_start FROM cat.ic_epochs)").fetchone()[0]
    if epochs > MAX_NUMBER_EPOCHS:  # checked first: the folded keys below would overflow BIGINT
        raise CatalogueError([f"destinations.csv / interconnect.csv: the prefix tables change validity {epochs} "
                              f"times; at most {MAX_NUMBER_EPOCHS} are supported: archive expired prefix rows"])
    con.execute(_NUMBER_RANGES_SQL)


_NUMBER_RANGES_SQL = f"""
CREATE OR REPLACE TABLE cat.number_epochs AS
-- instants where the destination or the interconnect prefix table changes; each has one epoch of both
WITH s AS (SELECT epoch_start FROM cat.dest_epochs UNION SELECT epoch_start FROM cat.ic_epochs)
SELECT CAST(row_number() OVER (ORDER BY s.epoch_start) - 1 AS BIGINT) AS num_epoch, s.epoch_start,
    d.epoch_id AS dest_epoch, i.epoch_id AS ic_epoch
FROM s JOIN cat.dest_epochs d ON d.epoch_start <= s.epoch_start AND s.epoch_start < d.epoch_end
JOIN cat.ic_epochs i ON i.epoch_start <= s.epoch_start AND s.epoch_start < i.epoch_end;

CREATE OR REPLACE TABLE cat.number_ranges AS
WITH edges AS (
    SELECT DISTINCT num_epoch, dest_epoch, ic_epoch, lo FROM (
        SELECT n.num_epoch, n.dest_epoch, n.ic_epoch, r.edge AS lo FROM cat.number_epochs n
        JOIN (SELECT epoch_id, lo AS edge FROM cat.dest_ranges UNION ALL SELECT epoch_id, hi FROM cat.dest_ranges) r
            ON r.epoch_id = n.dest_epoch
        UNION ALL
        SELECT n.num_epoch, n.dest_epoch, n.ic_epoch, r.edge FROM cat.number_epochs n
        JOIN (SELECT epoch_id, lo AS edge FROM cat.ic_ranges UNION ALL SELECT epoch_id, hi FROM cat.ic_ranges) r
            ON r.epoch_id = n.ic_epoch
        UNION ALL
        SELECT num_epoch, dest_epoch, ic_epoch, 0 FROM cat.number_epochs)
    WHERE lo < {KEY_SPACE}
)
SELECT x.num_epoch * {KEY_SPACE} + x.lo AS num_lo,
    CASE WHEN x.lo < d.hi THEN d.destination_id END AS destination_id,
    CASE WHEN x.lo < d.hi THEN CAST(d.destination_class AS rating_dclass) END AS destination_class,
    CASE WHEN x.lo < ic.hi THEN ic.lo END AS ic_lo
FROM edges x
ASOF LEFT JOIN cat.dest_ranges d ON x.dest_epoch = d.epoch_id AND x.lo >= d.lo
ASOF LEFT JOIN cat.ic_ranges ic ON x.ic_epoch = ic.epoch_id AND x.lo >= ic.lo
ORDER BY num_lo  -- stored in key order: a run's epochs are one contiguous, quickly filtered range
"""
"""Destination and interconnect prefix ranges merged into one range table, built once per connection.

Every range edge of either table starts a row, so between two edges both answers are constant; the epoch is
folded into the key (``num_epoch * KEY_SPACE + number key``, KEY_SPACE = 16 * 10^15, each epoch starting with an edge at 0), so one ASOF
join on a single BIGINT finds both the longest destination prefix and the interconnect range (an ASOF join with
equality conditions on the epochs cost three times as much).
"""
MAX_NUMBER_EPOCHS = (2**63 - 1) // KEY_SPACE
"""Folded keys fit a BIGINT for up to this many prefix-table epochs (576); :func:`prepare` checks it."""


ENUM_TYPES = {
    "rating_zone": "SELECT zone FROM cat.roaming_zones UNION SELECT 'HOME'",
    "rating_band_set": "SELECT band_set_id FROM cat.time_bands UNION SELECT band_set_id FROM cat.plans",
    "rating_band": "SELECT band FROM cat.time_bands",
    "rating_dclass": "SELECT destination_class FROM cat.dest_ranges",
}
"""Closed sets of catalogue values the work table ``e`` carries per record, as ENUM types (one byte each instead
of a string: ``e`` is cheaper to build and to scan). Only catalogue-derived columns: values read from usage
(plan, service, ...) can be anything, and a bad value must become suspense, not a failed cast."""


def _create_enum_types(con: duckdb.DuckDBPyConnection) -> None:
    """One ENUM type per :data:`ENUM_TYPES` entry."""
    for name, sql in ENUM_TYPES.items():
        _create_enum(con, name, sql)


def _create_enum(con: duckdb.DuckDBPyConnection, name: str, values_sql: str) -> None:
    """ENUM type ``name`` of the distinct non-null values of a one-column query, sorted (a plain VARCHAR alias
    when there is none). Built from the query, never from quoted literals: a value may hold any character."""
    values = f"SELECT DISTINCT v FROM ({values_sql}) t(v) WHERE v IS NOT NULL"
    empty = not con.execute(f"SELECT count(*) FROM ({values})").fetchone()[0]
    con.execute(f"CREATE OR REPLACE TYPE {name} AS " + ("VARCHAR" if empty else f"ENUM ({values} ORDER BY v)"))


def _lap(timings: dict[str, float] | None, step: str, started: float) -> None:
    """Add the seconds since ``started`` to ``timings[step]`` (accumulated over chunks; benchmark only)."""
    if timings is not None:
        timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - started, 3)


def rate_tables(con: duckdb.DuckDBPyConnection, cat: Catalogue, usage: str, *, apply_allowances: bool = True,
                timings: dict[str, float] | None = None) -> None:
    """Build the work tables of one rating run; :func:`rated_sql`, ``SUSPENSE_SQL`` and ``SETTLEMENT_SQL``
    then select the outputs (``pipelines.rating.stage`` fetches them chunk by chunk).

    ``usage`` is a relation of USAGE_SCHEMA columns + ``bill_period``, ``group_id`` (the allowance-sharing group:
    parent account, else the account), ``dest_key`` (:func:`dest_key_sql`) and ``account_known`` (the account is
    in the customer data; false -> suspense ``NOT_GUIDED``). Call :func:`prepare` on the
    connection first. ``timings`` (optional) receives seconds per step, for the benchmark.
    """
    def run(name: str, sql: str) -> None:
        started = time.perf_counter()
        con.execute(sql)
        _lap(timings, name, started)

    started = time.perf_counter()
    bounds = con.execute(f"""
        SELECT min(start_time), max(start_time + to_microseconds(
            CASE WHEN service = 'voice' AND {quantity_ok_sql("service", "quantity")} THEN quantity ELSE 0 END
            * 1000000)),
            max(start_time)
        FROM {usage}""").fetchone()
    lo, hi = (bounds[0], bounds[1]) if bounds[0] is not None else (_EPOCH0, _EPOCH0)
    _band_calendar(con, cat, lo - timedelta(days=1), hi + timedelta(days=1))
    epochs = {
        "ic_epoch": cat.epochs_frame("interconnect")["epoch_start"].to_list(),
        "rule_epoch": _epochs_frame(cat)["epoch_start"].to_list(),
        "num_epoch": [t for (t,) in con.execute("SELECT epoch_start FROM cat.number_epochs ORDER BY num_epoch")
                      .fetchall()],
    }
    referenced = sorted(set(cat.rules["destination_id"].to_list()) - {ANY})
    _lap(timings, "calendar", started)
    for table in ("e", "rkeys", "akeys"):  # the usage ENUM types below are replaced per run: drop dependents
        con.execute(f"DROP TABLE IF EXISTS {table}")
    # one scan for all five value sets
    con.execute("CREATE OR REPLACE TEMP TABLE usage_enum_values AS SELECT "
                + ", ".join(f"list(DISTINCT {c}) AS {c}" for c in USAGE_ENUM_COLS) + f" FROM {usage}")
    for col in USAGE_ENUM_COLS:
        _create_enum(con, f"usage_{col}", f"SELECT unnest({col}) FROM usage_enum_values")
    # only the number ranges of the prefix epochs this run's start instants fall in (a catalogue with years of
    # validity changes has a range table per epoch; the ASOF join sorts what it is given)
    first = max(bisect_right(epochs["num_epoch"], lo) - 1, 0)
    last = max(bisect_right(epochs["num_epoch"], bounds[2] or lo) - 1, first)
    run("enrich", _enrich_sql(usage, epochs, referenced, (first * KEY_SPACE, (last + 1) * KEY_SPACE)))
    run("keys", _keys_sql(referenced))
    for table in ("rkeys", "akeys"):
        dup = con.execute(f"SELECT count(*) - count(DISTINCT key_hash) FROM {table}").fetchone()[0]
        if dup:
            raise RuntimeError(f"rating key hash collision in {table}: report this (a different hash is needed)")
    run("match", _MATCH_SQL)
    run("segments", _SEGMENTS_SQL)
    run("price", _price_sql(apply_allowances))
    run("split_cost", _SPLIT_COST_SQL)
    run("tier_cost", _TIER_COST_SQL)


def _band_calendar(con: duckdb.DuckDBPyConnection, cat: Catalogue, lo: datetime, hi: datetime) -> None:
    """Band segments (``band_cal``) and the band of every UTC minute (``band_minutes``) covering [lo, hi).

    Kept across the chunks of a run while they fall inside the range already built (chunks of one period
    span the same days): a wider calendar only adds segments no record touches, so results are the same.
    """
    built = con.execute("SELECT lo, hi FROM band_cal_range").fetchone() if _exists(con, "band_cal_range") else None
    if built is not None and built[0] <= lo and hi <= built[1]:
        return
    if built is not None:
        lo, hi = min(lo, built[0]), max(hi, built[1])
    con.register("_cal", cat.band_calendar_frame(lo, hi))
    con.execute("""CREATE OR REPLACE TEMP TABLE band_cal AS
        SELECT CAST(band_set_id AS rating_band_set) AS band_set_id, seg_start, seg_end, CAST(band AS rating_band) AS band
        FROM _cal""")
    con.unregister("_cal")
    # band of a start instant by an equi-join on its UTC minute (band edges are whole minutes)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE band_minutes AS
        SELECT band_set_id, unnest(range(epoch_us(seg_start) // 60000000, epoch_us(seg_end) // 60000000)) AS minute,
               band, seg_end
        FROM band_cal""")
    con.execute("CREATE OR REPLACE TEMP TABLE band_cal_range AS SELECT $1 AS lo, $2 AS hi", [lo, hi])


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0])


WORK_VIEWS = ("p", "pr")
CALENDAR_TABLES = ("band_cal", "band_minutes", "band_cal_range")
"""Kept across chunks (see :func:`_band_calendar`); ``drop_work_tables(con, *CALENDAR_TABLES)`` frees them."""
WORK_TABLES = ("e", "rkeys", "akeys", "kmatch", "krate", "amatch", "seg", "seg_fault", "running",
               "split_cost", "tier_cost", "usage_enum_values")
"""Temp views and tables :func:`rate_tables` creates; dropped after each chunk so memory does not build up."""


def drop_work_tables(con: duckdb.DuckDBPyConnection, *extra: str) -> None:
    """Free one chunk's intermediate tables (and ``extra`` ones) before the next chunk is rated."""
    for view in WORK_VIEWS:
        con.execute(f"DROP VIEW IF EXISTS {view}")
    for table in (*WORK_TABLES, *extra):
        con.execute(f"DROP TABLE IF EXISTS {table}")


from datetime import UTC as _UTC  # noqa: E402
from datetime import datetime as _dt  # noqa: E402

_EPOCH0 = _dt(2000, 1, 1, tzinfo=_UTC)


def _epoch_case(col: str, starts: list) -> str:
    """Epoch number of an instant as a CASE over the (few) epoch starts: cheaper than a join."""
    whens = " ".join(f"WHEN {col} >= TIMESTAMPTZ '{t.isoformat()}' THEN {i}"
                     for i, t in reversed(list(enumerate(starts))))
    return f"CASE {whens} END"


USAGE_ENUM_COLS = ("plan_id", "payment_type", "service", "direction", "bill_period")
"""Low-cardinality usage strings carried in ``e`` as ENUMs built from the run's own distinct values."""

_USAGE_COLS_SQL = ", ".join(f"CAST(u.{c} AS usage_{c}) AS {c}" if c in USAGE_ENUM_COLS else f"u.{c}" for c in (
    "record_id", "account_id", "subscription_id", "plan_id", "payment_type", "service", "direction", "msisdn",
    "other_party", "start_time", "usage_date", "bill_period", "group_id", "quantity", "rating_group", "snssai",
    "qos_class", "visited_network", "account_known"))
"""Usage columns the engine carries (the rest of the usage record stays in the lake, linked by record_id)."""

_KEY_COLS_SQL = ("plan_id, acct_key, service, direction, zone, k_dclass, k_did, k_rg, k_snssai, k_qos, rule_epoch, "
                 "band_set_id")
_RAW_KEY_COLS_SQL = ("plan_id, acct_override, service, direction, zone, destination_class, rule_destination, rating_group, "
                     "snssai, qos_class, rule_epoch, band_set_id")
"""What a record's rule key is made of, as raw typed values: hashed per record in enrich (no strings built per
record); the keys step turns each distinct raw key into the string match columns of :data:`_KEY_COLS_SQL`."""
_AKEY_COLS_SQL = "plan_id, service, direction, zone, destination_class, rating_group, rule_epoch"


def _sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "NULL"


def _rule_destination(t: str, rule_destinations: list[str]) -> str:
    """The destination id when some rule names it, else NULL: other ids cannot change the match, so the distinct
    keys stay few."""
    return f"CASE WHEN {t}.destination_id IN ({_sql_list(rule_destinations)}) THEN {t}.destination_id END"


def dest_key_sql(alias: str) -> str:
    """The dialled number's key (``catalogue.number_key``; voice and SMS MO only), which every usage relation given
    to :func:`rate_tables` carries as ``dest_key``: computed once when the period is read, not in every scan."""
    number_key = NUMBER_KEY_SQL.format(col=f"{alias}.other_party")
    return f"CASE WHEN {alias}.service IN ('voice', 'sms') AND {alias}.direction = 'MO' THEN {number_key} END"


def _enrich_sql(usage: str, epochs: dict[str, list], rule_destinations: list[str],
                num_range: tuple[int, int] = (0, MAX_NUMBER_EPOCHS * KEY_SPACE)) -> str:
    cases = ", ".join(f"{_epoch_case('u.start_time', starts)} AS {name}" for name, starts in epochs.items()
                      if name != "num_epoch")
    # the dialled number's key folded with its prefix-table epoch (see _NUMBER_RANGES_SQL)
    num_key = f"{_epoch_case('u.start_time', epochs['num_epoch'])} * {KEY_SPACE} + u.dest_key"
    return f"""
    CREATE OR REPLACE TEMP TABLE e AS
    WITH u0 AS (
        SELECT {_USAGE_COLS_SQL}, {cases}, {num_key} AS num_key,
            CASE WHEN u.service = 'voice' THEN 1000000 ELSE 1 END AS scale
        FROM {usage} u
    ), numbers AS (
        -- straight from the input (not from u0) so the wide u0 is never materialised as a shared CTE
        SELECT DISTINCT {num_key} AS num_key FROM {usage} u WHERE u.dest_key IS NOT NULL
    ), lpm AS (
        -- longest-prefix match on the distinct numbers only: the ASOF join sorts a narrow relation
        SELECT n.num_key,
            -- the interconnect range (epoch, lo) only: settlement joins its carrier and price
            r.destination_id, r.destination_class, r.ic_lo
        FROM numbers n ASOF LEFT JOIN (SELECT * FROM cat.number_ranges
                                       WHERE num_lo >= {num_range[0]} AND num_lo < {num_range[1]}) r
            ON n.num_key >= r.num_lo
    ), u1 AS (
        SELECT u0.*, lpm.destination_id, lpm.destination_class, lpm.ic_lo
        FROM u0 LEFT JOIN lpm USING (num_key)
    ), u2 AS (
        SELECT u1.* EXCLUDE (num_key),
            CASE WHEN coalesce(u1.visited_network, '') = '' THEN CAST('HOME' AS rating_zone) ELSE z.zone END AS zone,
            p.band_set_id, oa.account_id AS acct_override,
            {_rule_destination("u1", rule_destinations)} AS rule_destination,
            CAST(CASE WHEN {quantity_ok_sql("u1.service", "u1.quantity")} THEN u1.quantity ELSE 0 END AS BIGINT)
                * u1.scale AS total_len
        FROM u1
        LEFT JOIN (SELECT tadig, valid_from, valid_to, CAST(zone AS rating_zone) AS zone FROM cat.roaming_zones) z
            ON z.tadig = u1.visited_network AND z.valid_from <= u1.start_time AND u1.start_time < z.valid_to
        LEFT JOIN (SELECT plan_id, valid_from, valid_to, CAST(band_set_id AS rating_band_set) AS band_set_id
                   FROM cat.plans) p ON p.plan_id = u1.plan_id
            AND p.valid_from <= u1.start_time AND u1.start_time < p.valid_to
        LEFT JOIN cat.override_accounts oa ON oa.account_id = u1.account_id
    ), u3 AS (
        SELECT u2.* EXCLUDE (rule_destination), hash({_RAW_KEY_COLS_SQL}) AS key_hash,
            hash({_AKEY_COLS_SQL}) AS akey_hash
        FROM u2
    )
    SELECT u3.*, b.band AS band0,
        (u3.service = 'voice' AND u3.total_len > 0 AND b.band IS NOT NULL
         AND u3.start_time + to_microseconds(u3.total_len) > b.seg_end) AS split
    FROM u3 LEFT JOIN band_minutes b ON b.band_set_id = u3.band_set_id
        AND b.minute = epoch_us(u3.start_time) // 60000000
    """


def _keys_sql(rule_destinations: list[str]) -> str:
    return f"""
    CREATE OR REPLACE TEMP TABLE rkeys AS
    WITH d AS (
        SELECT DISTINCT key_hash, plan_id, acct_override, service, direction, zone, destination_class,
            {_rule_destination("e", rule_destinations)} AS rule_destination, rating_group, snssai, qos_class,
            rule_epoch, band_set_id
        FROM e WHERE e.plan_id IS NOT NULL AND e.band_set_id IS NOT NULL
    )
    SELECT key_hash, plan_id, coalesce(acct_override, '{ANY}') AS acct_key, service, direction, zone,
        coalesce(destination_class, '') AS k_dclass, coalesce(rule_destination, '') AS k_did,
        coalesce(CAST(rating_group AS VARCHAR), '') AS k_rg, coalesce(snssai, '') AS k_snssai,
        coalesce(CAST(qos_class AS VARCHAR), '') AS k_qos, rule_epoch, band_set_id
    FROM d;
    CREATE OR REPLACE TEMP TABLE akeys AS
    SELECT DISTINCT akey_hash AS key_hash, plan_id, service, direction, zone,
        coalesce(destination_class, '') AS k_dclass, rating_group, rule_epoch
    FROM e WHERE plan_id IS NOT NULL;
    """

RATE_COLUMNS = ("rate_id", "currency", "connect_nanos", "price_nanos", "rate_unit", "first_interval", "increment",
                "increment_decimals", "rounding_method", "rounding_decimals", "max_nanos", "tier_set_id", "first_cost",
                "incr_cost", "round_unit")
"""The pricing columns of a matched rate (``krate``), replaced as a whole by the allowance's overage rate."""

_MATCH_SQL = f"""
CREATE OR REPLACE TEMP TABLE kmatch AS
SELECT k.key_hash, bb.band, arg_max(r.rate_id, r.priority) AS rate_id
FROM rkeys k
JOIN (SELECT DISTINCT band_set_id, band FROM band_cal) bb ON bb.band_set_id = k.band_set_id
JOIN cat.rule_epochs re ON re.rule_epoch = k.rule_epoch
JOIN cat.rules r ON r.service = k.service
    AND (r.plan_id = '{ANY}' OR r.plan_id = k.plan_id) AND (r.account_id = '{ANY}' OR r.account_id = k.acct_key)
    AND (r.direction = '{ANY}' OR r.direction = k.direction) AND (r.zone = '{ANY}' OR r.zone = k.zone)
    AND (r.destination_class = '{ANY}' OR r.destination_class = k.k_dclass)
    AND (r.destination_id = '{ANY}' OR r.destination_id = k.k_did)
    AND (r.rating_group = '{ANY}' OR r.rating_group = k.k_rg)
    AND (r.snssai = '{ANY}' OR r.snssai = k.k_snssai) AND (r.qos_class = '{ANY}' OR r.qos_class = k.k_qos)
    AND (r.band = '{ANY}' OR r.band = bb.band)
    AND r.valid_from <= re.epoch_start AND re.epoch_start < r.valid_to
GROUP BY k.key_hash, bb.band;

CREATE OR REPLACE TEMP TABLE krate AS
-- the cost of a first block and of an increment depend on the rate only: priced once per key, not per record
SELECT m.key_hash, m.band, t.*,
    block_cost(t.price_nanos, t.first_interval, t.rate_unit, t.increment_decimals, t.rounding_method) AS first_cost,
    block_cost(t.price_nanos, t.increment, t.rate_unit, t.increment_decimals, t.rounding_method) AS incr_cost,
    pow10i(9 - t.rounding_decimals) AS round_unit
FROM kmatch m JOIN rkeys k USING (key_hash)
JOIN cat.rule_epochs re ON re.rule_epoch = k.rule_epoch
JOIN cat.rates t ON t.rate_id = m.rate_id AND t.valid_from <= re.epoch_start AND re.epoch_start < t.valid_to;

CREATE OR REPLACE TEMP TABLE amatch AS
-- the allowance of each key, with its overage rate (if any) priced once per key like krate
SELECT m.key_hash, m.allowance_id, m.unlimited, m.allowance_qty, m.scope,
    {", ".join(f"o.{c} AS o_{c}" for c in RATE_COLUMNS)}
FROM (
    SELECT k.key_hash, k.rule_epoch, a.allowance_id, a.unlimited, a.quantity AS allowance_qty, a.scope,
        a.overage_rate_id,
        row_number() OVER (PARTITION BY k.key_hash
                           ORDER BY (a.direction <> '{ANY}')::INT + (NOT list_contains(a.destination_classes, '{ANY}'))::INT
                                    + (a.rating_groups IS NOT NULL)::INT DESC, a.allowance_id) AS pick
    FROM akeys k JOIN cat.rule_epochs re ON re.rule_epoch = k.rule_epoch
    JOIN cat.allowances a ON a.plan_id = k.plan_id AND a.service = k.service
        AND (a.direction = '{ANY}' OR a.direction = k.direction)
        AND (list_contains(a.zones, '{ANY}') OR list_contains(a.zones, k.zone))
        AND (list_contains(a.destination_classes, '{ANY}') OR list_contains(a.destination_classes, k.k_dclass))
        AND (a.rating_groups IS NULL OR list_contains(a.rating_groups, CAST(k.rating_group AS BIGINT)))
        AND a.valid_from <= re.epoch_start AND re.epoch_start < a.valid_to
) m
JOIN cat.rule_epochs re ON re.rule_epoch = m.rule_epoch
LEFT JOIN (
    SELECT t.*,
        block_cost(t.price_nanos, t.first_interval, t.rate_unit, t.increment_decimals, t.rounding_method) AS first_cost,
        block_cost(t.price_nanos, t.increment, t.rate_unit, t.increment_decimals, t.rounding_method) AS incr_cost,
        pow10i(9 - t.rounding_decimals) AS round_unit
    FROM cat.rates t
) o ON o.rate_id = m.overage_rate_id AND o.valid_from <= re.epoch_start AND re.epoch_start < o.valid_to
WHERE m.pick = 1;
"""

_SEGMENTS_SQL = """
CREATE OR REPLACE TEMP TABLE seg AS
SELECT e.record_id, c.band,
    greatest(CAST(0 AS BIGINT), epoch_us(c.seg_start) - epoch_us(e.start_time)) AS a,
    least(e.total_len, epoch_us(c.seg_end) - epoch_us(e.start_time)) AS b,
    t.rate_id AS seg_rate_id, t.price_nanos AS seg_price_nanos, t.rate_unit AS seg_unit, e.total_len
FROM e JOIN band_cal c ON c.band_set_id = e.band_set_id
    AND c.seg_start < e.start_time + to_microseconds(e.total_len) AND c.seg_end > e.start_time
LEFT JOIN krate t ON t.key_hash = e.key_hash AND t.band = c.band
WHERE e.split;

CREATE OR REPLACE TEMP TABLE seg_fault AS
-- split calls that cannot be priced whole: part of the call in no band (the band set ends or has a gap), or a
-- band without a rate
SELECT record_id, CASE WHEN sum(b - a) < any_value(total_len) THEN 'NO_BAND' ELSE 'NO_TARIFF' END AS fault
FROM seg GROUP BY record_id
HAVING sum(b - a) < any_value(total_len) OR bool_or(seg_rate_id IS NULL)
"""


def _price_sql(apply_allowances: bool) -> str:
    """Pricing inputs: views ``pr`` (rate + suspense reason) and ``p`` (+ allowance), one narrow table.

    Only the allowance running total is materialised (``running``: record_id + units used before); the
    rest is a few joins on small tables, cheaper to redo in each output query than to copy the wide rows.
    """
    allowance = "a.allowance_id" if apply_allowances else "CAST(NULL AS VARCHAR)"
    pooled = f"""
    WITH pooled AS (
        SELECT pr.*, CASE WHEN reason_code IS NULL THEN {allowance} END AS allowance_id,
            CASE WHEN reason_code IS NULL AND {allowance} IS NOT NULL THEN {allowance} || '|' || bill_period || '|'
                || CASE WHEN a.scope = 'group' THEN 'group:' || group_id
                        ELSE 'line:' || coalesce(subscription_id, msisdn) END
            END AS allowance_pool,
            a.unlimited, a.allowance_qty, {", ".join(f"a.o_{c}" for c in RATE_COLUMNS)}
        FROM pr LEFT JOIN amatch a ON a.key_hash = pr.akey_hash
    )"""
    return f"""
    CREATE OR REPLACE TEMP VIEW pr AS
    SELECT e.*, {", ".join(f"t.{c}" for c in RATE_COLUMNS)},
        CASE
            WHEN e.account_id IS NULL OR e.plan_id IS NULL OR NOT e.account_known THEN 'NOT_GUIDED'
            WHEN e.band_set_id IS NULL THEN 'NO_PLAN'
            WHEN e.zone IS NULL THEN 'UNKNOWN_NETWORK'
            WHEN e.service IN ('voice', 'sms') AND e.direction = 'MO' AND e.destination_id IS NULL
                THEN 'UNKNOWN_DESTINATION'
            WHEN NOT {quantity_ok_sql("e.service", "e.quantity")} THEN 'BAD_QUANTITY'
            WHEN e.band0 IS NULL OR sf.fault = 'NO_BAND' THEN 'NO_BAND'
            WHEN t.rate_id IS NULL OR sf.fault = 'NO_TARIFF' THEN 'NO_TARIFF'
        END AS reason_code
    FROM e
    LEFT JOIN krate t ON t.key_hash = e.key_hash AND t.band = e.band0
    LEFT JOIN seg_fault sf ON sf.record_id = e.record_id;

    -- running total per pool in usage order, on a narrow relation (the window sorts its payload)
    CREATE OR REPLACE TEMP TABLE running AS {pooled}
    SELECT record_id, coalesce(sum(quantity) OVER (
            PARTITION BY allowance_pool ORDER BY start_time, record_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS allowance_used_before
    FROM pooled WHERE allowance_pool IS NOT NULL;

    -- a record the allowance does not fully cover is priced with the allowance's overage rate, if it has one
    CREATE OR REPLACE TEMP VIEW p AS {pooled}, included AS (
        SELECT pooled.* EXCLUDE (unlimited, allowance_qty), running.allowance_used_before,
            CAST(CASE WHEN allowance_pool IS NULL THEN 0 WHEN unlimited THEN quantity
                 ELSE greatest(0, least(quantity, allowance_qty - running.allowance_used_before)) END AS BIGINT)
                AS quantity_included
        FROM pooled LEFT JOIN running USING (record_id)
    ), marked AS (
        SELECT included.*, (allowance_pool IS NOT NULL AND o_rate_id IS NOT NULL AND quantity_included < quantity)
            AS overage
        FROM included
    )
    SELECT marked.* EXCLUDE ({", ".join(RATE_COLUMNS)}, {", ".join(f"o_{c}" for c in RATE_COLUMNS)}),
        {", ".join(f"CASE WHEN overage THEN o_{c} ELSE {c} END AS {c}" for c in RATE_COLUMNS)}
    FROM marked
    """


_SPLIT_COST_SQL = """
CREATE OR REPLACE TEMP TABLE split_cost AS
WITH r AS (
    SELECT record_id, total_len, quantity_included, connect_nanos, increment, increment_decimals, rounding_method,
        overage, rate_id, price_nanos, rate_unit,
        scale, quantity_included * scale AS origin,
        CASE WHEN quantity_included = 0 THEN first_interval ELSE increment END AS first_len,
        quantity_included * scale
        + CASE WHEN quantity_included = 0 THEN first_interval ELSE increment END * scale AS p0
    FROM p WHERE split AND reason_code IS NULL
), s AS (
    -- each band's price, or the overage rate's single price for every band
    SELECT seg.record_id, seg.band, seg.a, seg.b, r.* EXCLUDE (record_id, overage, rate_id, price_nanos, rate_unit),
        CASE WHEN r.overage THEN r.rate_id ELSE seg.seg_rate_id END AS seg_rate_id,
        CASE WHEN r.overage THEN r.price_nanos ELSE seg.seg_price_nanos END AS seg_price_nanos,
        CASE WHEN r.overage THEN r.rate_unit ELSE seg.seg_unit END AS seg_unit
    FROM seg JOIN r USING (record_id)
), c AS (
    SELECT s.record_id, s.band, s.seg_rate_id, s.a, s.b,
        CASE WHEN s.total_len > s.origin AND s.a <= s.origin AND s.origin < s.b THEN
            CASE WHEN s.quantity_included = 0 THEN s.connect_nanos ELSE 0 END
            + block_cost(s.seg_price_nanos, s.first_len, s.seg_unit, s.increment_decimals, s.rounding_method)
        ELSE 0 END
        + CASE WHEN s.b > s.p0 THEN ceil_div(s.b - s.p0, s.increment * s.scale)
                                  - ceil_div(greatest(s.a, s.p0) - s.p0, s.increment * s.scale) ELSE 0 END
          * block_cost(s.seg_price_nanos, s.increment, s.seg_unit, s.increment_decimals, s.rounding_method)
          AS cost_nanos,
        CASE WHEN s.total_len > s.origin AND s.a <= s.origin AND s.origin < s.b THEN s.first_len ELSE 0 END
        + CASE WHEN s.b > s.p0 THEN ceil_div(s.b - s.p0, s.increment * s.scale)
                                  - ceil_div(greatest(s.a, s.p0) - s.p0, s.increment * s.scale) ELSE 0 END
          * s.increment AS units
    FROM s
)
SELECT record_id, sum(cost_nanos) AS precise_nanos, CAST(sum(units) AS BIGINT) AS units,
    count(*) AS band_segments,
    string_agg(band || ' ' || seg_rate_id || ' ' || CAST(b - a AS VARCHAR) || ' ' || CAST(units AS VARCHAR)
               || ' ' || CAST(cost_nanos AS VARCHAR), '; ' ORDER BY a) AS segments_detail
FROM c GROUP BY record_id
"""


_UNITS_SQL = """
    CASE WHEN total_len > origin THEN first_len ELSE 0 END
    + CASE WHEN total_len > origin + first_len * scale
           THEN ceil_div(total_len - origin - first_len * scale, increment * scale) ELSE 0 END * increment"""
"""Billed units of an unsplit record (blocks from the allowance split point: first block, then increments)."""

_PRICED_SQL = """
    SELECT p.*, quantity_included * scale AS origin,
        CASE WHEN quantity_included = 0 THEN first_interval ELSE increment END AS first_len
    FROM p WHERE reason_code IS NULL"""

_TIER_COST_SQL = f"""
CREATE OR REPLACE TEMP TABLE tier_cost AS
WITH r AS ({_PRICED_SQL}
), tw AS (
    -- tiered rates: position of the record's billed units in the line's running total for the period
    SELECT record_id, start_time, tier_set_id, units, rate_unit, increment_decimals, rounding_method,
        coalesce(sum(units) OVER w, 0) AS tier_before,
        sum(units) OVER (PARTITION BY coalesce(subscription_id, msisdn), bill_period, tier_set_id) AS tier_total
    FROM (SELECT r.*, {_UNITS_SQL} AS units FROM r WHERE tier_set_id IS NOT NULL AND NOT split)
    WINDOW w AS (PARTITION BY coalesce(subscription_id, msisdn), bill_period, tier_set_id
                 ORDER BY start_time, record_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT tw.record_id, any_value(tw.tier_before) AS tier_before, any_value(tw.tier_total) AS tier_total,
    sum(CASE WHEN tt.tier_type = 'graduated' THEN
            block_cost(tt.price_nanos, greatest(0, least(tw.tier_before + tw.units, tt.to_units)
                                                  - greatest(tw.tier_before, tt.from_units)),
                       tw.rate_unit, tw.increment_decimals, tw.rounding_method)
        WHEN tw.tier_total >= tt.from_units AND tw.tier_total < tt.to_units THEN
            block_cost(tt.price_nanos, tw.units, tw.rate_unit, tw.increment_decimals, tw.rounding_method)
        ELSE 0 END) AS tier_nanos
FROM tw JOIN cat.tiers tt ON tt.tier_set_id = tw.tier_set_id
    AND tt.valid_from <= tw.start_time AND tw.start_time < tt.valid_to
GROUP BY tw.record_id
"""
"""Tier charges of the (few) records on tiered rates, as a narrow table the rated query joins."""


def rated_sql(version: str) -> str:
    return f"""
    WITH r AS ({_PRICED_SQL}
    ), c AS (
        SELECT r.*,
            CASE WHEN r.split THEN sc.precise_nanos ELSE
                CASE WHEN r.total_len > r.origin THEN
                    CASE WHEN r.quantity_included = 0 THEN r.connect_nanos ELSE 0 END
                    + CASE WHEN r.tier_set_id IS NULL THEN  -- block_cost of first_len, precomputed per rate
                        CASE WHEN r.quantity_included = 0 THEN r.first_cost ELSE r.incr_cost END
                      ELSE 0 END
                ELSE 0 END
                + CASE WHEN r.tier_set_id IS NULL AND r.total_len > r.origin + r.first_len * r.scale
                       THEN ceil_div(r.total_len - r.origin - r.first_len * r.scale, r.increment * r.scale) ELSE 0 END
                  * r.incr_cost
            END + coalesce(tc.tier_nanos, 0) AS precise_nanos,
            CASE WHEN r.split THEN sc.units ELSE {_UNITS_SQL} END AS units,
            coalesce(sc.band_segments, 1) AS band_segments, sc.segments_detail, tc.tier_before, tc.tier_total
        FROM r LEFT JOIN split_cost sc USING (record_id) LEFT JOIN tier_cost tc USING (record_id)
    ), f AS (
        SELECT c.*, div_round_wide(c.precise_nanos, c.round_unit, c.rounding_method) * c.round_unit AS final_nanos
        FROM c
    )
    SELECT record_id, account_id, subscription_id, plan_id, payment_type, service, start_time, usage_date,
        bill_period, quantity, quantity_included, CAST(units AS BIGINT) AS quantity_charged,
        nanos_to_amount(CASE WHEN max_nanos IS NOT NULL AND final_nanos > max_nanos THEN max_nanos
                             ELSE final_nanos END) AS charge,
        currency, destination_id, band0 AS band, rate_id, allowance_id, '{version}' AS tariff_version,
        direction, other_party, destination_class, zone, visited_network, rating_group, snssai, qos_class,
        nanos_to_amount(precise_nanos) AS precise_charge,
        (max_nanos IS NOT NULL AND final_nanos > max_nanos) AS capped,
        band_segments, segments_detail, allowance_pool, allowance_used_before, tier_set_id, tier_before, tier_total
    FROM f
    """


SUSPENSE_SQL = """
SELECT record_id, reason_code, CASE reason_code
        WHEN 'NOT_GUIDED' THEN CASE WHEN account_id IS NULL OR plan_id IS NULL THEN 'no account or plan on the record'
            ELSE 'account ' || account_id || ' is not in the customer data' END
        WHEN 'NO_PLAN' THEN 'plan ' || coalesce(plan_id, '?') || ' is not in the catalogue on '
            || strftime(start_time, '%Y-%m-%d')
        WHEN 'UNKNOWN_NETWORK' THEN 'visited network ' || visited_network || ' has no roaming zone'
        WHEN 'UNKNOWN_DESTINATION' THEN 'no destination prefix matches ' || coalesce(other_party, '(empty)')
        WHEN 'BAD_QUANTITY' THEN 'quantity ' || coalesce(CAST(quantity AS VARCHAR), 'null') || ' is not valid'
        WHEN 'NO_BAND' THEN 'band set ' || band_set_id || CASE WHEN band0 IS NULL THEN ' has no band at '
            ELSE ' has no band for part of the call starting ' END || CAST(start_time AS VARCHAR)
        ELSE 'no rate for plan ' || plan_id || ' ' || service || ' ' || coalesce(direction, '') || ' zone '
            || zone || ' destination ' || coalesce(destination_id, '-') || ' rating group '
            || coalesce(CAST(rating_group AS VARCHAR), '-') || ' band ' || coalesce(band0, '-')
    END AS message,
    account_id, subscription_id, plan_id, payment_type, service, start_time, usage_date, bill_period,
    quantity, other_party, visited_network
FROM pr WHERE reason_code IS NOT NULL
"""

SETTLEMENT_SQL = """
SELECT record_id, partner_id, partner_type, 'payable' AS direction, service, start_time, usage_date,
    quantity, nanos_to_amount(div_round_wide(CAST(price_nanos AS HUGEINT) * ceil_div(quantity, increment)
        * increment, rate_unit, 'half_up')) AS amount,
    currency, rate_id, band
FROM (
    SELECT r.record_id, r.visited_network AS partner_id, 'roaming' AS partner_type, r.service,
        r.start_time, r.usage_date, r.quantity,
        coalesce(i1.price_nanos, i2.price_nanos) AS price_nanos, coalesce(i1.increment, i2.increment) AS increment,
        coalesce(i1.rate_unit, i2.rate_unit) AS rate_unit, coalesce(i1.currency, i2.currency) AS currency,
        'IOT:' || r.visited_network || ':' || r.service || ':' || coalesce(i1.direction, i2.direction) AS rate_id,
        r.band0 AS band
    FROM pr r
    LEFT JOIN cat.iot_rates i1 ON i1.tadig = r.visited_network AND i1.service = r.service
        AND i1.direction = r.direction AND i1.valid_from <= r.start_time AND r.start_time < i1.valid_to
    LEFT JOIN cat.iot_rates i2 ON i2.tadig = r.visited_network AND i2.service = r.service
        AND i2.direction = '*' AND i2.valid_from <= r.start_time AND r.start_time < i2.valid_to
    WHERE r.reason_code IS NULL AND r.zone <> 'HOME' AND r.quantity > 0
        AND coalesce(i1.tadig, i2.tadig) IS NOT NULL
    UNION ALL
    SELECT r.record_id, ic.carrier_id, 'interconnect', r.service, r.start_time, r.usage_date, r.quantity,
        ic.price_nanos, ic.increment, ic.rate_unit, ic.currency,
        'IC:' || ic.carrier_id || ':' || ic.prefix, r.band0
    FROM pr r JOIN cat.ic_ranges ic ON ic.epoch_id = r.ic_epoch AND ic.lo = r.ic_lo
    WHERE r.reason_code IS NULL AND r.service = 'voice' AND r.direction = 'MO' AND r.zone = 'HOME'
        AND r.quantity > 0 AND r.destination_class <> 'onnet' AND ic.carrier_id IS NOT NULL
)
"""
