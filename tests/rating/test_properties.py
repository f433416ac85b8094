"""Property tests: charges never negative, splitting keeps the duration, input order never matters."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.rating.quote import RatingError, quote
from pipelines.rating.stage import rate_frames
from rating.generate import random_usage
from rating.helpers import PERIOD, ts, usage_frame

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(seed=st.integers(0, 10**6), n=st.integers(1, 60), shuffle_seed=st.integers(0, 10**6))
def test_charges_are_never_negative_and_order_never_changes_the_result(catalogue, accounts, seed, n,
                                                                        shuffle_seed) -> None:
    rows = random_usage(n, seed)
    _, first = rate_frames(catalogue, usage_frame(rows), accounts, PERIOD)
    shuffled = rows[:]
    random.Random(shuffle_seed).shuffle(shuffled)
    _, second = rate_frames(catalogue, usage_frame(shuffled), accounts, PERIOD)
    assert first.rated.equals(second.rated)
    assert first.suspense.equals(second.suspense)
    assert first.settlement.equals(second.settlement)
    assert (first.rated["charge"] >= 0).all()
    assert (first.rated["quantity_included"] >= 0).all()
    assert (first.rated["quantity_included"] <= first.rated["quantity"]).all()
    assert (first.settlement["amount"] >= 0).all() if first.settlement.height else True


@settings(max_examples=200, deadline=None)
@given(start_s=st.integers(0, 30 * 86400), micros=st.integers(0, 999_999), seconds=st.integers(0, 3 * 86400),
       number=st.sampled_from(["4916012345678", "4930123456", "4412345678", "4990012345"]),
       plan=st.sampled_from(["P_BASIC", "P_BIZ", "PRE_PAYG"]))
def test_splitting_a_call_never_changes_its_total_duration(catalogue, start_s, micros, seconds, number, plan) -> None:
    start = ts("2026-10-01 00:00:00") + timedelta(seconds=start_s, microseconds=micros)
    q = quote(catalogue, plan, "voice", start, seconds, number)
    assert sum(s.length for s in q.segments) == seconds * 1_000_000
    assert all(s.length > 0 for s in q.segments) or seconds == 0
    assert all(a.band != b.band for a, b in zip(q.segments, q.segments[1:], strict=False))
    assert q.charge >= 0 and q.quantity_charged >= seconds
    # charged blocks cover the call: never less than the duration, less than one block more
    assert q.quantity_charged - seconds < max(q.rate["first_interval"], q.rate["increment"]) or seconds == 0


@settings(max_examples=100, deadline=None)
@given(seconds=st.integers(1, 7200), included=st.integers(0, 7200))
def test_included_part_never_costs_more_than_the_whole(catalogue, seconds, included) -> None:
    start = ts("2026-10-06 17:30:00")
    whole = quote(catalogue, "P_BASIC", "voice", start, seconds, "4916012345678")
    rest = quote(catalogue, "P_BASIC", "voice", start, seconds, "4916012345678", included=included)
    assert 0 <= rest.charge <= whole.charge
    assert rest.quantity_included == min(included, seconds)


def test_bad_records_raise_rating_errors_with_reason_codes(catalogue) -> None:
    start = ts("2026-10-06 10:00:00")
    cases = {"NO_PLAN": dict(plan_id="P_GHOST"), "UNKNOWN_DESTINATION": dict(other_party="abc"),
             "UNKNOWN_NETWORK": dict(visited_network="XXXYY"), "BAD_QUANTITY": dict(quantity=-1)}
    for code, change in cases.items():
        args = dict(plan_id="P_BASIC", service="voice", start_time=start, quantity=60, other_party="4930123")
        args.update(change)
        try:
            quote(catalogue, **args)
        except RatingError as exc:
            assert exc.reason_code == code
        else:
            raise AssertionError(f"{code} not raised")


def test_chunking_by_allowance_group_never_changes_the_result(catalogue, accounts) -> None:
    rows = random_usage(300, seed=5)
    _, whole = rate_frames(catalogue, usage_frame(rows), accounts, PERIOD)
    _, chunked = rate_frames(catalogue, usage_frame(rows), accounts, PERIOD, chunk_rows=70)
    assert whole.rated.equals(chunked.rated)
    assert whole.suspense.equals(chunked.suspense)
    assert whole.settlement.equals(chunked.settlement)
