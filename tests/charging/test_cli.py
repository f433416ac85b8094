"""``telbill charging`` commands on a real store file: load subscribers, top up, adjust, balance, flush, audit."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cli_topup_adjust_balance_audit(tmp_path: Path, subscriptions_csv: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "chf.sqlite")
    code, out = run(capsys, "charging", "load-subscribers", "--db", db, "--subscriptions", str(subscriptions_csv))
    assert code == 0 and out.startswith("2 prepaid subscribers")
    assert run(capsys, "charging", "topup", "--db", db, "--msisdn", "491510000001", "--amount", "10.00",
               "--id", "T1")[0] == 0
    _, again = run(capsys, "charging", "topup", "--db", db, "--msisdn", "491510000001", "--amount", "10.00",
                   "--id", "T1")
    assert json.loads(again)["applied"] is False
    assert run(capsys, "charging", "adjust", "--db", db, "--bucket", "491510000001-money", "--amount", "-2.50",
               "--id", "ADJ1")[0] == 0
    code, out = run(capsys, "charging", "balance", "--db", db, "--msisdn", "491510000001")
    [bucket] = json.loads(out)
    assert code == 0 and Decimal(bucket["balance"]["amount"]) == Decimal("7.50")
    assert run(capsys, "--landing", str(tmp_path / "landing"), "charging", "flush", "--db", db) == (0, "")
    assert run(capsys, "charging", "audit", "--db", db) == (0, "")
    assert main(["charging", "adjust", "--db", db, "--bucket", "491510000001-money", "--amount", "-8"]) == 1
    assert "INSUFFICIENT_BALANCE" in capsys.readouterr().err
    assert main(["charging", "topup", "--db", db, "--msisdn", "491519999999", "--amount", "1"]) == 1
    assert "USER_UNKNOWN" in capsys.readouterr().err


def test_cli_prune_keeps_balances(tmp_path: Path, subscriptions_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chf_helpers import RATES, START, run_sessions

    from charging.engine import ChargingEngine
    from charging.pricing import TablePricer
    from charging.records import flush
    from charging.server import ManualClock, prepaid_subscribers_from_csv
    from charging.store import Store
    from pipelines.common.storage import open_store

    db = tmp_path / "chf.sqlite"
    store = Store(db)
    store.upsert_subscribers(prepaid_subscribers_from_csv(subscriptions_csv))
    run_sessions(ChargingEngine(store, TablePricer(RATES), ManualClock(START)), sessions=2)
    flush(store, open_store(str(tmp_path / "landing")))
    before = [b.balance for b in store.buckets("491510000001", START)]
    code, out = run(capsys, "charging", "prune", "--db", str(db), "--before", "2026-10-06T00:00:00Z")
    assert code == 0 and json.loads(out) == {"replies": 10, "rating_groups": 4, "records": 4}
    assert [b.balance for b in Store(db).buckets("491510000001", START)] == before
    assert run(capsys, "charging", "audit", "--db", str(db)) == (0, "")
