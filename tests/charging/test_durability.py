"""kill -9 in the middle of load, restart, retry what was unanswered: no lost or double debits, no lost
or duplicated charging records, every balance equals opening + top-ups - committed debits."""

from __future__ import annotations

import csv
import io
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from chf_helpers import PREPAID, START, TOKEN, data_request
from chf_servers import ServeProcess

from charging.store import Store

NCHF = "/nchf-convergedcharging/v3/chargingdata"
TMF = "/tmf-api/prepayBalanceManagement/v4"
MB = 1_000_000
BUDGET = Decimal("6.00")  # EUR: 600 MB at 0.01 per MB, far more than runs before the kill


@dataclass
class Session:
    """Client-side state of one data session, enough to retry the request that got no answer."""

    worker: int
    number: int
    ref: str | None = None
    seq: int = 0
    granted: int = 0
    used: int = 0
    pending: tuple[str, dict] | None = None
    closed: bool = False
    denied: bool = False
    log: list[int] = field(default_factory=list)

    @property
    def at(self):  # noqa: ANN201
        return START + timedelta(seconds=self.worker * 10_000 + self.number)

    def next_request(self) -> tuple[str, dict]:
        rg = 40 + self.worker
        if self.ref is None:
            return NCHF, data_request(0, at=self.at, requested=MB, rating_group=rg)
        if self.granted and self.seq < 8:
            return f"{NCHF}/{self.ref}/update", data_request(self.seq, at=self.at, requested=MB, used=self.granted,
                                                             rating_group=rg)
        return f"{NCHF}/{self.ref}/release", data_request(self.seq, at=self.at, used=self.granted, rating_group=rg)

    def apply(self, path: str, body: dict, resp: httpx.Response) -> None:
        """Account for an answered request (the server applied it exactly once)."""
        self.pending = None
        used = sum(c.get("totalVolume", 0) for m in body.get("multipleUnitUsage", [])
                   for c in m.get("usedUnitContainer", []))
        self.used += used
        if path == NCHF:
            if resp.status_code == 403:
                self.denied = self.closed = True
                return
            assert resp.status_code == 201, resp.text
            self.ref = resp.headers["location"].rsplit("/", 1)[1]
        elif path.endswith("/release"):
            assert resp.status_code == 204, resp.text
            self.closed = True
            return
        assert resp.status_code in (200, 201), resp.text
        mui = resp.json()["multipleUnitInformation"][0]
        self.granted = mui.get("grantedUnit", {}).get("totalVolume", 0)
        self.seq += 1


def run_sessions(url: str, sessions: list[Session], stop: threading.Event) -> None:
    """Drive sessions until stopped or the server dies; an unanswered request stays ``pending``."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        for s in sessions:
            while not s.closed:
                if stop.is_set():
                    return
                path, body = s.pending or s.next_request()
                s.pending = (path, body)
                try:
                    resp = client.post(path, json=body)
                except httpx.TransportError:
                    return
                s.apply(path, body, resp)


def test_kill9_restart_no_lost_or_double_debits(tmp_path: Path, subscriptions_csv: Path, rates_csv: Path) -> None:
    db = tmp_path / "chf.sqlite"
    workers = [[Session(w, n) for n in range(400)] for w in range(6)]
    server = ServeProcess(tmp_path, db, subscriptions_csv, rates_csv, "first", flush_seconds=0.2).start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.post(f"{TMF}/topupBalance", json={"id": "t1", "product": {"id": PREPAID},
                                                        "amount": {"amount": str(BUDGET), "units": "EUR"}}).status_code == 201
    stop = threading.Event()
    threads = [threading.Thread(target=run_sessions, args=(server.url, w, stop)) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(s.seq for w in workers for s in w) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)  # kill once the load is well under way, whatever the machine's speed
    server.kill9()  # mid-flight: some requests committed without an answer, some never arrived
    for t in threads:
        t.join()
    answered_before = sum(s.seq for w in workers for s in w)
    in_flight = sum(1 for w in workers for s in w if s.pending)
    print(f"answered before kill: {answered_before}, unanswered in flight: {in_flight}")
    assert answered_before > 0 and in_flight > 0, "the kill must land in the middle of the load"

    after_kill = Store(db)
    assert after_kill.audit() == []  # every balance = opening + top-ups - committed debits
    after_kill.close()

    second = ServeProcess(tmp_path, db, subscriptions_csv, rates_csv, "second", flush_seconds=0.2).start()
    try:
        threads = [threading.Thread(target=run_sessions, args=(second.url, w, threading.Event())) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        second.stop()  # SIGTERM: flushes the remaining charging records

    all_sessions = [s for w in workers for s in w]
    assert all(s.closed for s in all_sessions)
    used = sum(s.used for s in all_sessions)
    assert used == int(BUDGET * 100) * MB  # every MB debited once, none twice, none lost
    store = Store(db)
    assert store.audit() == []
    [money] = [b for b in store.buckets(PREPAID, START) if b.service == "money"]
    totals = store.ledger_totals(money.bucket_id)
    assert money.balance == Decimal(0) and money.reserved == Decimal(0)
    assert totals["topup"] + totals["debit"] == 0

    # charging records: one per closed session with usage, no duplicates, amounts add up to the debits
    records = []
    for path in sorted((tmp_path / "landing" / "chf-prepaid").glob("*.csv")):
        records += list(csv.DictReader(io.StringIO(path.read_text())))
    opened = [s for s in all_sessions if not s.denied]
    ids = [r["network_record_id"] for r in records]
    assert len(ids) == len(set(ids)) == len(opened)
    assert sum(int(r["quantity"]) for r in records) == used
    assert sum(Decimal(r["charged_amount"]) for r in records) == BUDGET
