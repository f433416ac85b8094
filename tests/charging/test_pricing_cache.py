"""The catalogue price cache (tariff windows) never changes a price: it equals batch quote() at every
instant, a validity boundary or band edge starts a new window, and a changed catalogue replaces it."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from charging.pricing import CataloguePricer, PriceRequest, PricingError
from pipelines.rating.catalogue import load_catalogue
from pipelines.rating.quote import RatingError, quote

ROOT = Path(__file__).resolve().parents[2]
MB = 1_048_576


def direct(catalogue, req: PriceRequest, quantity: int) -> Decimal | str:  # noqa: ANN001
    """What batch rating charges, or the failure reason."""
    try:
        return quote(catalogue, req.plan_id, req.service, req.start_time, quantity, other_party=req.other_party,
                     rating_group=req.rating_group, snssai=req.snssai, qos_class=req.qos_class,
                     visited_network=req.visited_network, direction=req.direction).charge
    except RatingError:
        return "ERROR"


def cached(pricer: CataloguePricer, req: PriceRequest, quantity: int) -> Decimal | str:
    try:
        return pricer.price(req, quantity)
    except PricingError:
        return "ERROR"


def random_requests(n: int, seed: int) -> list[tuple[PriceRequest, int]]:
    """Requests over 250 days (both DST changes), peak/off-peak/weekend/holiday edges, long calls."""
    rnd = random.Random(seed)
    base = datetime(2026, 3, 20, tzinfo=UTC)
    out = []
    for _ in range(n):
        at = base + timedelta(seconds=rnd.randrange(0, 86400 * 250))
        if rnd.random() < 0.3:  # right at or just before a local band edge (08:00 / 20:00 Berlin)
            at = at.replace(hour=rnd.choice([5, 6, 7, 17, 18, 19]), minute=59, second=rnd.choice([0, 30, 59]))
        kind = rnd.choice(["data", "voice", "voice", "sms"])
        plan = rnd.choice(["PRE_PAYG", "PRE_BUNDLE", "P_BASIC", "P_BIZ"])
        if kind == "data":
            req = PriceRequest(plan, "data", at, rating_group=rnd.choice([10, 20, 30]),
                               snssai=rnd.choice([None, "1-000001", "2-000002"]), qos_class=rnd.choice([9, 80]),
                               visited_network=rnd.choice([None, None, "FRAF1", "USAAT"]))
            quantity = rnd.choice([1, 1024, MB, 3 * MB + 7, 10 * MB])
        elif kind == "voice":
            req = PriceRequest(plan, "voice", at, direction=rnd.choice(["MO", "MO", "MT"]),
                               other_party=rnd.choice(["4930123456", "491601234567", "441234567", "49900123"]))
            quantity = rnd.choice([1, 61, 300, 3600, 4 * 3600])
        else:
            req = PriceRequest(plan, "sms", at, other_party=rnd.choice(["491601234567", "33123456"]))
            quantity = rnd.choice([1, 3])
        out.append((req, quantity))
    return out


def test_windowed_prices_equal_batch_quote_at_every_instant() -> None:
    pricer = CataloguePricer(str(ROOT / "tariffs"))
    requests = random_requests(600, seed=11)
    first = [cached(pricer, r, q) for r, q in requests]
    again = [cached(pricer, r, q) for r, q in requests]  # now from the cache
    expected = [direct(pricer.catalogue, r, q) for r, q in requests]
    assert first == expected
    assert again == expected
    info = pricer._tariffs._cached.cache_info()
    assert info.hits >= len(requests) // 2  # the second pass is served by the cache


def test_voice_call_across_a_band_edge_is_priced_by_its_own_start() -> None:
    pricer = CataloguePricer(str(ROOT / "tariffs"))
    peak_start = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)  # Monday 08:00 Berlin
    before = PriceRequest("P_BASIC", "voice", peak_start - timedelta(seconds=30), other_party="491601234567")
    inside = PriceRequest("P_BASIC", "voice", peak_start + timedelta(minutes=5), other_party="491601234567")
    tariffs = pricer._tariffs
    assert tariffs.window_start(before, 120) is None  # crosses 08:00: quoted directly, never cached
    assert tariffs.window_start(before, 10) is not None
    assert tariffs.window_start(inside, 120) == peak_start
    for req, quantity in [(before, 120), (before, 10), (inside, 120)]:
        assert pricer.price(req, quantity) == direct(pricer.catalogue, req, quantity)
    assert pricer.price(before, 120) != pricer.price(inside, 120)  # off-peak then peak vs all peak


@pytest.fixture
def tariffs_copy(tmp_path: Path) -> Path:
    target = tmp_path / "tariffs"
    shutil.copytree(ROOT / "tariffs", target)
    return target


def reprice_payg_data(tariffs: Path, old: str, new: str, valid_from: str | None) -> None:
    """Change D_PAYG (prepaid data, 0.02 per started MB): from ``valid_from`` on, or in place."""
    rates = tariffs / "rates.csv"
    lines = rates.read_text().splitlines()
    out = []
    for line in lines:
        if line.startswith("D_PAYG,"):
            fields = line.split(",")
            assert fields[3] == old
            if valid_from is None:
                fields[3] = new
                out.append(",".join(fields))
            else:
                ended, started = list(fields), list(fields)
                ended[-2], started[-3], started[3] = valid_from, valid_from, new
                out += [",".join(ended), ",".join(started)]
        else:
            out.append(line)
    rates.write_text("\n".join(out) + "\n")


def test_a_validity_boundary_starts_a_new_window(tariffs_copy: Path) -> None:
    reprice_payg_data(tariffs_copy, "0.02", "0.05", valid_from="2026-10-10")
    pricer = CataloguePricer(str(tariffs_copy))
    boundary = datetime(2026, 10, 9, 22, 0, tzinfo=UTC)  # 2026-10-10 00:00 Berlin
    old = PriceRequest("PRE_PAYG", "data", boundary - timedelta(microseconds=1), rating_group=10)
    new = PriceRequest("PRE_PAYG", "data", boundary, rating_group=10)
    assert pricer.price(old, 3 * MB) == Decimal("0.06")  # warms the cache for the old window
    assert pricer.price(new, 3 * MB) == Decimal("0.15")
    assert pricer.price(old, 3 * MB) == Decimal("0.06")
    assert pricer._tariffs.window_start(new, 3 * MB) == boundary
    assert pricer._tariffs.window_start(old, 3 * MB) < boundary
    catalogue = load_catalogue(tariffs_copy)
    for req in (old, new):
        assert pricer.price(req, 3 * MB) == direct(catalogue, req, 3 * MB)


def test_a_changed_catalogue_replaces_the_cache(tariffs_copy: Path) -> None:
    pricer = CataloguePricer(str(tariffs_copy))
    req = PriceRequest("PRE_PAYG", "data", datetime(2026, 10, 5, 9, tzinfo=UTC), rating_group=10)
    assert pricer.price(req, 2 * MB) == Decimal("0.04")
    assert pricer.refresh() is False  # nothing changed: same catalogue, cache kept
    assert pricer._tariffs._cached.cache_info().currsize == 1
    reprice_payg_data(tariffs_copy, "0.02", "0.03", valid_from=None)
    assert pricer.price(req, 2 * MB) == Decimal("0.04")  # still the catalogue it loaded
    assert pricer.refresh() is True
    assert pricer.price(req, 2 * MB) == Decimal("0.06")
    assert pricer._tariffs._cached.cache_info().currsize == 1


def test_the_server_keeps_pricing_when_a_catalogue_edit_is_broken(tariffs_copy: Path, tmp_path: Path) -> None:
    from charging.engine import ChargingEngine
    from charging.server import ChargingServer, utc_now
    from charging.store import Store

    pricer = CataloguePricer(str(tariffs_copy))
    server = ChargingServer(ChargingEngine(Store(tmp_path / "chf.sqlite"), pricer, utc_now), "token")
    req = PriceRequest("PRE_PAYG", "data", datetime(2026, 10, 5, 9, tzinfo=UTC), rating_group=10)
    (tariffs_copy / "rates.csv").write_text("rate_id,currency\nD_PAYG,EUR\n")  # missing columns
    assert server.refresh_catalogue() is False
    assert pricer.price(req, 2 * MB) == Decimal("0.04")
    shutil.copy(ROOT / "tariffs" / "rates.csv", tariffs_copy / "rates.csv")
    reprice_payg_data(tariffs_copy, "0.02", "0.03", valid_from=None)
    assert server.refresh_catalogue() is True
    assert pricer.price(req, 2 * MB) == Decimal("0.06")
