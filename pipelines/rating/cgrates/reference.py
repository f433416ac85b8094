"""A straightforward per-event Python rater with the same semantics as :mod:`rater` (the SQL one).

It exists to cross-check the set-based DuckDB rater on random tariff plans (property tests) and
as the per-record baseline of the benchmark. It is deliberately simple and slow; do not use it
for production runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pipelines.rating.cgrates.goformats import NS_PER_DAY
from pipelines.rating.cgrates.rater import (
    MAX_FALLBACK_DEPTH,
    NO_RATE_INTERVAL,
    RATING_PLAN_NOT_FOUND,
    UNAUTHORIZED_DESTINATION,
    Cost,
    Event,
)
from pipelines.rating.cgrates.tariffplan import ANY, ANY_TIMING, RatingProfile, TariffPlan

NANO = 10**9


@dataclass(frozen=True)
class _Interval:
    interval_id: int
    weight: Decimal
    rate_id: str
    method: str
    rdec: int
    max9: int
    strategy: str
    years: tuple[int, ...]
    months: tuple[int, ...]
    mdays: tuple[int, ...]
    wdays: tuple[int, ...]
    start_ns: int


class ReferenceRater:
    """Index a tariff plan once, then rate events one by one."""

    def __init__(self, plan: TariffPlan, rounding_decimals: int = 5) -> None:
        self.rd = rounding_decimals
        self.timings = {t.timing_id: t for t in (ANY_TIMING, *plan.timings)}
        self.prefixes: dict[str, set[str]] = {}
        for dest_id, prefix in plan.destinations:
            self.prefixes.setdefault(prefix, set()).add(dest_id)
        self.slots: dict[str, list] = {}
        for s in sorted(plan.rates, key=lambda s: s.group_start_ns):
            self.slots.setdefault(s.rate_id, []).append(s)
        self.connect_fee = {}
        for s in sorted(plan.rates, key=lambda s: s.line):
            self.connect_fee.setdefault(s.rate_id, int(s.connect_fee.scaleb(9)))
        drs: dict[str, list] = {}
        for dr in plan.destination_rates:
            drs.setdefault(dr.dr_id, []).append(dr)
        self.intervals: dict[tuple[str, str], list[_Interval]] = {}
        n = 0
        for p in plan.rating_plans:
            t = self.timings[p.timing_id]
            for dr in drs[p.dr_id]:
                self.intervals.setdefault((p.plan_id, dr.destination_id), []).append(_Interval(
                    n, p.weight, dr.rate_id, dr.rounding_method, dr.rounding_decimals,
                    int(dr.max_cost.scaleb(9)), dr.max_cost_strategy, t.years, t.months, t.month_days,
                    t.week_days, t.start_ns))
                n += 1
        self.profiles: dict[tuple[str, str, str], list[RatingProfile]] = {}
        for prof in plan.rating_profiles:
            self.profiles.setdefault((prof.tenant, prof.category, prof.subject), []).append(prof)

    # -- plan selection -------------------------------------------------------------------------
    def _active(self, tenant: str, category: str, subject: str, utc: int) -> RatingProfile | None:
        acts = [p for p in self.profiles.get((tenant, category, subject), []) if p.activation_utc_ns <= utc]
        # latest activation; among equal times the first in file order (as the SQL rater)
        return min(acts, key=lambda p: -p.activation_utc_ns) if acts else None

    def _match(self, plan_id: str, destination: str) -> list[_Interval] | None:
        if destination != ANY:
            for n in range(len(destination), 0, -1):
                cands = [(max(i.weight for i in self.intervals[(plan_id, d)]), d)
                         for d in self.prefixes.get(destination[:n], ()) if (plan_id, d) in self.intervals]
                if cands:
                    best = sorted(cands, key=lambda c: (-c[0], c[1]))[0][1]
                    return self.intervals[(plan_id, best)]
        return self.intervals.get((plan_id, ANY))

    def _resolve(self, e: Event, prof: RatingProfile, utc: int, depth: int) -> list[_Interval] | None:
        found = self._match(prof.plan_id, e.destination)
        if found is not None or depth >= MAX_FALLBACK_DEPTH:
            return found
        for fb in prof.fallback_subjects:
            nxt = self._active(e.tenant, e.category, fb, utc)
            if nxt is not None:
                found = self._resolve(e, nxt, utc, depth + 1)
                if found is not None:
                    return found
        return None

    # -- rating ---------------------------------------------------------------------------------
    def rate(self, e: Event) -> Cost:
        if e.usage_ns == 0:
            return Cost(e.seq, e.event_id, Decimal(0), "")
        end_utc = e.start_utc_ns + e.usage_ns

        def during(subject: str, low: int, high: int) -> list[RatingProfile]:
            return sorted((p for p in self.profiles.get((e.tenant, e.category, subject), [])
                           if low < p.activation_utc_ns <= high), key=lambda p: p.activation_utc_ns)

        first = self._active(e.tenant, e.category, e.subject, e.start_utc_ns)
        key, tail = e.subject, []
        if first is None:
            own_later = during(e.subject, e.start_utc_ns, end_utc) if e.voice else []
            first, key = self._active(e.tenant, e.category, ANY, e.start_utc_ns), ANY
            if own_later:
                if first is None:  # the head cannot be rated through *any
                    return Cost(e.seq, e.event_id, None, UNAUTHORIZED_DESTINATION)
                tail = own_later
        if first is None:
            return Cost(e.seq, e.event_id, None, RATING_PLAN_NOT_FOUND)
        cuts = [(0, e.start_utc_ns, first)]
        if e.voice:
            head_end = tail[0].activation_utc_ns - 1 if tail else end_utc
            later = during(key, e.start_utc_ns, head_end) + tail
            cuts += [(p.activation_utc_ns - e.start_utc_ns, p.activation_utc_ns, p) for p in later]
        segs = []
        for k, (off, utc, prof) in enumerate(cuts):
            found = self._resolve(e, prof, utc, 1)
            if found is None:
                return Cost(e.seq, e.event_id, None, UNAUTHORIZED_DESTINATION)
            end = cuts[k + 1][0] if k + 1 < len(cuts) else e.usage_ns
            segs.append((off, end, found))
        return self._price(e, segs)

    def _price(self, e: Event, segs: list) -> Cost:
        hard = {0} | {s[0] for s in segs}
        bps = {0, e.usage_ns} | hard
        rates = {i.rate_id for s in segs for i in s[2]}
        for r in rates:
            hard |= {s.group_start_ns for s in self.slots[r]}
        first_day = e.start_local_ns // NS_PER_DAY
        last_day = (e.start_local_ns + e.usage_ns - 1) // NS_PER_DAY
        if e.voice:
            for d in range(first_day + 1, last_day + 1):
                hard.add(d * NS_PER_DAY - e.start_local_ns)
            for d in range(first_day, last_day + 1):
                bps |= {d * NS_PER_DAY + i.start_ns - e.start_local_ns for s in segs for i in s[2]}
        bps |= hard
        points = sorted(b for b in bps if 0 <= b <= e.usage_ns)
        pieces, active = [], None
        for a, b in zip(points, points[1:], strict=False):
            seg = next(s for s in segs if s[0] <= a < s[1])
            t = e.start_local_ns + a if e.voice else e.start_local_ns
            day, tod = t // NS_PER_DAY, t % NS_PER_DAY
            when = datetime.fromtimestamp(t // NANO, tz=UTC)
            matching = [i for i in seg[2] if (not i.years or when.year in i.years)
                        and (not i.months or when.month in i.months)
                        and (not i.mdays or when.day in i.mdays)
                        and (not i.wdays or when.isoweekday() in i.wdays)]
            started = [i for i in matching if i.start_ns <= tod]
            best = min(started, key=lambda i: (-i.weight, -i.start_ns, i.interval_id)) if started else None
            soft = {i.weight for i in matching if i.start_ns == tod}
            if active is None or a in hard or active.weight in soft or active not in seg[2]:
                active = best
            if active is None:
                return Cost(e.seq, e.event_id, None, NO_RATE_INTERVAL)
            slot = [s for s in self.slots[active.rate_id] if s.group_start_ns <= a][-1]
            key = (seg[0], day if e.voice else 0, active.interval_id, slot.group_start_ns)
            if pieces and pieces[-1][0] == key:
                pieces[-1][2] = b
            else:
                pieces.append([key, a, b, active, slot])
        return self._walk(e, pieces)

    def _walk(self, e: Event, pieces: list) -> Cost:
        q = 10 ** (9 - self.rd)
        end_r, cum, msf, kept = 0, 0, 0, []
        for n, (_, a, b, iv, slot) in enumerate(pieces):
            start = max(a, end_r)
            if start >= b:
                continue
            inc = slot.increment_ns
            dur = -(-(b - start) // inc) * inc
            end_r = start + dur
            r9 = int(slot.rate.scaleb(9))
            num, den = dur * r9 * 10**self.rd, slot.unit_ns * NANO
            seg_rd = (2 * num + den) // (2 * den)
            nb = dur // inc
            cost9 = ((2 * seg_rd + nb) // (2 * nb)) * nb * q
            if n == 0:
                cost9 = ((2 * (self.connect_fee[iv.rate_id] + cost9) + q) // (2 * q)) * q
            cum += cost9
            msf += cum
            if iv.strategy == "*free" and iv.max9 > 0 and msf >= iv.max9:
                cum = msf = iv.max9
            kept.append(iv)
        rdec = max(i.rdec for i in kept)
        method = next(i.method for i in kept if i.rdec == rdec)
        return Cost(e.seq, e.event_id, Decimal(_final_round(cum, rdec, method)).scaleb(-9), "")


def _final_round(x9: int, rdec: int, method: str) -> int:
    if rdec == 0 or rdec >= 9:
        return x9
    q = 10 ** (9 - rdec)
    base, rem = x9 - x9 % q, x9 % q
    if method == "*down":
        return base
    if method == "*middle":
        return base + (q if 2 * rem >= q else 0)
    return base + (q if rem > 0 and rem * 10 ** max(7, rdec) >= q else 0)
