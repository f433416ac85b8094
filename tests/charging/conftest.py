"""Charging fixtures: a real service on 127.0.0.1 (uvicorn in a thread) over a SQLite file in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chf_helpers import RATES, START, SUBSCRIPTIONS_CSV, TOKEN  # noqa: E402

from charging.engine import ChargingEngine
from charging.pricing import TablePricer
from charging.server import ChargingServer, ManualClock, prepaid_subscribers_from_csv
from charging.store import Store
from pipelines.common.settings import Settings
from pipelines.common.storage import open_store


@pytest.fixture
def subscriptions_csv(tmp_path: Path) -> Path:
    path = tmp_path / "subscriptions.csv"
    path.write_text(SUBSCRIPTIONS_CSV)
    return path


@pytest.fixture
def rates_csv(tmp_path: Path) -> Path:
    path = tmp_path / "rates.csv"
    lines = ["service,rating_group,per_increment,increment"]
    lines += [f"{s},{'' if rg is None else rg},{r.per_increment},{r.increment}" for (s, rg), r in RATES.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store(tmp_path: Path, subscriptions_csv: Path) -> Iterator[Store]:
    s = Store(tmp_path / "chf.sqlite")
    s.upsert_subscribers(prepaid_subscribers_from_csv(subscriptions_csv))
    yield s
    s.close()


@pytest.fixture
def engine(store: Store, clock: ManualClock) -> ChargingEngine:
    return ChargingEngine(store, TablePricer(RATES), clock, validity_s=60)


@pytest.fixture
def server(engine: ChargingEngine, local_settings: Settings) -> Iterator[ChargingServer]:
    srv = ChargingServer(engine, TOKEN, open_store(local_settings.landing_uri), flush_s=0).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: ChargingServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c
