"""Deterministic random usage for equivalence and property tests (seeded; no wall clock)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from rating.helpers import usage_row

NUMBERS = ("4915112345678", "4916012345678", "4917012345678", "4917612345678", "4930123456", "4940123456",
           "4989123456", "4990012345", "4412345678", "3312345678", "12125550100", "9112345678", "9012345678",
           "8612345678", "4915212345678", "49", "1", "+4930x")
PLANS = ("P_BASIC", "P_UNLTD", "P_FAMILY", "P_BIZ", "PRE_PAYG", "PRE_BUNDLE") * 10 + ("P_GHOST",)
NETWORKS = (None,) * 20 + ("FRAF1", "ESPTE", "GBRCN", "USAAT", "TURTC", "DEUTB") * 5 + ("XXXYY",)
SLICES = (None, None, "1-000001", "2-000002", "3-000003")
ACCOUNTS = ("ACC1", "ACC2", "ACC_ACME", "FAM_A", "FAM_B")
PERIOD_START = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)


def random_usage(n: int, seed: int) -> list[dict]:
    """``n`` usage rows over October 2026 (DST day and holiday included) covering every service."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        start = PERIOD_START + timedelta(seconds=rng.randrange(0, 30 * 86400), microseconds=rng.choice((0, 0, 250000)))
        service = rng.choice(("voice", "voice", "voice", "sms", "data", "data", "event"))
        quantity = {"voice": rng.choice((0, 1, 30, 59, 60, 61, 125, 600, 3599, 7200)),
                    "sms": rng.choice((1, 1, 2)), "event": rng.choice((1, 5)),
                    "data": rng.choice((0, 1, 1023, 1024, 1025, 1048576, 52428800, 123456789))}[service]
        rows.append(usage_row(
            f"g{seed}-{i:05d}", start.strftime("%Y-%m-%d %H:%M:%S.%f"), quantity, service=service,
            other_party=rng.choice(NUMBERS) if service in ("voice", "sms") else None,
            plan_id=rng.choice(PLANS), account_id=rng.choice(ACCOUNTS),
            direction=rng.choice(("MO", "MO", "MO", "MT")) if service in ("voice", "sms") else "MO",
            rating_group=rng.choice((10, 10, 20, 30)) if service == "data" else None,
            snssai=rng.choice(SLICES) if service == "data" else None,
            qos_class=rng.choice((9, 80)) if service == "data" else None,
            visited_network=rng.choice(NETWORKS)))
    return rows
