"""The Python single-event pricer and the set-based SQL engine agree record by record."""

from __future__ import annotations

from decimal import Decimal

from pipelines.rating.quote import RatingError, quote
from pipelines.rating.stage import rate_frames
from rating.generate import random_usage
from rating.helpers import PERIOD, usage_frame


def test_quote_equals_sql_engine_on_generated_records(catalogue, accounts) -> None:
    rows = random_usage(3000, seed=7)
    n_in, out = rate_frames(catalogue, usage_frame(rows), accounts, PERIOD, apply_allowances=False)
    rated = {r["record_id"]: r for r in out.rated.iter_rows(named=True)}
    suspense = dict(out.suspense.select("record_id", "reason_code").iter_rows())
    assert n_in == len(rows) == len(rated) + len(suspense)
    splits = 0
    for row in rows:
        try:
            q = quote(catalogue, row["plan_id"], row["service"], row["start_time"], row["quantity"],
                      row["other_party"], row["rating_group"], row["snssai"], row["qos_class"],
                      row["visited_network"], direction=row["direction"], account_id=row["account_id"])
        except RatingError as exc:
            assert suspense.get(row["record_id"]) == exc.reason_code, row
            continue
        r = rated[row["record_id"]]
        got = (r["charge"], r["rate_id"], r["band"], r["destination_id"], r["quantity_charged"], r["band_segments"])
        want = (q.charge, q.rate_id, q.band, q.destination_id, q.quantity_charged, len(q.segments))
        assert got == want, row
        assert r["precise_charge"] == Decimal(q.precise_nanos).scaleb(-9)
        splits += len(q.segments) > 1
    assert splits > 5, "the sample must contain calls split at band boundaries"
    assert len(suspense) > 0 and len(rated) > 2000
