"""Running the service: uvicorn (httptools + uvloop) around the app, a periodic record flush, subscribers.

:class:`ChargingServer` runs in a background thread (tests, benchmarks) or in the foreground
(``telbill charging serve``); either way it listens on a real socket.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from charging.api import BalanceApp
from charging.engine import ChargingEngine
from charging.records import flush
from charging.store import Store, Subscriber, to_micros
from pipelines.common.storage import Store as LandingStore

log = logging.getLogger("charging.server")


def utc_now() -> datetime:
    """The production clock (tests inject their own)."""
    return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand (reservation expiry without sleeping)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)


def prepaid_subscribers_from_csv(path: str | Path) -> list[Subscriber]:
    """Prepaid rows of a subscriptions CSV in ``SUBSCRIPTION_SCHEMA`` (postpaid rows are not ours)."""
    with open(path, newline="") as fh:
        return [_subscriber(row) for row in csv.DictReader(fh) if row["payment_type"] == "prepaid"]


def prepaid_subscribers_from_lake(settings) -> list[Subscriber]:  # noqa: ANN001
    """Prepaid subscriptions from the customers dataset (the mediation area's ``load_subscriptions``)."""
    try:
        from pipelines.customers import load_subscriptions
    except ImportError as exc:
        raise RuntimeError("pipelines.customers.load_subscriptions is not available: pass --subscriptions CSV") \
            from exc
    frame = load_subscriptions(settings)
    rows = frame.filter(frame["payment_type"] == "prepaid").to_dicts()
    return [_subscriber({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}) for r in rows]


def _subscriber(row: dict) -> Subscriber:
    def instant(text: str | None) -> int | None:
        if not text:
            return None
        value = datetime.fromisoformat(text)
        return to_micros(value if value.tzinfo else value.replace(tzinfo=UTC))

    return Subscriber(msisdn=row["msisdn"], imsi=row.get("imsi") or None, subscription_id=row["subscription_id"],
                      account_id=row["account_id"], plan_id=row["plan_id"],
                      valid_from=instant(row.get("valid_from")) or 0, valid_to=instant(row.get("valid_to")))


@dataclass
class ChargingServer:
    """The HTTP service on a real socket plus a thread that flushes charging records every ``flush_s``."""

    engine: ChargingEngine
    token: str
    landing: LandingStore | None = None
    host: str = "127.0.0.1"
    port: int = 0
    flush_s: float = 5.0
    max_body: int = 65536
    checkpoint_s: float = 1.0
    """WAL checkpoint interval of the background checkpointer (0: SQLite's automatic checkpoints)."""

    def __post_init__(self) -> None:
        app = BalanceApp(self.engine, self.token, self.max_body).app()
        # "auto" picks uvloop and httptools (both in the lock) and falls back to asyncio/h11 without them
        config = uvicorn.Config(app, host=self.host, port=self.port, loop="auto", http="auto",
                                access_log=False, log_level="warning", lifespan="off", timeout_keep_alive=30,
                                proxy_headers=False,  # no X-Forwarded-* trust, one ASGI layer less
                                backlog=4096, server_header=False, date_header=False)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._stop_flush = threading.Event()
        self._flusher: threading.Thread | None = None

    @property
    def bound_port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.bound_port}"

    def flush_records(self) -> list[str]:
        return flush(self.engine.store, self.landing) if self.landing is not None else []

    def _flush_loop(self) -> None:
        while not self._stop_flush.wait(self.flush_s):
            try:
                self.flush_records()
            except Exception:  # noqa: BLE001 - a failed landing write is retried next round, never lost
                log.exception("charging record flush failed; will retry")
            self.refresh_catalogue()

    def refresh_catalogue(self) -> bool:
        """Pick up a changed catalogue (the pricer swaps catalogue and price cache in one assignment)."""
        refresh = getattr(self.engine.pricer, "refresh", None)
        if refresh is None:
            return False
        try:
            return bool(refresh())
        except Exception:  # noqa: BLE001 - a broken catalogue edit keeps the one in use; fix and it reloads
            log.exception("catalogue reload failed; still pricing with the previous catalogue")
            return False

    def _start_flusher(self) -> None:
        self.engine.store.start_checkpointer(self.checkpoint_s)
        if self.landing is not None and self.flush_s > 0:
            self._flusher = threading.Thread(target=self._flush_loop, name="chf-flush", daemon=True)
            self._flusher.start()

    def start(self, timeout: float = 15.0) -> ChargingServer:
        """Serve in a background thread; returns once the socket is listening."""
        self._thread = threading.Thread(target=self.server.run, name="chf-http", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self.server.started:
                break
            deadline.wait(0.02)
        else:
            raise RuntimeError("the charging service did not start")
        self._start_flusher()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self._stop_flush.set()
        self.flush_records()
        self.engine.store.stop_checkpointer()

    def run_forever(self, on_ready: Callable[[ChargingServer], None] | None = None) -> None:
        """Serve in the foreground until SIGINT/SIGTERM, then flush the remaining records."""
        self._start_flusher()

        async def main() -> None:
            task = asyncio.create_task(self.server.serve())
            while not self.server.started and not task.done():
                await asyncio.sleep(0.02)
            if on_ready and self.server.started:
                on_ready(self)
            await task

        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is in the lock; asyncio works, only slower
            asyncio.run(main())
        else:
            uvloop.run(main())
        self._stop_flush.set()
        self.flush_records()
        self.engine.store.stop_checkpointer()


def open_engine(db_path: str | Path, pricer, clock: Callable[[], datetime] = utc_now,  # noqa: ANN001
                validity_s: int = 600) -> ChargingEngine:
    return ChargingEngine(Store(db_path), pricer, clock, validity_s=validity_s)
