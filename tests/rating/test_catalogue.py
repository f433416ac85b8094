"""Catalogue loading and validation: the shipped catalogue is valid; broken copies list every problem."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipelines.rating.catalogue import (
    KEY_SPACE,
    CatalogueError,
    catalogue_version,
    flatten_prefixes,
    load_catalogue,
    number_key,
)

TARIFFS = Path(__file__).resolve().parents[2] / "tariffs"


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    """A private copy of the catalogue a test may break."""
    out = tmp_path / "tariffs"
    shutil.copytree(TARIFFS, out)
    return out


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_shipped_catalogue_is_valid_and_consistent_with_domain_facts() -> None:
    cat = load_catalogue(TARIFFS)
    plans = set(cat.tables["plans"]["plan_id"])
    assert {"P_BASIC", "P_UNLTD", "P_FAMILY", "P_BIZ", "PRE_PAYG", "PRE_BUNDLE"} <= plans
    assert set(cat.tables["roaming_zones"]["tadig"]) == {"DEUTB", "FRAF1", "ESPTE", "GBRCN", "USAAT", "TURTC"}
    at = datetime(2026, 10, 5, tzinfo=UTC)
    assert cat.longest_prefix("destinations", "4915112345678", at)["destination_class"] == "onnet"
    assert cat.longest_prefix("destinations", "4917012345678", at)["destination_class"] == "offnet_mobile"
    assert cat.longest_prefix("destinations", "49900123", at)["destination_class"] == "premium"
    assert cat.longest_prefix("destinations", "861234", at)["destination_id"] == "INTL_OTHER"  # catch-all
    assert cat.longest_prefix("destinations", "12a4", at) is None


def test_version_is_a_content_hash(draft: Path) -> None:
    before = catalogue_version(draft)
    assert before == catalogue_version(TARIFFS)
    (draft / "tax_rules.csv").write_text("not,rating\n")  # another area's file: no effect
    assert catalogue_version(draft) == before
    _edit(draft / "rates.csv", "V_ONNET,EUR,0,0.05", "V_ONNET,EUR,0,0.06")
    assert catalogue_version(draft) != before


def test_every_problem_is_listed_at_once(draft: Path) -> None:
    _edit(draft / "destinations.csv", "4930,DE_FIX_BERLIN", "49x0,DE_FIX_BERLIN")           # bad prefix
    _edit(draft / "plan_rates.csv", "V_PREMIUM", "V_NO_SUCH_RATE")                             # unknown rate
    _edit(draft / "rates.csv", "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice 0.05/min: first minute "
          "then per second,2024-01-01,",
          "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice,2024-01-01,\n"
          "V_ONNET,EUR,0,0.04,60,60,1,4,half_up,4,,On-net voice cheaper,2025-06-01,")          # overlap
    _edit(draft / "time_bands.csv", "DE_STD,Europe/Berlin,DE,offpeak,mon-fri,20:00,24:00,2024-01-01,\n", "")  # gap
    _edit(draft / "allowances.csv", "A_PRE_DATA,PRE_BUNDLE", "A_PRE_DATA,PRE_GHOST")          # unknown plan
    _edit(draft / "iot_rates.csv", "USAAT,sms,MO,0.05", "XXXYY,sms,MO,0.05")                   # unknown TADIG
    _edit(draft / "rates.csv", "S_STD,EUR,0,0.09,", "S_STD,EUR,0,0.0900000001,")                # > 9 decimals
    _edit(draft / "rates.csv", "V_OFFNET_PEAK,EUR,0.02,0.09,", "V_OFFNET_PEAK,EUR,0.02,0.09x,")  # not a number
    with pytest.raises(CatalogueError) as info:
        load_catalogue(draft)
    text = "\n".join(info.value.problems)
    assert "bad prefix '49x0'" in text
    assert "unknown rate 'V_NO_SUCH_RATE'" in text
    assert "validity overlaps" in text and "rate_id=V_ONNET" in text
    assert "no band for mon 20:00-24:00 (rows valid 2024-01-01)" in text and "no band for fri 20:00-24:00" in text
    assert "amount '0.09x' is not a decimal number" in text
    assert "unknown plan 'PRE_GHOST'" in text
    assert "unknown roaming partner (roaming_zones.csv) 'XXXYY'" in text
    assert "more than 9 decimals" in text
    assert len(info.value.problems) >= 8


def test_missing_catch_all_and_unknown_band_are_reported(draft: Path) -> None:
    _edit(draft / "destinations.csv", "*,INTL_OTHER,international,Rest of the world,2024-01-01,\n", "")
    _edit(draft / "plan_rates.csv", "*,voice,MO,*,fixed,*,*,*,*,peak,V_FIXED_PEAK",
          "P_BASIC,voice,MO,*,fixed,*,*,*,*,rush,V_FIXED_PEAK")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(draft)
    text = str(info.value)
    assert "no catch-all row" in text
    assert "band 'rush' is not in the plan's time band set" in text


def test_as_of_keeps_only_rows_valid_then(draft: Path) -> None:
    _edit(draft / "rates.csv", "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice 0.05/min: first minute "
          "then per second,2024-01-01,",
          "V_ONNET,EUR,0,0.05,60,60,1,4,half_up,4,,On-net voice,2024-01-01,2026-01-01\n"
          "V_ONNET,EUR,0,0.04,60,60,1,4,half_up,4,,On-net voice cheaper,2026-01-01,")
    old = load_catalogue(draft, as_of=date(2025, 6, 1)).tables["rates"]
    new = load_catalogue(draft, as_of=date(2026, 6, 1)).tables["rates"]
    assert old.filter(old["rate_id"] == "V_ONNET")["price"].to_list() == ["0.05"]
    assert new.filter(new["rate_id"] == "V_ONNET")["price"].to_list() == ["0.04"]


@pytest.mark.parametrize(
    ("prefixes", "number", "expected"),
    [
        (["*", "49", "4915", "49151"], "491512345", "49151"),
        (["*", "49", "4915", "49151"], "491522345", "4915"),
        (["*", "49", "4915", "49151"], "491602345", "49"),
        (["*", "49", "4915", "49151"], "331602345", "*"),
        (["49", "4915"], "33", None),
        (["1", "12", "123456789012345"], "123456789012345", "123456789012345"),
        (["1", "12", "123456789012345"], "123456789012344", "12"),
        # a number shorter than a prefix it zero-pads into is not matched by it
        (["*", "49", "4990", "49900"], "4990", "4990"),
        (["*", "49", "49900"], "4990", "49"),
        (["*", "49", "49900"], "499", "49"),
        (["*", "49", "49900"], "49900", "49900"),
        (["*", "90"], "9", "*"),
        (["*", "4", "40", "400"], "40", "40"),
    ],
)
def test_flattened_prefixes_give_the_longest_match(prefixes: list[str], number: str, expected: str | None) -> None:
    key = number_key(number)
    owners = [prefixes[i] for lo, hi, i in flatten_prefixes(prefixes) if lo <= key < hi]
    assert owners == ([expected] if expected else [])


def test_flattened_ranges_are_disjoint_and_sorted() -> None:
    prefixes = ["*", "4", "49", "491", "4915", "49151", "4916", "5", "1", "19"]
    ranges = flatten_prefixes(prefixes)
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert ranges[0][0] == 0 and ranges[-1][1] == KEY_SPACE
    assert sum(hi - lo for lo, hi, _ in ranges) == KEY_SPACE


def test_cli_validate_reports_problems_and_exit_code(draft: Path, capsys) -> None:
    import argparse

    from pipelines.common.settings import Settings
    from pipelines.rating import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["catalogue", "validate", "--dir", str(draft)])
    assert args.func(args, Settings()) == 0
    assert "is valid" in capsys.readouterr().out
    _edit(draft / "destinations.csv", "4940,DE_FIX_HAMBURG", "4940abc,DE_FIX_HAMBURG")
    assert args.func(args, Settings()) == 1
    assert "destinations.csv line 5: bad prefix '4940abc'" in capsys.readouterr().err


def test_tier_sets_must_be_contiguous_and_referenced_sets_must_exist(draft: Path) -> None:
    _edit(draft / "tiers.csv", "T_IOT_GRAD,graduated,104857600,1073741824", "T_IOT_GRAD,graduated,204857600,1073741824")
    _edit(draft / "rates.csv", ",T_IOT_VOL\n", ",T_NO_SUCH\n")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(draft)
    text = str(info.value)
    assert "tier set T_IOT_GRAD has a gap or overlap at 104857600 units" in text
    assert "unknown tier set 'T_NO_SUCH'" in text
