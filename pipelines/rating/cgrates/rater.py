"""Rate events against a CGRateS tariff plan the way CGRateS's ``CallDescriptor.GetCost`` does.

Everything after parsing is set-based DuckDB SQL over all events at once:

1. rating profile selection (tenant/category/subject, else ``*any``; the activation in force at
   the event start; FallbackSubjects depth-first up to CGRateS's recursion depth of 3);
2. destination match inside the selected rating plan (longest prefix, then the destination whose
   rate intervals weigh most, then ``*any``);
3. the call split into timespans at midnight (voice), at timing changes (voice; highest weight,
   then latest start wins) and at the rate's GroupIntervalStart slots;
4. a recursive walk over the timespans that rounds each up to a multiple of its rate increment
   (overlapping the next ones, as ``roundTimeSpansToIncrement``), prices it per increment with
   the general rounding decimals, adds the connect fee, applies the MaxCost ``*free`` cap with
   CGRateS's own cumulative bookkeeping, and finally rounds with the longest DestinationRate
   rounding (method + decimals) of the timespans.

Money is integer nano-units (HUGEINT, 9 decimals) inside SQL and ``Decimal`` outside: no float.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipelines.rating.cgrates.goformats import (
    NS_PER_DAY,
    GoFormatError,
    parse_cgr_duration,
    parse_rfc3339,
)
from pipelines.rating.cgrates.tariffplan import ANY, ANY_TIMING, TariffPlan, TariffPlanError

EVENT_COLUMNS = ("id", "tenant", "category", "subject", "destination", "start_time", "usage")
DEFAULT_TENANT = "cgrates.org"    # CGRateS general.default_tenant
DEFAULT_CATEGORY = "call"         # CGRateS general.default_category
DEFAULT_ROUNDING_DECIMALS = 5     # CGRateS general.rounding_decimals
MAX_FALLBACK_DEPTH = 3            # engine.RECURSION_MAX_DEPTH

# Error names written to COSTS.csv. The first two are CGRateS's own; the others are ours for
# input CGRateS would refuse before rating (see docs/cgrates.md).
RATING_PLAN_NOT_FOUND = "RATING_PLAN_NOT_FOUND"
UNAUTHORIZED_DESTINATION = "UNAUTHORIZED_DESTINATION"
MANDATORY_IE_MISSING = "MANDATORY_IE_MISSING"
MALFORMED_START_TIME = "MALFORMED_START_TIME"
MALFORMED_USAGE = "MALFORMED_USAGE"
NEGATIVE_USAGE = "NEGATIVE_USAGE"
NO_RATE_INTERVAL = "NO_RATE_INTERVAL"


@dataclass(frozen=True)
class Event:
    """One parsed event; ``voice`` when the usage carried a time unit (CGRateS ToR ``*voice``)."""

    seq: int
    event_id: str
    tenant: str
    category: str
    subject: str
    destination: str
    start_utc_ns: int
    start_local_ns: int
    usage_ns: int
    voice: bool


@dataclass(frozen=True)
class Cost:
    """The outcome for one input row, in input order: a cost or a CGRateS-style error name."""

    seq: int
    event_id: str
    cost: Decimal | None
    error: str


def parse_event(seq: int, row: dict[str, str]) -> Event | Cost:
    """Validate one EVENTS.csv row; a bad row becomes an error :class:`Cost`, never an exception."""
    event_id = (row.get("id") or "").strip()
    subject = (row.get("subject") or "").strip()
    if not subject:
        return Cost(seq, event_id, None, MANDATORY_IE_MISSING)
    try:
        start = parse_rfc3339(row.get("start_time") or "")
    except GoFormatError:
        return Cost(seq, event_id, None, MALFORMED_START_TIME)
    try:
        usage, voice = parse_cgr_duration(row.get("usage") or "")
    except GoFormatError:
        return Cost(seq, event_id, None, MALFORMED_USAGE)
    if usage < 0:
        return Cost(seq, event_id, None, NEGATIVE_USAGE)
    destination = (row.get("destination") or "").strip() or ANY
    return Event(seq, event_id, (row.get("tenant") or "").strip() or DEFAULT_TENANT,
                 (row.get("category") or "").strip() or DEFAULT_CATEGORY, subject, destination,
                 start.utc_ns, start.local_ns, usage, voice)


def _nano(value: Decimal, where: str) -> str:
    scaled = value.scaleb(9)
    if scaled != scaled.to_integral_value():
        raise TariffPlanError(f"{where}: more than 9 decimals cannot be rated exactly: {value}")
    return str(int(scaled))


def _catalogue_frames(plan: TariffPlan) -> dict[str, pl.DataFrame]:
    """The tariff plan as relational tables (amounts as nano-unit integer text, cast in SQL)."""
    first_slot: dict[str, tuple[int, str]] = {}
    for s in plan.rates:
        fee = _nano(s.connect_fee, f"Rates.csv line {s.line} ConnectFee")
        # the connect fee is the first slot's in file order (loader GetRateInterval: RateSlots[0])
        if s.rate_id not in first_slot or s.line < first_slot[s.rate_id][0]:
            first_slot[s.rate_id] = (s.line, fee)
    slots = pl.DataFrame({
        "rate_id": [s.rate_id for s in plan.rates],
        "gis": [s.group_start_ns for s in plan.rates],
        "unit": [s.unit_ns for s in plan.rates],
        "inc": [s.increment_ns for s in plan.rates],
        "r9": [_nano(s.rate, f"Rates.csv line {s.line} Rate") for s in plan.rates],
        "cf9": [first_slot[s.rate_id][1] for s in plan.rates],
    }, schema={"rate_id": pl.String, "gis": pl.Int64, "unit": pl.Int64, "inc": pl.Int64,
               "r9": pl.String, "cf9": pl.String})
    drs: dict[str, list] = {}
    for dr in plan.destination_rates:
        drs.setdefault(dr.dr_id, []).append(dr)
    rows = []
    for p in plan.rating_plans:
        for dr in drs[p.dr_id]:
            rows.append((len(rows), p.plan_id, dr.destination_id, p.timing_id, str(p.weight), dr.rate_id,
                         dr.rounding_method, dr.rounding_decimals,
                         _nano(dr.max_cost, f"DestinationRates {dr.dr_id} MaxCost"), dr.max_cost_strategy))
    intervals = pl.DataFrame(rows, orient="row", schema={
        "interval_id": pl.Int64, "plan_id": pl.String, "dest_id": pl.String, "timing_id": pl.String,
        "weight": pl.String, "rate_id": pl.String, "method": pl.String, "rdec": pl.Int64,
        "max9": pl.String, "strategy": pl.String})
    timings = [ANY_TIMING, *plan.timings]
    timing_frame = pl.DataFrame({
        "timing_id": [t.timing_id for t in timings],
        "years": [list(t.years) for t in timings], "months": [list(t.months) for t in timings],
        "mdays": [list(t.month_days) for t in timings], "wdays": [list(t.week_days) for t in timings],
        "start_ns": [t.start_ns for t in timings], "end_ns": [t.end_ns for t in timings],
    }, schema={"timing_id": pl.String, "years": pl.List(pl.Int64), "months": pl.List(pl.Int64),
               "mdays": pl.List(pl.Int64), "wdays": pl.List(pl.Int64), "start_ns": pl.Int64,
               "end_ns": pl.Int64})
    profiles = pl.DataFrame([(i, p.tenant, p.category, p.subject, p.activation_utc_ns, p.plan_id)
                             for i, p in enumerate(plan.rating_profiles)], orient="row",
                            schema={"prof_id": pl.Int64, "tenant": pl.String, "category": pl.String,
                                    "subject": pl.String, "act": pl.Int64, "plan_id": pl.String})
    fallbacks = pl.DataFrame([(i, k, s) for i, p in enumerate(plan.rating_profiles)
                              for k, s in enumerate(p.fallback_subjects)], orient="row",
                             schema={"prof_id": pl.Int64, "ord": pl.Int64, "fb_subject": pl.String})
    destinations = pl.DataFrame(list(plan.destinations), orient="row",
                                schema={"dest_id": pl.String, "prefix": pl.String})
    return {"c_slot": slots, "c_interval": intervals, "c_timing": timing_frame, "c_profile": profiles,
            "c_fallback": fallbacks, "c_dest": destinations}


def _events_frame(events: list[Event]) -> pl.DataFrame:
    return pl.DataFrame({
        "seq": [e.seq for e in events], "tenant": [e.tenant for e in events],
        "category": [e.category for e in events], "subject": [e.subject for e in events],
        "destination": [e.destination for e in events], "start_utc": [e.start_utc_ns for e in events],
        "start_local": [e.start_local_ns for e in events], "usage": [e.usage_ns for e in events],
        "voice": [e.voice for e in events],
    }, schema={"seq": pl.Int64, "tenant": pl.String, "category": pl.String, "subject": pl.String,
               "destination": pl.String, "start_utc": pl.Int64, "start_local": pl.Int64,
               "usage": pl.Int64, "voice": pl.Boolean})


def _attempt_level_sql(level: int) -> str:
    """Rating-profile attempts of one fallback level per rating segment, ordered depth-first by ``path``.

    Level 1 is the event's subject, or ``*any`` when the subject has no activation in force
    (``LoadRatingPlans``). A voice call is cut into rating segments where that profile activates
    another rating plan during the call (``SplitByRatingPlan``). Deeper levels follow each
    profile's FallbackSubjects in file order, looked up at the segment start.
    """
    if level == 1:
        def pick(subject: str) -> str:
            return f"""
            SELECT e.seq, p.subject AS key_subject, p.prof_id, p.plan_id FROM ev e
            JOIN c_profile p ON p.tenant = e.tenant AND p.category = e.category
                 AND p.subject = {subject} AND p.act <= e.start_utc
            QUALIFY row_number() OVER (PARTITION BY e.seq ORDER BY p.act DESC, p.prof_id) = 1"""
        return f"""
        -- a subject whose profile starts only during a voice call: CGRateS rates the head through
        -- *any (a blank RatingInfo with the *any fallback key) and the rest through the subject
        CREATE TEMP TABLE own_later AS
        SELECT e.seq, min(p.act) AS tail_from FROM ev e
        JOIN c_profile p ON p.tenant = e.tenant AND p.category = e.category AND p.subject = e.subject
        WHERE e.voice AND p.act > e.start_utc AND p.act <= e.start_utc + e.usage
          AND NOT EXISTS (SELECT 1 FROM c_profile q WHERE q.tenant = e.tenant AND q.category = e.category
                          AND q.subject = e.subject AND q.act <= e.start_utc)
        GROUP BY e.seq;

        CREATE TEMP TABLE lvl1 AS
        WITH own AS ({pick("e.subject")}), star AS ({pick(repr(ANY))})
        SELECT *, CAST(NULL AS BIGINT) AS tail_from FROM own
        UNION ALL
        SELECT s.*, l.tail_from FROM star s LEFT JOIN own_later l USING (seq)
        WHERE s.seq NOT IN (SELECT seq FROM own);

        -- the head has no *any plan to fall back on: the call is not authorised
        CREATE TEMP TABLE head_unfilled AS
        SELECT seq FROM own_later WHERE seq NOT IN (SELECT seq FROM lvl1);

        CREATE TEMP TABLE segs AS
        WITH cuts AS (
            SELECT l.seq, 0 AS k, e.start_utc AS seg_utc, l.prof_id, l.plan_id
            FROM lvl1 l JOIN ev e USING (seq)
            UNION ALL
            SELECT e.seq, 1, p.act, p.prof_id, p.plan_id
            FROM lvl1 l JOIN ev e USING (seq)
            JOIN c_profile p ON p.tenant = e.tenant AND p.category = e.category AND p.subject = l.key_subject
            WHERE e.voice AND p.act > e.start_utc AND p.act <= e.start_utc + e.usage
              AND (l.tail_from IS NULL OR p.act < l.tail_from)
            UNION ALL
            SELECT e.seq, 1, p.act, p.prof_id, p.plan_id
            FROM lvl1 l JOIN ev e USING (seq)
            JOIN c_profile p ON p.tenant = e.tenant AND p.category = e.category AND p.subject = e.subject
            WHERE l.tail_from IS NOT NULL AND p.act >= l.tail_from AND p.act <= e.start_utc + e.usage
        )
        SELECT c.seq, row_number() OVER (PARTITION BY c.seq ORDER BY c.k, c.seg_utc, c.prof_id) - 1 AS seg,
               c.seg_utc, c.seg_utc - e.start_utc AS seg_a,
               coalesce(lead(c.seg_utc - e.start_utc) OVER (PARTITION BY c.seq ORDER BY c.k, c.seg_utc, c.prof_id),
                        e.usage) AS seg_b,
               c.prof_id, c.plan_id
        FROM cuts c JOIN ev e USING (seq);

        CREATE TEMP TABLE att1 AS SELECT seq, seg, '0' AS path, prof_id, plan_id FROM segs"""
    return f"""
        CREATE TEMP TABLE att{level} AS
        WITH k AS (
            SELECT a.seq, a.seg, a.path || '.' || lpad(CAST(f.ord AS VARCHAR), 3, '0') AS path, f.fb_subject
            FROM att{level - 1} a JOIN c_fallback f ON f.prof_id = a.prof_id
        )
        SELECT k.seq, k.seg, k.path, p.prof_id, p.plan_id
        FROM k JOIN ev e ON e.seq = k.seq JOIN segs s ON s.seq = k.seq AND s.seg = k.seg
        JOIN c_profile p ON p.tenant = e.tenant AND p.category = e.category AND p.subject = k.fb_subject
             AND p.act <= s.seg_utc
        QUALIFY row_number() OVER (PARTITION BY k.seq, k.seg, k.path ORDER BY p.act DESC, p.prof_id) = 1"""


def _macros(rounding_decimals: int) -> list[str]:
    q = 10 ** (9 - rounding_decimals)   # nano-units per unit of the general rounding
    p10 = 10 ** rounding_decimals
    return [
        "CREATE OR REPLACE TEMP MACRO ceil_to(d, inc) AS ((d + inc - 1) // inc) * inc",
        # cost of a timespan at the general rounding (RateInterval.GetCost, *middle = half up),
        # returned in units of 10^-RD
        f"CREATE OR REPLACE TEMP MACRO seg_rd(d, r9, unit) AS "
        f"(2 * CAST(d AS HUGEINT) * r9 * {p10} + CAST(unit AS HUGEINT) * 1000000000) "
        f"// (2 * CAST(unit AS HUGEINT) * 1000000000)",
        # per-increment cost rounded again, times the increments (TimeSpan.createIncrementsSlice), nano-units
        f"CREATE OR REPLACE TEMP MACRO piece9(d, inc, r9, unit) AS "
        f"((2 * seg_rd(d, r9, unit) + d // inc) // (2 * (d // inc))) * (d // inc) * {q}",
        f"CREATE OR REPLACE TEMP MACRO round_general9(x) AS ((2 * x + {q}) // (2 * {q})) * {q}",
        "CREATE OR REPLACE TEMP MACRO capped(cum, msf, strategy, max9) AS "
        "CASE WHEN strategy = '*free' AND max9 > 0 AND msf + cum >= max9 THEN max9 ELSE cum END",
        "CREATE OR REPLACE TEMP MACRO capped_msf(cum, msf, strategy, max9) AS "
        "CASE WHEN strategy = '*free' AND max9 > 0 AND msf + cum >= max9 THEN max9 ELSE msf + cum END",
    ]


RATE_SQL = f"""
CREATE TEMP TABLE att AS
    SELECT * FROM att1 UNION ALL SELECT * FROM att2 UNION ALL SELECT * FROM att3;

CREATE TEMP TABLE c_plan_dest AS
    SELECT plan_id, dest_id, max(CAST(weight AS DECIMAL(38,9))) AS weight FROM c_interval GROUP BY ALL;

CREATE TEMP TABLE evp AS
    SELECT seq, n, substr(destination, 1, n) AS prefix
    FROM ev, unnest(range(1, length(destination) + 1)) r(n) WHERE destination <> '{ANY}';

CREATE TEMP TABLE dmatch AS
WITH cand AS (
    SELECT a.seq, a.seg, a.path, a.plan_id, pd.dest_id, p.n AS plen, pd.weight
    FROM att a JOIN evp p ON p.seq = a.seq JOIN c_dest d ON d.prefix = p.prefix
    JOIN c_plan_dest pd ON pd.plan_id = a.plan_id AND pd.dest_id = d.dest_id
    UNION ALL
    SELECT a.seq, a.seg, a.path, a.plan_id, pd.dest_id, 0, pd.weight
    FROM att a JOIN c_plan_dest pd ON pd.plan_id = a.plan_id AND pd.dest_id = '{ANY}'
)
SELECT * FROM cand
QUALIFY row_number() OVER (PARTITION BY seq, seg ORDER BY path, plen DESC, weight DESC, dest_id) = 1;

-- every rating segment must be covered, else the whole call is unauthorised (continousRatingInfos)
CREATE TEMP TABLE unauthorized AS
    SELECT DISTINCT s.seq FROM segs s ANTI JOIN dmatch m ON m.seq = s.seq AND m.seg = s.seg;

CREATE TEMP TABLE rated_seq AS
    SELECT DISTINCT seq FROM segs WHERE seq NOT IN (SELECT seq FROM unauthorized);

CREATE TEMP TABLE c_rate_interval AS
SELECT i.plan_id, i.dest_id, i.interval_id, CAST(i.weight AS DECIMAL(38,9)) AS weight, i.rate_id, i.method,
       i.rdec, CAST(i.max9 AS HUGEINT) AS max9, i.strategy,
       t.years, t.months, t.mdays, t.wdays, t.start_ns, t.end_ns
FROM c_interval i JOIN c_timing t ON t.timing_id = i.timing_id;

CREATE TEMP TABLE ei AS
SELECT m.seq, m.seg, i.* EXCLUDE (plan_id, dest_id)
FROM dmatch m JOIN c_rate_interval i ON i.plan_id = m.plan_id AND i.dest_id = m.dest_id
WHERE m.seq IN (SELECT seq FROM rated_seq);

CREATE TEMP TABLE bp AS
WITH days AS (
    SELECT e.seq, d AS day FROM ev e, unnest(range(e.start_local // {NS_PER_DAY},
        (e.start_local + e.usage - 1) // {NS_PER_DAY} + 1)) r(d)
    WHERE e.voice AND e.seq IN (SELECT seq FROM rated_seq)
)
SELECT DISTINCT seq, off FROM (
    SELECT seq, 0 AS off FROM ev WHERE seq IN (SELECT seq FROM rated_seq)
    UNION ALL SELECT seq, usage FROM ev WHERE seq IN (SELECT seq FROM rated_seq)
    UNION ALL SELECT seq, seg_a FROM segs WHERE seq IN (SELECT seq FROM rated_seq)
    UNION ALL SELECT d.seq, d.day * {NS_PER_DAY} - e.start_local FROM days d JOIN ev e USING (seq)
    UNION ALL SELECT DISTINCT d.seq, d.day * {NS_PER_DAY} + x.start_ns - e.start_local
        FROM days d JOIN ev e USING (seq) JOIN ei x ON x.seq = d.seq
    UNION ALL SELECT x.seq, s.gis FROM ei x JOIN c_slot s ON s.rate_id = x.rate_id
) b JOIN ev e USING (seq)
WHERE b.off >= 0 AND b.off <= e.usage;

CREATE TEMP TABLE hard_bp AS
SELECT DISTINCT seq, off FROM (
    SELECT seq, 0 AS off FROM ev
    UNION ALL SELECT seq, seg_a FROM segs
    UNION ALL SELECT d.seq, d.day * {NS_PER_DAY} - e.start_local
        FROM (SELECT e.seq, d AS day FROM ev e, unnest(range(e.start_local // {NS_PER_DAY} + 1,
              (e.start_local + e.usage - 1) // {NS_PER_DAY} + 1)) r(d) WHERE e.voice) d JOIN ev e USING (seq)
    UNION ALL SELECT x.seq, s.gis FROM ei x JOIN c_slot s ON s.rate_id = x.rate_id
);

-- elementary pieces between all breakpoints, with the best interval at each start
-- (SelectRatingIntevalsForTimespan: highest weight, then the latest start time)
CREATE TEMP TABLE elem AS
WITH el AS (
    SELECT seq, off AS a, lead(off) OVER (PARTITION BY seq ORDER BY off) AS b FROM bp
), atp AS (
    SELECT el.seq, el.a, el.b, e.voice,
           CASE WHEN e.voice THEN e.start_local + el.a ELSE e.start_local END AS t
    FROM el JOIN ev e USING (seq) WHERE el.b IS NOT NULL
), probe AS (
    SELECT atp.*, s.seg, atp.t // {NS_PER_DAY} AS day,
           atp.t - (atp.t // {NS_PER_DAY}) * {NS_PER_DAY} AS tod, make_timestamp(atp.t // 1000) AS ts
    FROM atp JOIN segs s ON s.seq = atp.seq AND s.seg_a <= atp.a AND atp.a < s.seg_b
), day_match AS (
    SELECT p.seq, p.a, x.interval_id, x.weight, x.start_ns, p.tod
    FROM probe p JOIN ei x ON x.seq = p.seq AND x.seg = p.seg
    WHERE (len(x.years) = 0 OR list_contains(x.years, year(p.ts)))
      AND (len(x.months) = 0 OR list_contains(x.months, month(p.ts)))
      AND (len(x.mdays) = 0 OR list_contains(x.mdays, day(p.ts)))
      AND (len(x.wdays) = 0 OR list_contains(x.wdays, isodow(p.ts)))
), best AS (
    SELECT seq, a, interval_id, weight FROM day_match WHERE start_ns <= tod
    QUALIFY row_number() OVER (PARTITION BY seq, a ORDER BY weight DESC, start_ns DESC, interval_id) = 1
), starting AS (   -- weights of the intervals whose start time is exactly this piece's start
    SELECT seq, a, list(weight) AS soft_w FROM day_match WHERE start_ns = tod GROUP BY seq, a
)
SELECT p.seq, p.a, p.b, p.seg, CASE WHEN p.voice THEN p.day ELSE 0 END AS day_key,
       row_number() OVER (PARTITION BY p.seq ORDER BY p.a) AS k,
       x.interval_id AS best_id, x.weight AS best_w, h.off IS NOT NULL AS hard,
       coalesce(st.soft_w, []) AS soft_w
FROM probe p LEFT JOIN best x ON x.seq = p.seq AND x.a = p.a
LEFT JOIN hard_bp h ON h.seq = p.seq AND h.off = p.a
LEFT JOIN starting st ON st.seq = p.seq AND st.a = p.a;

-- CGRateS re-selects the interval only where a timespan starts: at hard splits (call start, midnight,
-- rating segment, group interval start) or where an interval of the *same weight* as the active one
-- starts (SplitByRateInterval); a heavier interval starting mid-timespan waits for the next split.
CREATE TEMP TABLE chain AS
WITH RECURSIVE c(seq, k, act_id, act_w) AS (
    SELECT seq, k, best_id, best_w FROM elem WHERE k = 1
    UNION ALL
    SELECT n.seq, n.k,
           CASE WHEN n.hard OR c.act_id IS NULL OR list_contains(n.soft_w, c.act_w) THEN n.best_id
                ELSE c.act_id END,
           CASE WHEN n.hard OR c.act_id IS NULL OR list_contains(n.soft_w, c.act_w) THEN n.best_w
                ELSE c.act_w END
    FROM c JOIN elem n ON n.seq = c.seq AND n.k = c.k + 1
)
SELECT * FROM c;

CREATE TEMP TABLE piece AS
WITH chosen AS (
    SELECT e.seq, e.a, e.b, e.seg, e.day_key, x.interval_id, x.rate_id, x.method, x.rdec, x.max9, x.strategy
    FROM elem e JOIN chain c ON c.seq = e.seq AND c.k = e.k
    LEFT JOIN ei x ON x.seq = e.seq AND x.seg = e.seg AND x.interval_id = c.act_id
), slot_at AS (
    SELECT c.seq, c.a, s.gis, s.unit, s.inc, CAST(s.r9 AS HUGEINT) AS r9, CAST(s.cf9 AS HUGEINT) AS cf9
    FROM chosen c JOIN c_slot s ON s.rate_id = c.rate_id
    WHERE s.gis <= c.a
    QUALIFY row_number() OVER (PARTITION BY c.seq, c.a ORDER BY s.gis DESC) = 1
), slotted AS (
    SELECT c.*, s.gis, s.unit, s.inc, s.r9, s.cf9
    FROM chosen c LEFT JOIN slot_at s ON s.seq = c.seq AND s.a = c.a
), islands AS (
    SELECT *, row_number() OVER (PARTITION BY seq ORDER BY a)
              - row_number() OVER (PARTITION BY seq, seg, day_key, interval_id, gis ORDER BY a) AS grp
    FROM slotted
)
SELECT seq, min(a) AS a, max(b) AS b, any_value(interval_id) AS interval_id, any_value(unit) AS unit,
       any_value(inc) AS inc, any_value(r9) AS r9, any_value(cf9) AS cf9, any_value(method) AS method,
       any_value(rdec) AS rdec, any_value(max9) AS max9, any_value(strategy) AS strategy,
       row_number() OVER (PARTITION BY seq ORDER BY min(a)) AS idx
FROM islands GROUP BY seq, seg, day_key, interval_id, gis, grp;

CREATE TEMP TABLE no_interval AS SELECT DISTINCT seq FROM piece WHERE interval_id IS NULL;

CREATE TEMP TABLE walk AS
WITH RECURSIVE w(seq, idx, end_r, cum, msf, kept) AS (
    SELECT seq, idx, a + ceil_to(b - a, inc),
           capped(round_general9(cf9 + piece9(ceil_to(b - a, inc), inc, r9, unit)), 0, strategy, max9),
           capped_msf(round_general9(cf9 + piece9(ceil_to(b - a, inc), inc, r9, unit)), 0, strategy, max9),
           true
    FROM piece WHERE idx = 1 AND seq NOT IN (SELECT seq FROM no_interval)
    UNION ALL
    SELECT n.seq, n.idx,
           CASE WHEN greatest(n.a, w.end_r) >= n.b THEN w.end_r
                ELSE greatest(n.a, w.end_r) + ceil_to(n.b - greatest(n.a, w.end_r), n.inc) END,
           CASE WHEN greatest(n.a, w.end_r) >= n.b THEN w.cum
                ELSE capped(w.cum + piece9(ceil_to(n.b - greatest(n.a, w.end_r), n.inc), n.inc, n.r9, n.unit),
                            w.msf, n.strategy, n.max9) END,
           CASE WHEN greatest(n.a, w.end_r) >= n.b THEN w.msf
                ELSE capped_msf(w.cum + piece9(ceil_to(n.b - greatest(n.a, w.end_r), n.inc), n.inc, n.r9,
                                n.unit), w.msf, n.strategy, n.max9) END,
           greatest(n.a, w.end_r) < n.b
    FROM w JOIN piece n ON n.seq = w.seq AND n.idx = w.idx + 1
)
SELECT * FROM w;

CREATE TEMP TABLE final AS
WITH kept AS (
    SELECT w.seq, w.idx, p.rdec, p.method FROM walk w JOIN piece p USING (seq, idx) WHERE w.kept
), longest AS (
    SELECT seq, max(rdec) AS rdec FROM kept GROUP BY seq
), rounding AS (
    SELECT k.seq, l.rdec, arg_min(k.method, k.idx) AS method
    FROM kept k JOIN longest l ON l.seq = k.seq AND l.rdec = k.rdec GROUP BY k.seq, l.rdec
), total AS (
    SELECT seq, arg_max(cum, idx) AS x FROM walk GROUP BY seq
), parts AS (
    SELECT t.seq, t.x, r.rdec, r.method, CAST(pow(10, 9 - r.rdec) AS HUGEINT) AS q,
           CAST(pow(10, greatest(7, r.rdec)) AS HUGEINT) AS m
    FROM total t JOIN rounding r USING (seq)
)
SELECT seq,
    CASE WHEN rdec = 0 OR rdec >= 9 THEN x
         WHEN method = '*down' THEN x - x % q
         WHEN method = '*middle' THEN x - x % q + CASE WHEN 2 * (x % q) >= q THEN q ELSE 0 END
         ELSE x - x % q + CASE WHEN (x % q) > 0 AND (x % q) * m >= q THEN q ELSE 0 END
    END AS cost9
FROM parts;
"""


def rate_events(plan: TariffPlan, events: list[Event],
                rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS) -> dict[int, Cost]:
    """Costs (or error names) by input sequence number for parsed events; pure, no I/O."""
    if not 0 <= rounding_decimals <= 9:
        raise ValueError(f"rounding decimals must be 0..9, got {rounding_decimals}")
    out: dict[int, Cost] = {}
    rated = [e for e in events if e.usage_ns > 0]
    for e in events:
        if e.usage_ns == 0:  # CGRateS GetCost returns a zero cost, no error, for zero usage
            out[e.seq] = Cost(e.seq, e.event_id, Decimal(0), "")
    if not rated:
        return out
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET preserve_insertion_order = false")  # every result is ordered explicitly
        for name, frame in _catalogue_frames(plan).items():
            con.register(f"{name}_src", frame)
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_src")
        con.register("ev_src", _events_frame(rated))
        con.execute("CREATE TEMP TABLE ev AS SELECT * FROM ev_src")
        for stmt in _macros(rounding_decimals):
            con.execute(stmt)
        for level in range(1, MAX_FALLBACK_DEPTH + 1):
            con.execute(_attempt_level_sql(level))
        con.execute(RATE_SQL)
        rows = con.execute("""
            SELECT e.seq,
                   CASE WHEN e.seq IN (SELECT seq FROM head_unfilled) THEN 'unauthorized'
                        WHEN e.seq NOT IN (SELECT seq FROM segs) THEN 'not_found'
                        WHEN e.seq IN (SELECT seq FROM unauthorized) THEN 'unauthorized'
                        WHEN e.seq IN (SELECT seq FROM no_interval) THEN 'no_interval'
                        ELSE 'ok' END AS outcome,
                   CAST(f.cost9 AS VARCHAR) AS cost9
            FROM ev e LEFT JOIN final f USING (seq) ORDER BY e.seq""").fetchall()
    finally:
        con.close()
    by_seq = {e.seq: e for e in rated}
    errors = {"not_found": RATING_PLAN_NOT_FOUND, "unauthorized": UNAUTHORIZED_DESTINATION,
              "no_interval": NO_RATE_INTERVAL}
    for seq, outcome, cost9 in rows:
        e = by_seq[seq]
        if outcome == "ok":
            out[seq] = Cost(seq, e.event_id, Decimal(int(cost9)).scaleb(-9), "")
        else:
            out[seq] = Cost(seq, e.event_id, None, errors[outcome])
    return out


def read_events(path: str | Path) -> tuple[list[Event], list[Cost]]:
    """Parse EVENTS.csv: (events to rate, rows already decided as errors). Header is checked."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:  # tolerate a spreadsheet BOM
        reader = csv.DictReader(fh)
        missing = [c for c in EVENT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: header must be {','.join(EVENT_COLUMNS)}; missing {missing}")
        events, errors = [], []
        for seq, row in enumerate(reader):
            parsed = parse_event(seq, row)
            (events if isinstance(parsed, Event) else errors).append(parsed)
    return events, errors


def format_cost(cost: Decimal | None) -> str:
    """Exact decimal text without exponent or trailing zeros (``0.7169``, ``1.4``, ``2701``)."""
    if cost is None:
        return ""
    text = format(cost.normalize(), "f")
    return "0" if text in ("-0", "") else text


def rate_file(tariffplan_dir: str | Path, events_csv: str | Path, out_csv: str | Path,
              rounding_decimals: int = DEFAULT_ROUNDING_DECIMALS) -> Path:
    """``telbill cgrates rate``: read a tariff plan and EVENTS.csv, write COSTS.csv in input order."""
    from pipelines.rating.cgrates.tariffplan import load_tariff_plan

    plan = load_tariff_plan(tariffplan_dir)
    events, errors = read_events(events_csv)
    results = rate_events(plan, events, rounding_decimals)
    for err in errors:
        results[err.seq] = err
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "cost", "error"])
        for seq in sorted(results):
            r = results[seq]
            writer.writerow([r.event_id, format_cost(r.cost), r.error])
    tmp.replace(out)
    return out
