"""Property test: any sequence of creates, updates (with over-use), releases, replays, top-ups and clock
jumps keeps every bucket within its credit limit and every balance equal to its ledger."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from chf_helpers import PREPAID, RATES, START, SUBSCRIPTIONS_CSV, data_request, voice_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging.api import parse_request
from charging.engine import ChargingEngine, ChargingError
from charging.pricing import TablePricer
from charging.server import ManualClock, prepaid_subscribers_from_csv
from charging.store import Store, to_micros

MB = 1_000_000
ops = st.lists(st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["data", "voice"]), st.integers(1, 5 * MB)),
    st.tuples(st.just("update"), st.integers(0, 9), st.integers(0, 40 * MB)),
    st.tuples(st.just("release"), st.integers(0, 9), st.integers(0, 40 * MB)),
    st.tuples(st.just("replay"), st.integers(0, 9), st.just(0)),
    st.tuples(st.just("topup"), st.integers(1, 30), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 90), st.just(0)),
), min_size=1, max_size=40)


def check_limits(store: Store, now: int) -> None:
    with store.reading() as con:
        rows = con.execute(
            "SELECT b.bucket_id, b.balance, b.credit_limit, (SELECT COALESCE(SUM(amount), 0) FROM reservation r "
            "WHERE r.bucket_id = b.bucket_id AND r.expires_at > ?) FROM bucket b", (now,)).fetchall()
    for bucket_id, balance, limit, held in rows:
        assert balance - held >= -limit, f"{bucket_id} overspent: balance {balance}, held {held}, limit {limit}"
    assert store.audit() == []


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops)
def test_no_sequence_overspends(sequence: list[tuple[str, object, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "subs.csv").write_text(SUBSCRIPTIONS_CSV)
        store = Store(Path(tmp) / "chf.sqlite")
        store.upsert_subscribers(prepaid_subscribers_from_csv(Path(tmp) / "subs.csv"))
        store.add_bucket(PREPAID, "money", Decimal("0.20"), at=START, credit_limit=Decimal("0.03"))
        store.add_bucket(PREPAID, "voice", 90, at=START, priority=1, valid_to=START + timedelta(minutes=3))
        clock = ManualClock(START)
        engine = ChargingEngine(store, TablePricer(RATES), clock, validity_s=60)
        sessions: list[dict] = []
        last: dict[int, tuple[str, dict]] = {}
        topups = 0
        for step, (op, arg, amount) in enumerate(sequence):
            picked = sessions[int(arg) % len(sessions)] if sessions and isinstance(arg, int) else None
            make = voice_request if picked and picked["kind"] == "voice" else data_request
            try:
                if op == "create":
                    make = voice_request if arg == "voice" else data_request
                    requested = amount if arg == "data" else amount % 600 + 1
                    body = make(0, at=START + timedelta(seconds=step), requested=requested)
                    out = engine.create(parse_request(body))
                    if out.status == 201:
                        sessions.append({"ref": out.ref, "seq": 1, "kind": arg, "at": START + timedelta(seconds=step)})
                elif op in ("update", "release") and sessions:
                    s = sessions[int(arg) % len(sessions)]
                    used = amount if s["kind"] == "data" else amount % 700
                    body = make(s["seq"], at=s["at"], used=used, requested=MB if op == "update" else None)
                    call = engine.update if op == "update" else engine.release
                    call(s["ref"], parse_request(body, create=False))
                    last[int(arg) % len(sessions)] = (op, body)
                    s["seq"] += 1
                elif op == "replay" and last:
                    idx = sorted(last)[int(arg) % len(last)]
                    kind, body = last[idx]
                    call = engine.update if kind == "update" else engine.release
                    call(sessions[idx]["ref"], parse_request(body, create=False))
                elif op == "topup":
                    topups += 1
                    store.credit(f"{PREPAID}-money", Decimal(int(arg)) / 100, "topup", f"t{topups}", at=clock())
                elif op == "wait":
                    clock.advance(int(arg))
            except ChargingError as err:
                assert err.status in (403, 404), err
            check_limits(store, to_micros(clock()))
        store.close()
