"""Holds import: bad rows are reason-coded rejects (never a crash), unknown accounts refused, stable bytes."""

from __future__ import annotations

from datetime import date

from collections_data import publish_customers

from pipelines.collections.run import HOLD_REJECTS, import_holds
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store

HOLDS = (b"account_id,hold_type,start_date,end_date,reference\n"
         b"ACC005,promise_to_pay,2026-10-16,2026-11-10,PTP-9\n"
         b"ACC002,dispute,2026-10-20,2026-11-30,DSP-1\n"
         b"ACC002,dispute,2026-13-01,2026-11-30,DSP-2\n"       # no month 13
         b"ACC002,dispute,2026-11-30,2026-10-01,DSP-3\n"       # ends before it starts
         b"ACC999,dispute,2026-10-20,2026-11-30,DSP-4\n"       # no such account
         b"ACC002,holiday,2026-10-20,2026-11-30,DSP-5\n"
         b"ACC002,dispute\n")                                   # short line


def test_bad_rows_are_rejected_with_reasons_and_good_ones_imported(local_settings):
    publish_customers(local_settings)
    result = import_holds(local_settings, HOLDS, "holds.csv")
    assert (result.imported, result.rejected) == (2, 5)
    lake = open_store(local_settings.lake_uri)
    holds = read_published(lake, "collections/holds")
    assert holds.select("account_id", "start_date").rows() == [("ACC002", date(2026, 10, 20)),
                                                              ("ACC005", date(2026, 10, 16))]
    rejects = read_published(lake, HOLD_REJECTS)
    assert list(zip(rejects["line"], rejects["reason_code"], strict=True)) == [
        (4, "BAD_DATE"), (5, "BAD_DATE_RANGE"), (6, "UNKNOWN_ACCOUNT"), (7, "BAD_HOLD_TYPE"), (8, "MISSING_FIELD")]


def test_same_rows_in_another_order_give_the_same_holds(local_settings, tmp_path):
    publish_customers(local_settings)
    import_holds(local_settings, HOLDS, "holds.csv")
    header, *rows = HOLDS.splitlines(keepends=True)
    lake = open_store(local_settings.lake_uri)
    first = read_published(lake, "collections/holds")
    other = tmp_path / "lake2"
    from dataclasses import replace

    settings2 = replace(local_settings, lake_uri=str(other))
    publish_customers(settings2)
    import_holds(settings2, header + b"".join(reversed(rows)), "holds.csv")
    assert read_published(open_store(str(other)), "collections/holds").equals(first)
