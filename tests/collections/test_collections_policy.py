"""The dunning policy is configuration: it loads, it is validated, and the ladder rules follow it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.collections.dunning import Position, next_position, target_step
from pipelines.collections.policy import PolicyError, load_policy, parse_policy
from pipelines.collections.run import collections_run

TARIFFS = str(Path(__file__).resolve().parents[2] / "tariffs")
DAY = date(2026, 11, 1)


def test_shipped_policy_loads():
    policy = load_policy(TARIFFS)
    assert [s.code for s in policy.steps][1:4] == ["REMIND_EMAIL", "REMIND_SMS", "BAR_OUTGOING"]
    assert policy.segment_max_step == {"vip": 2, "government": 0}
    assert set(policy.freeze_on) == {"dispute", "promise_to_pay"}


@pytest.mark.parametrize(("change", "message"), [
    (("action = \"email_reminder\"", "action = \"shout\""), "action"),
    (("barring = \"outgoing\"", "barring = \"sometimes\""), "barring"),
    (("start_day = 10", "start_day = 2"), "start_day must increase"),
    (("step = 2", "step = 9"), "numbered 1..n"),
    (("[policy]", "[polic]"), "needs"),
])
def test_invalid_policy_is_refused(change, message):
    text = (Path(TARIFFS) / "dunning_policy.toml").read_text()
    with pytest.raises(PolicyError, match=message):
        parse_policy(text.replace(*change, 1))


def test_ladder_rules():
    policy = load_policy(TARIFFS)
    d = Decimal
    assert target_step(policy, d("10.00"), 25) == 2, "below the barring minimum debt only reminders apply"
    assert target_step(policy, d("60.00"), 65) == 5
    pos, _ = next_position(policy, Position(), d("60.00"), 65, "consumer", [], DAY)
    assert pos.step == 1, "one step per run"
    pos, _ = next_position(policy, Position(3, date(2026, 10, 1), "outgoing"), d("0.50"), 65, "consumer", [], DAY)
    assert (pos.step, pos.barring, pos.since) == (0, "none", DAY)
    pos, reason = next_position(policy, Position(2, date(2026, 10, 1), "none"), d("60.00"), 65, "consumer",
                                ["dispute"], DAY)
    assert (pos.step, reason) == (2, "dispute")
    pos, reason = next_position(policy, Position(4, date(2026, 10, 1), "soft"), d("60.00"), 65, "vip", [], DAY)
    assert (pos.step, pos.barring, reason) == (2, "none", "segment:vip"), "a VIP is never left barred"


def test_run_on_an_empty_lake(local_settings, small_model):
    result = collections_run(local_settings, DAY, model=small_model)
    assert set(result.counts.values()) == {0}
    assert Path(result.exports["collections_list"]).read_text().startswith("priority,account_id")
