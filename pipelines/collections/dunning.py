"""The dunning ladder walk: pure functions from yesterday's state and today's aging to today's state,
provisioning orders and notifications. Rules (configuration in ``tariffs/dunning_policy.toml``):

- overdue below ``clear_below``: back to step 0 (normal); barred lines get an unbar order this run;
- otherwise the target is the highest step whose ``start_day`` and ``min_debt`` are reached; the account
  moves up ONE step per run towards it (each step's notice goes out before the next), never down
  except back to normal;
- an active hold in ``freeze_on`` (open dispute, promise to pay) freezes the account at its step;
- a segment in ``segment_max_step`` (VIP, government) never goes beyond its cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import polars as pl

from pipelines.collections.policy import Policy
from pipelines.common.partitions import digest
from schemas.contracts import DUNNING_STATE_SCHEMA, PROVISIONING_ORDER_SCHEMA

BAR_ACTIONS = {"none": "unbar", "outgoing": "bar_outgoing", "soft": "suspend", "hard": "disconnect"}

NOTIFICATION_SCHEMA: dict[str, pl.DataType] = {
    "notification_id": pl.String,
    "as_of": pl.Date,
    "account_id": pl.String,
    "channel": pl.String,           # email | sms | letter | agency
    "address": pl.String,
    "template": pl.String,          # step code, or PAYMENT_RECEIVED / SERVICE_RESTORED
    "overdue": pl.Decimal(18, 2),
    "currency": pl.String,
    "payment_reference": pl.String,
    "message": pl.String,
}


@dataclass(frozen=True)
class Position:
    """Where an account stands on the ladder."""

    step: int = 0
    since: date | None = None
    barring: str = "none"


def target_step(policy: Policy, overdue: Decimal, days_past_due: int) -> int:
    """Highest step whose start day and minimum debt are both reached (0 when none)."""
    reached = [s.step for s in policy.steps[1:] if s.start_day <= days_past_due and overdue >= s.min_debt]
    return max(reached, default=0)


def next_position(policy: Policy, prev: Position, overdue: Decimal, days_past_due: int, segment: str | None,
                  holds: list[str], as_of: date) -> tuple[Position, str | None]:
    """Today's position and the exclusion that applies (if any)."""
    frozen = sorted(h for h in holds if h in policy.freeze_on)
    cap = policy.segment_max_step.get(segment or "", policy.top)
    reason = frozen[0] if frozen else (f"segment:{segment}" if cap < policy.top else None)
    if overdue < policy.clear_below:
        step = 0
    else:
        step = prev.step
        if target_step(policy, overdue, days_past_due) > prev.step and not frozen and prev.step < cap:
            step = prev.step + 1
        step = min(step, cap)
    since = prev.since if step == prev.step and prev.since else as_of
    return Position(step, since, policy.step(step).barring), reason


def advance(policy: Policy, book: pl.DataFrame, previous: pl.DataFrame, accounts: pl.DataFrame,
            holds: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Today's DUNNING_STATE rows for every account on the ladder or with overdue debt."""
    prev = {r["account_id"]: Position(r["step"], r["step_since"], r["barring"])
            for r in previous.iter_rows(named=True)}
    debt = {r["account_id"]: (r["overdue"], r["days_past_due"]) for r in book.iter_rows(named=True)}
    segment = dict(zip(accounts["account_id"].to_list(), accounts["segment"].to_list(), strict=True))
    active = holds.filter((pl.col("start_date") <= as_of) & (pl.col("end_date") >= as_of))
    holds_of: dict[str, list[str]] = {}
    for acc, kind in active.select("account_id", "hold_type").iter_rows():
        holds_of.setdefault(acc, []).append(kind)
    zero = Decimal("0.00")
    rows = []
    for acc in sorted({a for a, p in prev.items() if p.step > 0} | {a for a, d in debt.items() if d[0] > 0}):
        overdue, dpd = debt.get(acc, (zero, 0))
        pos, reason = next_position(policy, prev.get(acc, Position()), overdue, dpd, segment.get(acc),
                                    holds_of.get(acc, []), as_of)
        rows.append((acc, as_of, pos.step, policy.step(pos.step).code, pos.since, pos.barring, overdue, dpd, reason))
    return pl.DataFrame(rows, schema=DUNNING_STATE_SCHEMA, orient="row")


def provisioning_orders(previous: pl.DataFrame, state: pl.DataFrame, subscriptions: pl.DataFrame,
                        as_of: date) -> pl.DataFrame:
    """Bar / unbar orders per active line where an account's barring level changed since the last run."""
    before = dict(zip(previous["account_id"].to_list(), previous["barring"].to_list(), strict=True))
    lines = subscriptions.filter(
        (pl.col("valid_from").dt.date() <= as_of)
        & (pl.col("valid_to").is_null() | (pl.col("valid_to").dt.date() > as_of))
    ).sort("subscription_id")
    by_account: dict[str, list[tuple[str, str]]] = {}
    for sub, acc, msisdn in lines.select("subscription_id", "account_id", "msisdn").iter_rows():
        by_account.setdefault(acc, []).append((sub, msisdn))
    rows = []
    for acc, to_level, step_code in state.select("account_id", "barring", "step_code").iter_rows():
        from_level = before.get(acc, "none")
        if from_level == to_level:
            continue
        action = BAR_ACTIONS[to_level]
        reason = "debt cleared" if to_level == "none" else f"dunning step {step_code}"
        for sub, msisdn in by_account.get(acc, []):
            oid = "ORD-" + digest(str(as_of), acc, sub, action, to_level)
            rows.append((oid, as_of, acc, sub, msisdn, action, from_level, to_level, reason))
    return pl.DataFrame(rows, schema=PROVISIONING_ORDER_SCHEMA, orient="row").sort("account_id", "subscription_id")


def _address(channel: str, contact: Mapping[str, str | None]) -> str:
    if channel == "email":
        return contact.get("email") or ""
    if channel in {"sms", "call"}:
        return contact.get("phone") or ""
    if channel == "letter":
        return ", ".join(p for p in (contact.get("address_line1"), contact.get("postcode"), contact.get("city")) if p)
    return channel


def notifications(policy: Policy, previous: pl.DataFrame, state: pl.DataFrame, accounts: pl.DataFrame,
                  references: Mapping[str, str], as_of: date) -> pl.DataFrame:
    """Messages for accounts that moved up a step today, and for those whose payment cleared the debt."""
    before = {r["account_id"]: r for r in previous.iter_rows(named=True)}
    contacts = {r["account_id"]: r for r in accounts.iter_rows(named=True)}
    rows = []
    for r in state.iter_rows(named=True):
        acc, prev = r["account_id"], before.get(r["account_id"])
        prev_step = prev["step"] if prev else 0
        contact = contacts.get(acc, {})
        currency = contact.get("currency") or policy.currency
        ref = references.get(acc)
        if r["step"] > prev_step:
            step = policy.step(r["step"])
            if step.channel == "none":
                continue
            template, channel = step.code, step.channel
            message = (f"Account {acc}: {r['overdue']} {currency} overdue for {r['days_past_due']} days. "
                       f"Please pay quoting {ref or acc}. Next: {step.action.replace('_', ' ')}.")
        elif r["step"] == 0 and prev_step > 0:
            template = "SERVICE_RESTORED" if prev["barring"] != "none" else "PAYMENT_RECEIVED"
            channel = "sms" if contact.get("phone") else "email"
            message = f"Account {acc}: thank you, your payment was received" + (
                "; your service is restored." if template == "SERVICE_RESTORED" else ".")
        else:
            continue
        nid = "NTF-" + digest(str(as_of), acc, template)
        rows.append((nid, as_of, acc, channel, _address(channel, contact), template, r["overdue"], currency, ref,
                     message))
    return pl.DataFrame(rows, schema=NOTIFICATION_SCHEMA, orient="row").sort("account_id")


def next_action(policy: Policy, step: int, overdue: Decimal, days_past_due: int, segment: str | None,
                frozen: bool, as_of: date) -> tuple[str | None, date | None, str]:
    """(next action, earliest date, contact channel) for an account at ``step`` today."""
    cap = min(policy.segment_max_step.get(segment or "", policy.top), policy.top)
    # contact channel: the current step's; before the first step, the first reminder's
    channel = policy.step(step).channel if step else policy.step(min(1, policy.top)).channel
    if frozen or step >= cap or overdue < policy.clear_below:
        return (("review_hold" if frozen else None), None, channel)
    nxt = policy.step(step + 1)
    if overdue < nxt.min_debt:
        return None, None, channel
    when = as_of + timedelta(days=max(1, nxt.start_day - days_past_due))
    return nxt.action, when, channel
