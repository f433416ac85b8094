"""Charging records: every closed session lands as canonical CSV so prepaid usage reaches the warehouse.

A closed session queues one row per rating group in the store's ``outbox`` (same transaction as the
close, so a record exists exactly when the session's debits committed). :func:`flush` cuts the queue
into files in two committed steps: (1) assign the next gapless file sequence number and the landing
key to a batch of rows, (2) write the CSV and mark it written. A crash between the steps rewrites
the same rows under the same key on the next flush: the same bytes, never a second file.

Landing key ``chf-prepaid/chf-prepaid_<seq:06d>_<YYYYMMDD>.csv`` (the UTC start date of the first
record in the file). Columns: ``schemas.contracts.CANONICAL_COLUMNS`` then ``charged_amount``, the
amount the sidecar debited from money buckets for that usage (EUR, 9 decimals; usage covered by unit
buckets costs 0), so assurance can compare it with what batch rating charges for the same record.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime

from charging.store import Store, from_nano
from pipelines.common.storage import Store as LandingStore
from schemas.contracts import CANONICAL_COLUMNS

SOURCE = "chf-prepaid"
EXTRA_COLUMNS = ("charged_amount",)
RECORD_COLUMNS = CANONICAL_COLUMNS + EXTRA_COLUMNS


def landing_key(seq: int, usage_day: str) -> str:
    return f"{SOURCE}/{SOURCE}_{seq:06d}_{usage_day}.csv"


def queue_records(con: sqlite3.Connection, ref: str) -> int:
    """Queue one canonical row per rating group of a closed session (inside the closing transaction)."""
    context = json.loads(con.execute("SELECT context FROM session WHERE ref=?", (ref,)).fetchone()[0])
    start = datetime.fromisoformat(context["start_time"])
    rows = con.execute(
        "SELECT rating_group, service, used_units + used_money_qty, up_bytes, down_bytes, charged "
        "FROM session_rg WHERE ref=? ORDER BY rating_group", (ref,)).fetchall()
    for rg, service, quantity, up, down, charged in rows:
        record = {
            "network_record_id": f"{ref}-{rg}",
            "service": service,
            "direction": context.get("direction", "MO"),
            "msisdn": context["msisdn"],
            "imsi": context.get("imsi") or "",
            "other_party": context.get("other_party") or "",
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": quantity if service == "voice" else 0,
            "quantity": quantity,
            "uplink_bytes": up if service == "data" else 0,
            "downlink_bytes": down if service == "data" else 0,
            "call_outcome": "answered",
            "rating_group": rg if service == "data" else "",
            "snssai": context.get("snssai") or "",
            "qos_class": context.get("qos_class") if context.get("qos_class") is not None else "",
            "apn": context.get("apn") or "",
            "visited_network": context.get("visited_network") or "",
            "charging_id": context.get("charging_id") or ref,
            "partial_seq": "",
            "charged_amount": str(from_nano(charged)),
        }
        con.execute("INSERT OR IGNORE INTO outbox (ref, rating_group, usage_day, row) VALUES (?,?,?,?)",
                    (ref, rg, start.strftime("%Y%m%d"), json.dumps(record, sort_keys=True)))
    return len(rows)


def render_csv(rows: list[dict], columns: tuple[str, ...] = RECORD_COLUMNS) -> bytes:
    """Canonical CSV text (no field ever needs quoting: ids, digits, codes and ISO instants only)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return buf.getvalue().encode()


def flush(store: Store, landing: LandingStore, batch_rows: int = 5000, partial: bool = True) -> list[str]:
    """Cut queued records into files and write every file not yet written; returns the keys written.

    ``partial=False`` only cuts full batches (the periodic flush under load); ``True`` also cuts the
    remainder (shutdown, ``telbill charging flush``).
    """
    cut_files(store, batch_rows, partial)
    return write_files(store, landing)


def cut_files(store: Store, batch_rows: int = 5000, partial: bool = True) -> list[str]:
    """Step 1 (committed): give queued rows the next gapless file sequence numbers and landing keys."""
    keys = []
    while True:
        with store.transaction() as con:
            batch = con.execute("SELECT record_no, usage_day FROM outbox WHERE file_seq IS NULL ORDER BY record_no "
                                "LIMIT ?", (batch_rows,)).fetchall()
            if not batch or (len(batch) < batch_rows and not partial):
                return keys
            seq = con.execute("SELECT COALESCE(MAX(file_seq), 0) + 1 FROM landed_file").fetchone()[0]
            keys.append(landing_key(seq, batch[0][1]))
            con.execute("INSERT INTO landed_file VALUES (?,?,?,0)", (seq, keys[-1], len(batch)))
            con.executemany("UPDATE outbox SET file_seq=? WHERE record_no=?", [(seq, no) for no, _ in batch])


def write_files(store: Store, landing: LandingStore) -> list[str]:
    """Step 2: write every cut file not yet marked written (same rows, same bytes), then mark it."""
    written = []
    with store.reading() as con:
        pending = con.execute("SELECT file_seq, landing_key FROM landed_file WHERE written=0 ORDER BY file_seq"
                              ).fetchall()
    for seq, key in pending:
        with store.reading() as con:
            rows = [json.loads(r) for (r,) in con.execute(
                "SELECT row FROM outbox WHERE file_seq=? ORDER BY record_no", (seq,)).fetchall()]
        landing.write_bytes(key, render_csv(rows))
        with store.transaction() as con:
            con.execute("UPDATE landed_file SET written=1 WHERE file_seq=?", (seq,))
        written.append(key)
    return written
