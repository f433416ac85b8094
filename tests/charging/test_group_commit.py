"""Group commit: requests of one event-loop turn share a transaction, yet each succeeds or fails alone."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from chf_helpers import PREPAID, START, TOKEN, data_request

from charging.api import BalanceApp, FastNchf
from charging.engine import ChargingEngine
from charging.store import Store

NCHF = "/nchf-convergedcharging/v3/chargingdata"


async def call(app: FastNchf, path: str, body: dict) -> tuple[int, dict]:
    payload = json.dumps(body).encode()
    scope = {"type": "http", "method": "POST", "path": path, "scheme": "http",
             "headers": [(b"host", b"chf"), (b"authorization", f"Bearer {TOKEN}".encode()),
                         (b"content-length", str(len(payload)).encode())]}
    messages = [{"type": "http.request", "body": payload, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    return status, json.loads(sent[1]["body"]) if sent[1]["body"] else {}


def test_one_failing_request_does_not_undo_its_batch(engine: ChargingEngine, store: Store) -> None:
    store.add_bucket(PREPAID, "money", Decimal("0.05"), at=START)
    app = BalanceApp(engine, TOKEN).app()
    sizes: list[int] = []
    run_batch = app._run_batch

    def counted() -> None:
        sizes.append(len(app._queue))
        run_batch()

    app._run_batch = counted  # observe batch sizes of the real dispatcher

    async def scenario() -> list[tuple[int, dict]]:
        return await asyncio.gather(
            call(app, NCHF, data_request(1, requested=2_000_000, rating_group=10)),
            call(app, NCHF, data_request(1, msisdn="491519999999", requested=1)),      # USER_UNKNOWN
            call(app, f"{NCHF}/no-such-ref/update", data_request(2, used=5)),           # 404
            call(app, NCHF, data_request(1, requested=2_000_000, rating_group=11)),
            call(app, NCHF, data_request(1, requested=2_000_000, rating_group=12)),     # only 1 MB left
        )

    results = asyncio.run(scenario())
    assert sizes == [5]
    assert [status for status, _ in results] == [201, 404, 404, 201, 201]
    assert results[1][1]["cause"] == "USER_UNKNOWN"
    last = results[4][1]["multipleUnitInformation"][0]
    assert last["grantedUnit"] == {"totalVolume": 1_000_000} and last["finalUnitIndication"]
    assert store.audit() == []
    [money] = [b for b in store.buckets(PREPAID, START) if b.service == "money"]
    assert money.reserved == Decimal("0.05") and money.available == 0
