"""Golden tests: hand-checked amounts for each tariff rule, rated by the set-based engine.

Times are UTC; Germany is UTC+2 until 2026-10-25 03:00 local, then UTC+1. DE_STD bands: peak mon-fri
08:00-20:00 local, offpeak otherwise, weekend sat/sun, holiday (2026-10-03 is German Unity Day).
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from pipelines.rating.catalogue import Catalogue
from pipelines.rating.stage import rate_frames
from rating.helpers import PERIOD, accounts_frame, ts, usage_frame, usage_row


def rate(cat: Catalogue, rows: list[dict], accounts: pl.DataFrame, *, allowances: bool = False):
    n_in, out = rate_frames(cat, usage_frame(rows), accounts, PERIOD, apply_allowances=allowances)
    assert n_in == out.rated.height + out.suspense.height
    return {r["record_id"]: r for r in out.rated.iter_rows(named=True)}, out


def test_band_change_splits_the_call_and_prices_each_band(catalogue, accounts) -> None:
    # Mon 19:59:30 local, 125 s off-net: 30 s peak, 95 s offpeak. First-minute block starts in peak:
    # 0.02 connect + 0.09; the 65 per-second blocks start in offpeak: 0.04/60 = 0.000667 -> 0.0007 (4 dp) each.
    rated, _ = rate(catalogue, [usage_row("r1", "2026-10-05 17:59:30", 125, other_party="4916012345678")], accounts)
    r = rated["r1"]
    assert r["charge"] == Decimal("0.1555")
    assert (r["band"], r["rate_id"], r["band_segments"], r["quantity_charged"]) == ("peak", "V_OFFNET_PEAK", 2, 125)
    assert r["segments_detail"].startswith("peak V_OFFNET_PEAK 30000000 60 110000000; offpeak V_OFFNET_OFFPEAK 95000000 65")


def test_band_split_across_midnight_into_the_weekend(catalogue, accounts) -> None:
    # Fri 2026-10-09 23:59:00 local (21:59 UTC), 125 s to Berlin fixed, per started minute:
    # minute 1 offpeak 0.03, minutes 2 and 3 start on Saturday (weekend 0.01) -> 0.05.
    rated, _ = rate(catalogue, [usage_row("r1", "2026-10-09 21:59:00", 125, other_party="4930123456")], accounts)
    r = rated["r1"]
    assert r["charge"] == Decimal("0.05")
    assert r["band"] == "offpeak" and r["band_segments"] == 2 and r["quantity_charged"] == 180
    assert "weekend V_FIXED_WEEKEND 65000000 120" in r["segments_detail"]


def test_holiday_band_on_german_unity_day(catalogue, accounts) -> None:
    # Sat 2026-10-03 is a holiday: the holiday band wins over the weekend band.
    rated, _ = rate(catalogue, [usage_row("r1", "2026-10-03 10:00:00", 60, other_party="4930123456")], accounts)
    assert rated["r1"]["band"] == "holiday"
    assert rated["r1"]["charge"] == Decimal("0.03")


def test_dst_change_day(catalogue, accounts) -> None:
    # Mon 2026-10-26 (after DST ended): peak starts 08:00 CET = 07:00 UTC (it was 06:00 UTC a week before).
    rows = [usage_row("after", "2026-10-26 06:59:30", 90, other_party="4916012345678"),
            usage_row("before", "2026-10-19 06:59:30", 90, other_party="4916012345678"),
            # the night the clocks go back: 02:59 CEST -> 02:01 CET is 120 real seconds, one weekend band
            usage_row("night", "2026-10-25 00:59:00", 120, other_party="4930123456")]
    rated, _ = rate(catalogue, rows, accounts)
    # 30 s offpeak then peak: first minute at offpeak 0.02 + 0.04; 30 per-second blocks at peak 0.0015
    assert rated["after"]["band"] == "offpeak" and rated["after"]["band_segments"] == 2
    assert rated["after"]["charge"] == Decimal("0.105")
    # the week before, 06:59:30 UTC is 08:59:30 CEST: all peak, 0.02 + 0.09 + 30 * 0.0015
    assert rated["before"]["band"] == "peak" and rated["before"]["band_segments"] == 1
    assert rated["before"]["charge"] == Decimal("0.155")
    assert rated["night"]["band"] == "weekend" and rated["night"]["quantity_charged"] == 120
    assert rated["night"]["charge"] == Decimal("0.02")


def test_dst_days_have_23_and_25_hours(catalogue) -> None:
    autumn = catalogue.band_calendar("DE_STD", ts("2026-10-24 12:00:00"), ts("2026-10-25 12:00:00"))
    weekend = [(s, e) for s, e, b in autumn if b == "weekend"][0]
    assert weekend == (ts("2026-10-23 22:00:00"), ts("2026-10-25 23:00:00"))   # sat 24 h + sun 25 h
    spring = catalogue.band_calendar("DE_STD", ts("2026-03-29 12:00:00"), ts("2026-03-29 13:00:00"))
    weekend = [(s, e) for s, e, b in spring if b == "weekend"][0]
    assert weekend == (ts("2026-03-27 23:00:00"), ts("2026-03-29 22:00:00"))   # sat 24 h + sun 23 h


@pytest.mark.parametrize(
    ("other_party", "seconds", "expected", "capped", "rate_id"),
    [
        ("4916012345678", 61, "0.0607", False, "V_OFFNET_OFFPEAK"),   # 0.02 + 0.04 + round(0.000667, 4) = 0.0007
        ("4916012345678", 60, "0.06", False, "V_OFFNET_OFFPEAK"),     # exactly the first interval
        ("4916012345678", 1, "0.06", False, "V_OFFNET_OFFPEAK"),      # a 1 s call pays the first minute
        ("4990012345", 125, "6.47", False, "V_PREMIUM"),             # 0.50 + 3 started minutes * 1.99
        ("4412345678", 31, "0.1140", False, "V_INTL_EU"),            # 30/6: 0.095 + 1 block of 6 s 0.019
        ("8612345678", 61, "1.98", False, "V_INTL_WORLD"),           # catch-all destination, 2 started minutes
        ("8612345678", 1800, "25.00", True, "V_INTL_WORLD"),         # 30 * 0.99 = 29.70 capped at 25.00
        ("4916012345678", 0, "0", False, "V_OFFNET_OFFPEAK"),        # zero duration: no connect fee
    ],
)
def test_increments_rounding_and_cap(catalogue, accounts, other_party, seconds, expected, capped, rate_id) -> None:
    rated, _ = rate(catalogue, [usage_row("r1", "2026-10-06 20:00:00", seconds, other_party=other_party)], accounts)
    r = rated["r1"]
    assert r["charge"] == Decimal(expected)
    assert r["capped"] is capped and r["rate_id"] == rate_id


def test_data_per_volume_block_with_per_increment_rounding(catalogue, accounts) -> None:
    # 0.01 per MB, per started KB: 0.01 * 1024 / 1048576 = 0.000009765625 -> 0.000009766 (9 dp) per KB.
    rows = [usage_row("mb", "2026-10-06 10:00:00", 1048576, service="data", rating_group=10),
            usage_row("kb", "2026-10-06 10:00:00", 1025, service="data", rating_group=10)]
    rated, _ = rate(catalogue, rows, accounts)
    assert rated["mb"]["precise_charge"] == Decimal("0.010000384")   # 1024 blocks * 0.000009766
    assert rated["mb"]["charge"] == Decimal("0.010000")              # final rounding: 6 dp half-up
    assert rated["kb"]["quantity_charged"] == 2048 and rated["kb"]["charge"] == Decimal("0.000020")


def test_sms_and_event_per_unit_content_discount_and_zero_rating(catalogue, accounts) -> None:
    rows = [usage_row("sms", "2026-10-06 10:00:00", 1, service="sms", other_party="4916012345678"),
            usage_row("sms_onnet", "2026-10-06 10:00:00", 1, service="sms", other_party="4915112345678"),
            usage_row("evt", "2026-10-06 10:00:00", 3, service="event"),
            usage_row("video", "2026-10-06 10:00:00", 1048576, service="data", rating_group=20),
            usage_row("music", "2026-10-06 10:00:00", 1048576, service="data", rating_group=30)]
    rated, _ = rate(catalogue, rows, accounts)
    assert rated["sms"]["charge"] == Decimal("0.09")
    assert rated["sms_onnet"]["charge"] == Decimal("0.05")
    assert rated["evt"]["charge"] == Decimal("0.75")
    assert (rated["video"]["rate_id"], rated["video"]["charge"]) == ("D_VIDEO", Decimal("0.005"))
    assert (rated["music"]["rate_id"], rated["music"]["charge"]) == ("D_ZERO", Decimal("0"))


def test_slice_and_qos_rates(catalogue, accounts) -> None:
    # URLLC slice 0.05/MB: per KB 0.0000488281 25 -> 0.000048828; 1024 of them = 0.049999872 -> 0.050000
    rows = [usage_row("urllc", "2026-10-06 10:00:00", 1048576, service="data", snssai="2-000002"),
            usage_row("miot", "2026-10-06 10:00:00", 1048576, service="data", snssai="3-000003"),
            usage_row("lowlat", "2026-10-06 10:00:00", 1048576, service="data", snssai="1-000001", qos_class=80),
            usage_row("embb", "2026-10-06 10:00:00", 1048576, service="data", snssai="1-000001", qos_class=9)]
    rated, _ = rate(catalogue, rows, accounts)
    assert (rated["urllc"]["rate_id"], rated["urllc"]["charge"]) == ("D_SLICE_URLLC", Decimal("0.05"))
    assert rated["urllc"]["precise_charge"] == Decimal("0.049999872")
    assert rated["miot"]["rate_id"] == "D_SLICE_MIOT"
    assert (rated["lowlat"]["rate_id"], rated["lowlat"]["charge"]) == ("D_QOS_LOWLAT", Decimal("0.03"))
    assert rated["embb"]["rate_id"] == "D_STD"


def test_roaming_charge_and_iot_settlement_entry(catalogue, accounts) -> None:
    rows = [usage_row("us", "2026-10-06 10:00:00", 125, other_party="4916012345678", visited_network="USAAT"),
            usage_row("fr", "2026-10-06 10:00:00", 125, other_party="4916012345678", visited_network="FRAF1"),
            usage_row("us_mt", "2026-10-06 10:00:00", 61, direction="MT", other_party="4916012345678",
                      visited_network="USAAT")]
    rated, out = rate(catalogue, rows, accounts)
    # zone WORLD: 1.99 per started minute -> 3 * 1.99; IOT to USAAT 0.25/min per minute -> 0.75
    assert (rated["us"]["zone"], rated["us"]["rate_id"], rated["us"]["charge"]) == ("WORLD", "V_ROAM_WORLD",
                                                                                    Decimal("5.97"))
    # zone EU: roam like at home (home off-net peak rate); IOT FRAF1 0.022/min per second = 0.0458333333
    assert (rated["fr"]["zone"], rated["fr"]["rate_id"], rated["fr"]["charge"]) == ("EU", "V_OFFNET_PEAK",
                                                                                    Decimal("0.2075"))
    assert rated["us_mt"]["charge"] == Decimal("1.58")   # incoming 0.79 per started minute
    entries = {(e["record_id"], e["partner_type"]): e for e in out.settlement.iter_rows(named=True)}
    assert entries[("us", "roaming")]["partner_id"] == "USAAT"
    assert entries[("us", "roaming")]["amount"] == Decimal("0.75")
    assert entries[("us", "roaming")]["direction"] == "payable"
    assert entries[("fr", "roaming")]["amount"] == Decimal("0.045833333")
    assert entries[("us_mt", "roaming")]["amount"] == Decimal("0.20")    # 0.10 per started minute, 2 minutes
    assert ("us", "interconnect") not in entries                          # roaming calls: no home interconnect


def test_interconnect_settlement_for_off_net_calls_only(catalogue, accounts) -> None:
    rows = [usage_row("offnet", "2026-10-06 10:00:00", 125, other_party="4917612345678"),
            usage_row("onnet", "2026-10-06 10:00:00", 125, other_party="4915112345678"),
            usage_row("uk", "2026-10-06 10:00:00", 61, other_party="4412345678")]
    _, out = rate(catalogue, rows, accounts)
    entries = {e["record_id"]: e for e in out.settlement.iter_rows(named=True)}
    assert set(entries) == {"offnet", "uk"}
    assert (entries["offnet"]["partner_id"], entries["offnet"]["amount"]) == ("IC_VODAFONE", Decimal("0.01625"))
    assert (entries["uk"]["partner_id"], entries["uk"]["amount"]) == ("IC_BT", Decimal("0.04"))


def test_b2b_account_override(catalogue) -> None:
    accounts = accounts_frame(("ACC_ACME", None), ("ACC2", None))
    rows = [usage_row("acme", "2026-10-06 10:00:00", 125, other_party="4916012345678", plan_id="P_BIZ",
                      account_id="ACC_ACME"),
            usage_row("other", "2026-10-06 10:00:00", 125, other_party="4916012345678", plan_id="P_BIZ",
                      account_id="ACC2")]
    rated, _ = rate(catalogue, rows, accounts)
    # 0.02/min per second, 6 dp per increment: 0.000333 * 125
    assert (rated["acme"]["rate_id"], rated["acme"]["charge"]) == ("V_BIZ_ACME", Decimal("0.041625"))
    assert rated["other"]["rate_id"] == "V_OFFNET_PEAK"


def test_allowance_exhausted_mid_call(catalogue, accounts) -> None:
    # P_BASIC: 6000 s to German networks. 5950 s used, then a 125 s peak off-net call: 50 s included,
    # 75 s charged per second (no connect fee, no first interval on the remainder): 75 * 0.0015.
    rows = [usage_row("first", "2026-10-06 09:00:00", 5950, other_party="4930123456"),
            usage_row("crossing", "2026-10-07 09:00:00", 125, other_party="4916012345678"),
            usage_row("after", "2026-10-08 09:00:00", 60, other_party="4916012345678"),
            usage_row("onnet", "2026-10-08 10:00:00", 600, other_party="4915112345678")]
    rated, _ = rate(catalogue, rows, accounts, allowances=True)
    assert (rated["first"]["quantity_included"], rated["first"]["charge"]) == (5950, Decimal("0"))
    c = rated["crossing"]
    assert (c["quantity_included"], c["quantity_charged"], c["charge"]) == (50, 75, Decimal("0.1125"))
    assert c["allowance_id"] == "A_BASIC_MIN" and c["allowance_used_before"] == 5950
    assert (rated["after"]["quantity_included"], rated["after"]["charge"]) == (0, Decimal("0.11"))
    # unlimited on-net
    assert (rated["onnet"]["allowance_id"], rated["onnet"]["charge"]) == ("A_BASIC_ONNET", Decimal("0"))


def test_shared_allowance_used_by_two_lines_on_the_same_day(catalogue, accounts) -> None:
    # P_FAMILY: 60000 s shared by the group FAM1. Line A uses 59900 s at 07:00 UTC, line B 200 s at 08:00:
    # B gets the last 100 s free and pays 100 s at the peak off-net rate 0.0015/s.
    rows = [usage_row("a", "2026-10-06 07:00:00", 59900, other_party="4930123456", plan_id="P_FAMILY",
                      account_id="FAM_A"),
            usage_row("b", "2026-10-06 08:00:00", 200, other_party="4916012345678", plan_id="P_FAMILY",
                      account_id="FAM_B")]
    rated, _ = rate(catalogue, rows, accounts, allowances=True)
    assert rated["a"]["quantity_included"] == 59900 and rated["a"]["charge"] == Decimal("0")
    b = rated["b"]
    assert (b["quantity_included"], b["quantity_charged"], b["charge"]) == (100, 100, Decimal("0.15"))
    assert b["allowance_pool"] == rated["a"]["allowance_pool"] == "A_FAMILY_MIN|2026-10|group:FAM1"


def test_data_allowance_crossing_record_split(catalogue, accounts) -> None:
    gb2 = 2147483648
    rows = [usage_row("d1", "2026-10-06 10:00:00", gb2 - 1024, service="data", rating_group=10),
            usage_row("d2", "2026-10-06 11:00:00", 1048576 + 1024, service="data", rating_group=10)]
    rated, _ = rate(catalogue, rows, accounts, allowances=True)
    d2 = rated["d2"]
    assert (d2["quantity_included"], d2["quantity_charged"]) == (1024, 1048576)
    assert d2["charge"] == Decimal("0.010000")


def test_unratable_records_go_to_suspense_with_reasons(catalogue, accounts) -> None:
    rows = [usage_row("ok", "2026-10-06 10:00:00", 60, other_party="4916012345678"),
            usage_row("noplan", "2026-10-06 10:00:00", 60, other_party="4916012345678", plan_id="P_GHOST"),
            # any character in a usage value (a quote, a NUL byte) is data, never SQL: suspense, not a crash
            usage_row("oddplan", "2026-10-06 10:00:00", 60, other_party="4916012345678", plan_id="P_\x00'X"),
            usage_row("baddest", "2026-10-06 10:00:00", 60, other_party="+49-160"),
            usage_row("nonet", "2026-10-06 10:00:00", 60, other_party="4916012345678", visited_network="XXXYY"),
            usage_row("neg", "2026-10-06 10:00:00", -5, other_party="4916012345678")]
    _, out = rate(catalogue, rows, accounts)
    reasons = dict(out.suspense.select("record_id", "reason_code").iter_rows())
    assert reasons == {"noplan": "NO_PLAN", "oddplan": "NO_PLAN", "baddest": "UNKNOWN_DESTINATION", "nonet": "UNKNOWN_NETWORK",
                       "neg": "BAD_QUANTITY"}
    assert out.rated["record_id"].to_list() == ["ok"]
    assert all(out.suspense["message"].str.len_chars() > 10)


def test_only_usage_of_the_accounts_bill_period_is_rated(catalogue) -> None:
    # cycle day 15 in Europe/Berlin: period 2026-10 is [2026-10-15 00:00 CEST, 2026-11-15 00:00 CET)
    accounts = accounts_frame(("ACC1", None), cycle_day=15)
    rows = [usage_row("before", "2026-10-14 21:59:59", 60, other_party="4916012345678"),
            usage_row("first", "2026-10-14 22:00:00", 60, other_party="4916012345678"),
            usage_row("last", "2026-11-14 22:59:59", 60, other_party="4916012345678"),
            usage_row("after", "2026-11-14 23:00:00", 60, other_party="4916012345678")]
    rated, out = rate(catalogue, rows, accounts)
    assert sorted(rated) == ["first", "last"] and out.suspense.height == 0
    assert ts("2026-10-14 22:00:00") == rated["first"]["start_time"]


def test_graduated_and_volume_data_tiers(catalogue, accounts) -> None:
    # P_IOT graduated: first 100 MB 0.02/MB, up to 1 GB 0.01/MB, then 0.005/MB (running total per line).
    # MIoT slice volume: the whole period at 0.008/MB below 100 MB total, 0.004/MB from 100 MB.
    mb = 1048576
    rows = [usage_row("g1", "2026-10-06 10:00:00", 60 * mb, service="data", plan_id="P_IOT", rating_group=10),
            usage_row("g2", "2026-10-07 10:00:00", 60 * mb, service="data", plan_id="P_IOT", rating_group=10),
            usage_row("v1", "2026-10-06 10:00:00", 30 * mb, service="data", plan_id="P_IOT", snssai="3-000003"),
            usage_row("v2", "2026-10-07 10:00:00", 80 * mb, service="data", plan_id="P_IOT", snssai="3-000003")]
    rated, _ = rate(catalogue, rows, accounts, allowances=True)
    assert (rated["g1"]["rate_id"], rated["g1"]["charge"]) == ("D_IOT_GRAD", Decimal("1.20"))
    assert rated["g2"]["tier_before"] == 60 * mb
    assert rated["g2"]["charge"] == Decimal("1.00")          # 40 MB * 0.02 + 20 MB * 0.01
    assert rated["v1"]["tier_total"] == 110 * mb
    assert (rated["v1"]["charge"], rated["v2"]["charge"]) == (Decimal("0.12"), Decimal("0.32"))
    from pipelines.rating.quote import quote

    q = quote(catalogue, "P_IOT", "data", ts("2026-10-07 10:00:00"), 60 * mb, tier_position=60 * mb)
    assert q.charge == rated["g2"]["charge"]
    q = quote(catalogue, "P_IOT", "data", ts("2026-10-06 10:00:00"), 30 * mb, snssai="3-000003",
              tier_total=110 * mb)
    assert q.charge == rated["v1"]["charge"]


def test_usage_of_an_account_missing_from_customer_data_is_suspended_not_rated(catalogue, accounts) -> None:
    # mediation guided the record to ACC_GONE, but the account is not in the customer data: it cannot be billed,
    # so it waits in suspense (UTC calendar month) instead of becoming a charge no invoice will carry
    rows = [usage_row("known", "2026-10-06 10:00:00", 60, other_party="4916012345678"),
            usage_row("gone", "2026-10-06 10:00:00", 60, other_party="4916012345678", account_id="ACC_GONE")]
    rated, out = rate(catalogue, rows, accounts)
    assert sorted(rated) == ["known"]
    suspended = out.suspense.row(0, named=True)
    assert (suspended["record_id"], suspended["reason_code"]) == ("gone", "NOT_GUIDED")
    assert suspended["message"] == "account ACC_GONE is not in the customer data"
