"""The durable balance store: SQLite in WAL mode, every change an entry in an append-only ledger.

Why SQLite: one file, no server, transactions that survive ``kill -9`` (WAL with
``synchronous=NORMAL`` loses nothing on a process crash; only an OS crash or power loss can drop
the last commits, use ``synchronous=FULL`` via ``durable=True`` for that). Every mutation runs in
``BEGIN IMMEDIATE``, which takes the database write lock up front, so several threads or several
processes on one file are serialised and the "reserved + debited <= allowed" check and the write
that follows it cannot interleave. For several hosts use PostgreSQL: the same statements work with
``SELECT ... FOR UPDATE`` on the bucket rows (see docs/charging.md).

Amounts: money as integer nano-units (9 decimals, the lake's DECIMAL(38,9) scale) and unit buckets
as integer base units (seconds, bytes, events), so the ledger is exact and sums are integers.
Instants are integer UTC microseconds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pipelines.common.money import AMOUNT_SCALE, MoneyError, money

log = logging.getLogger("charging.store")
NANO = 10**AMOUNT_SCALE
BUCKET_SERVICES = ("money", "voice", "data", "sms")
"""A bucket holds money (usable for any service) or units of one service."""
UNIT_OF = {"money": "EUR", "voice": "s", "data": "B", "sms": "event"}
LEDGER_KINDS = ("opening", "topup", "adjustment", "debit")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CACHE_KIB = 65536
"""Page cache of the store connection (KiB): hot buckets, sessions and index pages stay in memory."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber (
  msisdn TEXT PRIMARY KEY, imsi TEXT, subscription_id TEXT NOT NULL, account_id TEXT NOT NULL,
  plan_id TEXT NOT NULL, valid_from INTEGER NOT NULL, valid_to INTEGER);
CREATE INDEX IF NOT EXISTS subscriber_imsi ON subscriber(imsi);
CREATE TABLE IF NOT EXISTS bucket (
  bucket_id TEXT PRIMARY KEY, msisdn TEXT NOT NULL, service TEXT NOT NULL, unit TEXT NOT NULL,
  rating_group INTEGER, priority INTEGER NOT NULL, valid_from INTEGER NOT NULL, valid_to INTEGER,
  credit_limit INTEGER NOT NULL DEFAULT 0, balance INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bucket_owner ON bucket(msisdn, service, priority);
CREATE TABLE IF NOT EXISTS ledger (
  entry_id INTEGER PRIMARY KEY, bucket_id TEXT NOT NULL, kind TEXT NOT NULL, amount INTEGER NOT NULL,
  op_key TEXT UNIQUE, at INTEGER NOT NULL, note TEXT);
CREATE INDEX IF NOT EXISTS ledger_bucket ON ledger(bucket_id);
CREATE TABLE IF NOT EXISTS reservation (
  ref TEXT NOT NULL, rating_group INTEGER NOT NULL, bucket_id TEXT NOT NULL, amount INTEGER NOT NULL,
  quantity INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (ref, rating_group, bucket_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reservation_bucket ON reservation(bucket_id, expires_at);
CREATE TABLE IF NOT EXISTS session (
  ref TEXT PRIMARY KEY, msisdn TEXT NOT NULL, plan_id TEXT NOT NULL, state TEXT NOT NULL,
  context TEXT NOT NULL, last_seq INTEGER NOT NULL, opened_at INTEGER NOT NULL, closed_at INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_rg (
  ref TEXT NOT NULL, rating_group INTEGER NOT NULL, service TEXT NOT NULL,
  used_units INTEGER NOT NULL DEFAULT 0, used_money_qty INTEGER NOT NULL DEFAULT 0,
  charged INTEGER NOT NULL DEFAULT 0, uncharged INTEGER NOT NULL DEFAULT 0,
  up_bytes INTEGER NOT NULL DEFAULT 0, down_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (ref, rating_group)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reply (
  ref TEXT NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (ref, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  record_no INTEGER PRIMARY KEY, ref TEXT NOT NULL, rating_group INTEGER NOT NULL, usage_day TEXT NOT NULL,
  row TEXT NOT NULL, file_seq INTEGER, UNIQUE (ref, rating_group));
CREATE INDEX IF NOT EXISTS outbox_file ON outbox(file_seq);
CREATE TABLE IF NOT EXISTS landed_file (
  file_seq INTEGER PRIMARY KEY, landing_key TEXT NOT NULL, rows INTEGER NOT NULL, written INTEGER NOT NULL);
"""
# Tables keyed by a text primary key are WITHOUT ROWID: the row lives in its key's B-tree, so a commit
# dirties one page per row instead of two (table + key index). Stores created before keep their
# rowid tables; every statement works on both.


class ChargingStoreError(ValueError):
    """A balance operation that breaks a rule (unknown bucket, would overdraw, bad amount)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def to_micros(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware (UTC)")
    return (instant - EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def to_nano(amount: Decimal | str | int) -> int:
    """An exact amount as integer nano-units; refuses anything finer than 9 decimals."""
    value = money(amount) * NANO
    if value != value.to_integral_value():
        raise MoneyError(f"{amount} has more than {AMOUNT_SCALE} decimals")
    return int(value)


def from_nano(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).quantize(Decimal(1).scaleb(-AMOUNT_SCALE))


@dataclass(frozen=True)
class Subscriber:
    msisdn: str
    imsi: str | None
    subscription_id: str
    account_id: str
    plan_id: str
    valid_from: int
    valid_to: int | None


@dataclass(frozen=True)
class BucketView:
    """A bucket as the balance API shows it (amounts in the bucket's unit; money as Decimal)."""

    bucket_id: str
    msisdn: str
    service: str
    unit: str
    rating_group: int | None
    priority: int
    valid_from: datetime
    valid_to: datetime | None
    credit_limit: Decimal | int
    balance: Decimal | int
    reserved: Decimal | int
    available: Decimal | int


class Store:
    """One SQLite connection guarded by a lock; :meth:`transaction` is the unit of atomicity."""

    def __init__(self, path: str | Path, durable: bool = False) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._lock = threading.RLock()
        self._depth = 0
        self.conn.executescript(SCHEMA)
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()

    def start_checkpointer(self, interval_s: float = 1.0) -> None:
        """Copy the WAL into the database file from a background thread instead of inside a COMMIT.

        With SQLite's automatic checkpoint, every ~1000th page written makes the committing request
        copy the whole WAL back and fsync (about half of the store's time per request under load, all
        of it on the event loop). A PASSIVE checkpoint on its own connection never takes the write
        lock, runs with the GIL released, and copies a hot page once per interval rather than once per
        1000 pages. Durability is unchanged: a commit is complete once it is in the WAL.
        """
        if self._checkpointer is not None or interval_s <= 0:
            return
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(interval_s,),
                                              name="chf-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self, interval_s: float) -> None:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            while not self._stop_checkpoints.wait(interval_s):
                try:
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy (another process checkpointing) or I/O: try again next round
                    log.warning("WAL checkpoint failed; retrying", exc_info=True)
        finally:
            con.close()

    def stop_checkpointer(self) -> None:
        """Stop the background checkpoints and go back to SQLite's automatic ones."""
        if self._checkpointer is None:
            return
        self._stop_checkpoints.set()
        self._checkpointer.join(10)
        self._checkpointer = None
        with self._lock:
            self.conn.execute("PRAGMA wal_autocheckpoint=1000")
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def close(self) -> None:
        self.stop_checkpointer()
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock first, rolls back on any error.

        Nested use (a request inside a group commit) becomes a SAVEPOINT: an error undoes that request
        only, and nothing is durable before the outer COMMIT.
        """
        with self._lock:
            depth = self._depth
            self.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
            self._depth = depth + 1
            try:
                yield self.conn
            except BaseException:
                self._depth = depth
                if depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO sp{depth}")
                    self.conn.execute(f"RELEASE sp{depth}")
                raise
            self._depth = depth
            self.conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads, not shared with a concurrent transaction of another thread."""
        with self._lock:
            yield self.conn

    # -- subscribers -------------------------------------------------------------------------
    def upsert_subscribers(self, rows: list[Subscriber]) -> int:
        with self.transaction() as con:
            con.executemany(
                "INSERT INTO subscriber VALUES (?,?,?,?,?,?,?) ON CONFLICT(msisdn) DO UPDATE SET "
                "imsi=excluded.imsi, subscription_id=excluded.subscription_id, account_id=excluded.account_id,"
                " plan_id=excluded.plan_id, valid_from=excluded.valid_from, valid_to=excluded.valid_to",
                [(s.msisdn, s.imsi, s.subscription_id, s.account_id, s.plan_id, s.valid_from, s.valid_to)
                 for s in rows])
        return len(rows)

    def find_subscriber(self, msisdn: str | None = None, imsi: str | None = None) -> Subscriber | None:
        if not (msisdn or imsi):
            return None
        with self.reading() as con:
            if msisdn:
                row = con.execute("SELECT * FROM subscriber WHERE msisdn=?", (msisdn,)).fetchone()
            else:
                row = con.execute("SELECT * FROM subscriber WHERE imsi=?", (imsi,)).fetchone()
        return Subscriber(*row) if row else None

    # -- buckets and the ledger --------------------------------------------------------------
    def add_bucket(self, msisdn: str, service: str, amount: Decimal | int, *, at: datetime,
                   bucket_id: str | None = None, priority: int = 100, rating_group: int | None = None,
                   valid_from: datetime | None = None, valid_to: datetime | None = None,
                   credit_limit: Decimal | int = 0) -> str:
        """Create a bucket with an opening ledger entry (idempotent on ``bucket_id``)."""
        if service not in BUCKET_SERVICES:
            raise ChargingStoreError("BAD_BUCKET", f"service must be one of {BUCKET_SERVICES}")
        bucket_id = bucket_id or f"{msisdn}-{service}" + (f"-rg{rating_group}" if rating_group is not None else "")
        opening = self._scaled(service, amount)
        limit = self._scaled(service, credit_limit)
        if opening < 0 or limit < 0:
            raise ChargingStoreError("BAD_AMOUNT", "opening balance and credit limit must be >= 0")
        if limit and service != "money":
            raise ChargingStoreError("BAD_AMOUNT", "only money buckets have a credit limit")
        now = to_micros(at)
        with self.transaction() as con:
            if self.find_subscriber(msisdn=msisdn) is None:
                raise ChargingStoreError("USER_UNKNOWN", f"no prepaid subscriber {msisdn}")
            if con.execute("SELECT 1 FROM bucket WHERE bucket_id=?", (bucket_id,)).fetchone():
                return bucket_id
            con.execute("INSERT INTO bucket VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (bucket_id, msisdn, service, UNIT_OF[service], rating_group, priority,
                         to_micros(valid_from) if valid_from else 0, to_micros(valid_to) if valid_to else None,
                         limit, opening))
            con.execute("INSERT INTO ledger (bucket_id, kind, amount, op_key, at, note) VALUES (?,?,?,?,?,?)",
                        (bucket_id, "opening", opening, f"open:{bucket_id}", now, None))
        return bucket_id

    @staticmethod
    def _scaled(service: str, amount: Decimal | int | str) -> int:
        if service == "money":
            return to_nano(amount)
        value = money(amount)
        if value != value.to_integral_value():
            raise ChargingStoreError("BAD_AMOUNT", f"unit buckets hold whole units, got {amount}")
        return int(value)

    def credit(self, bucket_id: str, amount: Decimal | int, kind: str, op_key: str | None, *, at: datetime,
               note: str | None = None) -> tuple[bool, int]:
        """Top up (kind ``topup``, amount > 0) or adjust (``adjustment``, either sign) a bucket.

        Idempotent on ``op_key``: a repeated key changes nothing and returns ``(False, balance)``.
        A negative adjustment may not push the available balance below minus the credit limit.
        """
        if kind not in ("topup", "adjustment"):
            raise ChargingStoreError("BAD_KIND", f"credit kind must be topup or adjustment, got {kind}")
        now = to_micros(at)
        with self.transaction() as con:
            row = con.execute("SELECT service, balance, credit_limit FROM bucket WHERE bucket_id=?",
                              (bucket_id,)).fetchone()
            if row is None:
                raise ChargingStoreError("BUCKET_UNKNOWN", f"no bucket {bucket_id}")
            service, balance, limit = row
            scaled = self._scaled(service, amount)
            if kind == "topup" and scaled <= 0:
                raise ChargingStoreError("BAD_AMOUNT", "a top-up must be positive")
            if op_key and con.execute("SELECT 1 FROM ledger WHERE op_key=?", (op_key,)).fetchone():
                return False, balance
            if scaled < 0 and balance + scaled - reserved_on(con, bucket_id, now) < -limit:
                raise ChargingStoreError("INSUFFICIENT_BALANCE",
                                         "the adjustment would take the balance below its credit limit")
            con.execute("INSERT INTO ledger (bucket_id, kind, amount, op_key, at, note) VALUES (?,?,?,?,?,?)",
                        (bucket_id, kind, scaled, op_key, now, note))
            con.execute("UPDATE bucket SET balance = balance + ? WHERE bucket_id=?", (scaled, bucket_id))
            return True, balance + scaled

    def buckets(self, msisdn: str, at: datetime) -> list[BucketView]:
        now = to_micros(at)
        with self.reading() as con:
            rows = con.execute(
                "SELECT bucket_id, msisdn, service, unit, rating_group, priority, valid_from, valid_to, credit_limit,"
                " balance, (SELECT COALESCE(SUM(amount), 0) FROM reservation r WHERE r.bucket_id = b.bucket_id"
                " AND r.expires_at > ?) FROM bucket b WHERE msisdn=? ORDER BY service, priority, bucket_id",
                (now, msisdn)).fetchall()
        out = []
        for bid, owner, service, unit, rg, prio, vf, vt, limit, balance, reserved in rows:
            conv = from_nano if service == "money" else int
            out.append(BucketView(bid, owner, service, unit, rg, prio, from_micros(vf),
                                  from_micros(vt) if vt is not None else None, conv(limit), conv(balance),
                                  conv(reserved), conv(balance - reserved)))
        return out

    def audit(self) -> list[str]:
        """Buckets whose balance differs from opening + top-ups + adjustments - debits (empty = sound)."""
        with self.reading() as con:
            rows = con.execute(
                "SELECT b.bucket_id, b.balance, COALESCE(SUM(l.amount), 0) FROM bucket b "
                "LEFT JOIN ledger l ON l.bucket_id = b.bucket_id GROUP BY b.bucket_id, b.balance").fetchall()
        return [f"{bid}: balance {bal} != ledger {led}" for bid, bal, led in rows if bal != led]

    def prune(self, before: datetime) -> dict[str, int]:
        """Drop what only served retransmissions and crash recovery, for sessions closed before ``before``.

        Removed: stored replies and per-rating-group state of those sessions (a retransmission after this
        gets 404), and charging-record rows already written to the landing area. Kept: the ledger,
        buckets, session headers and unwritten records, so balances and audits never change.
        """
        cutoff = to_micros(before)
        with self.transaction() as con:
            closed = "SELECT ref FROM session WHERE state='closed' AND closed_at < ?"
            counts = {
                "replies": con.execute(f"DELETE FROM reply WHERE ref IN ({closed})", (cutoff,)).rowcount,
                "rating_groups": con.execute(f"DELETE FROM session_rg WHERE ref IN ({closed})", (cutoff,)).rowcount,
                "records": con.execute(
                    f"DELETE FROM outbox WHERE ref IN ({closed}) AND file_seq IN "
                    "(SELECT file_seq FROM landed_file WHERE written=1)", (cutoff,)).rowcount,
            }
        return counts

    def ledger_totals(self, bucket_id: str) -> dict[str, int]:
        with self.reading() as con:
            rows = con.execute("SELECT kind, SUM(amount) FROM ledger WHERE bucket_id=? GROUP BY kind",
                               (bucket_id,)).fetchall()
        return {kind: total for kind, total in rows}


def reserved_on(con: sqlite3.Connection, bucket_id: str, now: int) -> int:
    """Amount held by reservations on a bucket that have not expired at ``now``."""
    return con.execute("SELECT COALESCE(SUM(amount), 0) FROM reservation WHERE bucket_id=? AND expires_at > ?",
                       (bucket_id, now)).fetchone()[0]
