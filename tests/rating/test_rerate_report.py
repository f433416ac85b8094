"""The rerate and simulate reports read by finance: the largest changes first, plain amounts, and suspense shown
beside revenue, through the real CLI on a real lake."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from pipelines.common.partitions import read_published, write_partition
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store
from pipelines.customers import load_accounts
from pipelines.rating.catalogue import load_catalogue
from pipelines.rating.rerate import REPORT_ACCOUNTS, plain, simulate_frames
from rating.helpers import PERIOD, TARIFFS, accounts_frame, publish_usage, usage_frame, usage_row

SMS_ACCOUNTS = [f"S{i:02d}" for i in range(1, 28)]  # account S07 sends 7 SMS, ...
UP = "UP1"  # one call abroad: a small increase


def _csv_price(folder: Path, rate_id: str) -> Decimal:
    rates = pl.read_csv(folder / "rates.csv", infer_schema=False)
    return Decimal(rates.filter(pl.col("rate_id") == rate_id)["price"].item())


def _set_price(folder: Path, rate_id: str, price: Decimal) -> None:
    text = (folder / "rates.csv").read_text()
    old = f"{rate_id},EUR,0,{_csv_price(folder, rate_id)},"
    assert text.count(old) == 1
    (folder / "rates.csv").write_text(text.replace(old, f"{rate_id},EUR,0,{price},"))


def _drop_rules(folder: Path, service: str) -> None:
    lines = (folder / "plan_rates.csv").read_text().splitlines(keepends=True)
    kept = [line for line in lines if f",{service}," not in line]
    assert len(kept) < len(lines)
    (folder / "plan_rates.csv").write_text("".join(kept))


@pytest.fixture
def lake(local_settings: Settings, tmp_path: Path) -> Settings:
    """27 P_BASIC accounts sending 1..27 SMS to a fixed number (S_STD, no SMS allowance), one business account with
    a one-minute call to the UK; the period is rated with the shipped catalogue. Tariffs: a copy to edit."""
    rows = [usage_row(f"{acc}-{n}", f"2026-10-{1 + n % 27:02d} 10:{i:02d}:00", 1, service="sms",
                      other_party="4930123456", account_id=acc, subscription_id=f"SUB_{acc}")
            for i, acc in enumerate(SMS_ACCOUNTS) for n in range(int(acc[1:]))]
    rows.append(usage_row("up-call", "2026-10-06 11:00:00", 60, other_party="4412345678", plan_id="P_BIZ",
                          account_id=UP, subscription_id="SUB_UP1"))
    publish_usage(local_settings, usage_frame(rows))
    write_partition(open_store(local_settings.lake_uri), "customers/accounts", {}, "acc",
                    accounts_frame(*[(a, None) for a in [*SMS_ACCOUNTS, UP]]))
    draft = tmp_path / "tariffs"
    shutil.copytree(TARIFFS, draft)
    settings = local_settings.with_(tariffs_dir=str(draft))
    assert _telbill(settings, "rate", "--period", PERIOD) == 0
    return settings


def _telbill(settings: Settings, *args: str) -> int:
    return main(["--lake", settings.lake_uri, "--tariffs", settings.tariffs_dir, *args])


def _account_lines(text: str) -> list[tuple[str, int, str, str, str]]:
    found = re.findall(r"^  (\S+): (\d+) records, (\S+) -> (\S+) \(delta (\S+)\)$", text, flags=re.MULTILINE)
    return [(a, int(n), old, new, delta) for a, n, old, new, delta in found]


def test_plain_amounts_never_use_exponents() -> None:
    assert plain(Decimal("0E-9")) == "0" and plain(Decimal("0E-9"), sign=True) == "0"
    assert plain(Decimal("0.399000000")) == "0.399" and plain(Decimal("-0.084000000"), sign=True) == "-0.084"
    assert plain(Decimal("100.000000000")) == "100" and plain(Decimal("1E+2"), sign=True) == "+100"
    assert plain(Decimal("0.000000001")) == "0.000000001" and plain(None) == "0"


def test_rerate_report_lists_the_largest_changes_by_absolute_delta(capsys, lake: Settings) -> None:
    draft = Path(lake.tariffs_dir)
    old_sms, old_uk = _csv_price(draft, "S_STD"), _csv_price(draft, "V_INTL_EU")
    new_sms, new_uk = old_sms - Decimal("0.04"), old_uk + Decimal("0.10")
    _set_price(draft, "S_STD", new_sms)      # a price cut for 27 accounts
    _set_price(draft, "V_INTL_EU", new_uk)   # and a small increase for one
    capsys.readouterr()
    assert _telbill(lake, "rerate", "--period", PERIOD) == 0
    text = capsys.readouterr().out
    assert not re.search(r"\dE[-+]\d", text)

    changes = read_published(open_store(lake.lake_uri), "rating_changes", {"period": PERIOD})
    per_account = (changes.group_by("account_id").agg(pl.col("delta").sum())
                   .with_columns(pl.col("delta").abs().alias("size")).sort("size", "account_id",
                                                                           descending=[True, False]))
    assert per_account.height == len(SMS_ACCOUNTS) + 1
    assert f"accounts with the largest changes ({REPORT_ACCOUNTS} of {per_account.height}, by absolute delta" in text
    lines = _account_lines(text)
    assert [a for a, *_ in lines] == per_account["account_id"].head(REPORT_ACCOUNTS).to_list()
    # the largest decrease comes first, with exact amounts from the tariff prices
    assert lines[0] == ("S27", 27, plain(27 * old_sms), plain(27 * new_sms), plain(27 * (new_sms - old_sms), sign=True))
    # the small increase is outside the 20 largest changes (sorting by signed delta put it first)
    up = per_account.filter(pl.col("account_id") == UP)["delta"].item()
    assert Decimal(0) < up < Decimal("0.2") and UP not in [a for a, *_ in lines]
    total = sum(int(a[1:]) for a in SMS_ACCOUNTS) * (new_sms - old_sms) + up
    assert f"(delta {plain(total, sign=True)})" in text.splitlines()[2]
    assert "rating suspense (records not charged): 0 (before) -> 0 (after), 0" in text


def test_rerate_report_shows_records_moving_into_suspense_as_plain_zero(capsys, lake: Settings) -> None:
    _drop_rules(Path(lake.tariffs_dir), "sms")
    capsys.readouterr()
    assert _telbill(lake, "rerate", "--period", PERIOD) == 0
    text = capsys.readouterr().out
    n_sms = sum(int(a[1:]) for a in SMS_ACCOUNTS)
    assert f"rating suspense (records not charged): 0 (before) -> {n_sms} (after), +{n_sms}" in text
    assert f"  NO_TARIFF: 0 -> {n_sms} (+{n_sms})" in text
    lines = _account_lines(text)
    assert lines[0][:2] == ("S27", 27) and all(new == "0" for _, _, _, new, _ in lines)
    assert "E-" not in text


def test_simulate_shows_suspense_beside_revenue(capsys, lake: Settings, tmp_path: Path) -> None:
    draft = tmp_path / "no-sms"
    shutil.copytree(lake.tariffs_dir, draft)
    _drop_rules(draft, "sms")
    n_sms = sum(int(a[1:]) for a in SMS_ACCOUNTS)
    capsys.readouterr()
    assert _telbill(lake, "simulate", "--period", PERIOD, "--catalogue", str(draft)) == 0
    text = capsys.readouterr().out
    assert f"rating suspense (records not charged): 0 (current) -> {n_sms} (draft), +{n_sms}" in text
    assert f"  NO_TARIFF: 0 -> {n_sms} (+{n_sms})" in text
    assert f"warning: the draft sends {n_sms} more records to rating suspense" in text
    sms_row = next(line.split() for line in text.splitlines() if line.startswith("P_BASIC") and " sms " in line)
    price = _csv_price(Path(lake.tariffs_dir), "S_STD")
    assert sms_row == ["P_BASIC", "sms", str(n_sms), plain(n_sms * price), "0", plain(-n_sms * price, sign=True),
                       "0", str(n_sms)]

    # the pure core gives the same figures
    usage = read_published(open_store(lake.lake_uri), "usage")
    sim = simulate_frames(load_catalogue(lake.tariffs_dir), load_catalogue(draft), usage, load_accounts(lake), PERIOD)
    assert sim.suspense_current == {} and sim.suspense_draft == {"NO_TARIFF": n_sms}
    sms = sim.by_plan_service.filter(pl.col("service") == "sms").row(0, named=True)
    assert (sms["records"], sms["suspense_current"], sms["suspense_draft"], sms["draft"]) == (n_sms, 0, n_sms, 0)
    voice = sim.by_plan_service.filter(pl.col("service") == "voice").row(0, named=True)
    assert (voice["records"], voice["suspense_draft"], voice["delta"]) == (1, 0, 0)
