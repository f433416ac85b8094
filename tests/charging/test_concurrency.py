"""Many concurrent sessions draining one balance never overspend it: real threads against the real server,
and two server processes sharing one SQLite file."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from chf_helpers import PREPAID, START, TOKEN, data_request
from chf_servers import ServeProcess

from charging.server import ChargingServer
from charging.store import Store

NCHF = "/nchf-convergedcharging/v3/chargingdata"
TMF = "/tmf-api/prepayBalanceManagement/v4"
MB = 1_000_000


def drain(base_url: str, worker: int, sessions: int) -> int:
    """Open ``sessions`` data sessions one after the other, using every granted MB until refused.

    Returns the MB this worker reported as used (each grant is fully used).
    """
    used_total = 0
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        for s in range(sessions):
            at = START + timedelta(seconds=worker * 1000 + s)
            resp = client.post(NCHF, json=data_request(0, at=at, requested=MB, rating_group=40 + worker))
            if resp.status_code == 403:
                return used_total
            assert resp.status_code == 201, resp.text
            ref = resp.headers["location"].rsplit("/", 1)[1]
            granted = resp.json()["multipleUnitInformation"][0]["grantedUnit"]["totalVolume"]
            seq = 1
            while True:
                body = data_request(seq, at=at, requested=MB, used=granted, rating_group=40 + worker)
                resp = client.post(f"{NCHF}/{ref}/update", json=body)
                assert resp.status_code == 200, resp.text
                used_total += granted
                mui = resp.json()["multipleUnitInformation"][0]
                seq += 1
                if "grantedUnit" not in mui:
                    break
                granted = mui["grantedUnit"]["totalVolume"]
            assert client.post(f"{NCHF}/{ref}/release", json=data_request(seq, at=at)).status_code == 204
    return used_total


def test_concurrent_sessions_never_overspend(server: ChargingServer, store: Store) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        client.post(f"{TMF}/topupBalance", json={"id": "t1", "product": {"id": PREPAID},
                                                 "amount": {"amount": "2.00", "units": "EUR"}})
    with ThreadPoolExecutor(max_workers=12) as pool:
        used = sum(pool.map(lambda w: drain(server.url, w, 50), range(12)))
    assert used == 200 * MB  # 2.00 EUR at 0.01 per MB, fully used, not one MB more
    assert store.audit() == []
    [bucket] = [b for b in store.buckets(PREPAID, server.engine.clock()) if b.service == "money"]
    assert bucket.balance == Decimal(0) and bucket.reserved == Decimal(0)
    totals = store.ledger_totals(bucket.bucket_id)
    assert totals["topup"] + totals["debit"] == 0


def test_two_processes_on_one_store_never_overspend(tmp_path: Path, subscriptions_csv: Path, rates_csv: Path) -> None:
    db = tmp_path / "shared.sqlite"
    with ServeProcess(tmp_path, db, subscriptions_csv, rates_csv, "a") as first, \
            ServeProcess(tmp_path, db, subscriptions_csv, rates_csv, "b") as second:
        with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            client.post(f"{TMF}/topupBalance", json={"id": "t1", "product": {"id": PREPAID},
                                                     "amount": {"amount": "1.00", "units": "EUR"}})
        results: list[int] = []
        lock = threading.Lock()

        def work(w: int) -> None:
            got = drain((first if w % 2 else second).url, w, 50)
            with lock:
                results.append(got)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(results) == 100 * MB
    check = Store(db)
    assert check.audit() == []
    assert [b.balance for b in check.buckets(PREPAID, START) if b.service == "money"] == [Decimal(0)]
