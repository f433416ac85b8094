"""Review j3: the engine against the reference rater on wider input, and the defects that review found.

The first test passes today: random usage at catalogue-change, band, DST and bill-period edges (cycle days other
than 1, zones other than Berlin), against a catalogue where rates, plans, allowances (with overage rates),
destinations, roaming zones, IOT rates, interconnect prefixes and B2B overrides change validity inside the period.
The others state what docs/rating.md says and FAIL against the code as it is (reported to the coordinator):
a line's pool split across chunks, a short dialled number matched by a longer prefix, a call running into a
band-set gap charged for part of its length, a tiered rate without a valid tier set rated free, and one absurd
voice duration killing the whole run.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.rating.catalogue import MAX_UNITS, MAX_VOICE_SECONDS, Catalogue, CatalogueError, load_catalogue
from pipelines.rating.quote import RatingError, quote
from pipelines.rating.reference import reference_rate
from pipelines.rating.stage import rate_frames
from rating.helpers import DEFAULT_ACCOUNTS, PERIOD, TARIFFS, accounts_frame, usage_frame, usage_row
from rating.test_reference import assert_engine_agrees

MB = 1048576
BERLIN = ZoneInfo("Europe/Berlin")

# (file, old text, new text): validity changes on 2026-10-15 and on the DST day 2026-10-25 (local midnight, Berlin)
EDITS = [
    ("rates.csv", "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice 0.05/min: first minute then per second,2024-01-01,,",
     "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net,2024-01-01,2026-10-15,\n"
     "V_ONNET,EUR,0.01,0.07,60,30,6,4,up,2,,On-net new,2026-10-15,,"),
    ("rates.csv", "V_OFFNET_PEAK,EUR,0.02,0.09,60,60,1,4,half_up,4,,Off-net mobile peak 0.09/min plus 0.02 connect "
                  "(off-net surcharge),2024-01-01,,",
     "V_OFFNET_PEAK,EUR,0.02,0.09,60,60,1,4,half_up,4,,Off-net peak,2024-01-01,2026-10-25,\n"
     "V_OFFNET_PEAK,EUR,0.03,0.11,60,60,1,4,half_even,3,0.50,Off-net peak from the DST day,2026-10-25,,"),
    ("plans.csv", "P_BASIC,Basic 100,postpaid,10.00,EUR,2024-01-01,,DE_STD",
     "P_BASIC,Basic 100,postpaid,10.00,EUR,2024-01-01,2026-10-20,DE_STD\n"
     "P_NY,NY plan,postpaid,1.00,EUR,2024-01-01,,US_STD\nP_SHORT,Short,postpaid,1.00,EUR,2026-10-10,2026-10-25,DE_STD"),
    ("allowances.csv", "A_BASIC_MIN,P_BASIC,voice,MO,HOME|EU,offnet_mobile|fixed,*,6000,line,,100 minutes to German "
                       "networks,2024-01-01,",
     "A_BASIC_MIN,P_BASIC,voice,MO,HOME|EU,offnet_mobile|fixed,*,1200,line,V_OVER,20 min,2024-01-01,2026-10-15\n"
     "A_BASIC_MIN2,P_BASIC,voice,MO,HOME|EU,offnet_mobile|fixed|onnet,*,300,line,V_OVER_CAP,5 min,2026-10-15,\n"
     "A_BASIC_ALL,P_BASIC,voice,*,*,*,*,900,line,,15 minutes any,2024-01-01,\n"
     "A_BASIC_ALLDATA,P_BASIC,data,*,*,*,*,1048576,group,D_ROAM_EUROPE2,1 MB anywhere,2024-01-01,\n"
     "A_NY_MIN,P_NY,voice,*,*,*,*,600,group,V_OVER,NY 10 min,2024-01-01,\n"
     "A_SHORT,P_SHORT,voice,MO,*,*,*,300,group,V_OVER,short,2026-10-10,2026-10-25"),
    ("allowances.csv", ",10|20,21474836480,line,D_UNLTD_OVERAGE,", ",10|20,52428800,line,D_OVER_TIER,"),
    ("allowances.csv", ",onnet|offnet_mobile|fixed,*,60000,group,,", ",onnet|offnet_mobile|fixed,*,3000,group,V_OVER_CAP,"),
    ("allowances.csv", ",10|20,32212254720,group,,", ",10|20,104857600,group,D_OVER,"),
    ("roaming_zones.csv", "FRAF1,FR,Visited France,EU,2024-01-01,",
     "FRAF1,FR,Visited France,EU,2024-01-01,2026-10-15\nFRAF1,FR,Visited France,EUROPE2,2026-10-15,"),
    ("roaming_zones.csv", "TURTC,TR,Visited Turkey,WORLD,2024-01-01,", "TURTC,TR,Visited Turkey,WORLD,2024-01-01,2026-10-25"),
    ("iot_rates.csv", "FRAF1,voice,MO,0.022,60,1,EUR,2024-01-01,",
     "FRAF1,voice,MO,0.022,60,1,EUR,2024-01-01,2026-10-25\nFRAF1,voice,MO,0.03,60,60,EUR,2026-10-25,"),
    ("destinations.csv", "49160,DE_MOB_160,offnet_mobile,German mobile 160,2024-01-01,",
     "49160,DE_MOB_160,offnet_mobile,German mobile 160,2024-01-01,2026-10-25\n491601,DE_NEW,onnet,new,2026-10-25,"),
    ("destinations.csv", "49900,DE_PREMIUM,premium,German premium rate,2024-01-01,",
     "49900,DE_PREMIUM,premium,German premium rate,2024-01-01,2026-10-15"),
    ("interconnect.csv", "49176,IC_VODAFONE,0.0078,60,1,EUR,2024-01-01,",
     "49176,IC_VODAFONE,0.0078,60,1,EUR,2024-01-01,2026-10-15\n491761,IC_NEW,0.005,60,30,EUR,2026-10-15,"),
]
APPEND = {
    "rates.csv": ["V_OVER,EUR,0.10,0.30,60,60,1,4,half_up,4,,over,2024-01-01,,",
                  "V_OVER_CAP,EUR,0.05,0.60,60,30,6,5,half_even,2,2.50,over capped,2024-01-01,,",
                  "D_OVER,EUR,0.01,0.02,1048576,102400,10240,9,up,4,1.00,data over,2024-01-01,,",
                  "D_OVER_TIER,EUR,0,0,1048576,1048576,1048576,9,half_up,6,,tiered over,2024-01-01,,T_IOT_GRAD",
                  "V_NY,EUR,0,0.10,60,60,1,4,half_up,4,,NY peak,2024-01-01,,",
                  "V_NY_OFF,EUR,0,0.02,60,60,1,4,half_up,4,,NY offpeak,2024-01-01,,",
                  "V_ACME2,EUR,0,0.015,60,1,1,6,half_up,6,,B2B,2024-01-01,,"],
    "time_bands.csv": ["US_STD,America/New_York,,offpeak,mon-sun,00:00,09:00,2024-01-01,",
                       "US_STD,America/New_York,,peak,mon-sun,09:00,17:00,2024-01-01,",
                       "US_STD,America/New_York,,offpeak,mon-sun,17:00,24:00,2024-01-01,"],
    "plan_rates.csv": ["P_NY,voice,MO,*,*,*,*,*,*,peak,V_NY,2024-01-01,",
                       "P_NY,voice,MO,*,*,*,*,*,*,offpeak,V_NY_OFF,2024-01-01,"],
    "iot_rates.csv": ["GBRCN,voice,*,0.07,60,30,EUR,2026-10-15,"],
    "account_overrides.csv": ["ACC_ACME,voice,MO,*,onnet,*,*,*,*,*,V_ACME2,2026-10-10,2026-10-20",
                              "ACC2,voice,*,*,*,*,*,*,*,peak,V_ACME2,2026-10-25,"],
}
# account, parent, bill cycle day, time zone: groups whose lines have different bill periods
ACCOUNTS = [("ACC1", None, 1, "Europe/Berlin"), ("ACC2", None, 15, "UTC"), ("ACC_ACME", None, 28, "America/New_York"),
            ("FAM_A", "FAM1", 1, "Europe/Berlin"), ("FAM_B", "FAM1", 25, "Asia/Kolkata"),
            ("FAM1", None, 1, "Europe/Berlin"), ("NY1", "NYG", 10, "America/New_York"),
            ("NY2", "NYG", 1, "Pacific/Auckland")]
NUMBERS = ("4915112345678", "4916012345678", "491601999", "4917012345678", "4917612345678", "491761234", "4930123456",
           "4989123456", "4990012345", "4412345678", "12125550100", "+4930123456", "", "4930123456 ",
           "1234567890123456", "123456789012345", "0", "4930x", None)
NETWORKS = (None,) * 10 + ("", " ", "FRAF1", "ESPTE", "GBRCN", "USAAT", "TURTC", "DEUTB", "XXXYY", "fraf1")
PLANS = ("P_BASIC", "P_BASIC", "P_NY", "P_NY", "P_FAMILY", "P_BIZ", "P_UNLTD", "P_SHORT", "P_IOT", "PRE_BUNDLE",
         "PRE_PAYG", "P_GHOST")


def _draft(base: Path, edits: list[tuple[str, str, str]], append: dict[str, list[str]]) -> Path:
    out = base / "tariffs"
    shutil.copytree(TARIFFS, out)
    for name, old, new in edits:
        text = (out / name).read_text()
        assert old in text, (name, old)
        (out / name).write_text(text.replace(old, new))
    for name, lines in append.items():
        text = (out / name).read_text()
        (out / name).write_text(text + ("" if text.endswith("\n") else "\n") + "".join(x + "\n" for x in lines))
    return out


@pytest.fixture(scope="module")
def edge_cat(tmp_path_factory) -> Catalogue:
    return load_catalogue(_draft(tmp_path_factory.mktemp("edges"), EDITS, APPEND))


def _accounts() -> pl.DataFrame:
    return accounts_frame(*ACCOUNTS)


def _edge_instants() -> list[datetime]:
    """Band edges (Berlin and New York), catalogue changes, the DST hour and every account's period edges."""
    out = [datetime(2026, 10, d, h, tzinfo=BERLIN) for d in range(1, 32) for h in (0, 8, 20)]
    out += [datetime(2026, 10, d, h, tzinfo=ZoneInfo("America/New_York")) for d in range(1, 32) for h in (0, 9, 17)]
    out += [datetime(2026, 10, 25, 1, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
    out += [datetime(2026, m, day, tzinfo=ZoneInfo(tz)) for _, _, day, tz in ACCOUNTS for m in (10, 11)]
    return sorted({t.astimezone(UTC) for t in out})


def _edge_usage(n: int, seed: int) -> list[dict]:
    """Records at (or a microsecond/second/minute around) the edges, zero/huge/bad quantities, odd numbers and
    networks, lines without subscription (or shared by accounts), and a tenth of the records at one start time."""
    rng = random.Random(seed)
    instants = _edge_instants()
    rows = []
    for i in range(n):
        start = rng.choice(instants) + timedelta(seconds=rng.choice((0, 0, -1, 1, -30, -125, -3600)),
                                                 microseconds=rng.choice((0, 0, 1, 999999)))
        service = rng.choice(("voice", "voice", "voice", "sms", "data", "data", "event"))
        quantity = rng.choice({"voice": (0, 1, 30, 59, 60, 61, 299, 301, 1199, 1201, 3601, 90000),
                               "sms": (0, 1, 2, 10**6), "event": (0, 1, 5),
                               "data": (0, 1, 1023, 1025, 10240, MB + 1, 52428801, 104857600, 10**12)}[service])
        row = usage_row(f"e{seed}-{i:04d}", start.strftime("%Y-%m-%d %H:%M:%S.%f"), quantity, service=service,
                        other_party=rng.choice(NUMBERS) if service in ("voice", "sms") else None,
                        plan_id=rng.choice(PLANS), account_id=rng.choice([a for a, *_ in ACCOUNTS] + ["ACC_NEW"]),
                        direction=rng.choice(("MO", "MO", "MT")),
                        rating_group=rng.choice((None, 10, 20, 30)) if service == "data" else None,
                        snssai=rng.choice((None, None, "1-000001", "3-000003")) if service == "data" else None,
                        qos_class=rng.choice((None, 9, 80)) if service == "data" else None,
                        visited_network=rng.choice(NETWORKS))
        twist = rng.random()
        if twist < 0.03:
            row["quantity"] = rng.choice((None, -1))
        elif twist < 0.1:
            row["subscription_id"] = None
        elif twist < 0.13:
            row["subscription_id"] = "SUB_SHARED"  # one line used by several accounts (one chunk here)
        elif twist < 0.15:
            row["account_id"] = None
        rows.append(row)
    for row in rows[1: 1 + n // 10]:
        row["start_time"], row["usage_date"] = rows[0]["start_time"], rows[0]["usage_date"]
    return rows


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6))
def test_engine_and_reference_agree_at_catalogue_band_dst_and_period_edges(edge_cat, seed) -> None:
    rows = _edge_usage(250, seed)
    rated, suspense, _ = assert_engine_agrees(edge_cat, rows, _accounts())
    assert rated and suspense


# --- defects found in review (these FAIL against the code as it is) -------------------------------------------

def test_a_line_seen_under_two_accounts_has_one_pool_whatever_the_chunk_size(catalogue) -> None:
    # docs/rating.md rule 5: pool = allowance + bill period + line (subscription). SUB_X moves from ACC1 to ACC2
    # (different allowance groups) mid-period: 5000 s + 2000 s against A_BASIC_MIN's 6000 s -> 1000 s charged.
    # One chunk gets it right; with several chunks each group's chunk has its own copy of the pool (7000 s free).
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    rows = [usage_row("m1", "2026-10-06 10:00:00", 5000, other_party="4930123456", subscription_id="SUB_X"),
            usage_row("m2", "2026-10-20 10:00:00", 2000, other_party="4930123456", account_id="ACC2",
                      subscription_id="SUB_X")]
    rows += [usage_row(f"x{i}", "2026-10-07 10:00:00", 1, service="event", account_id=a)
             for i, a in enumerate(("ACC_ACME", "FAM_A", "FAM_B") * 3)]
    reference = {r["record_id"]: r for r in reference_rate(catalogue, rows, accounts, PERIOD)[0]}
    assert reference["m2"]["quantity_included"] == 1000
    for chunk_rows in (500_000, 4, 2, 1):
        _, out = rate_frames(catalogue, usage_frame(rows), accounts, PERIOD, chunk_rows=chunk_rows)
        m2 = out.rated.filter(pl.col("record_id") == "m2").row(0, named=True)
        assert (m2["quantity_included"], m2["charge"]) == (1000, reference["m2"]["charge"]), chunk_rows


def test_a_line_seen_under_two_accounts_has_one_tier_position_whatever_the_chunk_size(catalogue) -> None:
    # tiers: "units are the billed units of the line in the bill period" - the same split as the pools above
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    rows = [usage_row("t1", "2026-10-06 10:00:00", 100 * MB, service="data", plan_id="P_IOT", rating_group=10,
                      subscription_id="SUB_T"),
            usage_row("t2", "2026-10-20 10:00:00", 100 * MB, service="data", plan_id="P_IOT", rating_group=10,
                      account_id="ACC2", subscription_id="SUB_T")]
    rows += [usage_row(f"x{i}", "2026-10-07 10:00:00", 1, service="event", account_id=a)
             for i, a in enumerate(("ACC_ACME", "FAM_A", "FAM_B") * 3)]
    for chunk_rows in (500_000, 4, 2, 1):
        _, out = rate_frames(catalogue, usage_frame(rows), accounts, PERIOD, chunk_rows=chunk_rows)
        t2 = out.rated.filter(pl.col("record_id") == "t2").row(0, named=True)
        assert t2["tier_before"] == 100 * MB, chunk_rows


@pytest.mark.parametrize(("number", "expected"), [("4990", "DE_OTHER"), ("4917", "DE_OTHER"), ("9", "INTL_OTHER")])
def test_a_short_number_is_not_matched_by_a_longer_prefix(catalogue, number, expected) -> None:
    # "destination by the longest prefix of other_party": 49900 is not a prefix of 4990, but the number is padded
    # with zeros to 15 digits (499000000000000), which lies in 49900's range: 4990 is rated premium (2.49 EUR).
    at = datetime(2026, 10, 6, 10, tzinfo=UTC)
    assert catalogue.longest_prefix("destinations", number, at)["destination_id"] == expected
    _, out = rate_frames(catalogue, usage_frame([usage_row("n", "2026-10-06 10:00:00", 60, other_party=number,
                                                           plan_id="PRE_PAYG")]), accounts_frame(*DEFAULT_ACCOUNTS),
                         PERIOD)
    assert out.rated["destination_id"].to_list() == [expected]


def test_a_call_running_into_a_band_set_gap_is_not_charged_for_part_of_its_length(tmp_path: Path) -> None:
    # rule 3: "segment lengths always add up to the duration". DE_FLAT ends 2026-10-28 (local): a PRE_PAYG call
    # from 23:50 local on the 27th for 1200 s is charged for 600 s (0.90) and rated; it should be priced whole or
    # go to suspense (NO_BAND), not lose 10 minutes silently.
    draft = _draft(tmp_path, [("time_bands.csv", "DE_FLAT,Europe/Berlin,,flat,mon-sun,00:00,24:00,2024-01-01,",
                               "DE_FLAT,Europe/Berlin,,flat,mon-sun,00:00,24:00,2024-01-01,2026-10-28")], {})
    cat = load_catalogue(draft)
    rows = [usage_row("gap", "2026-10-27 22:50:00", 1200, other_party="4930123456", plan_id="PRE_PAYG")]
    _, out = rate_frames(cat, usage_frame(rows), accounts_frame(*DEFAULT_ACCOUNTS), PERIOD)
    assert out.rated.height == 0
    assert out.suspense.select("reason_code").rows() == [("NO_BAND",)]
    assert "has no band for part of the call" in out.suspense["message"][0]
    with pytest.raises(RatingError, match="no band for part of the call"):
        quote(cat, "PRE_PAYG", "voice", datetime(2026, 10, 27, 22, 50, tzinfo=UTC), 1200, "4930123456")
    # the same call ending before the gap is rated whole
    _, ok = rate_frames(cat, usage_frame([{**rows[0], "quantity": 600}]), accounts_frame(*DEFAULT_ACCOUNTS), PERIOD)
    assert ok.rated["quantity_charged"].to_list() == [600]


def test_a_tiered_rate_without_a_valid_tier_set_is_not_free(tmp_path: Path) -> None:
    # catalogue.md: "a rate with a tier_set_id takes its price from the tier set". When the set's rows end
    # (2026-10-15) while the rate goes on, validation accepts it and both engine and reference rate the record at 0;
    # they even disagree on tier_before/tier_total (engine NULL). Expected: a catalogue error, or NO_TARIFF suspense.
    draft = _draft(tmp_path, [], {})
    (draft / "tiers.csv").write_text((draft / "tiers.csv").read_text().replace("2024-01-01,\n", "2024-01-01,2026-10-15\n"))
    try:
        cat = load_catalogue(draft)
    except CatalogueError as exc:
        assert any("tier set T_IOT_GRAD is not valid for the whole validity of rate D_IOT_GRAD" in p
                   for p in exc.problems), exc.problems
        return
    rows = [usage_row("late", "2026-10-20 10:00:00", 50 * MB, service="data", plan_id="P_IOT", rating_group=10)]
    _, out = rate_frames(cat, usage_frame(rows), accounts_frame(*DEFAULT_ACCOUNTS), PERIOD)
    assert out.suspense["reason_code"].to_list() == ["NO_TARIFF"], out.rated.select("rate_id", "charge").rows()


@pytest.mark.parametrize(("service", "quantity"), [("voice", 10**12), ("data", 2**63 - 1)])
def test_one_absurd_quantity_does_not_kill_the_run(catalogue, service, quantity) -> None:
    # "a run never dies on one bad record": a voice record of 10^12 s (start + duration is past year 9999) raises a
    # TypeError in rate_tables (DuckDB hands back the out-of-range end instant as a string); a data record of
    # 2^63-1 bytes overflows a timestamp in enrich. Expected: the record in suspense (BAD_QUANTITY), the rest rated.
    rows = [usage_row("bad", "2026-10-06 10:00:00", quantity, service=service, plan_id="P_UNLTD",
                      other_party="4930123456" if service == "voice" else None,
                      rating_group=10 if service == "data" else None),
            usage_row("ok", "2026-10-06 10:00:00", 60, other_party="4930123456")]
    n_in, out = rate_frames(catalogue, usage_frame(rows), accounts_frame(*DEFAULT_ACCOUNTS), PERIOD)
    assert n_in == 2 and "ok" in out.rated["record_id"].to_list()
    assert out.suspense.select("record_id", "reason_code").rows() == [("bad", "BAD_QUANTITY")]


def test_the_largest_accepted_quantities_are_rated(catalogue) -> None:
    # the limits themselves are accepted: a 31-day call (split at every band edge) and 10^15 bytes
    rows = [usage_row("long", "2026-10-06 10:00:00", MAX_VOICE_SECONDS, other_party="4930123456", plan_id="PRE_PAYG"),
            usage_row("big", "2026-10-06 10:00:00", MAX_UNITS, service="data", plan_id="PRE_PAYG", rating_group=10),
            usage_row("over", "2026-10-06 10:00:00", MAX_VOICE_SECONDS + 1, other_party="4930123456",
                      plan_id="PRE_PAYG")]
    _, out = rate_frames(catalogue, usage_frame(rows), accounts_frame(*DEFAULT_ACCOUNTS), PERIOD)
    rated = {r["record_id"]: r for r in out.rated.iter_rows(named=True)}
    assert rated["long"]["quantity_charged"] == MAX_VOICE_SECONDS and rated["big"]["quantity_charged"] >= MAX_UNITS
    assert out.suspense.select("record_id", "reason_code").rows() == [("over", "BAD_QUANTITY")]
