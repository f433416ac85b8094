"""Converged charging logic (TS 32.291): create, update and release of a charging data resource.

Every operation is one store transaction (``BEGIN IMMEDIATE``): look up the stored reply for
``(ChargingDataRef, invocationSequenceNumber)`` and return it unchanged if the request was seen
before (retransmissions are applied once); otherwise settle reported usage, reserve new quota, store
the reply, commit. Because the availability check and the reservation are in the same write
transaction, no number of concurrent sessions can reserve or debit more than a bucket allows:
``balance - active reservations >= -credit_limit`` always holds.

Consumption order per rating group: unit buckets of the service (lowest ``priority`` first, only
those valid now and matching the rating group when they name one), then money buckets by priority.
Usage reported beyond what was reserved is debited from what is still free and the rest is recorded
as ``uncharged`` (never overdrawn). Reservations carry ``expires_at = now + validityTime``; an
expired reservation no longer holds the balance (it returns by itself, no sweeper needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from charging.pricing import Pricer, PriceRequest, PricingError
from charging.store import Store, to_micros, to_nano
from pipelines.common.partitions import digest

DEFAULT_QUOTA = {"voice": 300, "data": 10 * 1024 * 1024, "sms": 1}
"""Units granted when a request asks for quota without naming an amount (seconds, bytes, events)."""

HELD = "(SELECT COALESCE(SUM(r.amount), 0) FROM reservation r WHERE r.bucket_id = b.bucket_id AND r.expires_at > ?)"
"""What active (unexpired) reservations hold on bucket ``b`` at the bound instant."""

MAX_GRANT = {"voice": 4 * 3600, "data": 10 * 1024**3, "sms": 100}
"""Most units granted at once, whatever is asked (bounds exposure and keeps integers small)."""

# Visited networks the sidecar recognises from the serving PLMN (mcc-mnc -> TADIG, see domain facts).
PLMN_TADIG = {"208-01": "FRAF1", "214-07": "ESPTE", "234-10": "GBRCN", "310-410": "USAAT", "286-01": "TURTC"}
HOME_PLMN = "262-01"


class ChargingError(Exception):
    """A request-level failure answered with ProblemDetails: HTTP ``status`` and 3GPP ``cause``."""

    def __init__(self, status: int, cause: str, detail: str, invalid: list[dict] | None = None) -> None:
        super().__init__(f"{status} {cause}: {detail}")
        self.status = status
        self.cause = cause
        self.detail = detail
        self.invalid = invalid or []

    def problem(self) -> dict:
        body: dict = {"title": self.cause.replace("_", " ").title(), "status": self.status,
                      "detail": self.detail, "cause": self.cause}
        if self.invalid:
            body["invalidParams"] = self.invalid
        return body


@dataclass(frozen=True)
class UnitUsage:
    """One ``multipleUnitUsage`` entry reduced to what charging needs."""

    rating_group: int
    requested: int | None            # None: no quota asked for this rating group
    used: int                        # sum of the used-unit containers, in the service's base unit
    uplink: int = 0
    downlink: int = 0


@dataclass(frozen=True)
class ChargingRequest:
    seq: int
    invoked_at: datetime
    subscriber: str | None           # SUPI, e.g. imsi-262011234567890
    gpsi: str | None                 # msisdn-49151...
    node: str
    nf_name: str | None
    charging_id: str | None
    service: str
    one_time_event: bool
    usages: tuple[UnitUsage, ...]
    context: dict = field(default_factory=dict)
    fingerprint: str | None = None   # digest of the create body: a retransmitted create maps to the same resource


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict | None
    ref: str | None = None


class ChargingEngine:
    """The CHF: applies requests to a :class:`Store`, prices through a :class:`Pricer`."""

    def __init__(self, store: Store, pricer: Pricer, clock: Callable[[], datetime], validity_s: int = 600,
                 default_quota: dict[str, int] | None = None) -> None:
        self.store = store
        self.pricer = pricer
        self.clock = clock
        self.validity_s = validity_s
        self.default_quota = dict(default_quota or DEFAULT_QUOTA)

    # -- operations ----------------------------------------------------------------------------
    def create(self, req: ChargingRequest) -> Outcome:
        ref = req.fingerprint or digest(req.subscriber or "", req.gpsi or "", req.nf_name or "", req.node,
                                        req.charging_id or "", req.invoked_at.isoformat(), length=32)
        now = to_micros(self.clock())
        with self.store.transaction() as con:
            replay = _stored_reply(con, ref, req.seq)
            if replay:
                return replay
            sub = self._subscriber(req)
            if sub.valid_from > to_micros(req.invoked_at) or (
                    sub.valid_to is not None and sub.valid_to <= to_micros(req.invoked_at)):
                raise ChargingError(403, "END_USER_REQUEST_DENIED", "the subscription is not active")
            context = dict(req.context, msisdn=sub.msisdn, imsi=sub.imsi or req.context.get("imsi"),
                           service=req.service, start_time=req.invoked_at.isoformat(),
                           charging_id=req.charging_id or ref, subscription_id=sub.subscription_id)
            con.execute("INSERT INTO session VALUES (?,?,?,?,?,?,?,?)",
                        (ref, sub.msisdn, sub.plan_id, "open", json.dumps(context, sort_keys=True), req.seq, now,
                         None))
            infos = [self._apply_usage(con, ref, sub.plan_id, context, u, now, reserve=True) for u in req.usages]
            if req.one_time_event:
                infos = [self._immediate_event(con, ref, sub.plan_id, context, info, now) for info in infos]
            denied = infos and all("grantedUnit" not in i for i in infos)
            if denied:
                cause = _denial_cause(infos)
                outcome = Outcome(403, ChargingError(403, cause, "no quota could be granted").problem(), ref)
                self._close(con, ref, now, write_records=False)
            else:
                body = self._response(req, infos)
                if req.one_time_event:
                    self._close(con, ref, now)
                outcome = Outcome(201, body, ref)
            _store_reply(con, ref, req.seq, "create", outcome)
            return outcome

    def update(self, ref: str, req: ChargingRequest) -> Outcome:
        now = to_micros(self.clock())
        with self.store.transaction() as con:
            replay = _stored_reply(con, ref, req.seq)
            if replay:
                return replay
            session = _open_session(con, ref)
            plan_id, context = session
            infos = [self._apply_usage(con, ref, plan_id, context, u, now, reserve=u.requested is not None)
                     for u in req.usages]
            con.execute("UPDATE session SET last_seq=MAX(last_seq, ?) WHERE ref=?", (req.seq, ref))
            outcome = Outcome(200, self._response(req, infos), ref)
            _store_reply(con, ref, req.seq, "update", outcome)
            return outcome

    def release(self, ref: str, req: ChargingRequest) -> Outcome:
        now = to_micros(self.clock())
        with self.store.transaction() as con:
            replay = _stored_reply(con, ref, req.seq)
            if replay:
                return replay
            plan_id, context = _open_session(con, ref)
            for u in req.usages:
                self._apply_usage(con, ref, plan_id, context, u, now, reserve=False)
            self._close(con, ref, now)
            outcome = Outcome(204, None, ref)
            _store_reply(con, ref, req.seq, "release", outcome)
            return outcome

    # -- internals -----------------------------------------------------------------------------
    def _subscriber(self, req: ChargingRequest):  # noqa: ANN202
        msisdn = req.gpsi.removeprefix("msisdn-") if req.gpsi and req.gpsi.startswith("msisdn-") else None
        imsi = req.subscriber.removeprefix("imsi-") if req.subscriber and req.subscriber.startswith("imsi-") else None
        sub = self.store.find_subscriber(msisdn=msisdn) if msisdn else None
        sub = sub or (self.store.find_subscriber(imsi=imsi) if imsi else None)
        if sub is None:
            raise ChargingError(404, "USER_UNKNOWN", "the subscriber is not a known prepaid subscriber")
        return sub

    def _price_request(self, plan_id: str, context: dict, rating_group: int) -> PriceRequest:
        return PriceRequest(plan_id=plan_id, service=context["service"],
                            start_time=datetime.fromisoformat(context["start_time"]),
                            other_party=context.get("other_party"),
                            rating_group=rating_group if context["service"] == "data" else None,
                            snssai=context.get("snssai"), qos_class=context.get("qos_class"),
                            visited_network=context.get("visited_network"),
                            direction=context.get("direction", "MO"))

    def _price_nano(self, preq: PriceRequest, quantity: int) -> int:
        return to_nano(self.pricer.price(preq, quantity)) if quantity > 0 else 0

    def _apply_usage(self, con, ref: str, plan_id: str, context: dict, usage: UnitUsage, now: int,  # noqa: ANN001
                     reserve: bool) -> dict:
        """Settle reported usage of one rating group, then (optionally) reserve its next quota."""
        service = context["service"]
        rg = usage.rating_group
        con.execute("INSERT OR IGNORE INTO session_rg (ref, rating_group, service) VALUES (?,?,?)",
                    (ref, rg, service))
        info: dict = {"ratingGroup": rg}
        preq = self._price_request(plan_id, context, rg)
        try:
            state = self._settle(con, ref, rg, preq, usage, now, context["msisdn"])
        except PricingError:
            # usage that cannot be priced is kept as uncharged quantity; the record still lands
            info["resultCode"] = "RATING_FAILED"
            con.execute("DELETE FROM reservation WHERE ref=? AND rating_group=?", (ref, rg))
            return info
        if not reserve:
            info["resultCode"] = "SUCCESS"
            return info
        requested = min(usage.requested or self.default_quota[service], MAX_GRANT[service])
        try:
            granted, final = self._reserve(con, ref, rg, context["msisdn"], preq, requested, now, state)
        except PricingError as exc:
            info["resultCode"] = "END_USER_SERVICE_DENIED" if exc.code == "SERVICE_DENIED" else "RATING_FAILED"
            return info
        if granted == 0:
            info["resultCode"] = "QUOTA_LIMIT_REACHED"
            info["finalUnitIndication"] = {"finalUnitAction": "TERMINATE"}
            return info
        info["resultCode"] = "SUCCESS"
        info["grantedUnit"] = _granted_unit(service, granted)
        info["validityTime"] = self.validity_s
        if final:
            info["finalUnitIndication"] = {"finalUnitAction": "TERMINATE"}
        return info

    def _settle(self, con, ref: str, rg: int, preq: PriceRequest, usage: UnitUsage, now: int,  # noqa: ANN001
                msisdn: str) -> tuple[int, int, int] | None:
        """Debit reported usage; returns the rating group's (money quantity, charged, uncharged) after it."""
        used = usage.used
        held = con.execute(
            f"SELECT r.bucket_id, r.amount, r.quantity, r.expires_at, b.service, b.balance, b.credit_limit, {HELD} "
            "FROM reservation r JOIN bucket b ON b.bucket_id = r.bucket_id WHERE r.ref=? AND r.rating_group=? "
            "ORDER BY b.priority, r.bucket_id", (now, ref, rg)).fetchall()
        if used <= 0 and not held:
            return None
        left = used
        units_used = 0
        money_held = []
        for bucket_id, amount, quantity, expires_at, service, balance, limit, held_now in held:
            own_active = amount if expires_at > now else 0
            free = balance - (held_now - own_active) + limit
            if service == "money":
                money_held.append((bucket_id, free))
                continue
            take = max(0, min(left, quantity, free))
            if take:
                _debit(con, bucket_id, take, f"{ref}:{rg}", now)
                left -= take
                units_used += take
        con.execute("DELETE FROM reservation WHERE ref=? AND rating_group=?", (ref, rg))
        row = con.execute("SELECT used_money_qty, charged, uncharged FROM session_rg WHERE ref=? AND rating_group=?",
                          (ref, rg)).fetchone()
        money_qty, charged, uncharged = row
        due = 0
        if left > 0:
            money_qty += left
            due = max(0, self._price_nano(preq, money_qty) - charged - uncharged)
        debited = 0
        if due:
            # first the buckets this rating group held, then any other money bucket still free
            others = [
                (bid, bal - held_now + lim) for bid, bal, lim, held_now in con.execute(
                    f"SELECT bucket_id, balance, credit_limit, {HELD} FROM bucket b WHERE msisdn=? AND service='money' "
                    "ORDER BY priority, bucket_id", (now, msisdn)).fetchall()
            ]
            seen = {b for b, _ in money_held}
            for bucket_id, free in money_held + [o for o in others if o[0] not in seen]:
                take = max(0, min(due - debited, free))
                if take:
                    _debit(con, bucket_id, take, f"{ref}:{rg}", now)
                    debited += take
                if debited == due:
                    break
        con.execute(
            "UPDATE session_rg SET used_units=used_units+?, used_money_qty=?, charged=charged+?, "
            "uncharged=uncharged+?, up_bytes=up_bytes+?, down_bytes=down_bytes+? WHERE ref=? AND rating_group=?",
            (units_used, money_qty, debited, due - debited, usage.uplink, usage.downlink, ref, rg))
        return money_qty, charged + debited, uncharged + due - debited

    def _reserve(self, con, ref: str, rg: int, msisdn: str, preq: PriceRequest, requested: int,  # noqa: ANN001
                 now: int, state: tuple[int, int, int] | None = None) -> tuple[int, bool]:
        """Hold quota for ``requested`` units; returns (granted units, whether this grant is final)."""
        expires = now + self.validity_s * 1_000_000
        service = preq.service
        left = requested
        unit_free_after = 0
        for bucket_id, balance, held_now in con.execute(
                f"SELECT bucket_id, balance, {HELD} FROM bucket b WHERE msisdn=? AND service=? AND "
                "(rating_group IS NULL OR rating_group=?) AND valid_from<=? AND (valid_to IS NULL OR valid_to>?) "
                "ORDER BY priority, bucket_id", (now, msisdn, service, rg, now, now)).fetchall():
            free = balance - held_now
            take = max(0, min(left, free))
            if take:
                con.execute("INSERT INTO reservation VALUES (?,?,?,?,?,?)", (ref, rg, bucket_id, take, take, expires))
                left -= take
            unit_free_after += free - take
        granted = requested - left
        money_free = [
            (bid, bal - held_now + lim) for bid, bal, lim, held_now in con.execute(
                f"SELECT bucket_id, balance, credit_limit, {HELD} FROM bucket b WHERE msisdn=? AND service='money' AND "
                "valid_from<=? AND (valid_to IS NULL OR valid_to>?) ORDER BY priority, bucket_id",
                (now, msisdn, now, now)).fetchall()
        ]
        free_total = sum(max(0, f) for _, f in money_free)
        money_qty, charged, uncharged = state or con.execute(
            "SELECT used_money_qty, charged, uncharged FROM session_rg WHERE ref=? AND rating_group=?",
            (ref, rg)).fetchone()
        base = charged + uncharged

        def cost(q: int) -> int:
            return max(0, self._price_nano(preq, money_qty + q) - base) if q > 0 else 0

        q = 0
        if left > 0:
            if cost(left) <= free_total:
                q = left
            else:
                lo, hi = 0, left  # largest q with cost(q) <= free_total (cost is monotone)
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if cost(mid) <= free_total:
                        lo = mid
                    else:
                        hi = mid - 1
                q = lo
        amount = cost(q)
        to_hold = amount
        for bucket_id, free in money_free:
            take = max(0, min(to_hold, free))
            if take or (q and bucket_id == money_free[0][0]):
                con.execute("INSERT INTO reservation VALUES (?,?,?,?,?,?)", (ref, rg, bucket_id, take, q, expires))
                to_hold -= take
        granted += q
        final = granted < requested
        if not final and unit_free_after <= 0:
            next_step = cost(q + 1) - amount
            final = next_step > free_total - amount
        return granted, final

    def _immediate_event(self, con, ref: str, plan_id: str, context: dict, info: dict, now: int) -> dict:  # noqa: ANN001
        """Immediate event charging: debit what was just granted (an SMS sent now)."""
        granted = info.get("grantedUnit")
        if not granted:
            return info
        used = granted.get("serviceSpecificUnits") or granted.get("time") or granted.get("totalVolume") or 0
        preq = self._price_request(plan_id, context, info["ratingGroup"])
        self._settle(con, ref, info["ratingGroup"], preq, UnitUsage(info["ratingGroup"], None, used), now,
                     context["msisdn"])
        out = dict(info)
        out.pop("validityTime", None)
        return out

    def _close(self, con, ref: str, now: int, write_records: bool = True) -> None:  # noqa: ANN001
        for (rg,) in con.execute("SELECT DISTINCT rating_group FROM reservation WHERE ref=?", (ref,)).fetchall():
            con.execute("DELETE FROM reservation WHERE ref=? AND rating_group=?", (ref, rg))
        con.execute("UPDATE session SET state='closed', closed_at=? WHERE ref=?", (now, ref))
        if write_records:
            from charging.records import queue_records

            queue_records(con, ref)

    def _response(self, req: ChargingRequest, infos: list[dict]) -> dict:
        body: dict = {"invocationTimeStamp": _iso(self.clock()), "invocationSequenceNumber": req.seq}
        if infos:
            body["multipleUnitInformation"] = infos
        return body


def _granted_unit(service: str, granted: int) -> dict:
    if service == "voice":
        return {"time": granted}
    if service == "data":
        return {"totalVolume": granted}
    return {"serviceSpecificUnits": granted}


def _denial_cause(infos: list[dict]) -> str:
    codes = {i.get("resultCode") for i in infos}
    if "QUOTA_LIMIT_REACHED" in codes:
        return "QUOTA_LIMIT_REACHED"
    if "END_USER_SERVICE_DENIED" in codes:
        return "END_USER_REQUEST_DENIED"
    return "CHARGING_FAILED"


def _debit(con, bucket_id: str, amount: int, note: str, now: int) -> None:  # noqa: ANN001
    """Debits are applied once because the whole request is (stored reply per sequence number)."""
    con.execute("INSERT INTO ledger (bucket_id, kind, amount, op_key, at, note) VALUES (?,?,?,?,?,?)",
                (bucket_id, "debit", -amount, None, now, note))
    con.execute("UPDATE bucket SET balance = balance - ? WHERE bucket_id=?", (amount, bucket_id))


def _open_session(con, ref: str) -> tuple[str, dict]:  # noqa: ANN001
    row = con.execute("SELECT plan_id, context, state FROM session WHERE ref=?", (ref,)).fetchone()
    if row is None or row[2] != "open":
        raise ChargingError(404, "CHARGING_DATA_REF_NOT_FOUND", "no open charging data resource with this reference")
    return row[0], json.loads(row[1])


def _stored_reply(con, ref: str, seq: int) -> Outcome | None:  # noqa: ANN001
    row = con.execute("SELECT status, body FROM reply WHERE ref=? AND seq=?", (ref, seq)).fetchone()
    if row is None:
        return None
    return Outcome(row[0], json.loads(row[1]), ref)


def _store_reply(con, ref: str, seq: int, op: str, outcome: Outcome) -> None:  # noqa: ANN001
    con.execute("INSERT INTO reply VALUES (?,?,?,?,?)", (ref, seq, op, outcome.status, json.dumps(outcome.body)))


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")

