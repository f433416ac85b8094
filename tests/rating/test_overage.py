"""Allowance overage rates (issue 3): a record an allowance does not fully cover is priced with the overage rate.

Every amount below is computed by hand in the comment beside it. Times are UTC; Germany is UTC+2 until
2026-10-25. DE_STD bands: peak mon-fri 08:00-20:00 local, offpeak otherwise, weekend sat/sun, holiday.
The engine runs for real (DuckDB via ``rate_frames``); draft catalogues are copies of tariffs/ in a tmp folder.
"""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.common.partitions import read_published, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.rating.catalogue import Catalogue, CatalogueError, load_catalogue
from pipelines.rating.explain import explain_record, explain_row
from pipelines.rating.quote import quote
from pipelines.rating.rerate import rerate_period
from pipelines.rating.stage import rate_frames, rate_period
from rating.generate import random_usage
from rating.helpers import (
    DEFAULT_ACCOUNTS,
    PERIOD,
    TARIFFS,
    accounts_frame,
    publish_usage,
    ts,
    usage_frame,
    usage_row,
)
from rating.test_golden import rate
from rating.test_reference import _guided_none, _rules_rows, assert_engine_agrees

MB = 1048576
OFFNET = "4916012345678"
FIXED = "4930123456"
ONNET = "4915112345678"
UNLTD_GB20 = 21474836480

# 0.10 connect, 0.30/min, first 60 s then per second; per-second block 0.30/60 = 0.005 exactly
V_OVER = "V_OVER,EUR,0.10,0.30,60,60,1,4,half_up,4,,Voice beyond the allowance 0.30/min,2024-01-01,,"
# capped, 30/6 billing, half-even: exercises every pricing column of an overage rate
V_OVER_CAP = "V_OVER_CAP,EUR,0.05,0.60,60,30,6,5,half_even,2,2.50,Family overage 0.60/min capped 2.50,2024-01-01,,"
D_OVER = "D_OVER,EUR,0.01,0.02,1048576,102400,10240,9,up,4,1.00,Data overage 0.02/MB per 10 KB capped,2024-01-01,,"
D_OVER_TIER = "D_OVER_TIER,EUR,0,0,1048576,1048576,1048576,9,half_up,6,,Tiered data overage,2024-01-01,,T_IOT_GRAD"


def edit_allowances(path: Path, overage: dict[str, str] | None = None, quantity: dict[str, str] | None = None,
                    drop_overage_column: bool = False) -> None:
    """Set allowances' overage rate / quantity (adding the optional column when the file lacks it)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0])
    if "overage_rate_id" not in columns:
        columns.append("overage_rate_id")
    if drop_overage_column:
        columns.remove("overage_rate_id")
    for row in rows:
        row.setdefault("overage_rate_id", "")
        row["overage_rate_id"] = (overage or {}).get(row["allowance_id"], row["overage_rate_id"] or "")
        row["quantity"] = (quantity or {}).get(row["allowance_id"], row["quantity"])
    for name in {*(overage or {}), *(quantity or {})}:
        assert name in {r["allowance_id"] for r in rows}, name
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def draft(base: Path, rates: list[str] = (), overage: dict[str, str] | None = None,
          quantity: dict[str, str] | None = None, drop_overage_column: bool = False) -> Path:
    """A private copy of tariffs/ with extra rates and edited allowances."""
    out = base / "tariffs"
    shutil.copytree(TARIFFS, out)
    text = (out / "rates.csv").read_text()
    (out / "rates.csv").write_text(text + ("" if text.endswith("\n") else "\n") + "".join(r + "\n" for r in rates))
    edit_allowances(out / "allowances.csv", overage, quantity, drop_overage_column)
    return out


@pytest.fixture(scope="module")
def voice_cat(tmp_path_factory) -> Catalogue:
    """Basic 100 minutes (A_BASIC_MIN, 6000 s per line) with the overage rate V_OVER."""
    return load_catalogue(draft(tmp_path_factory.mktemp("voice"), [V_OVER], {"A_BASIC_MIN": "V_OVER"}))


@pytest.fixture(scope="module")
def small_cat(tmp_path_factory) -> Catalogue:
    """Small allowances with overage rates on line and group allowances, voice and data."""
    return load_catalogue(draft(
        tmp_path_factory.mktemp("small"), [V_OVER, V_OVER_CAP, D_OVER],
        {"A_BASIC_MIN": "V_OVER", "A_BASIC_DATA": "D_OVER", "A_FAMILY_MIN": "V_OVER_CAP", "A_FAMILY_DATA": "D_OVER",
         "A_BIZ_MIN": "V_OVER", "A_UNLTD_DATA": "D_OVER"},
        {"A_BASIC_MIN": "1200", "A_BASIC_DATA": str(20 * MB), "A_FAMILY_MIN": "3000",
         "A_FAMILY_DATA": str(100 * MB), "A_BIZ_MIN": "6000", "A_UNLTD_DATA": str(50 * MB)}))


def _data_rows() -> list[dict]:
    """P_UNLTD line ACC1: 20 GB data (rating groups 10|20, HOME|EU) with the demo overage rate D_UNLTD_OVERAGE."""
    d = dict(service="data", plan_id="P_UNLTD")
    return [usage_row("d1", "2026-10-06 10:00:00", UNLTD_GB20 - 1000, rating_group=10, **d),
            usage_row("roam", "2026-10-06 10:30:00", 102400, rating_group=10, visited_network="USAAT", **d),
            usage_row("d2", "2026-10-06 11:00:00", 3_000_000, rating_group=10, **d),
            usage_row("d3", "2026-10-06 12:00:00", 500_000, rating_group=10, **d),
            usage_row("eu", "2026-10-06 13:00:00", MB + 1, rating_group=10, visited_network="FRAF1", **d),
            usage_row("video", "2026-10-06 14:00:00", 1, rating_group=20, **d),
            usage_row("music", "2026-10-06 15:00:00", MB, rating_group=30, **d)]


def _voice_rows() -> list[dict]:
    """P_BASIC line ACC1: 6000 s to German networks (A_BASIC_MIN), then V_OVER."""
    return [usage_row("fill", "2026-10-04 08:00:00", 5990, other_party=FIXED),            # Sunday: weekend
            usage_row("cross", "2026-10-05 17:59:30", 125, other_party=OFFNET),          # Mon 19:59:30 local
            usage_row("after_off", "2026-10-05 19:00:00", 61, other_party=OFFNET),       # Mon 21:00 local
            usage_row("after_peak", "2026-10-06 10:00:00", 61, other_party=FIXED),       # Tue 12:00 local
            usage_row("after_zero", "2026-10-06 11:00:00", 0, other_party=OFFNET),       # Tue 13:00 local
            usage_row("onnet", "2026-10-06 12:00:00", 600, other_party=ONNET),           # unlimited on-net
            usage_row("weekend", "2026-10-09 21:59:00", 125, other_party=FIXED)]         # Fri 23:59 local


# 1. data overage on the demo catalogue ----------------------------------------------------------------------

def test_demo_catalogue_has_the_unlimited_data_overage_rate(catalogue) -> None:
    allowance = catalogue.tables["allowances"].filter(pl.col("allowance_id") == "A_UNLTD_DATA").row(0, named=True)
    assert allowance["overage_rate_id"] == "D_UNLTD_OVERAGE"
    over = catalogue.rate("D_UNLTD_OVERAGE", ts("2026-10-06 10:00:00"))
    assert over is not None and over["price"] in ("0.002", Decimal("0.002"))
    assert (over["first_interval"], over["increment"], over["rate_unit"]) == (MB, MB, MB)


def test_data_beyond_the_allowance_is_priced_with_the_overage_rate(catalogue, accounts) -> None:
    rated, _ = rate(catalogue, _data_rows(), accounts, allowances=True)
    # d1: 20 GB - 1000 bytes, fully included: the rule's rate, nothing to pay
    d1 = rated["d1"]
    assert (d1["quantity_included"], d1["charge"], d1["rate_id"]) == (UNLTD_GB20 - 1000, Decimal("0"), "D_STD")
    assert d1["allowance_id"] == "A_UNLTD_DATA"
    # roaming in zone WORLD (USAAT) is outside HOME|EU: no allowance, its roaming rate D_ROAM_WORLD:
    # 102400 bytes = 10 blocks of 10 KB; block 9.99 * 10240 / 1048576 = 0.09755859375 -> 0.097558594 (up, 9 dp);
    # 10 blocks 0.97558594 -> 0.98 (up, 2 dp). It does not consume the allowance (d2 still gets 1000 bytes).
    roam = rated["roam"]
    assert (roam["zone"], roam["rate_id"], roam["allowance_id"]) == ("WORLD", "D_ROAM_WORLD", None)
    assert (roam["precise_charge"], roam["charge"]) == (Decimal("0.97558594"), Decimal("0.98"))
    # d2: 3,000,000 bytes, 1000 included; the rest 2,999,000 per started MB from the split point (no first interval):
    # ceil(2999000 / 1048576) = 3 blocks = 3145728 bytes at 0.002 -> 0.006
    d2 = rated["d2"]
    assert (d2["quantity_included"], d2["quantity_charged"], d2["charge"]) == (1000, 3 * MB, Decimal("0.006"))
    assert (d2["rate_id"], d2["allowance_id"], d2["allowance_used_before"]) == ("D_UNLTD_OVERAGE", "A_UNLTD_DATA",
                                                                                UNLTD_GB20 - 1000)
    # d3: 500,000 bytes after exhaustion: one first interval of 1 MB at 0.002 (connect fee 0)
    d3 = rated["d3"]
    assert (d3["quantity_included"], d3["quantity_charged"], d3["charge"]) == (0, MB, Decimal("0.002"))
    assert (d3["rate_id"], d3["allowance_id"]) == ("D_UNLTD_OVERAGE", "A_UNLTD_DATA")
    # roaming in the EU is in the allowance's zones: 1 MB + 1 byte = first MB + one more MB -> 0.004
    eu = rated["eu"]
    assert (eu["zone"], eu["rate_id"], eu["quantity_charged"], eu["charge"]) == ("EU", "D_UNLTD_OVERAGE", 2 * MB,
                                                                                 Decimal("0.004"))
    # video (rating group 20) is in the allowance: overage instead of D_VIDEO, 1 byte -> one MB 0.002
    assert (rated["video"]["rate_id"], rated["video"]["charge"]) == ("D_UNLTD_OVERAGE", Decimal("0.002"))
    # music (rating group 30) is not in the allowance: zero-rated as before
    assert (rated["music"]["rate_id"], rated["music"]["allowance_id"], rated["music"]["charge"]) == (
        "D_ZERO", None, Decimal("0"))


def test_a_catalogue_without_the_overage_column_loads_and_rates_as_before(tmp_path: Path, accounts) -> None:
    cat = load_catalogue(draft(tmp_path, drop_overage_column=True))
    assert "overage_rate_id" not in (tmp_path / "tariffs" / "allowances.csv").read_text()
    rated, _ = rate(cat, _data_rows(), accounts, allowances=True)
    # D_STD 0.01/MB per started KB, block 0.000009765625 -> 0.000009766 (9 dp):
    # d2 rest 2,999,000 bytes -> 2929 KB blocks -> 0.028604614 -> 0.028605 (6 dp half-up)
    assert (rated["d2"]["rate_id"], rated["d2"]["quantity_charged"]) == ("D_STD", 2929 * 1024)
    assert rated["d2"]["charge"] == Decimal("0.028605")
    # d3 500,000 bytes from zero: 489 KB blocks -> 0.004775574 -> 0.004776
    assert (rated["d3"]["rate_id"], rated["d3"]["charge"]) == ("D_STD", Decimal("0.004776"))
    assert (rated["video"]["rate_id"], rated["video"]["charge"]) == ("D_VIDEO", Decimal("0.000005"))  # 1 KB at 0.005/MB


def test_explain_names_the_overage_rate(catalogue, accounts) -> None:
    rated, _ = rate(catalogue, _data_rows(), accounts, allowances=True)
    text = explain_row(rated["d2"], catalogue)
    assert "overage rate D_UNLTD_OVERAGE" in text and "A_UNLTD_DATA" in text
    assert "overage" not in explain_row(rated["d1"], catalogue).lower()
    assert "overage" not in explain_row(rated["roam"], catalogue).lower()


# 2. voice overage with a band split ---------------------------------------------------------------------------

def test_voice_overage_is_one_price_across_band_edges(voice_cat, catalogue, accounts) -> None:
    rated, _ = rate(voice_cat, _voice_rows(), accounts, allowances=True)
    # fill: Sunday 5990 s to a fixed line, all included: rule rate V_FIXED_WEEKEND, charge 0
    fill = rated["fill"]
    assert (fill["quantity_included"], fill["rate_id"], fill["charge"]) == (5990, "V_FIXED_WEEKEND", Decimal("0"))
    # cross: Mon 19:59:30 local, 125 s off-net; 10 s included (to 19:59:40), 115 s charged per second from the
    # split point, no connect fee, no first interval: 20 s before 20:00 (peak) + 95 s after (offpeak), all at
    # 0.30/60 = 0.005 per second: 115 * 0.005 = 0.575 (peak segment 20 * 0.005 = 0.1, offpeak 95 * 0.005 = 0.475)
    c = rated["cross"]
    assert (c["quantity_included"], c["quantity_charged"], c["charge"]) == (10, 115, Decimal("0.575"))
    assert (c["rate_id"], c["band"], c["allowance_id"], c["allowance_used_before"]) == ("V_OVER", "peak",
                                                                                       "A_BASIC_MIN", 5990)
    assert c["band_segments"] == 2
    assert c["segments_detail"] == "peak V_OVER 30000000 20 100000000; offpeak V_OVER 95000000 95 475000000"
    # after exhaustion, Mon 21:00 local (offpeak) 61 s: connect 0.10 + first 60 s 0.30 + 1 s 0.005 = 0.405
    assert (rated["after_off"]["quantity_included"], rated["after_off"]["charge"]) == (0, Decimal("0.405"))
    assert (rated["after_off"]["rate_id"], rated["after_off"]["band"]) == ("V_OVER", "offpeak")
    # the same in peak to a fixed line (the rule would be V_FIXED_PEAK per started minute): one price, 0.405
    assert (rated["after_peak"]["rate_id"], rated["after_peak"]["band"]) == ("V_OVER", "peak")
    assert rated["after_peak"]["charge"] == Decimal("0.405")
    # a zero-second call keeps the rule's rate and costs nothing (no connect fee)
    zero = rated["after_zero"]
    assert (zero["rate_id"], zero["charge"], zero["allowance_id"]) == ("V_OFFNET_PEAK", Decimal("0"), "A_BASIC_MIN")
    # on-net calls use the unlimited on-net allowance (no overage rate)
    assert (rated["onnet"]["allowance_id"], rated["onnet"]["rate_id"], rated["onnet"]["charge"]) == (
        "A_BASIC_ONNET", "V_ONNET", Decimal("0"))
    # Fri 23:59 local, 125 s to a fixed line, crossing midnight into the weekend after exhaustion:
    # first block (offpeak) 0.10 + 0.30 = 0.40; 65 per-second blocks in the weekend 65 * 0.005 = 0.325 -> 0.725
    w = rated["weekend"]
    assert (w["rate_id"], w["band"], w["quantity_charged"], w["charge"]) == ("V_OVER", "offpeak", 125,
                                                                            Decimal("0.725"))
    assert w["segments_detail"] == "offpeak V_OVER 60000000 60 400000000; weekend V_OVER 65000000 65 325000000"

    # the same usage without an overage rate (the demo catalogue): band prices, per-band rates
    plain, _ = rate(catalogue, _voice_rows(), accounts, allowances=True)
    # cross: 20 s peak at 0.0015 + 95 s offpeak at 0.04/60 = 0.000667 -> 0.0007: 0.03 + 0.0665 = 0.0965
    assert (plain["cross"]["rate_id"], plain["cross"]["charge"]) == ("V_OFFNET_PEAK", Decimal("0.0965"))
    # after_peak: V_FIXED_PEAK 0.07 per started minute, 2 minutes = 0.14
    assert (plain["after_peak"]["rate_id"], plain["after_peak"]["charge"]) == ("V_FIXED_PEAK", Decimal("0.14"))


def test_rate_period_explain_and_rerate_with_an_overage_rate(local_settings: Settings, tmp_path: Path) -> None:
    # the real stage on a local lake with a draft catalogue: publish, explain, then correct the overage price
    folder = draft(tmp_path / "cat", [V_OVER], {"A_BASIC_MIN": "V_OVER"})
    settings = local_settings.with_(tariffs_dir=str(folder))
    publish_usage(settings, usage_frame(_voice_rows() + _data_rows()))
    write_partition(open_store(settings.lake_uri), "customers/accounts", {}, "acc1", accounts_frame(*DEFAULT_ACCOUNTS))
    result = rate_period(settings, PERIOD)
    assert (result.usage_in, result.rated, result.suspense) == (14, 14, 0)
    lake = open_store(settings.lake_uri)
    rated = {r["record_id"]: r for r in read_published(lake, "rated", {"period": PERIOD}).iter_rows(named=True)}
    assert (rated["cross"]["rate_id"], rated["cross"]["charge"]) == ("V_OVER", Decimal("0.575"))
    assert (rated["d2"]["rate_id"], rated["d2"]["charge"]) == ("D_UNLTD_OVERAGE", Decimal("0.006"))
    text = explain_record(settings, "cross", PERIOD)
    assert "overage rate V_OVER" in text and "A_BASIC_MIN" in text and "charge 0.575 EUR" in text

    # V_OVER becomes 0.60/min (0.01 per second): cross 115 * 0.01 = 1.15; after_off / after_peak 0.10 + 0.60 + 0.01
    # = 0.71; weekend 0.10 + 0.60 + 65 * 0.01 = 1.35. Nothing else changes.
    rates = folder / "rates.csv"
    rates.write_text(rates.read_text().replace(V_OVER, V_OVER.replace(",0.10,0.30,", ",0.10,0.60,")))
    report = rerate_period(settings, PERIOD)
    changes = read_published(lake, "rating_changes", {"period": PERIOD})
    new = {r["record_id"]: r["new_charge"] for r in changes.iter_rows(named=True)}
    assert new == {"cross": Decimal("1.15"), "after_off": Decimal("0.71"), "after_peak": Decimal("0.71"),
                   "weekend": Decimal("1.35")}
    assert set(changes["old_rate_id"]) == {"V_OVER"} and report.records_changed == 4
    # 0.575 + 0.405 + 0.405 + 0.725 = 2.11 -> 1.15 + 0.71 + 0.71 + 1.35 = 3.92: delta 1.81
    assert report.new_total - report.old_total == Decimal("1.81")


# 3. quote() prices the same -----------------------------------------------------------------------------------

def test_quote_with_an_overage_rate_matches_the_engine(catalogue, voice_cat, accounts) -> None:
    data, _ = rate(catalogue, _data_rows(), accounts, allowances=True)
    voice, _ = rate(voice_cat, _voice_rows(), accounts, allowances=True)
    at = ts("2026-10-06 11:00:00")
    q = quote(catalogue, "P_UNLTD", "data", at, 3_000_000, rating_group=10, included=1000,
              overage_rate_id="D_UNLTD_OVERAGE")
    assert (q.charge, q.rate_id, q.quantity_charged) == (Decimal("0.006"), "D_UNLTD_OVERAGE", 3 * MB)
    assert q.charge == data["d2"]["charge"]
    q = quote(catalogue, "P_UNLTD", "data", ts("2026-10-06 12:00:00"), 500_000, rating_group=10, included=0,
              overage_rate_id="D_UNLTD_OVERAGE")
    assert (q.charge, q.rate_id) == (Decimal("0.002"), "D_UNLTD_OVERAGE") and q.charge == data["d3"]["charge"]
    # fully included: the rule's rate, nothing to pay, the overage rate is not used
    q = quote(catalogue, "P_UNLTD", "data", at, 3_000_000, rating_group=10, included=3_000_000,
              overage_rate_id="D_UNLTD_OVERAGE")
    assert (q.charge, q.rate_id) == (Decimal("0"), "D_STD")

    q = quote(voice_cat, "P_BASIC", "voice", ts("2026-10-05 17:59:30"), 125, OFFNET, included=10,
              overage_rate_id="V_OVER")
    assert (q.charge, q.rate_id, q.band, q.quantity_charged) == (Decimal("0.575"), "V_OVER", "peak", 115)
    assert [(s.band, s.rate_id, s.charged_units, s.cost_nanos) for s in q.segments] == [
        ("peak", "V_OVER", 20, 100_000_000), ("offpeak", "V_OVER", 95, 475_000_000)]
    assert q.charge == voice["cross"]["charge"]
    for record_id, start, seconds, number, expected in (
            ("after_off", "2026-10-05 19:00:00", 61, OFFNET, "0.405"),
            ("after_peak", "2026-10-06 10:00:00", 61, FIXED, "0.405"),
            ("weekend", "2026-10-09 21:59:00", 125, FIXED, "0.725")):
        q = quote(voice_cat, "P_BASIC", "voice", ts(start), seconds, number, overage_rate_id="V_OVER")
        assert (q.charge, q.rate_id) == (Decimal(expected), "V_OVER")
        assert q.charge == voice[record_id]["charge"], record_id
    # a zero-second call: quantity 0 is fully covered by 0 included, the rule's rate
    q = quote(voice_cat, "P_BASIC", "voice", ts("2026-10-06 11:00:00"), 0, OFFNET, overage_rate_id="V_OVER")
    assert (q.charge, q.rate_id) == (Decimal("0"), "V_OFFNET_PEAK")


# 4. catalogue validation --------------------------------------------------------------------------------------

V_LATE = "V_LATE,EUR,0,0.30,60,60,1,4,half_up,4,,Overage valid only from 2026,2026-01-01,,"


def test_catalogue_rejects_bad_overage_rates(tmp_path: Path) -> None:
    # allowances.csv lines (header = line 1): A_BASIC_ONNET 2 (unlimited), A_BASIC_MIN 3, A_FAMILY_MIN 8
    folder = draft(tmp_path, [V_OVER, V_LATE],
                   {"A_BASIC_ONNET": "V_OVER", "A_BASIC_MIN": "V_GHOST", "A_FAMILY_MIN": "V_LATE"})
    with pytest.raises(CatalogueError) as info:
        load_catalogue(folder)
    problems = info.value.problems
    assert "allowances.csv line 3: unknown overage rate 'V_GHOST'" in problems
    assert "allowances.csv line 2: an unlimited allowance has no overage rate" in problems
    assert ("allowances.csv line 8: overage rate V_LATE is not valid for the whole validity of allowance "
            "A_FAMILY_MIN") in problems
    assert len([p for p in problems if "overage" in p]) == 3


@pytest.mark.parametrize(("rate_rows", "valid"), [
    # two contiguous rows cover the open-ended allowance (price change on 2026-01-01)
    (["V_X,EUR,0,0.30,60,60,1,4,half_up,4,,Overage old,2024-01-01,2026-01-01,",
      "V_X,EUR,0,0.35,60,60,1,4,half_up,4,,Overage new,2026-01-01,,"], True),
    # a gap between two rows (2025-01-01 .. 2025-06-01)
    (["V_X,EUR,0,0.30,60,60,1,4,half_up,4,,Overage old,2024-01-01,2025-01-01,",
      "V_X,EUR,0,0.35,60,60,1,4,half_up,4,,Overage new,2025-06-01,,"], False),
    # the rate ends while the allowance is open-ended
    (["V_X,EUR,0,0.30,60,60,1,4,half_up,4,,Overage ending,2024-01-01,2027-01-01,"], False),
])
def test_overage_rate_must_cover_the_allowance_validity(tmp_path: Path, rate_rows, valid) -> None:
    folder = draft(tmp_path, rate_rows, {"A_BASIC_MIN": "V_X"})
    if valid:
        cat = load_catalogue(folder)
        assert cat.rate("V_X", ts("2026-10-06 10:00:00"))["rate_id"] == "V_X"
        return
    with pytest.raises(CatalogueError) as info:
        load_catalogue(folder)
    assert info.value.problems == [
        "allowances.csv line 3: overage rate V_X is not valid for the whole validity of allowance A_BASIC_MIN"]


# 5. engine == reference rater ---------------------------------------------------------------------------------

def test_engine_and_reference_agree_with_overage_rates(small_cat, accounts) -> None:
    overage_ids = {"V_OVER", "V_OVER_CAP", "D_OVER"}
    rows = random_usage(400, seed=11) + _guided_none(_rules_rows())
    # the family group FAM1 (two lines) runs out of its 3000 s: FAM_B's call crosses, then both lines pay V_OVER_CAP
    fam = dict(plan_id="P_FAMILY", other_party=OFFNET)
    rows += [usage_row("fam1", "2026-10-20 08:00:00", 2950, account_id="FAM_A", **fam),
             usage_row("fam2", "2026-10-20 10:00:00", 125, account_id="FAM_B", **fam),
             usage_row("fam3", "2026-10-20 11:00:00", 31, account_id="FAM_A", **fam),
             usage_row("fam4", "2026-10-20 12:00:00", 3600, account_id="FAM_B", **fam)]
    rated, _, _ = assert_engine_agrees(small_cat, rows, accounts)
    by_id = {r["record_id"]: r for r in rated}
    over = [r for r in rated if r["rate_id"] in overage_ids]
    crossing = [r for r in over if 0 < r["quantity_included"] < r["quantity"]]
    exhausted = [r for r in over if r["quantity_included"] == 0]
    assert len(crossing) >= 3 and len(exhausted) >= 10
    assert {r["allowance_id"] for r in over} >= {"A_BASIC_MIN", "A_FAMILY_MIN", "A_BASIC_DATA", "A_UNLTD_DATA"}
    assert any(r["allowance_pool"].endswith("group:FAM1") for r in over)
    # fully covered records keep their rule's rate
    covered = [r for r in rated if r["allowance_id"] and r["quantity_included"] == r["quantity"]]
    assert covered and not any(r["rate_id"] in overage_ids for r in covered)
    # chunking by allowance group never changes overage pricing
    _, whole = rate_frames(small_cat, usage_frame(rows), accounts, PERIOD)
    _, chunked = rate_frames(small_cat, usage_frame(rows), accounts, PERIOD, chunk_rows=90)
    assert whole.rated.equals(chunked.rated) and whole.suspense.equals(chunked.suspense)
    # the hand-made family records (the group pool may already hold usage of the generated records, so the
    # amounts are checked where they do not depend on it)
    assert by_id["fam4"]["rate_id"] == "V_OVER_CAP" and by_id["fam4"]["quantity_included"] == 0
    # 3600 s at 0.60/min: 0.05 + 0.30 (first 30 s) + 595 blocks of 6 s * 0.06 = 35.70 -> 36.05, capped at 2.50
    assert by_id["fam4"]["capped"] and by_id["fam4"]["charge"] == Decimal("2.50")


def test_family_group_overage_hand_checked(small_cat) -> None:
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    fam = dict(plan_id="P_FAMILY", other_party=OFFNET)
    rows = [usage_row("fam1", "2026-10-20 08:00:00", 2950, account_id="FAM_A", **fam),
            usage_row("fam2", "2026-10-20 10:00:00", 125, account_id="FAM_B", **fam),
            usage_row("fam3", "2026-10-20 11:00:00", 31, account_id="FAM_A", **fam),
            usage_row("fam4", "2026-10-20 12:00:00", 3600, account_id="FAM_B", **fam)]
    rated, _, _ = assert_engine_agrees(small_cat, rows, accounts)
    by_id = {r["record_id"]: r for r in rated}
    assert {r["allowance_pool"] for r in rated} == {"A_FAMILY_MIN|2026-10|group:FAM1"}
    assert (by_id["fam1"]["rate_id"], by_id["fam1"]["charge"]) == ("V_OFFNET_PEAK", Decimal("0"))
    # fam2: 50 s included, 75 s charged in 6 s increments from the split point (no connect, no 30 s first interval):
    # ceil(75 / 6) = 13 blocks = 78 s; block 0.60 * 6 / 60 = 0.06 -> 13 * 0.06 = 0.78
    f2 = by_id["fam2"]
    assert (f2["quantity_included"], f2["quantity_charged"], f2["charge"], f2["rate_id"]) == (
        50, 78, Decimal("0.78"), "V_OVER_CAP")
    # fam3: 31 s after exhaustion: 0.05 connect + first 30 s 0.30 + one 6 s block 0.06 = 0.41
    assert (by_id["fam3"]["quantity_charged"], by_id["fam3"]["charge"]) == (36, Decimal("0.41"))
    assert by_id["fam4"]["capped"] and by_id["fam4"]["charge"] == Decimal("2.50")


def test_tiered_overage_rate_uses_the_line_position_in_its_tier_set(tmp_path: Path) -> None:
    # PRE_BUNDLE 10 MB (A_PRE_DATA) with overage D_OVER_TIER on T_IOT_GRAD: 0.02/MB to 100 MB, 0.01/MB to 1 GB
    cat = load_catalogue(draft(tmp_path, [D_OVER_TIER], {"A_PRE_DATA": "D_OVER_TIER"},
                               {"A_PRE_DATA": str(10 * MB)}))
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    d = dict(service="data", plan_id="PRE_BUNDLE", rating_group=10, account_id="ACC2", payment_type="prepaid")
    rows = [usage_row("p1", "2026-10-06 10:00:00", 9 * MB, **d),
            usage_row("p2", "2026-10-07 10:00:00", 61 * MB, **d),
            usage_row("p3", "2026-10-08 10:00:00", 60 * MB, **d)]
    assert_engine_agrees(cat, rows, accounts)
    by_id, _ = rate(cat, rows, accounts, allowances=True)   # the engine's rows carry the tier columns
    assert (by_id["p1"]["rate_id"], by_id["p1"]["charge"]) == ("D_STD", Decimal("0"))
    # p2: 1 MB included, 60 MB charged, first 60 MB of the tier set at 0.02 -> 1.20
    p2 = by_id["p2"]
    assert (p2["rate_id"], p2["quantity_included"], p2["quantity_charged"]) == ("D_OVER_TIER", MB, 60 * MB)
    assert (p2["tier_set_id"], p2["tier_before"], p2["charge"]) == ("T_IOT_GRAD", 0, Decimal("1.20"))
    # p3: 60 MB from position 60 MB: 40 MB * 0.02 + 20 MB * 0.01 = 1.00
    p3 = by_id["p3"]
    assert (p3["rate_id"], p3["tier_before"], p3["charge"]) == ("D_OVER_TIER", 60 * MB, Decimal("1.00"))


def test_overage_rate_row_valid_at_the_record_start_is_used(tmp_path: Path) -> None:
    # V_X changes price at local midnight 2026-10-15 (= 2026-10-14 22:00 UTC): 0.30/min, then 0.60/min
    cat = load_catalogue(draft(tmp_path, ["V_X,EUR,0,0.30,60,60,1,4,half_up,4,,Overage old,2024-01-01,2026-10-15,",
                                          "V_X,EUR,0,0.60,60,60,1,4,half_up,4,,Overage new,2026-10-15,,"],
                               {"A_BASIC_MIN": "V_X"}))
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    rows = [usage_row("use_all", "2026-10-01 08:00:00", 6000, other_party=FIXED),
            usage_row("old", "2026-10-14 21:59:59", 60, other_party=OFFNET),    # Wed 23:59:59 local
            usage_row("new", "2026-10-14 22:00:00", 60, other_party=OFFNET)]    # Thu 00:00:00 local
    assert_engine_agrees(cat, rows, accounts)
    rated, _ = rate(cat, rows, accounts, allowances=True)
    # one first interval of 60 s each, no connect fee: 0.30 before the change, 0.60 from it
    assert (rated["old"]["rate_id"], rated["old"]["charge"]) == ("V_X", Decimal("0.30"))
    assert (rated["new"]["rate_id"], rated["new"]["charge"]) == ("V_X", Decimal("0.60"))


def test_allowance_row_valid_at_the_record_start_gives_the_overage_rate(tmp_path: Path) -> None:
    # A_BASIC_MIN changes at local midnight 2026-10-15: overage V_OVER until then, V_X (0.60/min, no connect) after;
    # one allowance id, so one pool for the period
    folder = draft(tmp_path, [V_OVER, "V_X,EUR,0,0.60,60,60,1,4,half_up,4,,Overage new,2024-01-01,,"])
    path = folder / "allowances.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames, list(reader)
    i = next(i for i, r in enumerate(rows) if r["allowance_id"] == "A_BASIC_MIN")
    rows[i:i + 1] = [{**rows[i], "overage_rate_id": "V_OVER", "valid_to": "2026-10-15"},
                     {**rows[i], "overage_rate_id": "V_X", "valid_from": "2026-10-15", "valid_to": ""}]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    cat = load_catalogue(folder)
    accounts = accounts_frame(*DEFAULT_ACCOUNTS)
    rows = [usage_row("use_all", "2026-10-01 08:00:00", 6000, other_party=FIXED),
            usage_row("early", "2026-10-14 21:59:59", 60, other_party=OFFNET),   # Wed 23:59:59 local
            usage_row("late", "2026-10-14 22:00:00", 60, other_party=OFFNET)]    # Thu 00:00:00 local
    assert_engine_agrees(cat, rows, accounts)
    rated, _ = rate(cat, rows, accounts, allowances=True)
    assert rated["early"]["allowance_pool"] == rated["late"]["allowance_pool"]
    # early: 0.10 connect + 0.30 first minute = 0.40; late: 0.60 first minute
    assert (rated["early"]["rate_id"], rated["early"]["charge"]) == ("V_OVER", Decimal("0.40"))
    assert (rated["late"]["rate_id"], rated["late"]["charge"]) == ("V_X", Decimal("0.60"))


# 6. property: more usage never costs less ---------------------------------------------------------------------

POOL_STARTS = ("2026-10-05 07:59:30", "2026-10-05 17:59:30", "2026-10-06 10:00:00", "2026-10-09 21:59:00",
               "2026-10-10 09:00:00", "2026-10-12 06:30:00")


def _pool_total(cat: Catalogue, quantities: list[int], accounts: pl.DataFrame) -> tuple[Decimal, dict]:
    rows = [usage_row(f"q{i}", start, q, other_party=(OFFNET, FIXED)[i % 2])
            for i, (start, q) in enumerate(zip(POOL_STARTS, quantities, strict=False))]
    n, out = rate_frames(cat, usage_frame(rows), accounts, PERIOD)
    assert n == out.rated.height == len(rows)
    assert set(out.rated["allowance_pool"]) == {"A_BASIC_MIN|2026-10|line:SUB_ACC1"}
    charges = dict(zip(out.rated["record_id"], out.rated["charge"], strict=True))
    assert all(c >= 0 for c in charges.values())
    return sum(charges.values(), Decimal(0)), charges


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantities=st.lists(st.integers(0, 900), min_size=2, max_size=len(POOL_STARTS)), data=st.data())
def test_pool_total_never_falls_when_a_record_grows(small_cat, accounts, quantities, data) -> None:
    # A_BASIC_MIN holds 1200 s here with V_OVER: earlier records use it up, later ones cross or pay V_OVER
    index = data.draw(st.integers(0, len(quantities) - 1), label="index")
    grow = data.draw(st.integers(1, 600), label="grow")
    before, charges_before = _pool_total(small_cat, quantities, accounts)
    bigger = quantities[:index] + [quantities[index] + grow] + quantities[index + 1:]
    after, charges_after = _pool_total(small_cat, bigger, accounts)
    assert after >= before
    assert charges_after[f"q{index}"] >= charges_before[f"q{index}"]
