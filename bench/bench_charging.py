"""Load test of the prepaid charging sidecar on 127.0.0.1: requests/s, p50/p99 latency, zero overspend.

The service runs as ``telbill charging serve`` in its own process (fixed rate table, SQLite store in a
temp dir). The load generator is one asyncio process with raw HTTP/1.1 keep-alive connections (a
full HTTP client library would measure itself): ``--concurrency`` connections each run data sessions
(create, ``UPDATES`` updates reporting the whole grant, release) against a pool of prepaid
subscribers, some of whom run out of credit mid-run. At the end every balance is audited:
no bucket below zero, ledger = balance, debits = what the client reported as used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import emit  # noqa: E402

TOKEN = "bench-token"
MB = 1_000_000
UPDATES = 4
PRICE_PER_MB = Decimal("0.01")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to say what limits throughput."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def subscriptions_csv(n: int) -> str:
    lines = ["subscription_id,account_id,msisdn,imsi,plan_id,payment_type,valid_from,valid_to"]
    lines += [f"S{i},A{i},4915{i:08d},26201{i:010d},PRE_PAYG,prepaid,2026-01-01T00:00:00Z," for i in range(n)]
    return "\n".join(lines) + "\n"


BODY = (
    '{"nfConsumerIdentification":{"nodeFunctionality":"SMF","nFName":"0f2a4c5e-0000-4000-8000-00000000be01"},'
    '"invocationTimeStamp":"2026-10-05T%02d:%02d:%02d.%03dZ","invocationSequenceNumber":%d,'
    '"multipleUnitUsage":[%s],"pDUSessionChargingInformation":{"chargingId":%d,'
    '"userInformation":{"servedGPSI":"msisdn-%s"},"pduSessionInformation":{"pduSessionID":1,"dnnId":"internet"}}}')


def body(seq: int, msisdn: str, t: int, requested: int | None, used: int | None) -> bytes:
    """A ChargingDataRequest for rating group 10, formatted from a template (json.dumps per request would
    make the load generator, which shares the 2 cores with the server, the bigger CPU user)."""
    muu = '{"ratingGroup":10'
    if requested is not None:
        muu += f',"requestedUnit":{{"totalVolume":{requested}}}'
    if used is not None:
        muu += f',"usedUnitContainer":[{{"localSequenceNumber":{seq},"totalVolume":{used}}}]'
    return (BODY % (t // 3600 % 24, t // 60 % 60, t % 60, t % 997, seq, muu + "}", t, msisdn)).encode()


class Conn:
    """One keep-alive HTTP/1.1 connection with just enough parsing for this server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer = reader, writer
        self.head = (f"Host: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()

    async def post(self, path: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(b"POST %s HTTP/1.1\r\n%s%d\r\n\r\n%s" % (path.encode(), self.head, len(payload), payload))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = {}
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"location":
                headers["location"] = value.strip().decode()
        data = await self.reader.readexactly(length) if length else b""
        return status, headers, data


class SessionRun:
    """Client state of one data session: create, UPDATES updates reporting the whole grant, release."""

    def __init__(self, msisdn: str, t: int) -> None:
        self.msisdn, self.t = msisdn, t
        self.path: str | None = None
        self.seq = 0
        self.granted = 0
        self.updates = 0
        self.done = False

    def next_request(self) -> tuple[str, bytes]:
        base = "/nchf-convergedcharging/v3/chargingdata"
        if self.path is None:
            return base, body(0, self.msisdn, self.t, MB, None)
        if self.granted and self.updates < UPDATES:
            return f"{self.path}/update", body(self.seq, self.msisdn, self.t, MB, self.granted)
        return f"{self.path}/release", body(self.seq, self.msisdn, self.t, None, self.granted)

    def answer(self, status: int, headers: dict[str, str], data: bytes, used: dict[tuple[str, int], int]) -> None:
        if self.path is None:
            if status == 403:  # out of credit: refused before anything was reserved
                self.done = True
                return
            assert status == 201, (status, data)
            self.path = "/nchf-convergedcharging" + headers["location"].split("/nchf-convergedcharging", 1)[1]
            self.granted = json.loads(data)["multipleUnitInformation"][0]["grantedUnit"]["totalVolume"]
            self.seq = 1
            return
        used[self.msisdn, self.t] = used.get((self.msisdn, self.t), 0) + self.granted
        if status == 204:
            self.done = True
            return
        assert status == 200, (status, data)
        self.updates += 1
        self.seq += 1
        self.granted = json.loads(data)["multipleUnitInformation"][0].get("grantedUnit", {}).get("totalVolume", 0)


async def worker(host: str, port: int, msisdns: list[str], sessions: int, interleave: int, wid: int,
                 lat: list[float], used: dict[tuple[str, int], int]) -> None:
    """One connection driving ``interleave`` open sessions at a time, round robin, ``sessions`` in all."""
    reader, writer = await asyncio.open_connection(host, port)
    conn = Conn(reader, writer, f"{host}:{port}")
    started = 0

    def new_session() -> SessionRun:
        nonlocal started
        started += 1
        return SessionRun(msisdns[(wid * 7919 + started) % len(msisdns)], wid * 100_000 + started)

    active = [new_session() for _ in range(min(interleave, sessions))]
    while active:
        for i, run in enumerate(active):
            path, payload = run.next_request()
            t0 = time.perf_counter()
            status, headers, data = await conn.post(path, payload)
            lat.append(time.perf_counter() - t0)
            run.answer(status, headers, data, used)
            if run.done:
                active[i] = new_session() if started < sessions else None
        active = [r for r in active if r is not None]
    writer.close()


async def load(host: str, port: int, msisdns: list[str], concurrency: int, sessions_each: int, interleave: int
               ) -> tuple[float, list[float], dict[tuple[str, int], int]]:
    lat: list[float] = []
    used: dict[tuple[str, int], int] = {}
    start = time.perf_counter()
    await asyncio.gather(*(worker(host, port, msisdns, sessions_each, interleave, w, lat, used)
                           for w in range(concurrency)))
    return time.perf_counter() - start, lat, used


def expected_debits(used: dict[tuple[str, int], int], pricing: str) -> dict[str, Decimal]:
    """What each subscriber should have paid: every session's reported total priced once."""
    out: dict[str, Decimal] = {}
    if pricing == "catalogue":
        from datetime import datetime

        from pipelines.rating.catalogue import load_catalogue
        from pipelines.rating.quote import quote

        catalogue = load_catalogue(ROOT / "tariffs")
    for (msisdn, t), total in used.items():
        if pricing == "table":
            charge = PRICE_PER_MB * Decimal(total) / MB
        else:
            start = datetime.fromisoformat(json.loads(body(0, msisdn, t, None, None))["invocationTimeStamp"])
            charge = quote(catalogue, "PRE_PAYG", "data", start, total, rating_group=10).charge if total else 0
        out[msisdn] = out.get(msisdn, 0) + charge
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--interleave", type=int, default=8, help="open sessions per connection")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--pricing", choices=("table", "catalogue"), default="table",
                        help="fixed rate table (default) or the real catalogue through batch quote() (PRE_PAYG)")
    args = parser.parse_args()
    sessions_each = max(2, int(240 * args.scale))
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "subs.csv").write_text(subscriptions_csv(args.subscribers))
        (tmp / "rates.csv").write_text(f"service,rating_group,per_increment,increment\ndata,,{PRICE_PER_MB},{MB}\n")
        (tmp / "token").write_text(TOKEN)
        db = tmp / "chf.sqlite"
        server = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "--landing", str(tmp / "landing"), "--tariffs", str(ROOT / "tariffs"),
             "charging", "serve",
             "--db", str(db), "--port", "0", "--port-file", str(tmp / "port"), "--token-file", str(tmp / "token"),
             "--subscriptions", str(tmp / "subs.csv")]
            + (["--rates", str(tmp / "rates.csv")] if args.pricing == "table" else []),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while not ((tmp / "port").exists() and (tmp / "port").read_text()):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server failed: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.05)
            port = int((tmp / "port").read_text())
            from charging.store import Store

            store = Store(db)
            msisdns = [f"4915{i:08d}" for i in range(args.subscribers)]
            now = __import__("datetime").datetime(2026, 10, 5, tzinfo=__import__("datetime").UTC)
            budgets = {}
            for i, m in enumerate(msisdns):  # every 10th subscriber can afford only 3 MB: they run dry
                budgets[m] = Decimal("0.03") if i % 10 == 0 else Decimal("100.00")
                store.add_bucket(m, "money", budgets[m], at=now)
            server_cpu0, client_cpu0 = cpu_seconds(server.pid), time.process_time()
            elapsed, lat, used = asyncio.run(load("127.0.0.1", port, msisdns, args.concurrency, sessions_each,
                                                  args.interleave))
            server_cpu, client_cpu = cpu_seconds(server.pid) - server_cpu0, time.process_time() - client_cpu0
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        problems = store.audit()
        expected = expected_debits(used, args.pricing)
        overspent = 0
        for m in msisdns:
            [money] = [b for b in store.buckets(m, now) if b.service == "money"]
            debited = budgets[m] - money.balance
            if money.balance < 0 or debited != expected.get(m, 0) or money.reserved != 0:
                overspent += 1
        lat.sort()
        n = len(lat)
        emit("charging", "requests", n, "requests")
        emit("charging", "throughput", round(n / elapsed), "req/s", target=">= 3000", baseline="3000 (target)",
             ratio=f"{n / elapsed / 3000:.2f}")
        emit("charging", "latency_p50", round(lat[n // 2] * 1000, 2), "ms")
        p99 = lat[int(n * 0.99)] * 1000
        emit("charging", "latency_p99", round(p99, 2), "ms", target="< 20", baseline="20 (target)",
             ratio=f"{p99 / 20:.2f}")
        emit("charging", "overspent_or_mismatched_balances", overspent + len(problems), "balances", target="0")
        emit("charging", "server_cpu_per_request", round(server_cpu / n * 1e6), "us")
        emit("charging", "client_cpu_per_request", round(client_cpu / n * 1e6), "us")
        capacity = min(n / server_cpu, n / client_cpu)
        emit("charging", "cpu_bound_capacity", round(capacity), "req/s",
             target="server and load generator each on a free core", baseline="3000 (target)",
             ratio=f"{capacity / 3000:.2f}")
        emit("charging", "load_average_1m", os.getloadavg()[0], "", target="< 2 for a fair run")
        emit("charging", "concurrent_sessions", args.concurrency * args.interleave, "sessions",
             target=f"{args.concurrency} connections x {args.interleave}")
        emit("charging", "cpu_count", os.cpu_count(), "cores")
        emit("charging", "pricing", args.pricing, "", target="table: fixed rates; catalogue: batch quote()")
    return 0 if overspent == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
