"""Set-based rating in DuckDB: every usage record of a bill period priced in a handful of SQL statements.

Pipeline (each step one statement over all records, no per-record Python):
1. enrich: roaming zone (TADIG), plan and band set, destination by longest prefix (ASOF join over
   flattened prefix ranges), interconnect carrier, time band at the start instant;
2. split voice calls at band boundaries (band calendar built per day in the tariff's zone, DST-aware);
3. match the most specific rule once per distinct key (plan, account override, service, direction,
   zone, destination, rating group, slice, QoS, band), not once per record;
4. suspense: records that cannot be rated, with a reason code;
5. allowances: running totals per pool (line or family/business group) in usage order, the crossing
   record split into included and charged parts;
6. price blocks (first interval, then increments) in integer nano-units with explicit rounding;
   final rounding and max-cost cap per record;
7. settlement entries: roaming IOT (payable to the visited TADIG) and interconnect termination.

The Python twin for one record is :func:`pipelines.rating.quote.quote`; tests prove they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import duckdb
import polars as pl

from pipelines.rating.catalogue import ANY, NUMBER_KEY_SQL, Catalogue

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
"""
"""Reusable increment-rounding building blocks (integer nano-units, n >= 0): also for the CGRateS importer."""

SUSPENSE_REASONS = {
    "NOT_GUIDED": "the record has no account or plan (mediation could not guide it)",
    "NO_PLAN": "the plan is not in the catalogue at the record's start",
    "UNKNOWN_NETWORK": "the visited network (TADIG) has no roaming zone",
    "UNKNOWN_DESTINATION": "no destination prefix matches the called number",
    "BAD_QUANTITY": "the quantity is missing or negative",
    "NO_BAND": "the plan's time band set has no band at the record's start",
    "NO_TARIFF": "no rate in the catalogue matches the record",
}

_KEY_COLS = ("plan_id", "acct_key", "service", "direction", "zone", "k_dclass", "k_did", "k_rg", "k_snssai",
             "k_qos", "rule_epoch")


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
    cat.install(con)
    con.execute(SQL_MACROS)
    con.register("_ep", _epochs_frame(cat))
    con.execute("CREATE OR REPLACE TABLE cat.rule_epochs AS SELECT * FROM _ep")
    con.unregister("_ep")
    override_accounts = sorted(set(cat.tables["account_overrides"]["account_id"].to_list()))
    con.register("_oa", pl.DataFrame({"account_id": override_accounts}, schema={"account_id": pl.String}))
    con.execute("CREATE OR REPLACE TABLE cat.override_accounts AS SELECT * FROM _oa")
    con.unregister("_oa")


def rate_usage(con: duckdb.DuckDBPyConnection, cat: Catalogue, usage: str, *, apply_allowances: bool = True
               ) -> EngineOutput:
    """Rate every row of relation ``usage`` (USAGE_SCHEMA + ``bill_period`` + ``group_id``).

    ``group_id`` is the allowance-sharing group (parent account, else the account). Call :func:`prepare`
    on the connection first.
    """
    bounds = con.execute(f"""
        SELECT min(start_time), max(start_time + to_microseconds(
            CASE WHEN service = 'voice' THEN greatest(coalesce(quantity, 0), 0) ELSE 0 END * 1000000))
        FROM {usage}""").fetchone()
    cal = cat.band_calendar_frame(bounds[0] - timedelta(days=1), bounds[1] + timedelta(days=1)) \
        if bounds[0] is not None else cat.band_calendar_frame(_EPOCH0, _EPOCH0)
    con.register("_cal", cal)
    con.execute("CREATE OR REPLACE TEMP TABLE band_cal AS SELECT * FROM _cal")
    con.unregister("_cal")
    for step in _steps(usage, apply_allowances, cat.version):
        con.execute(step)
    rated = con.sql("SELECT * FROM rated_out ORDER BY record_id").pl()
    suspense = con.sql("SELECT * FROM suspense_out ORDER BY record_id").pl()
    settlement = con.sql("SELECT * FROM settlement_out ORDER BY record_id, partner_type, partner_id").pl()
    return EngineOutput(rated, suspense, settlement)


from datetime import UTC as _UTC  # noqa: E402
from datetime import datetime as _dt  # noqa: E402

_EPOCH0 = _dt(2000, 1, 1, tzinfo=_UTC)


def _steps(usage: str, apply_allowances: bool, version: str) -> list[str]:
    number_key = NUMBER_KEY_SQL.format(col="u.other_party")
    keys = ", ".join(_KEY_COLS)
    allowance_sql = _ALLOWANCE_SQL if apply_allowances else _NO_ALLOWANCE_SQL
    return [
        # 1. enrich ------------------------------------------------------------------------------
        f"""
        CREATE OR REPLACE TEMP TABLE e1 AS
        SELECT u.*,
            CASE WHEN u.service IN ('voice', 'sms') AND u.direction = 'MO' THEN {number_key} END AS dest_key,
            CASE WHEN u.service = 'voice' THEN 1000000 ELSE 1 END AS scale,
            de.epoch_id AS dest_epoch, ie.epoch_id AS ic_epoch, re.rule_epoch, re.epoch_start AS rule_at
        FROM {usage} u
        ASOF LEFT JOIN cat.dest_epochs de ON u.start_time >= de.epoch_start
        ASOF LEFT JOIN cat.ic_epochs ie ON u.start_time >= ie.epoch_start
        ASOF LEFT JOIN cat.rule_epochs re ON u.start_time >= re.epoch_start
        """,
        """
        CREATE OR REPLACE TEMP TABLE e2 AS
        SELECT e.*,
            CASE WHEN e.dest_key < d.hi THEN d.destination_id END AS destination_id,
            CASE WHEN e.dest_key < d.hi THEN d.destination_class END AS destination_class,
            CASE WHEN e.dest_key < ic.hi THEN ic.carrier_id END AS ic_carrier,
            CASE WHEN e.dest_key < ic.hi THEN ic.price_nanos END AS ic_price_nanos,
            CASE WHEN e.dest_key < ic.hi THEN ic.rate_unit END AS ic_unit,
            CASE WHEN e.dest_key < ic.hi THEN ic.increment END AS ic_increment,
            CASE WHEN e.dest_key < ic.hi THEN ic.currency END AS ic_currency,
            CASE WHEN e.dest_key < ic.hi THEN ic.prefix END AS ic_prefix
        FROM e1 e
        ASOF LEFT JOIN cat.dest_ranges d ON e.dest_epoch = d.epoch_id AND e.dest_key >= d.lo
        ASOF LEFT JOIN cat.ic_ranges ic ON e.ic_epoch = ic.epoch_id AND e.dest_key >= ic.lo
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE e3 AS
        SELECT e.* EXCLUDE (dest_key, dest_epoch, ic_epoch),
            CASE WHEN coalesce(e.visited_network, '') = '' THEN 'HOME' ELSE z.zone END AS zone,
            p.band_set_id,
            b.band AS band0, b.seg_end AS band0_end,
            CASE WHEN oa.account_id IS NULL THEN '{ANY}' ELSE e.account_id END AS acct_key,
            coalesce(e.destination_class, '') AS k_dclass, coalesce(e.destination_id, '') AS k_did,
            coalesce(CAST(e.rating_group AS VARCHAR), '') AS k_rg, coalesce(e.snssai, '') AS k_snssai,
            coalesce(CAST(e.qos_class AS VARCHAR), '') AS k_qos,
            CAST(greatest(coalesce(e.quantity, 0), 0) AS BIGINT) * e.scale AS total_len
        FROM e2 e
        LEFT JOIN cat.roaming_zones z ON z.tadig = e.visited_network
            AND z.valid_from <= e.start_time AND e.start_time < z.valid_to
        LEFT JOIN cat.plans p ON p.plan_id = e.plan_id
            AND p.valid_from <= e.start_time AND e.start_time < p.valid_to
        LEFT JOIN cat.override_accounts oa ON oa.account_id = e.account_id
        ASOF LEFT JOIN band_cal b ON b.band_set_id = p.band_set_id AND e.start_time >= b.seg_start
        """,
        # 2. segments: one per record, several for a voice call crossing band boundaries ---------------
        """
        CREATE OR REPLACE TEMP TABLE seg AS
        SELECT record_id, band0 AS band, CAST(0 AS BIGINT) AS a, total_len AS b
        FROM e3
        WHERE band0 IS NOT NULL AND NOT (service = 'voice' AND total_len > 0
              AND start_time + to_microseconds(total_len) > band0_end)
        UNION ALL
        SELECT e.record_id, c.band,
            greatest(CAST(0 AS BIGINT), epoch_us(c.seg_start) - epoch_us(e.start_time)) AS a,
            least(e.total_len, epoch_us(c.seg_end) - epoch_us(e.start_time)) AS b
        FROM e3 e JOIN band_cal c ON c.band_set_id = e.band_set_id
            AND c.seg_start < e.start_time + to_microseconds(e.total_len) AND c.seg_end > e.start_time
        WHERE e.band0 IS NOT NULL AND e.service = 'voice' AND e.total_len > 0
              AND e.start_time + to_microseconds(e.total_len) > e.band0_end
        """,
        # 3. rule matching once per distinct key and band ------------------------------------------------
        f"""
        CREATE OR REPLACE TEMP TABLE rkeys AS
        SELECT row_number() OVER (ORDER BY {keys}) AS key_id, *
        FROM (SELECT DISTINCT {keys}, band_set_id FROM e3 WHERE plan_id IS NOT NULL AND band_set_id IS NOT NULL)
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE kmatch AS
        SELECT k.key_id, bb.band, arg_max(r.rate_id, r.priority) AS rate_id
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
        GROUP BY k.key_id, bb.band
        """,
        """
        CREATE OR REPLACE TEMP TABLE krate AS
        SELECT m.key_id, m.band, t.*
        FROM kmatch m JOIN rkeys k USING (key_id)
        JOIN cat.rule_epochs re ON re.rule_epoch = k.rule_epoch
        JOIN cat.rates t ON t.rate_id = m.rate_id AND t.valid_from <= re.epoch_start AND re.epoch_start < t.valid_to
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE e4 AS
        SELECT e.*, k.key_id
        FROM e3 e LEFT JOIN rkeys k USING ({keys}, band_set_id)
        """,
        """
        CREATE OR REPLACE TEMP TABLE segr AS
        SELECT s.record_id, s.band, s.a, s.b, t.rate_id AS seg_rate_id, t.price_nanos AS seg_price_nanos,
               t.rate_unit AS seg_unit
        FROM seg s JOIN e4 e USING (record_id)
        LEFT JOIN krate t ON t.key_id = e.key_id AND t.band = s.band
        """,
        # 4. suspense -------------------------------------------------------------------------------------
        """
        CREATE OR REPLACE TEMP TABLE e5 AS
        SELECT e.*,
            t.rate_id AS rate_id, t.currency, t.connect_nanos, t.first_interval, t.increment,
            t.increment_decimals, t.rounding_method, t.rounding_decimals, t.max_nanos,
            CASE
                WHEN e.account_id IS NULL OR e.plan_id IS NULL THEN 'NOT_GUIDED'
                WHEN e.band_set_id IS NULL THEN 'NO_PLAN'
                WHEN e.zone IS NULL THEN 'UNKNOWN_NETWORK'
                WHEN e.service IN ('voice', 'sms') AND e.direction = 'MO' AND e.destination_id IS NULL
                    THEN 'UNKNOWN_DESTINATION'
                WHEN e.quantity IS NULL OR e.quantity < 0 THEN 'BAD_QUANTITY'
                WHEN e.band0 IS NULL THEN 'NO_BAND'
                WHEN t.rate_id IS NULL OR miss.record_id IS NOT NULL THEN 'NO_TARIFF'
            END AS reason_code
        FROM e4 e
        LEFT JOIN krate t ON t.key_id = e.key_id AND t.band = e.band0
        LEFT JOIN (SELECT DISTINCT record_id FROM segr WHERE seg_rate_id IS NULL) miss USING (record_id)
        """,
        allowance_sql,
        # 6. price blocks per segment ---------------------------------------------------------------------
        """
        CREATE OR REPLACE TEMP TABLE segc AS
        SELECT s.record_id, s.band, s.seg_rate_id, s.a, s.b,
            CASE WHEN r.total_len > r.origin AND s.a <= r.origin AND r.origin < s.b THEN
                CASE WHEN r.quantity_included = 0 THEN r.connect_nanos ELSE 0 END
                + block_cost(s.seg_price_nanos, r.first_len, s.seg_unit, r.increment_decimals, r.rounding_method)
            ELSE 0 END
            + CASE WHEN s.b > r.p0 THEN ceil_div(s.b - r.p0, r.increment * r.scale)
                                      - ceil_div(greatest(s.a, r.p0) - r.p0, r.increment * r.scale) ELSE 0 END
              * block_cost(s.seg_price_nanos, r.increment, s.seg_unit, r.increment_decimals, r.rounding_method)
              AS cost_nanos,
            CASE WHEN r.total_len > r.origin AND s.a <= r.origin AND r.origin < s.b THEN r.first_len ELSE 0 END
            + CASE WHEN s.b > r.p0 THEN ceil_div(s.b - r.p0, r.increment * r.scale)
                                      - ceil_div(greatest(s.a, r.p0) - r.p0, r.increment * r.scale) ELSE 0 END
              * r.increment AS units
        FROM segr s JOIN (
            SELECT *, quantity_included * scale AS origin,
                CASE WHEN quantity_included = 0 THEN first_interval ELSE increment END AS first_len,
                quantity_included * scale
                + CASE WHEN quantity_included = 0 THEN first_interval ELSE increment END * scale AS p0
            FROM e6) r USING (record_id)
        """,
        """
        CREATE OR REPLACE TEMP TABLE rec AS
        SELECT record_id, sum(cost_nanos) AS precise_nanos, CAST(sum(units) AS BIGINT) AS units,
               count(*) AS band_segments,
               CASE WHEN count(*) > 1 THEN string_agg(band || ' ' || seg_rate_id || ' ' || CAST(b - a AS VARCHAR)
                    || ' ' || CAST(units AS VARCHAR) || ' ' || CAST(cost_nanos AS VARCHAR), '; ' ORDER BY a) END
                    AS segments_detail
        FROM segc GROUP BY record_id
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE rated_out AS
        SELECT r.record_id, r.account_id, r.subscription_id, r.plan_id, r.payment_type, r.service,
            r.start_time, r.usage_date, r.bill_period, r.quantity,
            r.quantity_included, c.units AS quantity_charged,
            nanos_to_amount(CASE WHEN r.max_nanos IS NOT NULL AND x.final_nanos > r.max_nanos
                                 THEN r.max_nanos ELSE x.final_nanos END) AS charge,
            r.currency, r.destination_id, r.band0 AS band, r.rate_id, r.allowance_id,
            '{version}' AS tariff_version,
            r.direction, r.other_party, r.destination_class, r.zone, r.visited_network, r.rating_group,
            r.snssai, r.qos_class, nanos_to_amount(c.precise_nanos) AS precise_charge,
            (r.max_nanos IS NOT NULL AND x.final_nanos > r.max_nanos) AS capped,
            c.band_segments, c.segments_detail, r.allowance_pool, r.allowance_used_before
        FROM e6 r JOIN rec c USING (record_id),
        LATERAL (SELECT div_round(c.precise_nanos, pow10i(9 - r.rounding_decimals), r.rounding_method)
                        * pow10i(9 - r.rounding_decimals) AS final_nanos) x
        """,
        """
        CREATE OR REPLACE TEMP TABLE suspense_out AS
        SELECT record_id, reason_code, CASE reason_code
                WHEN 'NOT_GUIDED' THEN 'no account or plan on the record'
                WHEN 'NO_PLAN' THEN 'plan ' || coalesce(plan_id, '?') || ' is not in the catalogue on '
                    || strftime(start_time, '%Y-%m-%d')
                WHEN 'UNKNOWN_NETWORK' THEN 'visited network ' || visited_network || ' has no roaming zone'
                WHEN 'UNKNOWN_DESTINATION' THEN 'no destination prefix matches ' || coalesce(other_party, '(empty)')
                WHEN 'BAD_QUANTITY' THEN 'quantity ' || coalesce(CAST(quantity AS VARCHAR), 'null') || ' is not valid'
                WHEN 'NO_BAND' THEN 'band set ' || band_set_id || ' has no band at ' || CAST(start_time AS VARCHAR)
                ELSE 'no rate for plan ' || plan_id || ' ' || service || ' ' || coalesce(direction, '') || ' zone '
                    || zone || ' destination ' || coalesce(destination_id, '-') || ' rating group '
                    || coalesce(CAST(rating_group AS VARCHAR), '-') || ' band ' || coalesce(band0, '-')
            END AS message,
            account_id, subscription_id, plan_id, payment_type, service, start_time, usage_date, bill_period,
            quantity, other_party, visited_network
        FROM e5 WHERE reason_code IS NOT NULL
        """,
        # 7. settlement entries ---------------------------------------------------------------------------
        """
        CREATE OR REPLACE TEMP TABLE settlement_out AS
        SELECT record_id, partner_id, partner_type, 'payable' AS direction, service, start_time, usage_date,
            quantity, nanos_to_amount(div_round(CAST(price_nanos AS HUGEINT) * ceil_div(quantity, increment)
                * increment, rate_unit, 'half_up')) AS amount,
            currency, rate_id, band
        FROM (
            SELECT r.record_id, r.visited_network AS partner_id, 'roaming' AS partner_type, r.service,
                r.start_time, r.usage_date, r.quantity, i.price_nanos, i.increment, i.rate_unit, i.currency,
                'IOT:' || i.tadig || ':' || i.service || ':' || i.direction AS rate_id, r.band0 AS band,
                row_number() OVER (PARTITION BY r.record_id ORDER BY i.direction = '*') AS pick
            FROM e6 r JOIN cat.iot_rates i ON i.tadig = r.visited_network AND i.service = r.service
                AND (i.direction = '*' OR i.direction = r.direction)
                AND i.valid_from <= r.start_time AND r.start_time < i.valid_to
            WHERE r.zone <> 'HOME' AND r.quantity > 0
            UNION ALL
            SELECT r.record_id, r.ic_carrier, 'interconnect', r.service, r.start_time, r.usage_date, r.quantity,
                r.ic_price_nanos, r.ic_increment, r.ic_unit, r.ic_currency,
                'IC:' || r.ic_carrier || ':' || r.ic_prefix, r.band0, 1
            FROM e6 r
            WHERE r.service = 'voice' AND r.direction = 'MO' AND r.zone = 'HOME' AND r.quantity > 0
                AND r.destination_class <> 'onnet' AND r.ic_carrier IS NOT NULL
        ) WHERE pick = 1
        """,
    ]


_ALLOWANCE_SQL = f"""
CREATE OR REPLACE TEMP TABLE e6 AS
WITH ok AS (SELECT * FROM e5 WHERE reason_code IS NULL),
akeys AS (SELECT DISTINCT plan_id, service, direction, zone, k_dclass, rating_group, rule_epoch FROM ok),
amatch AS (
    SELECT k.*, a.allowance_id, a.unlimited, a.quantity AS allowance_qty, a.scope,
        row_number() OVER (PARTITION BY k.plan_id, k.service, k.direction, k.zone, k.k_dclass, k.rating_group,
                                        k.rule_epoch
                           ORDER BY (a.direction <> '{ANY}')::INT + (NOT list_contains(a.destination_classes, '{ANY}'))::INT
                                    + (a.rating_groups IS NOT NULL)::INT DESC, a.allowance_id) AS pick
    FROM akeys k JOIN cat.rule_epochs re ON re.rule_epoch = k.rule_epoch
    JOIN cat.allowances a ON a.plan_id = k.plan_id AND a.service = k.service
        AND (a.direction = '{ANY}' OR a.direction = k.direction)
        AND (list_contains(a.zones, '{ANY}') OR list_contains(a.zones, k.zone))
        AND (list_contains(a.destination_classes, '{ANY}') OR list_contains(a.destination_classes, k.k_dclass))
        AND (a.rating_groups IS NULL OR list_contains(a.rating_groups, CAST(k.rating_group AS BIGINT)))
        AND a.valid_from <= re.epoch_start AND re.epoch_start < a.valid_to
),
withpool AS (
    SELECT o.*, m.allowance_id, m.unlimited, m.allowance_qty,
        CASE WHEN m.allowance_id IS NULL THEN NULL
             ELSE m.allowance_id || '|' || o.bill_period || '|' || CASE WHEN m.scope = 'group'
                  THEN 'group:' || o.group_id ELSE 'line:' || coalesce(o.subscription_id, o.msisdn) END
        END AS allowance_pool
    FROM ok o LEFT JOIN (SELECT * FROM amatch WHERE pick = 1) m
        ON m.plan_id = o.plan_id AND m.service = o.service AND m.direction IS NOT DISTINCT FROM o.direction
        AND m.zone = o.zone AND m.k_dclass = o.k_dclass AND m.rating_group IS NOT DISTINCT FROM o.rating_group
        AND m.rule_epoch = o.rule_epoch
),
used AS (
    SELECT *, CASE WHEN allowance_pool IS NULL THEN NULL ELSE coalesce(sum(quantity) OVER (
        PARTITION BY allowance_pool ORDER BY start_time, record_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) END AS allowance_used_before
    FROM withpool
)
SELECT * EXCLUDE (unlimited, allowance_qty),
    CAST(CASE WHEN allowance_pool IS NULL THEN 0
         WHEN unlimited THEN quantity
         ELSE greatest(0, least(quantity, allowance_qty - allowance_used_before)) END AS BIGINT) AS quantity_included
FROM used
"""

_NO_ALLOWANCE_SQL = """
CREATE OR REPLACE TEMP TABLE e6 AS
SELECT *, CAST(NULL AS VARCHAR) AS allowance_id, CAST(NULL AS VARCHAR) AS allowance_pool,
    CAST(NULL AS HUGEINT) AS allowance_used_before, CAST(0 AS BIGINT) AS quantity_included
FROM e5 WHERE reason_code IS NULL
"""
