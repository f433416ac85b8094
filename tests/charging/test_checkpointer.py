"""The background WAL checkpointer: commits reach the database file without a checkpoint inside any
COMMIT, nothing is lost, and stopping it hands checkpoints back to SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from chf_helpers import PREPAID, START, SUBSCRIPTIONS_CSV

from charging.server import prepaid_subscribers_from_csv
from charging.store import Store


def test_checkpoints_copy_commits_into_the_database_file(tmp_path: Path) -> None:
    (tmp_path / "subs.csv").write_text(SUBSCRIPTIONS_CSV)
    store = Store(tmp_path / "chf.sqlite")
    store.upsert_subscribers(prepaid_subscribers_from_csv(tmp_path / "subs.csv"))
    store.start_checkpointer(0.05)
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    bucket = store.add_bucket(PREPAID, "money", Decimal("5.00"), at=START)
    for i in range(20):
        store.credit(bucket, Decimal("0.10"), "topup", f"T{i}", at=START)
    # the main file alone (no -wal) holds every commit once a background checkpoint has run
    snapshot = tmp_path / "snapshot.sqlite"
    for _ in range(200):
        shutil.copyfile(tmp_path / "chf.sqlite", snapshot)
        con = sqlite3.connect(f"file:{snapshot}?immutable=1", uri=True)  # the file only, never a -wal
        try:
            row = con.execute("SELECT balance FROM bucket WHERE bucket_id=?", (bucket,)).fetchone()
        except sqlite3.OperationalError:  # not even the schema checkpointed yet
            row = None
        finally:
            con.close()
        if row and row[0] == 7_000_000_000:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the checkpointer never copied the commits into the database file")
    store.stop_checkpointer()
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert store.audit() == []
    store.close()
    reopened = Store(tmp_path / "chf.sqlite")
    assert [b.balance for b in reopened.buckets(PREPAID, START)] == [Decimal("7.000000000")]
    reopened.close()
