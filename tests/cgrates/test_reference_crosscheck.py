"""The set-based DuckDB rater agrees with a plain per-event Python rater on random tariff plans.

Hypothesis draws small random CGRateS plans (overlapping destinations, several rate slots,
timings with weights, DestinationRates with every rounding method and MaxCost strategy, profiles
with activations and fallbacks) and random voice/data events; both raters must give identical
results, event by event, and rating must not depend on the input order.
"""

from __future__ import annotations

from pathlib import Path

from cgrates_support import write_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.rating.cgrates.rater import parse_event, rate_events
from pipelines.rating.cgrates.reference import ReferenceRater
from pipelines.rating.cgrates.tariffplan import load_tariff_plan

PREFIXES = ["1", "12", "123", "2", "21"]
DESTS = ["1", "12", "123", "1234", "2", "21", "3", "*any"]


@st.composite
def tariff_plans(draw) -> dict[str, str]:
    dests = "\n".join(f"D{d},{p}" for d in range(3)
                      for p in draw(st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2, unique=True)))
    rates = []
    for r in range(3):
        starts = ["0s", *draw(st.lists(st.sampled_from(["30s", "60s", "90s"]), max_size=2, unique=True))]
        for gis in starts:
            rates.append(",".join([
                f"R{r}", draw(st.sampled_from(["0", "0.1", "0.25"])),
                draw(st.sampled_from(["0", "0.01", "0.05", "0.1", "1.2", "0.333"])),
                draw(st.sampled_from(["1s", "30s", "60s"])), draw(st.sampled_from(["1s", "10s", "30s", "60s"])),
                gis]))
    drs = []
    for k in range(4):
        drs.append(",".join([
            f"DR{k}", draw(st.sampled_from(["D0", "D1", "D2", "*any"])), f"R{draw(st.integers(0, 2))}",
            draw(st.sampled_from(["*up", "*middle", "*down"])), str(draw(st.integers(0, 5))),
            *draw(st.sampled_from([("", ""), ("0.5", "*free"), ("2", "*free"), ("0.5", "*disconnect")]))]))
    timings = []
    for k in range(3):
        days = draw(st.sampled_from(["*any", "1;2;3;4;5", "6;7", "1;3;5"]))
        timings.append(f"T{k},*any,*any,*any,{days},{draw(st.sampled_from(['00:00:00', '08:00:00', '12:00:00']))}")
    plans = []
    for p in range(2):
        for _ in range(draw(st.integers(1, 4))):
            plans.append(f"P{p},DR{draw(st.integers(0, 3))},{draw(st.sampled_from(['*any', 'T0', 'T1', 'T2']))},"
                         f"{draw(st.sampled_from([10, 20]))}")
    switch = draw(st.sampled_from(["2026-01-05T12:00:00Z", "2030-01-01T00:00:00Z"]))
    fallback = draw(st.sampled_from(["", "*any", "b", "b;*any"]))
    profiles = ["t,call,*any,2020-01-01T00:00:00Z,P0,", f"t,call,a,2020-01-01T00:00:00Z,P1,{fallback}",
                f"t,call,a,{switch},P0,{fallback}", "t,call,b,2020-01-01T00:00:00Z,P0,",
                "t,data,*any,2020-01-01T00:00:00Z,P1,", "t,call,c,2026-01-05T12:00:00Z,P1,"]
    return {
        "Destinations": "#ID,Prefix\n" + dests,
        "Rates": "#ID,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n" + "\n".join(rates),
        "DestinationRates": "#ID,DestinationsID,RatesID,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                            + "\n".join(drs),
        "Timings": "#ID,Years,Months,MonthDays,WeekDays,Time\n" + "\n".join(timings),
        "RatingPlans": "#ID,DestinationRatesID,TimingID,Weight\n" + "\n".join(plans),
        "RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanID,FallbackSubject\n"
                          + "\n".join(profiles),
    }


event_rows = st.lists(st.tuples(
    st.sampled_from(["a", "b", "c"]), st.sampled_from(DESTS), st.sampled_from(["call", "data"]),
    st.integers(4, 6), st.integers(0, 23), st.integers(0, 59), st.integers(0, 3 * 3600),
), min_size=1, max_size=30)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=tariff_plans(), rows=event_rows, rounding=st.integers(2, 6))
def test_sql_rater_matches_reference(tmp_path_factory, files, rows, rounding) -> None:
    folder: Path = write_plan(tmp_path_factory.mktemp("plan"), files)
    plan = load_tariff_plan(folder)
    events = []
    for seq, (subject, dest, category, day, hour, minute, secs) in enumerate(rows):
        usage = f"{secs}s" if category == "call" else str(secs * 1_000_000_000)
        parsed = parse_event(seq, {"id": f"e{seq}", "tenant": "t", "category": category, "subject": subject,
                                   "destination": dest, "start_time": f"2026-01-{day:02d}T{hour:02d}:{minute:02d}:00Z",
                                   "usage": usage})
        events.append(parsed)
    got = rate_events(plan, events, rounding)
    reference = ReferenceRater(plan, rounding)
    for e in events:
        assert got[e.seq] == reference.rate(e), (e, files)
    reordered = rate_events(plan, list(reversed(events)), rounding)
    assert reordered == got
