"""Hand-checked CGRateS semantics on small tariff plans, each worked out from the CGRateS source.

References (repository cgrates/cgrates): engine/calldesc.go (GetCost, splitInTimeSpans,
roundTimeSpansToIncrement), engine/timespans.go (SplitByRateInterval, SplitByDay,
createIncrementsSlice), engine/rateinterval.go (GetCost, GetRateParameters), engine/ratingprofile.go
(GetRatingPlansForPrefix), utils/coreutils.go (Round).
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

from cgrates_support import PLANS, read_costs, write_events, write_plan
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.cli import main

EV = ("cgrates.org", "call")


def test_timing_split_at_peak_boundary_with_increment_overlap(rate_cli) -> None:
    """oldtutorial RP_RETAIL1, Monday 07:59:30 + 90s to DST_FS (prefix 10).

    [0,30s) OFFPEAK_MORNING RT_10CNT slot 0 (0.1/60s, increment 60s) is rounded up to [0,60s): 0.1,
    plus that timespan's connect fee 0.2. The PEAK part is split by RT_40CNT's GroupIntervalStart
    60s: [30,60s) is swallowed by the rounded first timespan; [60,90s) costs 0.2/60s in 10s
    increments: 30s -> 0.1 per timespan, 0.03333 per increment (5 decimals) x 3 = 0.09999.
    0.3 + 0.09999 = 0.39999 -> *up to 4 decimals -> 0.4.
    """
    got = rate_cli("oldtutorial", [("split", *EV, "1005", "1002", "2026-11-23T07:59:30Z", "90s")])
    assert got["split"] == ("0.4", "")


def test_group_interval_starts(rate_cli) -> None:
    """RT_40CNT (0.8 connect; 0s: 0.4/60s per 30s; 60s: 0.2/60s per 10s) at PEAK.

    45s -> one 60s block of two 30s increments: 0.4 + 0.8 = 1.2.
    75s -> 0.8 + 0.4 + [60,75s) rounded to 20s: 20*0.2/60 = 0.06667, per 10s increment 0.033335
    -> 0.03334 (half up), x2 = 0.06668; 1.26668 -> *up 4 -> 1.2667.
    tutorial2 RT_120C (0.2 connect; first minute 1.2 as one block, then 1.2/60s per second):
    59s -> 1.4, 61s -> 1.42, 90s -> 2.
    """
    got = rate_cli("oldtutorial", [
        ("g45", *EV, "1005", "1002", "2026-11-23T09:00:00Z", "45s"),
        ("g75", *EV, "1005", "1002", "2026-11-23T09:00:00Z", "75s"),
    ])
    assert got == {"g45": ("1.2", ""), "g75": ("1.2667", "")}
    got = rate_cli("tutorial2", [
        (f"s{s}", *EV, "1001", "1003", "2019-03-11T09:00:00Z", f"{s}s") for s in (59, 60, 61, 90)])
    assert got == {"s59": ("1.4", ""), "s60": ("1.4", ""), "s61": ("1.42", ""), "s90": ("2", "")}


def _weekday_weekend_plan(folder: Path) -> Path:
    return write_plan(folder, {
        "Timings": """
#ID,Years,Months,MonthDays,WeekDays,Time
WEEKDAYS,*any,*any,*any,1;2;3;4;5,00:00:00
WEEKENDS,*any,*any,*any,6;7,00:00:00
EVENING,*any,*any,*any,1;2;3;4;5,19:00:00
""",
        "Destinations": "#ID,Prefix\nDST_49,49\n",
        "Rates": """
#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart
RT_WD,0,0.01,1s,1s,0s
RT_WE,0,0.02,1s,1s,0s
RT_EV,0,0.4,60s,1s,0s
RT_OFF,0,0.3,60s,1s,0s
""",
        "DestinationRates": """
#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy
DR_WD,DST_49,RT_WD,*up,4,,
DR_WE,DST_49,RT_WE,*up,4,,
DR_OFF_FREE1,DST_49,RT_OFF,*up,4,1,*free
DR_EV_FREE1,DST_49,RT_EV,*up,4,1,*free
DR_OFF_FREE2,DST_49,RT_OFF,*up,4,2,*free
DR_EV_FREE2,DST_49,RT_EV,*up,4,2,*free
""",
        "RatingPlans": """
#ID,DestinationRatesID,TimingID,Weight
RP_WEEK,DR_WD,WEEKDAYS,10
RP_WEEK,DR_WE,WEEKENDS,10
RP_CAP1,DR_OFF_FREE1,WEEKDAYS,10
RP_CAP1,DR_EV_FREE1,EVENING,10
RP_CAP2,DR_OFF_FREE2,WEEKDAYS,10
RP_CAP2,DR_EV_FREE2,EVENING,10
""",
        "RatingProfiles": """
#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject
cgrates.org,call,week,2020-01-01T00:00:00Z,RP_WEEK,
cgrates.org,call,cap1,2020-01-01T00:00:00Z,RP_CAP1,
cgrates.org,call,cap2,2020-01-01T00:00:00Z,RP_CAP2,
""",
    })


def test_split_across_midnight_into_weekend_in_the_written_offset(rate_cli, tmp_path: Path) -> None:
    """Friday 23:59 + 2m: 60s at 0.01 + 60s at 0.02 = 1.8. Timings use the wall clock as written
    (Go evaluates a parsed time in its own offset), so the same instant written as Saturday
    00:59+01:00 is all weekend: 120 x 0.02 = 2.4."""
    plan = _weekday_weekend_plan(tmp_path / "week")
    got = rate_cli(plan, [
        ("utc", *EV, "week", "4930123", "2026-11-27T23:59:00Z", "2m"),
        ("cet", *EV, "week", "4930123", "2026-11-27T23:59:00+01:00", "2m"),
        ("sat", *EV, "week", "4930123", "2026-11-28T00:59:00+01:00", "2m"),
    ])
    assert got == {"utc": ("1.8", ""), "cet": ("1.8", ""), "sat": ("2.4", "")}


def test_max_cost_free_uses_cgrates_cumulative_bookkeeping(rate_cli, tmp_path: Path) -> None:
    """CallDescriptor.GetCost adds the running total to MaxCostSoFar after every timespan.

    Monday 18:59 + 2m: 60s off-peak at 0.3/min (0.005 per second) and 60s evening at 0.4/min
    (0.006667 -> 0.00667 per second, x60 = 0.4002): true cost 0.7002. After the second timespan
    MaxCostSoFar = 0.3 + 0.7002 >= MaxCost 1 -> CGRateS returns 1 (*free caps at MaxCost) although
    the call cost less. With MaxCost 2 the cap is not reached: 0.7002. A 5-minute call at MaxCost 1
    reaches the cap and holds it.
    """
    plan = _weekday_weekend_plan(tmp_path / "cap")
    got = rate_cli(plan, [
        ("cap1", *EV, "cap1", "4930123", "2026-11-23T18:59:00Z", "2m"),
        ("cap2", *EV, "cap2", "4930123", "2026-11-23T18:59:00Z", "2m"),
        ("short", *EV, "cap1", "4930123", "2026-11-23T10:00:00Z", "2m"),
        ("long", *EV, "cap1", "4930123", "2026-11-23T18:56:00Z", "5m"),
    ])
    assert got == {"cap1": ("1", ""), "cap2": ("0.7002", ""), "short": ("0.6", ""), "long": ("1", "")}


def test_max_cost_disconnect_does_not_cap_get_cost(rate_cli) -> None:
    """oldtutorial DR_1007_MAXCOST_DISC (0.01/s, MaxCost 0.62 *disconnect): GetCost is not capped
    (the strategy only shortens sessions): 100s -> 1. DR_1007_MAXCOST_FREE (subject 1001): 0.62."""
    got = rate_cli("oldtutorial", [
        ("disc", *EV, "1005", "1007", "2026-11-23T09:00:00Z", "100s"),
        ("free", *EV, "1001", "1007", "2026-11-23T09:00:00Z", "100s"),
        ("free_short", *EV, "1001", "1007", "2026-11-23T09:00:00Z", "50s"),
    ])
    assert got == {"disc": ("1", ""), "free": ("0.62", ""), "free_short": ("0.5", "")}


def test_rounding_methods(rate_cli, tmp_path: Path) -> None:
    """Final rounding per DestinationRate (utils.Round): 0.0125 and 0.0124 to 3 decimals."""
    plan = write_plan(tmp_path / "round", {
        "Destinations": "#ID,Prefix\n" + "\n".join(f"D{i},{i}" for i in range(1, 7)),
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                 "RA,0,0.0125,1s,1s,0s\nRB,0,0.0124,1s,1s,0s\n",
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR1,D1,RA,*up,3,,\nDR2,D2,RA,*middle,3,,\nDR3,D3,RA,*down,3,,\n"
                            "DR4,D4,RB,*up,3,,\nDR5,D5,RB,*middle,3,,\nDR6,D6,RB,*down,3,,\n",
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\n"
                       + "\n".join(f"RP,DR{i},*any,10" for i in range(1, 7)),
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          "cgrates.org,call,*any,2020-01-01T00:00:00Z,RP,\n",
    })
    got = rate_cli(plan, [(f"d{i}", *EV, "x", f"{i}000", "2026-01-05T10:00:00Z", "1s") for i in range(1, 7)])
    assert got == {"d1": ("0.013", ""), "d2": ("0.013", ""), "d3": ("0.012", ""),
                   "d4": ("0.013", ""), "d5": ("0.012", ""), "d6": ("0.012", "")}


def test_round_up_ignores_float_noise_below_ten_to_minus_seven(rate_cli, tmp_path: Path) -> None:
    """utils.Round *up only rounds up when the fraction is >= 1e-7 (of the last kept digit)."""
    plan = write_plan(tmp_path / "noise", {
        "Destinations": "#ID,Prefix\nD1,1\nD2,2\n",
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                 "RA,0,0.100000001,1s,1s,0s\nRB,0,0.10000001,1s,1s,0s\n",
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR1,D1,RA,*up,1,,\nDR2,D2,RB,*up,1,,\n",
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\nRP,DR1,*any,10\nRP,DR2,*any,10\n",
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          "cgrates.org,call,*any,2020-01-01T00:00:00Z,RP,\n",
    })
    got = rate_cli(plan, [("a", *EV, "x", "1", "2026-01-05T10:00:00Z", "1s"),
                          ("b", *EV, "x", "2", "2026-01-05T10:00:00Z", "1s")], rounding_decimals=9)
    assert got == {"a": ("0.1", ""), "b": ("0.2", "")}


def test_rounding_decimals_option_rounds_each_increment(rate_cli) -> None:
    """engine TestGetCostRounding (0.1/60s per second, 3m, *middle 4) at several general decimals:
    6 -> 0.001667 x 180 = 0.30006 -> 0.3001; 5 -> 0.00167 x 180 = 0.3006; 4 -> 0.0017 x 180 = 0.306;
    2 -> 0.00 per increment -> 0."""
    row = [("r", "cgrates.org", "call", "round", "49", "2017-02-02T17:30:00Z", "3m")]
    results = {rd: rate_cli("engine_loader_csv_test", row, rd)["r"][0] for rd in (6, 5, 4, 2)}
    assert results == {6: "0.3001", 5: "0.3006", 4: "0.306", 2: "0"}


def test_profile_activation_and_fallbacks(rate_cli) -> None:
    """engine data set: the activation in force at the start wins; FallbackSubjects are followed.

    rif:from:tm uses PREMIUM until 2012-02-28, then STANDARD (which adds URG 112 at weight 20):
    before -> PREMIUM and its fallback danb have no 112 -> UNAUTHORIZED_DESTINATION; after -> 0.
    fallback1 (plan G: no NAT) falls back to fallback2 (plan R: P1 NAT, 1 connect + 1/s): 61.
    tutorial: 1001 used RP_1002 from 2010 and RP_1001 from 2014.
    """
    got = rate_cli("engine_loader_csv_test", [
        ("before", "CUSTOMER_1", "0", "rif:from:tm", "112", "2012-02-27T10:00:00Z", "60s"),
        ("after", "CUSTOMER_1", "0", "rif:from:tm", "112", "2012-02-29T10:00:00Z", "60s"),
        ("fb_nat", "vdf", "0", "fallback1", "0256", "2013-11-19T10:00:00Z", "60s"),
        ("fb_own", "vdf", "0", "fallback1", "49", "2013-11-19T10:00:00Z", "60s"),
        ("not_active", "vdf", "0", "one", "0256", "2012-02-10T10:00:00Z", "60s"),
    ], rounding_decimals=6)
    assert got == {"before": ("", "UNAUTHORIZED_DESTINATION"), "after": ("0", ""), "fb_nat": ("61", ""),
                   "fb_own": ("0.2", ""), "not_active": ("", "RATING_PLAN_NOT_FOUND")}
    got = rate_cli("tutorial", [
        ("2013_1001", *EV, "1001", "1001", "2013-06-03T10:00:00Z", "60s"),
        ("2013_1002", *EV, "1001", "1002", "2013-06-03T10:00:00Z", "60s"),
        ("2015_1001", *EV, "1001", "1001", "2015-06-01T10:00:00Z", "60s"),
    ])
    assert got == {"2013_1001": ("0.6", ""), "2013_1002": ("", "UNAUTHORIZED_DESTINATION"),
                   "2015_1001": ("", "UNAUTHORIZED_DESTINATION")}


def test_longest_prefix_then_any(rate_cli) -> None:
    """tp_destination_with_any: 10025 matches DST_1002 (1 cent per started minute: 61s -> 0.02);
    anything else takes the *any rate RT_10CNT: 0.2 connect + 0.1 first minute + 1s at 0.05/60s
    (0.000833 -> 0.00083) = 0.30083 -> *up 4 -> 0.3009. testtp: +4915... matches GERMANY_MOBILE
    (1 per second); subject "free" has its own zero-rated plan."""
    got = rate_cli("tp_destination_with_any", [
        ("p1002", *EV, "1001", "10025", "2026-01-05T10:00:00Z", "61s"),
        ("pany", *EV, "1001", "4930", "2026-01-05T10:00:00Z", "61s"),
    ])
    assert got == {"p1002": ("0.02", ""), "pany": ("0.3009", "")}
    got = rate_cli("testtp", [("mob", *EV, "1001", "+4915123", "2026-01-05T10:00:00Z", "10s"),
                              ("free", *EV, "free", "+4930123", "2026-01-05T10:00:00Z", "10s")])
    assert got == {"mob": ("10", ""), "free": ("0", "")}


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=7_200_000), min_size=1, max_size=25))
def test_per_second_rate_property(tmp_path_factory, durations_ms: list[int]) -> None:
    """tutorial2 RP_1001 to 1002 (0.1 connect + 0.01 per started second): cost is exactly
    0.1 + 0.01 x ceil(seconds), never negative, whatever the durations."""
    folder = tmp_path_factory.mktemp("prop")
    rows = [(f"e{i}", *EV, "1001", "1002", "2026-01-05T10:00:00Z", f"{ms}ms") for i, ms in enumerate(durations_ms)]
    events = write_events(folder / "events.csv", rows)
    assert main(["cgrates", "rate", "--tariffplan", str(PLANS / "tutorial2"), "--events", str(events),
                 "--out", str(folder / "costs.csv")]) == 0
    for (cid, cost, error), ms in zip(read_costs(folder / "costs.csv"), durations_ms, strict=True):
        assert error == ""
        assert Decimal(cost) == Decimal("0.1") + Decimal("0.01") * math.ceil(ms / 1000), cid
        assert Decimal(cost) > 0


def test_rating_plan_activation_during_a_call(rate_cli, tmp_path: Path) -> None:
    """A new rating plan activated during a voice call applies from its ActivationTime on
    (``splitInTimeSpans`` / ``SplitByRatingPlan``); only the first timespan's connect fee counts.

    09:59 + 2m, RP_OLD (0.5 connect, 0.01/s) until 10:00, RP_NEW (1 connect, 0.02/s) after:
    0.5 + 60 x 0.01 + 60 x 0.02 = 2.3. Destination 44 is only in RP_OLD: the uncovered second part
    makes the whole call UNAUTHORIZED_DESTINATION (``continousRatingInfos``). Data keeps the plan
    in force at the start (CGRateS only splits voice): 120 s of units at 0.01 + 0.5 = 1.7.
    """
    plan = write_plan(tmp_path / "activation", {
        "Destinations": "#ID,Prefix\nDST_49,49\nDST_44,44\n",
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                 "RT_OLD,0.5,0.01,1s,1s,0s\nRT_NEW,1,0.02,1s,1s,0s\n",
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR_OLD,DST_49,RT_OLD,*up,4,,\nDR_OLD44,DST_44,RT_OLD,*up,4,,\n"
                            "DR_NEW,DST_49,RT_NEW,*up,4,,\n",
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\n"
                       "RP_OLD,DR_OLD,*any,10\nRP_OLD,DR_OLD44,*any,10\nRP_NEW,DR_NEW,*any,10\n",
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          "cgrates.org,call,mig,2020-01-01T00:00:00Z,RP_OLD,\n"
                          "cgrates.org,call,mig,2026-01-05T10:00:00Z,RP_NEW,\n",
    })
    got = rate_cli(plan, [
        ("voice", *EV, "mig", "4930", "2026-01-05T09:59:00Z", "2m"),
        ("before", *EV, "mig", "4930", "2026-01-05T09:57:00Z", "2m"),
        ("uk", *EV, "mig", "4420", "2026-01-05T09:59:00Z", "2m"),
        ("uk_before", *EV, "mig", "4420", "2026-01-05T09:57:00Z", "2m"),
        ("data", *EV, "mig", "4930", "2026-01-05T09:59:00Z", "120000000000"),
    ])
    assert got == {"voice": ("2.3", ""), "before": ("1.7", ""), "uk": ("", "UNAUTHORIZED_DESTINATION"),
                   "uk_before": ("1.7", ""), "data": ("1.7", "")}


def test_timing_end_time_is_ignored_like_cgrates_loader(rate_cli, tmp_path: Path) -> None:
    """engine GetRateInterval copies only a Timing's StartTime: MORNING (08:00-12:00, weight 20)
    still applies at 13:00 (0.02/s), while at 07:00 only ALLDAY (0.01/s) applies."""
    plan = write_plan(tmp_path / "endtime", {
        "Timings": "#ID,Years,Months,MonthDays,WeekDays,Time\nMORNING,*any,*any,*any,*any,08:00:00;12:00:00\n",
        "Destinations": "#ID,Prefix\nDST_49,49\n",
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                 "RT_A,0,0.01,1s,1s,0s\nRT_M,0,0.02,1s,1s,0s\n",
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR_A,DST_49,RT_A,*up,4,,\nDR_M,DST_49,RT_M,*up,4,,\n",
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\nRP,DR_A,*any,10\nRP,DR_M,MORNING,20\n",
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          "cgrates.org,call,*any,2020-01-01T00:00:00Z,RP,\n",
    })
    got = rate_cli(plan, [("early", *EV, "x", "4930", "2026-01-05T07:00:00Z", "10s"),
                          ("late", *EV, "x", "4930", "2026-01-05T13:00:00Z", "10s")])
    assert got == {"early": ("0.1", ""), "late": ("0.2", "")}


def test_heavier_interval_starting_mid_timespan_waits_for_the_next_split(rate_cli, tmp_path: Path) -> None:
    """SelectRatingIntevalsForTimespan only splits a timespan where an interval of the *same* weight
    as the active one starts; a heavier one (PROMO, weight 20, from 12:00) starting mid-timespan is
    only picked up where the timespan is split anyway (here RT_BASE2's slot at 90s).

    11:59 + 2m on RT_BASE: 120 x 0.01 = 1.2 (PROMO ignored). From 12:00: 120 x 0.005 = 0.6.
    11:59 + 2m on RT_BASE2 (second slot at 90s = 12:00:30): 90 x 0.01 + 30 x 0.005 = 1.05.
    """
    plan = write_plan(tmp_path / "promo", {
        "Timings": "#ID,Years,Months,MonthDays,WeekDays,Time\nNOON,*any,*any,*any,*any,12:00:00\n",
        "Destinations": "#ID,Prefix\nDST_49,49\nDST_44,44\n",
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                 "RT_BASE,0,0.01,1s,1s,0s\nRT_BASE2,0,0.01,1s,1s,0s\nRT_BASE2,0,0.01,1s,1s,90s\n"
                 "RT_PROMO,0,0.005,1s,1s,0s\n",
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR_BASE,DST_49,RT_BASE,*up,4,,\nDR_BASE2,DST_44,RT_BASE2,*up,4,,\n"
                            "DR_PROMO,DST_49,RT_PROMO,*up,4,,\nDR_PROMO,DST_44,RT_PROMO,*up,4,,\n",
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\n"
                       "RP,DR_BASE,*any,10\nRP,DR_BASE2,*any,10\nRP,DR_PROMO,NOON,20\n",
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          "cgrates.org,call,*any,2020-01-01T00:00:00Z,RP,\n",
    })
    got = rate_cli(plan, [("before", *EV, "x", "4930", "2026-01-05T11:59:00Z", "2m"),
                          ("at_noon", *EV, "x", "4930", "2026-01-05T12:00:00Z", "2m"),
                          ("slot_split", *EV, "x", "4420", "2026-01-05T11:59:00Z", "2m")])
    assert got == {"before": ("1.2", ""), "at_noon": ("0.6", ""), "slot_split": ("1.05", "")}


def test_subject_profile_starting_during_a_call_rates_the_head_through_any(rate_cli, tmp_path: Path) -> None:
    """GetActiveForCall/GetRatingPlansForPrefix: when the subject's first activation falls inside a
    voice call, the head is a blank RatingInfo filled from *any. 09:59 + 2m, *any RP_ANY (0.01/s),
    subject "new" RP_NEW (0.02/s) from 10:00: 60 x 0.01 + 60 x 0.02 = 1.8. Without an *any profile
    the head stays uncovered: UNAUTHORIZED_DESTINATION (tenant t2)."""
    plan = write_plan(tmp_path / "head", {
        "Destinations": "#ID,Prefix\nDST_49,49\n",
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n"
                 "RT_ANY,0,0.01,1s,1s,0s\nRT_NEW,0,0.02,1s,1s,0s\n",
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            "DR_ANY,DST_49,RT_ANY,*up,4,,\nDR_NEW,DST_49,RT_NEW,*up,4,,\n",
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\nRP_ANY,DR_ANY,*any,10\nRP_NEW,DR_NEW,*any,10\n",
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          "cgrates.org,call,*any,2020-01-01T00:00:00Z,RP_ANY,\n"
                          "cgrates.org,call,new,2026-01-05T10:00:00Z,RP_NEW,\n"
                          "t2,call,new,2026-01-05T10:00:00Z,RP_NEW,\n",
    })
    got = rate_cli(plan, [
        ("head", *EV, "new", "4930", "2026-01-05T09:59:00Z", "2m"),
        ("all_any", *EV, "new", "4930", "2026-01-05T09:57:00Z", "2m"),
        ("no_any", "t2", "call", "new", "4930", "2026-01-05T09:59:00Z", "2m"),
        ("no_any_before", "t2", "call", "new", "4930", "2026-01-05T09:57:00Z", "2m"),
    ])
    assert got == {"head": ("1.8", ""), "all_any": ("1.2", ""), "no_any": ("", "UNAUTHORIZED_DESTINATION"),
                   "no_any_before": ("", "RATING_PLAN_NOT_FOUND")}
