"""The per-record reference rater and the set-based engine agree field by field on every record.

The reference (pipelines/rating/reference.py) is written from docs/rating.md, not from the engine's SQL:
it checks what quote() alone cannot (allowance pools in usage order, the crossing split, group sharing,
tier positions, suspense reasons, bill periods, roaming IOT and interconnect settlement).
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.rating.catalogue import Catalogue, load_catalogue
from pipelines.rating.reference import reference_rate, settlement_amount
from pipelines.rating.stage import rate_frames
from rating.generate import random_usage
from rating.helpers import DEFAULT_ACCOUNTS, PERIOD, TARIFFS, accounts_frame, usage_frame, usage_row

SETTLEMENT_FIELDS = ("record_id", "partner_type", "partner_id", "amount", "rate_id", "currency", "band")
MB = 1048576


def assert_engine_agrees(cat: Catalogue, rows: list[dict], accounts: pl.DataFrame) -> tuple[list, list, list]:
    """Rate with both; every reference field of every record must equal the engine's. Returns the reference."""
    rated, suspense, settlement = reference_rate(cat, rows, accounts, PERIOD)
    n_in, out = rate_frames(cat, usage_frame(rows), accounts, PERIOD)
    assert n_in == len(rated) + len(suspense) == out.rated.height + out.suspense.height
    engine = out.rated.to_dicts()
    assert [r["record_id"] for r in engine] == [r["record_id"] for r in rated]
    for ref, eng in zip(rated, engine, strict=True):
        diff = {k: (v, eng[k]) for k, v in ref.items() if eng[k] != v}
        assert not diff, f"{ref['record_id']}: (reference, engine) differ {diff}"
    _assert_same_rows("suspense", suspense, out.suspense.select("record_id", "reason_code").to_dicts())
    _assert_same_rows("settlement", [{k: e[k] for k in SETTLEMENT_FIELDS} for e in settlement],
                      out.settlement.select(SETTLEMENT_FIELDS).to_dicts())
    return rated, suspense, settlement


def _assert_same_rows(what: str, reference: list[dict], engine: list[dict]) -> None:
    first = next((pair for pair in zip(reference, engine, strict=False) if pair[0] != pair[1]), None)
    assert reference == engine, f"{what}: {len(reference)} reference vs {len(engine)} engine rows; first (reference, " \
                                f"engine) difference {first}"


def _rules_rows() -> list[dict]:
    """Hand-made records, one group per rule (times UTC; Germany is UTC+2 until 2026-10-25)."""
    r = usage_row
    return [
        # P_BASIC 6000 s to German networks: exhausted mid-call, then charged; unlimited on-net beside it
        r("al1", "2026-10-06 09:00:00", 5950, other_party="4930123456"),
        r("al2", "2026-10-07 09:00:00", 125, other_party="4916012345678"),
        r("al3", "2026-10-08 09:00:00", 60, other_party="4916012345678"),
        r("al4", "2026-10-08 10:00:00", 600, other_party="4915112345678"),
        # same start time: the record id decides who uses the last seconds
        r("al5b", "2026-10-02 09:00:00", 30, other_party="4940123456", account_id="ACC2"),
        r("al5a", "2026-10-02 09:00:00", 5990, other_party="4940123456", account_id="ACC2"),
        # P_FAMILY shared by FAM_A and FAM_B (group FAM1), the same day, two lines
        r("fa", "2026-10-06 07:00:00", 59900, other_party="4930123456", plan_id="P_FAMILY", account_id="FAM_A"),
        r("fb", "2026-10-06 08:00:00", 200, other_party="4916012345678", plan_id="P_FAMILY", account_id="FAM_B"),
        r("fb2", "2026-10-06 08:30:00", 1500 * MB, service="data", rating_group=10, plan_id="P_FAMILY",
          account_id="FAM_B"),
        # business group allowance (ACC_ACME has no parent: its own group) and its B2B override rate
        r("biz", "2026-10-06 10:00:00", 179990, other_party="4916012345678", plan_id="P_BIZ", account_id="ACC_ACME"),
        r("biz2", "2026-10-07 10:00:00", 125, other_party="4930123456", plan_id="P_BIZ", account_id="ACC_ACME"),
        # data allowance crossing record split per started KB; music zero-rated outside the allowance
        r("d1", "2026-10-06 10:00:00", 2147483648 - 1024, service="data", rating_group=10, account_id="ACC2"),
        r("d2", "2026-10-06 11:00:00", MB + 1024, service="data", rating_group=10, account_id="ACC2"),
        r("d3", "2026-10-06 12:00:00", MB, service="data", rating_group=30, account_id="ACC2"),
        # a call split across bands (peak -> offpeak) whose allowance runs out in the second band
        r("sp9", "2026-10-05 09:00:00", 5940, other_party="4930123456", account_id="ACC_ACME"),
        r("sp1", "2026-10-05 17:59:30", 125, other_party="4916012345678", account_id="ACC_ACME"),
        r("sp2", "2026-10-09 21:59:00", 125, other_party="4930123456", account_id="ACC_ACME"),
        # graduated (running total per line) and volume (period total) tiers on P_IOT
        r("g1", "2026-10-06 10:00:00", 60 * MB, service="data", plan_id="P_IOT", rating_group=10),
        r("g2", "2026-10-07 10:00:00", 60 * MB, service="data", plan_id="P_IOT", rating_group=10),
        r("g3", "2026-10-08 10:00:00", 1000 * MB, service="data", plan_id="P_IOT", rating_group=10),
        r("v1", "2026-10-06 10:00:00", 30 * MB, service="data", plan_id="P_IOT", snssai="3-000003"),
        r("v2", "2026-10-07 10:00:00", 80 * MB, service="data", plan_id="P_IOT", snssai="3-000003"),
        # roaming with IOT: direction-specific voice rates, '*' data rate, EU allowance, WORLD cap
        r("us", "2026-10-06 10:00:00", 125, other_party="4916012345678", visited_network="USAAT"),
        r("us_mt", "2026-10-06 10:00:00", 61, direction="MT", other_party="4916012345678", visited_network="USAAT"),
        r("fr", "2026-10-06 10:00:00", 125, other_party="4916012345678", visited_network="FRAF1", account_id="ACC2"),
        r("gb_data", "2026-10-06 10:00:00", 3 * MB + 5, service="data", rating_group=10, visited_network="GBRCN"),
        r("tr_data", "2026-10-06 10:00:00", 9 * MB, service="data", rating_group=10, visited_network="TURTC"),
        r("es_sms", "2026-10-06 10:00:00", 2, service="sms", other_party="4412345678", visited_network="ESPTE"),
        r("de_home", "2026-10-06 10:00:00", 61, other_party="4916012345678", visited_network="DEUTB", account_id="ACC2"),
        r("zero", "2026-10-06 10:00:00", 0, other_party="4412345678", visited_network="USAAT"),
        # interconnect: off-net mobile, fixed, premium (capped), international; none for on-net
        r("ic_mob", "2026-10-06 10:00:00", 125, other_party="4917612345678", plan_id="P_UNLTD"),
        r("ic_fix", "2026-10-06 10:00:00", 61, other_party="4989123456", plan_id="PRE_PAYG"),
        r("ic_prem", "2026-10-06 10:00:00", 1200, other_party="4990012345", plan_id="P_UNLTD"),
        r("ic_intl", "2026-10-06 10:00:00", 61, other_party="9112345678", plan_id="P_UNLTD"),
        r("ic_on", "2026-10-06 10:00:00", 61, other_party="4915112345678", plan_id="P_UNLTD"),
        r("ic_other", "2026-10-06 10:00:00", 61, other_party="4952112345", plan_id="P_UNLTD"),
        # suspense, one per reason (the engine's codes)
        r("s_guide", "2026-10-06 10:00:00", 60, other_party="4930123456", plan_id=None),
        r("s_noplan", "2026-10-06 10:00:00", 60, other_party="4930123456", plan_id="P_GHOST"),
        r("s_net", "2026-10-06 10:00:00", 60, other_party="4930123456", visited_network="XXXYY"),
        r("s_dest", "2026-10-06 10:00:00", 60, other_party="+49-160"),
        r("s_neg", "2026-10-06 10:00:00", -5, other_party="4930123456"),
        r("s_null", "2026-10-06 10:00:00", None, service="data", rating_group=10),
        r("s_tariff", "2026-10-06 10:00:00", 60, direction="XX", other_party="4930123456"),
        # bill periods: UTC month for an unknown account; records outside the period are not rated at all
        r("unknown_acc", "2026-10-31 23:30:00", 60, other_party="4930123456", account_id="ACC_NEW"),
        r("sep", "2026-09-30 21:59:59", 60, other_party="4930123456"),
        r("nov", "2026-10-31 23:00:00", 60, other_party="4930123456"),
    ]


def _guided_none(rows: list[dict]) -> list[dict]:
    """The NOT_GUIDED record has no account either (mediation could not guide it)."""
    for row in rows:
        if row["record_id"] == "s_guide":
            row["account_id"] = None
    return rows


def test_engine_and_reference_agree_on_every_rule(catalogue, accounts) -> None:
    rows = _guided_none(_rules_rows())
    rated, suspense, settlement = assert_engine_agrees(catalogue, rows, accounts)
    by_id = {r["record_id"]: r for r in rated}
    # the cases really happened (so the agreement above covers them)
    assert (by_id["al2"]["quantity_included"], by_id["al2"]["quantity_charged"]) == (50, 75)
    assert (by_id["al5a"]["quantity_included"], by_id["al5b"]["quantity_included"]) == (5990, 10)
    assert by_id["fb"]["quantity_included"] == 100 and by_id["fb"]["allowance_pool"] == "A_FAMILY_MIN|2026-10|group:FAM1"
    assert by_id["biz2"]["quantity_included"] == 10 and by_id["biz2"]["rate_id"] == "V_BIZ_ACME"
    assert (by_id["d2"]["quantity_included"], by_id["d2"]["quantity_charged"]) == (1024, MB)
    assert by_id["sp1"]["band_segments"] == 2 and 0 < by_id["sp1"]["quantity_included"] < 125
    assert (by_id["g2"]["tier_before"], by_id["g3"]["tier_before"], by_id["v1"]["tier_total"]) == (60 * MB, 120 * MB,
                                                                                                   110 * MB)
    assert by_id["ic_prem"]["capped"] and "unknown_acc" not in by_id  # not in the customer data: suspense
    assert {s["record_id"]: s["reason_code"] for s in suspense} == {
        "s_guide": "NOT_GUIDED", "unknown_acc": "NOT_GUIDED", "s_noplan": "NO_PLAN", "s_net": "UNKNOWN_NETWORK", "s_dest": "UNKNOWN_DESTINATION",
        "s_neg": "BAD_QUANTITY", "s_null": "BAD_QUANTITY", "s_tariff": "NO_TARIFF"}
    assert "sep" not in by_id and "nov" not in by_id
    entries = {(e["record_id"], e["partner_type"]): e for e in settlement}
    assert entries[("us", "roaming")]["amount"] == Decimal("0.75")
    assert entries[("us_mt", "roaming")]["rate_id"] == "IOT:USAAT:voice:MT"
    assert entries[("gb_data", "roaming")]["rate_id"] == "IOT:GBRCN:data:*"
    assert entries[("ic_mob", "interconnect")]["partner_id"] == "IC_VODAFONE"
    assert entries[("ic_other", "interconnect")]["rate_id"] == "IC:IC_DTAG:49"
    assert ("ic_on", "interconnect") not in entries and ("de_home", "roaming") not in entries
    assert not any(e["record_id"] == "zero" for e in settlement)


def test_engine_and_reference_agree_on_generated_usage(catalogue, accounts) -> None:
    rows = random_usage(2500, seed=7) + _guided_none(_rules_rows())
    rated, suspense, settlement = assert_engine_agrees(catalogue, rows, accounts)
    crossing = [r for r in rated if r["allowance_id"] and 0 < r["quantity_included"] < r["quantity"]]
    assert len(crossing) >= 3 and len(settlement) > 500 and len(suspense) > 50


def test_catalogue_changing_mid_period_and_a_band_set_ending(catalogue, accounts, tmp_path: Path) -> None:
    # a copy of the tariffs where the on-net price and the basic minutes change on 2026-10-15 (local), the
    # prepaid band set has no band from 2026-10-28 (NO_BAND after that), a catch-all allowance overlaps the
    # specific ones (the most specific wins; equal ones by allowance id) and France has an MO data IOT rate
    # beside its '*' one (the direction-specific rate wins); two allowances have overage rates (one a group pool)
    draft = tmp_path / "tariffs"
    shutil.copytree(TARIFFS, draft)
    rates = (draft / "rates.csv").read_text().replace(
        "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice 0.05/min: first minute then per second,2024-01-01,,",
        "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice,2024-01-01,2026-10-15,\n"
        "V_ONNET,EUR,0.01,0.07,60,30,6,4,up,2,,On-net voice new,2026-10-15,,")
    allowances = (draft / "allowances.csv").read_text().replace(
        "A_BASIC_MIN,P_BASIC,voice,MO,HOME|EU,offnet_mobile|fixed,*,6000,line,,100 minutes to German networks,2024-01-01,",
        "A_BASIC_MIN,P_BASIC,voice,MO,HOME|EU,offnet_mobile|fixed,*,6000,line,,100 minutes,2024-01-01,2026-10-15\n"
        "A_BASIC_MIN2,P_BASIC,voice,MO,HOME|EU,offnet_mobile|fixed|onnet,*,300,line,V_OFFNET_PEAK,5 minutes,2026-10-15,\n"
        "A_BASIC_ALL,P_BASIC,voice,*,*,*,*,900,line,,15 minutes of any call,2024-01-01,\n"
        "A_BASIC_ALLDATA,P_BASIC,data,*,*,*,*,1048576,group,D_ROAM_EUROPE2,1 MB anywhere,2024-01-01,")
    iot = (draft / "iot_rates.csv").read_text() + "FRAF1,data,MO,0.0009,1048576,1024,EUR,2024-01-01,\n"
    bands = (draft / "time_bands.csv").read_text().replace("DE_FLAT,Europe/Berlin,,flat,mon-sun,00:00,24:00,2024-01-01,",
                                                          "DE_FLAT,Europe/Berlin,,flat,mon-sun,00:00,24:00,2024-01-01,2026-10-28")
    for name, text in (("rates.csv", rates), ("allowances.csv", allowances), ("time_bands.csv", bands),
                       ("iot_rates.csv", iot)):
        assert text != (TARIFFS / name).read_text()
        (draft / name).write_text(text)
    cat = load_catalogue(draft)
    rows = random_usage(800, seed=3) + _guided_none(_rules_rows())
    rows += [usage_row("fr_data", "2026-10-06 10:00:00", 5000, service="data", rating_group=10, visited_network="FRAF1")]
    rated, suspense, settlement = assert_engine_agrees(cat, rows, accounts)
    assert {r["allowance_id"] for r in rated} >= {"A_BASIC_MIN", "A_BASIC_MIN2", "A_BASIC_ONNET", "A_BASIC_ALL",
                                                  "A_BASIC_ALLDATA", "A_BASIC_DATA"}
    assert "NO_BAND" in {s["reason_code"] for s in suspense}
    overage = {(r["allowance_id"], r["rate_id"]) for r in rated if r["quantity_included"] < r["quantity"]}
    assert {("A_BASIC_ALLDATA", "D_ROAM_EUROPE2"), ("A_BASIC_MIN2", "V_OFFNET_PEAK")} <= overage
    assert [e["rate_id"] for e in settlement if e["record_id"] == "fr_data"] == ["IOT:FRAF1:data:MO"]


def test_settlement_amount_rounds_half_up_on_whole_increments() -> None:
    # 125 s at 0.022/min per second: 0.0458333...; 61 s per started minute at 0.10: 0.20
    assert settlement_amount("0.022", 125, 1, 60) == Decimal("0.045833333")
    assert settlement_amount("0.10", 61, 60, 60) == Decimal("0.200000000")
    assert settlement_amount("0.000000005", 1, 1, 10) == Decimal("0.000000001")   # 0.5 nano rounds up


def _random_case(seed: int, n: int) -> tuple[list[dict], pl.DataFrame]:
    """Random usage plus random twists the generator lacks: P_IOT tiers, shared lines, unguided records,
    other cycle days and zones (part of the records then falls outside the period)."""
    rng = random.Random(seed)
    rows = random_usage(n, seed)
    for row in rows:
        twist = rng.random()
        if twist < 0.1 and row["service"] == "data":
            row["plan_id"] = "P_IOT"
        elif twist < 0.15:
            row["subscription_id"] = None   # the line is then the msisdn
        elif twist < 0.18:
            row["account_id"] = None
    cycle_day, tz = rng.choice([(1, "Europe/Berlin"), (1, "UTC"), (15, "Europe/Berlin"), (28, "America/New_York")])
    return rows, accounts_frame(*DEFAULT_ACCOUNTS, cycle_day=cycle_day, tz=tz)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 80))
def test_engine_and_reference_agree_on_random_small_usage_sets(catalogue, seed, n) -> None:
    rows, accounts = _random_case(seed, n)
    rated, suspense, _ = assert_engine_agrees(catalogue, rows, accounts)
    ids = Counter(r["record_id"] for r in rated + suspense)
    assert set(ids) <= {r["record_id"] for r in rows} and all(c == 1 for c in ids.values())
