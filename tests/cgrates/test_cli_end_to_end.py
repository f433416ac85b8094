"""``telbill cgrates rate`` end to end on every sample tariff plan, and its handling of bad input.

Proves: one output row per input row in input order (nothing dropped), only known error names,
no negative cost, byte-identical reruns, and the same result per id whatever the input order.
Malformed tariff files stop the run with an error naming the file and line (exit code 2).
"""

from __future__ import annotations

import csv
import random
from decimal import Decimal
from pathlib import Path

import pytest
from cgrates_support import PLANS, read_costs, write_events, write_plan

from pipelines.cli import main
from pipelines.rating.cgrates.tariffplan import load_tariff_plan

SAMPLE_PLANS = ["tutorial", "tutorial2", "testtp", "oldtutorial", "tp_destination_with_any",
                "engine_loader_csv_test"]
KNOWN_ERRORS = {"", "RATING_PLAN_NOT_FOUND", "UNAUTHORIZED_DESTINATION", "NO_RATE_INTERVAL",
                "MALFORMED_START_TIME", "MALFORMED_USAGE", "NEGATIVE_USAGE", "MANDATORY_IE_MISSING"}


def _events_for(plan_name: str) -> list[tuple[str, ...]]:
    """Every profile of the plan to every destination prefix (and an unknown one), voice and data."""
    plan = load_tariff_plan(PLANS / plan_name)
    prefixes = sorted({p for _, p in plan.destinations}) + ["999999", "*any"]
    rows = []
    for prof in plan.rating_profiles:
        subject = "someone" if prof.subject == "*any" else prof.subject
        for k, prefix in enumerate(prefixes):
            for usage in ("61s", "1024", "1h2m3.5s"):
                day = 5 + (k + len(rows)) % 7  # walk through the week
                rows.append((f"{prof.tenant}/{prof.category}/{subject}/{prefix}/{usage}/{len(rows)}",
                             prof.tenant, prof.category, subject, prefix,
                             f"2026-01-{day:02d}T{(7 + len(rows)) % 24:02d}:59:30+01:00", usage))
    return rows


def _run(tmp_path: Path, plan: Path, rows: list[tuple[str, ...]], name: str) -> Path:
    events = write_events(tmp_path / f"{name}.csv", rows)
    out = tmp_path / f"{name}.costs.csv"
    assert main(["cgrates", "rate", "--tariffplan", str(plan), "--events", str(events), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("plan_name", SAMPLE_PLANS)
def test_every_sample_plan_end_to_end(tmp_path: Path, plan_name: str) -> None:
    rows = _events_for(plan_name)
    out = _run(tmp_path, PLANS / plan_name, rows, "a")
    costs = read_costs(out)
    assert [c[0] for c in costs] == [r[0] for r in rows]
    rated = 0
    for cid, cost, error in costs:
        assert error in KNOWN_ERRORS, (cid, error)
        assert (cost == "") == (error != ""), cid
        if cost:
            rated += 1
            assert Decimal(cost) >= 0, cid
    assert rated > 0, "each sample plan rates some of its own profiles"
    assert _run(tmp_path, PLANS / plan_name, rows, "b").read_bytes() == out.read_bytes()
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    again = {c[0]: c[1:] for c in read_costs(_run(tmp_path, PLANS / plan_name, shuffled, "c"))}
    assert again == {c[0]: c[1:] for c in costs}


def test_bad_event_rows_become_error_rows(rate_cli) -> None:
    got = rate_cli("tutorial2", [
        ("ok", "cgrates.org", "call", "1001", "1002", "2026-01-05T10:00:00Z", "45s"),
        ("bad_time", "cgrates.org", "call", "1001", "1002", "05/01/2026 10:00", "45s"),
        ("bad_usage", "cgrates.org", "call", "1001", "1002", "2026-01-05T10:00:00Z", "45 seconds"),
        ("neg_usage", "cgrates.org", "call", "1001", "1002", "2026-01-05T10:00:00Z", "-5s"),
        ("no_subject", "cgrates.org", "call", "", "1002", "2026-01-05T10:00:00Z", "45s"),
        ("no_tenant", "", "", "1001", "1002", "2026-01-05T10:00:00Z", "45s"),
        ("unknown_tenant", "example.com", "call", "1001", "1002", "2026-01-05T10:00:00Z", "45s"),
        ("zero", "example.com", "call", "1001", "1002", "2026-01-05T10:00:00Z", "0s"),
        ("ok", "cgrates.org", "call", "1001", "1002", "2026-01-05T10:00:00.5+02:00", "1h0m0.5s"),
    ])
    assert got["bad_time"] == ("", "MALFORMED_START_TIME")
    assert got["bad_usage"] == ("", "MALFORMED_USAGE")
    assert got["neg_usage"] == ("", "NEGATIVE_USAGE")
    assert got["no_subject"] == ("", "MANDATORY_IE_MISSING")
    assert got["no_tenant"] == ("0.55", "")            # CGRateS defaults: cgrates.org / call
    assert got["unknown_tenant"] == ("", "RATING_PLAN_NOT_FOUND")
    assert got["zero"] == ("0", "")                    # GetCost of zero usage is 0, no error
    assert got["ok"] == ("36.11", "")                  # duplicate id kept; 0.1 + 3601 x 0.01


def _broken_plan(tmp_path: Path, **overrides: str) -> Path:
    files = {name: (PLANS / "tutorial" / f"{name}.csv").read_text() for name in
             ("Destinations", "Rates", "DestinationRates", "RatingPlans", "RatingProfiles")}
    files.update(overrides)
    return write_plan(tmp_path / "broken", files)


@pytest.mark.parametrize(("override", "message"), [
    ({"Rates": "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT_1,0,abc,60s,60s,0s\n"},
     "Rates.csv line 2: Rate is not a decimal number"),
    ({"Rates": "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\nRT_1,0,0.1,60x,60s,0s\n"},
     "Rates.csv line 2: RateUnit"),
    ({"Rates": "#Id,ConnectFee,Rate\nRT_1,0,0.1\n"}, "Rates.csv line 2: expected 6 fields"),
    ({"DestinationRates": "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                          "DR_X,DST_1001,RT_NOPE,*up,4,0,\n"}, "DestinationRates.csv line 2: unknown rate 'RT_NOPE'"),
    ({"DestinationRates": "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n"
                          "DR_X,DST_1001,RT_1CNT,*ceil,4,0,\n"}, "DestinationRates.csv line 2: RoundingMethod"),
    ({"RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n\n"
                        "cgrates.org,call,1001,yesterday,RP_1001,\n"}, "RatingProfiles.csv line 3: ActivationTime"),
    ({"RatingProfiles": "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n"
                        "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_NOPE,\n"},
     "RatingProfiles.csv line 2: unknown rating plan 'RP_NOPE'"),
])
def test_malformed_tariff_plan_names_file_and_line(tmp_path: Path, capsys, override: dict[str, str],
                                                   message: str) -> None:
    plan = _broken_plan(tmp_path, **override)
    events = write_events(tmp_path / "e.csv", [("x", "cgrates.org", "call", "1001", "1002",
                                                 "2026-01-05T10:00:00Z", "1m")])
    out = tmp_path / "costs.csv"
    code = main(["cgrates", "rate", "--tariffplan", str(plan), "--events", str(events), "--out", str(out)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists(), "nothing written when the tariff plan is broken"


def test_events_header_is_checked(tmp_path: Path, capsys) -> None:
    events = tmp_path / "e.csv"
    with events.open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "subject", "usage"], ["x", "1001", "1m"]])
    code = main(["cgrates", "rate", "--tariffplan", str(PLANS / "tutorial"), "--events", str(events),
                 "--out", str(tmp_path / "o.csv")])
    assert code == 2
    assert "missing ['tenant', 'category', 'destination', 'start_time']" in capsys.readouterr().err
