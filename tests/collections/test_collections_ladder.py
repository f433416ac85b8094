"""A 120-day walk of the daily run over the fixture book: ladder steps, exclusions, barring, unbar, reruns."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from collections_data import BASE_INVOICES, bank_file, publish_customers, publish_invoices

from pipelines.collections.intake import import_payments
from pipelines.collections.run import collections_run, import_holds
from pipelines.common.partitions import read_published
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store

DUE = date(2026, 10, 15)
PAYDAY = date(2027, 1, 25)      # ACC001 pays in full on day 102 past due
DAYS = 120


@pytest.fixture(scope="module")
def walk(tmp_path_factory, small_model):
    """Run every day from the due date for 120 days; ACC001 pays on PAYDAY (imported that morning)."""
    root = tmp_path_factory.mktemp("walk")
    settings = Settings(landing_uri=str(root / "landing"), lake_uri=str(root / "lake"),
                        warehouse_path=str(root / "wh.duckdb"), tariffs_dir=str(Path(__file__).parents[2] / "tariffs"),
                        output_dir=str(root / "out"))
    publish_customers(settings)
    publish_invoices(settings, BASE_INVOICES)
    import_holds(settings, b"account_id,hold_type,start_date,end_date,reference\n"
                           b"ACC002,dispute,2026-10-20,2026-11-30,DSP-1\n"
                           b"ACC005,promise_to_pay,2026-10-16,2026-11-10,PTP-9\n", "holds.csv")
    results = {}
    for i in range(DAYS + 1):
        day = DUE + timedelta(days=i)
        if day == PAYDAY:
            import_payments(settings, bank_file([("P1", PAYDAY.isoformat(), "CRDT", "50.00", "Anna",
                                                  "TB-ACC001-202609", "")]), "bank", "pay.csv")
        results[day] = collections_run(settings, day, model=small_model, export=day in (PAYDAY, DUE + timedelta(days=21)))
    lake = open_store(settings.lake_uri)
    return settings, results, {
        name: read_published(lake, f"collections/{name}")
        for name in ("dunning_state", "provisioning_orders", "notifications", "list")
    }


def _steps(states: pl.DataFrame, account: str) -> list[tuple[date, str]]:
    """(day, step_code) on each day the account's step changed."""
    rows = states.filter(pl.col("account_id") == account).sort("as_of").select("as_of", "step_code").rows()
    changes, last = [], "NORMAL"
    for day, code in rows:
        if code != last:
            changes.append((day, code))
            last = code
    return changes


def test_full_ladder_walk_until_payment(walk):
    _, _, out = walk
    days = lambda n: DUE + timedelta(days=n)  # noqa: E731
    assert _steps(out["dunning_state"], "ACC001") == [
        (days(3), "REMIND_EMAIL"), (days(10), "REMIND_SMS"), (days(21), "BAR_OUTGOING"),
        (days(35), "SOFT_SUSPEND"), (days(60), "HARD_DISCONNECT"), (days(90), "AGENCY"), (PAYDAY, "NORMAL"),
    ]
    acc1 = out["dunning_state"].filter(pl.col("account_id") == "ACC001")
    assert acc1["as_of"].max() == PAYDAY, "after the payment the account leaves the ladder"
    orders = out["provisioning_orders"].filter(pl.col("account_id") == "ACC001").sort("as_of")
    assert orders.select("as_of", "action", "to_barring").rows() == [
        (days(21), "bar_outgoing", "outgoing"), (days(35), "suspend", "soft"),
        (days(60), "disconnect", "hard"), (PAYDAY, "unbar", "none"),
    ]
    assert orders["msisdn"].unique().to_list() == ["491510000001"]
    notes = out["notifications"].filter(pl.col("account_id") == "ACC001").sort("as_of")
    assert notes.select("template", "channel").rows() == [
        ("REMIND_EMAIL", "email"), ("REMIND_SMS", "sms"), ("BAR_OUTGOING", "sms"), ("SOFT_SUSPEND", "letter"),
        ("HARD_DISCONNECT", "letter"), ("AGENCY", "agency"), ("SERVICE_RESTORED", "sms")]
    assert "TB-ACC001-202609" in notes["message"][0]


def test_unbar_in_the_run_right_after_payment(walk):
    _, results, out = walk
    unbar = out["provisioning_orders"].filter(pl.col("action") == "unbar")
    assert unbar.select("as_of", "account_id").rows() == [(PAYDAY, "ACC001")]
    assert results[PAYDAY].counts["provisioning_orders"] == 1


def test_exclusions(walk):
    _, _, out = walk
    states = out["dunning_state"]
    # VIP: reminders only (cap 2), never barred
    assert [c for _, c in _steps(states, "ACC003")] == ["REMIND_EMAIL", "REMIND_SMS"]
    assert states.filter(pl.col("account_id") == "ACC003")["excluded_reason"].unique().to_list() == ["segment:vip"]
    # government: never dunned, still listed with its debt
    assert _steps(states, "ACC004") == []
    gov = out["list"].filter(pl.col("account_id") == "ACC004")
    assert gov.height > 0 and gov["next_action"].null_count() == gov.height
    # open dispute freezes ACC002 at its step until the hold ends, then the walk resumes
    acc2 = dict(_steps(states, "ACC002"))
    assert acc2[DUE + timedelta(days=3)] == "REMIND_EMAIL"
    assert min(d for d, c in acc2.items() if c == "REMIND_SMS") == date(2026, 12, 1)
    frozen = states.filter((pl.col("account_id") == "ACC002") & (pl.col("as_of") == date(2026, 11, 15)))
    assert frozen["excluded_reason"].item() == "dispute" and frozen["step"].item() == 1
    # promise to pay: ACC005 untouched until the promise lapses on 2026-11-10
    acc5 = _steps(states, "ACC005")
    assert acc5[0] == (date(2026, 11, 11), "REMIND_EMAIL")
    assert out["provisioning_orders"].filter(pl.col("account_id") == "ACC003").is_empty()


def test_rerun_same_day_same_bytes(walk, small_model):
    settings, results, _ = walk
    lake = open_store(settings.lake_uri)
    day = DUE + timedelta(days=60)
    prefix = f"collections/dunning_state/as_of={day.isoformat()}/run={results[day].run_id}"
    before = {k: lake.read_bytes(k) for k in lake.list(prefix)}
    again = collections_run(settings, day, model=small_model, export=False)
    assert again.run_id == results[day].run_id
    assert {k: lake.read_bytes(k) for k in lake.list(prefix)} == before


def test_collections_list_and_safe_exports(walk):
    settings, results, out = walk
    day = DUE + timedelta(days=21)
    worklist = out["list"].filter(pl.col("as_of") == day)
    listing = read_published(open_store(settings.lake_uri), "collections/list", {"as_of": day.isoformat()})
    assert listing["priority"].to_list() == list(range(1, listing.height + 1))
    assert listing["priority_score"].is_sorted(descending=True)
    acc1 = listing.filter(pl.col("account_id") == "ACC001").row(0, named=True)
    assert acc1["step_code"] == "BAR_OUTGOING" and acc1["d1_30"] == acc1["overdue"]
    assert acc1["next_action"] == "soft_suspension" and acc1["next_action_date"] == DUE + timedelta(days=35)
    assert 0.0 <= acc1["p_recovery"] <= 1.0 and acc1["reasons"]
    assert worklist.height == listing.height
    csv_text = Path(results[day].exports["collections_list"]).read_text()
    acc5 = next(line for line in csv_text.splitlines() if "ACC005" in line)
    assert "'-2+3 Ltd" in acc5, "a name starting with '-' is neutralised"
    assert "'=HYPERLINK" in csv_text, "the e-mail cell of ACC005 is neutralised"
    for line in csv_text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@", "\t")), cell


def test_allocations_dataset_is_the_latest_snapshot(walk, small_model):
    settings, results, _ = walk
    lake = open_store(settings.lake_uri)
    last_day = max(results)
    current = read_published(lake, "collections/allocations")
    assert current["as_of"].unique().to_list() == [last_day], "one snapshot: a payment is never counted per day"
    assert current.filter(pl.col("account_id") == "ACC001")["amount"].sum() == 50
    collections_run(settings, DUE + timedelta(days=5), model=small_model, export=False)
    assert read_published(lake, "collections/allocations")["as_of"].unique().to_list() == [last_day], \
        "rerunning an earlier day does not replace the latest snapshot"
