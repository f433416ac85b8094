"""The bill cycle: read the period's inputs, bill every account, number and publish the invoices.

Lifecycle: draft -> finalised -> voided. Numbers are assigned at finalisation from the numbering
register (dataset ``billing/invoice_numbers``), gapless per billing entity and series; the register
block is committed *before* the invoices, so a crash between the two reuses the same numbers on the
rerun. A finalised invoice is never recomputed: rerunning its cycle is a no-op that says so;
correct it with a credit note or a void and reissue (the reissue gets revision + 1 and a new number).
One bill cycle (or void / credit note) per billing entity at a time: the register has one writer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from pipelines.billing.catalogue import Catalogue, load_catalogue
from pipelines.billing.compute import (
    ZERO,
    AccountInputs,
    BillingError,
    InvoiceDraft,
    Line,
    account_period,
    bill_account,
)
from pipelines.billing.frames import INVOICES_SCHEMA, invoices_frame, lines_frame, lines_from_rows, tax_frame
from pipelines.common.partitions import (
    Manifest,
    digest,
    published_manifests,
    read_published,
    run_id_for,
    write_partition,
)
from pipelines.common.periods import parse_period
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store
from schemas.contracts import INVOICE_LINE_SCHEMA, INVOICE_TAX_LINE_SCHEMA

REGISTER = "billing/invoice_numbers"
SERIES = {"invoice": "INV", "credit_note": "CN"}


@dataclass
class BillCycleResult:
    """What a cycle did; ``message`` is the one sentence the CLI prints first."""

    period: str
    run_id: str
    dry_run: bool
    invoices: list[InvoiceDraft] = field(default_factory=list)
    already_finalised: list[str] = field(default_factory=list)   # account ids: rerun was a no-op for them
    not_billed: list[str] = field(default_factory=list)          # prepaid-only / inactive accounts
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (account_id, reason_code, message)
    written: dict[str, str] = field(default_factory=dict)       # dataset -> run prefix
    documents: list[str] = field(default_factory=list)
    hold_override: dict[str, Any] | None = None                 # finance's recorded override of open holds
    message: str = ""

    @property
    def finalised(self) -> list[InvoiceDraft]:
        return [d for d in self.invoices if d.status == "finalised"]


# -- reading inputs ------------------------------------------------------------------------------------
def _published(lake: Store, dataset: str, where: Mapping[str, str] | None = None) -> pl.DataFrame | None:
    return read_published(lake, dataset, where)


def _input_versions(lake: Store, datasets: Iterable[str]) -> dict[str, str]:
    """Published run ids of every input partition: the cycle's run id is derived from them."""
    out = {}
    for ds in datasets:
        for m in published_manifests(lake, ds):
            out[m.prefix] = m.run_id
    return out


def prior_period(period: str) -> str:
    year, month = parse_period(period)
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def root_accounts(accounts: list[dict]) -> dict[str, str]:
    """account_id -> the top of its group (family / business parent), which receives the bill."""
    parent = {a["account_id"]: a.get("parent_account_id") for a in accounts}
    roots = {}
    for acc in parent:
        seen, cur = {acc}, acc
        while parent.get(cur) and parent[cur] in parent and parent[cur] not in seen:
            cur = parent[cur]
            seen.add(cur)
        roots[acc] = cur
    return roots


def usage_summary(rated: pl.DataFrame | None, period: str) -> pl.DataFrame:
    """Rated usage of the period summed per account, subscription, service and payment type."""
    keys = ["account_id", "subscription_id", "payment_type", "service", "currency"]
    if rated is None or rated.height == 0:
        return pl.DataFrame(schema={k: pl.String for k in keys} | {"plan_id": pl.String, "quantity": pl.Int64,
                                                                    "quantity_included": pl.Int64,
                                                                    "quantity_charged": pl.Int64,
                                                                    "charge": pl.Decimal(38, 9)})
    lf = rated.lazy()
    if "bill_period" in rated.columns:
        lf = lf.filter(pl.col("bill_period") == period)
    return (lf.group_by(keys).agg(pl.col("plan_id").max(), pl.col("quantity").sum(), pl.col("quantity_included").sum(),
                                  pl.col("quantity_charged").sum(), pl.col("charge").sum().cast(pl.Decimal(38, 9)))
            .sort(keys).collect())


def _group(frame: pl.DataFrame | None, key: str, roots: Mapping[str, str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    if frame is None:
        return out
    for row in frame.to_dicts():
        out[roots.get(row[key], row[key])].append(row)
    return out


def unknown_account_errors(frames: Mapping[str, pl.DataFrame | None], roots: Mapping[str, str],
                           ) -> list[tuple[str, str, str]]:
    """(account, UNKNOWN_ACCOUNT, message) per dataset for rows whose account is not in customers/accounts:
    the cycle cannot bill them, so they are reported instead of silently dropped."""
    errors = []
    for dataset, frame in frames.items():
        if frame is None or frame.height == 0:
            continue
        orphans = frame.filter(~pl.col("account_id").is_in(list(roots)) | pl.col("account_id").is_null())
        for account, n in orphans.group_by("account_id").len().sort("account_id", nulls_last=True).iter_rows():
            errors.append((account or "", "UNKNOWN_ACCOUNT",
                           f"{n} {dataset} row(s) for account {account!r}, which is not in customers/accounts: "
                           "not billed; import the account or correct the rows"))
    return errors


def _dated(frame: pl.DataFrame | None, date_cols: Sequence[str]) -> pl.DataFrame | None:
    """A payments/top-ups style frame with a ``item_date`` Date column taken from the first present column."""
    if frame is None:
        return None
    for col in date_cols:
        if col in frame.columns:
            c = pl.col(col)
            return frame.with_columns(item_date=c.dt.date() if frame.schema[col] != pl.Date else c)
    raise BillingError("BAD_INPUT", f"expected one of {list(date_cols)} in {frame.columns}")


@dataclass(frozen=True)
class CycleInputs:
    accounts: dict[str, dict]
    subscriptions: dict[str, list[dict]]
    usage: dict[str, list[dict]]
    charges: dict[str, list[dict]]
    adjustments: dict[str, list[dict]]
    payments: dict[str, list[dict]]
    topups: dict[str, list[dict]]
    invoices: pl.DataFrame            # every published invoice (all periods)
    advance: dict[str, tuple[str, list[Line]]]  # account -> (last period's invoice number, its recurring lines)
    versions: dict[str, str]
    unknown_accounts: list[tuple[str, str, str]] = field(default_factory=list)  # rows no account can bill


def load_inputs(settings: Settings, period: str) -> CycleInputs:
    """Everything the cycle reads, grouped by the account that receives the bill."""
    lake = open_store(settings.lake_uri, settings.s3)
    accounts = _published(lake, "customers/accounts")
    subs = _published(lake, "customers/subscriptions")
    if accounts is None or subs is None:
        raise BillingError("NO_CUSTOMERS", "no published customers/accounts or customers/subscriptions in "
                           f"{settings.lake_uri}: run `telbill customers import` first")
    acc_rows = accounts.unique("account_id", keep="last").sort("account_id").to_dicts()
    roots = root_accounts(acc_rows)
    rated = _published(lake, "rated", {"period": period})
    invoices = _published(lake, "invoices")
    payments = _dated(_published(lake, "payments"), ["received_date", "payment_date", "value_date"])
    topups = _dated(_published(lake, "topups"), ["topup_date", "topup_time", "event_time"])
    usage = usage_summary(rated, period)
    charges, adjustments = _published(lake, "billing/charges"), _published(lake, "billing/adjustments")
    datasets = ["customers/accounts", "customers/subscriptions", "rated", "billing/charges", "billing/adjustments",
                "payments", "topups"]
    return CycleInputs(
        accounts={a["account_id"]: a for a in acc_rows if roots[a["account_id"]] == a["account_id"]},
        subscriptions=_group(subs, "account_id", roots),
        usage=_group(usage, "account_id", roots),
        charges=_group(charges, "account_id", roots),
        adjustments=_group(adjustments, "account_id", roots),
        payments=_group(payments, "account_id", roots),
        topups=_group(topups, "account_id", roots),
        invoices=invoices if invoices is not None else pl.DataFrame(schema=INVOICES_SCHEMA),
        advance=advance_lines(lake, invoices, period),
        versions={k: v for k, v in _input_versions(lake, datasets).items()
                  if not k.startswith("rated/") or f"period={period}" in k},
        unknown_accounts=unknown_account_errors({"rated": usage, "billing/charges": charges,
                                                 "billing/adjustments": adjustments, "payments": payments}, roots),
    )


def advance_lines(lake: Store, invoices: pl.DataFrame | None, period: str) -> dict[str, tuple[str, list[Line]]]:
    """Recurring lines and plan discounts of each account's finalised invoice of the previous period."""
    prior = prior_period(period)
    if invoices is None or invoices.height == 0:
        return {}
    last = (invoices.filter((pl.col("period") == prior) & (pl.col("kind") == "invoice")
                            & (pl.col("status") == "finalised"))
            .sort("revision").unique("account_id", keep="last"))
    lines = read_published(lake, "invoice_lines", {"period": prior})
    if last.height == 0 or lines is None:
        return {}
    numbers = dict(zip(last["invoice_id"].to_list(), last["invoice_number"].to_list(), strict=True))
    keep = lines.filter(pl.col("invoice_id").is_in(list(numbers)) & pl.col("line_type").is_in(["recurring", "discount"])
                        & pl.col("plan_id").is_not_null() & pl.col("service_start").is_not_null())
    out: dict[str, tuple[str, list[Line]]] = {}
    for (invoice_id,), group in keep.group_by("invoice_id", maintain_order=True):
        rows = group.to_dicts()
        out[rows[0]["account_id"]] = (numbers[invoice_id], list(lines_from_rows(rows)))
    return out


# -- balances ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Balances:
    """Last period's amount due per account and the credit notes issued, from published invoices."""

    previous_due: dict[str, Decimal]
    credit_notes: dict[str, list[tuple[date, Decimal]]]

    @classmethod
    def from_invoices(cls, invoices: pl.DataFrame, period: str) -> Balances:
        final = invoices.filter(pl.col("status") == "finalised")
        prev = (final.filter((pl.col("period") == prior_period(period)) & (pl.col("kind") == "invoice"))
                .sort("revision").to_dicts())
        notes: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for r in final.filter(pl.col("kind") == "credit_note").to_dicts():
            notes[r["account_id"]].append((r["issue_date"], r["total"]))
        return cls({r["account_id"]: r["amount_due"] for r in prev}, dict(notes))

    def brought_forward(self, account_id: str, start: date, end: date, payments: list[dict]) -> tuple[Decimal, Decimal]:
        """(previous balance, payments received): last period's amount due plus credit notes issued in
        ``[start, end)``; payments with a received date in ``[start, end)``."""
        balance = self.previous_due.get(account_id, ZERO)
        balance += sum((t for d, t in self.credit_notes.get(account_id, []) if start <= d < end), ZERO)
        paid = sum((Decimal(p["amount"]) for p in payments if start <= p["item_date"] < end), ZERO)
        return balance, paid


def topups_by_line(rows: list[dict], start: date, end: date) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        if start <= r["item_date"] < end and r.get("subscription_id"):
            out[r["subscription_id"]] += Decimal(r["amount"])
    return dict(out)


# -- the cycle -----------------------------------------------------------------------------------------
def compute_drafts(inputs: CycleInputs, cat: Catalogue, period: str, account_ids: Iterable[str],
                   revisions: Mapping[str, int], as_of: date | None) -> tuple[list[InvoiceDraft], list[str], list]:
    """Bill each account; one bad account is reported, never fatal for the run."""
    drafts, not_billed, errors = [], [], []
    balances = Balances.from_invoices(inputs.invoices, period)
    for acc_id in account_ids:
        acc = inputs.accounts[acc_id]
        try:
            start, end = account_period(acc, period)
            previous, paid = balances.brought_forward(acc_id, start, end, inputs.payments.get(acc_id, []))
            draft = bill_account(AccountInputs(
                account=acc, subscriptions=inputs.subscriptions.get(acc_id, []), usage=inputs.usage.get(acc_id, []),
                charges=inputs.charges.get(acc_id, []), adjustments=inputs.adjustments.get(acc_id, []),
                topups=topups_by_line(inputs.topups.get(acc_id, []), start, end), previous_balance=previous,
                payments_received=paid, revision=revisions.get(acc_id, 0),
                advance_invoice=inputs.advance.get(acc_id, ("", []))[0],
                advance_billed=[ln for ln in inputs.advance.get(acc_id, ("", []))[1] if ln.service_start >= start]),
                cat, period, as_of)
        except BillingError as exc:
            errors.append((acc_id, exc.reason_code, exc.message))
            continue
        if draft is None:
            not_billed.append(acc_id)
        else:
            drafts.append(draft)
    return drafts, not_billed, errors


def _scope(inputs: CycleInputs, cycle_day: int | None, accounts: Sequence[str] | None) -> list[str]:
    ids = sorted(inputs.accounts)
    if accounts:
        unknown = sorted(set(accounts) - set(ids))
        if unknown:
            raise BillingError("UNKNOWN_ACCOUNT", f"not billing accounts (unknown or child accounts): {unknown}")
        ids = [a for a in ids if a in set(accounts)]
    if cycle_day is not None:
        ids = [a for a in ids if int(inputs.accounts[a].get("bill_cycle_day") or 1) == cycle_day]
    return ids


def lifecycle_state(invoices: pl.DataFrame, period: str) -> tuple[set[str], dict[str, int]]:
    """Accounts with a finalised invoice for the period, and the revision the next draft gets."""
    mine = invoices.filter((pl.col("period") == period) & (pl.col("kind") == "invoice"))
    done = set(mine.filter(pl.col("status") == "finalised")["account_id"].to_list())
    revisions: dict[str, int] = {}
    for row in mine.select("account_id", "status", "revision").to_dicts():
        nxt = row["revision"] + 1 if row["status"] == "voided" else row["revision"]
        revisions[row["account_id"]] = max(revisions.get(row["account_id"], 0), nxt)
    return done, revisions


def bill_cycle(settings: Settings, period: str, cycle_day: int | None = None, accounts: Sequence[str] | None = None,
               dry_run: bool = False, finalise: bool = True, as_of: date | None = None,
               documents: bool = True, workers: int = 1, override_holds: str | None = None) -> BillCycleResult:
    """Bill the period's postpaid accounts; see the module doc for the lifecycle.

    ``as_of`` is the issue date (default: each account's period end). ``dry_run`` computes and
    returns the drafts but writes nothing. ``documents`` renders PDF + TMF678 JSON + GL journal.
    Finalising refuses (:class:`HoldsBlockFinalising`) while assurance holds are open on the period,
    unless finance gives ``override_holds`` (a reason), recorded in ``billing/hold_overrides`` and in
    the published invoices' manifest.
    """
    parse_period(period)
    open_holds = _check_holds(settings, period, finalise and not dry_run, override_holds)
    cat = load_catalogue(settings.tariffs_dir)
    inputs = load_inputs(settings, period)
    scope = _scope(inputs, cycle_day, accounts)
    done, revisions = lifecycle_state(inputs.invoices, period)
    todo = [a for a in scope if a not in done]
    run_id = run_id_for(inputs.versions, period=period, cycle_day=cycle_day, accounts=sorted(set(accounts or [])),
                        as_of=str(as_of), catalogue=cat.version, finalise=finalise)
    drafts, not_billed, errors = compute_drafts(inputs, cat, period, todo, revisions, as_of)
    errors = [*errors, *inputs.unknown_accounts]
    result = BillCycleResult(period, run_id, dry_run, drafts, sorted(set(scope) & done), not_billed, errors)
    if dry_run or not drafts:
        result.message = _message(result)
        if errors and not dry_run:
            _write_errors(settings, period, run_id, errors)
        return result
    extra = None
    if finalise and open_holds:
        extra = {"hold_override": record_hold_override(settings, period, open_holds, override_holds or "", run_id)}
        result.hold_override = extra["hold_override"]
    if finalise:
        result.invoices = assign_numbers(settings, drafts)
    from pipelines.audit import snapshot_catalogue

    snapshot_catalogue(settings, kind="billing")  # audit reruns bill with exactly these files
    publish_invoices(settings, period, result.invoices, inputs.versions, cat.version, result, extra=extra)
    if errors:
        _write_errors(settings, period, run_id, errors)
    if documents and finalise:
        from pipelines.billing.documents import write_documents, write_journal

        result.documents = write_documents(settings, period, result.finalised, workers=workers)
        result.documents.append(write_journal(settings, period, published_period(settings, period)))
    result.message = _message(result)
    return result


# -- assurance holds -----------------------------------------------------------------------------------
HOLD_OVERRIDES = "billing/hold_overrides"
HOLD_OVERRIDE_SCHEMA = {"period": pl.String, "hold_id": pl.String, "reason_code": pl.String, "source": pl.String,
                        "service": pl.String, "hold_message": pl.String, "override_reason": pl.String,
                        "bill_cycle_run_id": pl.String}


class HoldsBlockFinalising(BillingError):
    """Open assurance holds on the period: finalising waits until an analyst clears them (or finance overrides)."""


def _check_holds(settings: Settings, period: str, finalising: bool, override: str | None) -> list:
    """Open holds that finalising must respect; raises unless finance gave an override reason.

    Dry runs and drafts are never blocked: they number nothing and send nothing to customers.
    """
    if not finalising:
        return []
    from pipelines.assurance.holds import holds_for_period

    holds = holds_for_period(settings, period)
    if holds and not (override or "").strip():
        listed = "; ".join(f"{h.hold_id} ({h.reason_code} {h.source}/{h.service}: {h.message})" for h in holds)
        first = holds[0].hold_id
        raise HoldsBlockFinalising(
            "ASSURANCE_HOLD",
            f"{len(holds)} open assurance hold(s) block finalising {period}: {listed}. "
            f"Investigate, then clear each with `telbill assurance clear-hold --period {period} --hold-id {first} "
            f"--by <analyst> --reason \"...\" --on YYYY-MM-DD` (list them with `telbill assurance holds --period "
            f"{period}`); drafts (--draft) and dry runs still work; finance may finalise anyway with "
            f"--override-holds \"<reason>\" (recorded in {HOLD_OVERRIDES}).")
    return holds


def record_hold_override(settings: Settings, period: str, holds: list, reason: str, run_id: str) -> dict[str, Any]:
    """Keep finance's override of open holds, one row per hold, beside earlier overrides of the period."""
    lake = open_store(settings.lake_uri, settings.s3)
    rows = pl.DataFrame([{"period": period, "hold_id": h.hold_id, "reason_code": h.reason_code, "source": h.source,
                          "service": h.service, "hold_message": h.message, "override_reason": reason.strip(),
                          "bill_cycle_run_id": run_id} for h in holds], schema=HOLD_OVERRIDE_SCHEMA)
    old = read_published(lake, HOLD_OVERRIDES, {"period": period})
    if old is not None:
        rows = pl.concat([old.select(list(HOLD_OVERRIDE_SCHEMA)).cast(HOLD_OVERRIDE_SCHEMA), rows])
    rows = rows.unique().sort(list(HOLD_OVERRIDE_SCHEMA))
    write_partition(lake, HOLD_OVERRIDES, {"period": period}, digest(rows.write_csv()), rows)
    return {"reason": reason.strip(), "hold_ids": [h.hold_id for h in holds], "bill_cycle_run_id": run_id}


def _message(r: BillCycleResult) -> str:
    verb = "would bill" if r.dry_run else "billed"
    parts = [f"{r.period}: {verb} {len(r.invoices)} account(s)"]
    if r.finalised:
        parts.append(f"finalised {len(r.finalised)} invoice(s)")
    if r.already_finalised:
        parts.append(f"{len(r.already_finalised)} already finalised (no-op: correct them with a credit note "
                     "or void and reissue)")
    if r.not_billed:
        parts.append(f"{len(r.not_billed)} with nothing postpaid to bill")
    if r.errors:
        parts.append(f"{len(r.errors)} error(s): see billing/cycle_errors")
    if r.hold_override:
        parts.append(f"finalised despite open hold(s) {', '.join(r.hold_override['hold_ids'])} "
                     f"(override recorded in {HOLD_OVERRIDES}: {r.hold_override['reason']})")
    return "; ".join(parts)


def _write_errors(settings: Settings, period: str, run_id: str, errors: list[tuple[str, str, str]]) -> None:
    lake = open_store(settings.lake_uri, settings.s3)
    frame = pl.DataFrame(errors, schema={"account_id": pl.String, "reason_code": pl.String, "message": pl.String},
                         orient="row").sort("account_id", "reason_code", "message")
    write_partition(lake, "billing/cycle_errors", {"period": period}, run_id, frame)


# -- numbering register --------------------------------------------------------------------------------
REGISTER_SCHEMA = {"billing_entity": pl.String, "series": pl.String, "seq": pl.Int64, "invoice_number": pl.String,
                   "invoice_id": pl.String, "account_id": pl.String, "period": pl.String, "kind": pl.String}


def format_number(entity: str, series: str, seq: int) -> str:
    return f"{entity}-{series}-{seq:08d}"


def assign_numbers(settings: Settings, drafts: list[InvoiceDraft]) -> list[InvoiceDraft]:
    """Finalise drafts: reuse a number already registered for the invoice id, else take the next ones.

    The register block is committed before the invoices are published (crash-safe, no gaps).
    """
    lake = open_store(settings.lake_uri, settings.s3)
    register = read_published(lake, REGISTER)
    register = register if register is not None else pl.DataFrame(schema=REGISTER_SCHEMA)
    known = dict(zip(register["invoice_id"].to_list(), register["invoice_number"].to_list(), strict=True))
    last = {(r["billing_entity"], r["series"]): r["seq"]
            for r in register.group_by("billing_entity", "series").agg(pl.col("seq").max()).to_dicts()}
    new_rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
    out = []
    for d in sorted(drafts, key=lambda d: (d.billing_entity, d.kind, d.account_id, d.invoice_id)):
        number = known.get(d.invoice_id)
        if number is None:
            series = SERIES[d.kind]
            seq = last.get((d.billing_entity, series), 0) + 1
            last[(d.billing_entity, series)] = seq
            number = format_number(d.billing_entity, series, seq)
            new_rows[(d.billing_entity, series)].append(
                {"billing_entity": d.billing_entity, "series": series, "seq": seq, "invoice_number": number,
                 "invoice_id": d.invoice_id, "account_id": d.account_id, "period": d.period, "kind": d.kind})
        out.append(replace(d, invoice_number=number, status="finalised"))
    for (entity, series), rows in sorted(new_rows.items()):
        frame = pl.DataFrame(rows, schema=REGISTER_SCHEMA, orient="row")
        block = {"billing_entity": entity, "series": series, "first": f"{rows[0]['seq']:09d}"}
        write_partition(lake, REGISTER, block, digest(frame.write_csv()), frame)
    return sorted(out, key=lambda d: d.invoice_id)


# -- publishing --------------------------------------------------------------------------------------
def _merge(existing: pl.DataFrame | None, new: pl.DataFrame, replaced: set[str], sort: list[str]) -> pl.DataFrame:
    if existing is None or existing.height == 0:
        return new
    kept = existing.filter(~pl.col("invoice_id").is_in(list(replaced))).select(new.columns).cast(dict(new.schema))
    return pl.concat([kept, new]).sort(sort)


def publish_invoices(settings: Settings, period: str, drafts: list[InvoiceDraft], inputs: Mapping[str, str],
                     catalogue_version: str, result: BillCycleResult | None = None,
                     status_changes: pl.DataFrame | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Manifest]:
    """Replace the period's rows of these invoices in all three datasets and publish a new run of each."""
    lake = open_store(settings.lake_uri, settings.s3)
    where = {"period": period}
    if not catalogue_version:  # a void or credit note: the period's invoices keep the version they were billed with
        previous = published_manifests(lake, "invoices", where)
        catalogue_version = previous[0].catalogue_version if previous else ""
    ids = {d.invoice_id for d in drafts}
    inv = _merge(read_published(lake, "invoices", where), invoices_frame(drafts), ids, ["invoice_id"])
    if status_changes is not None:
        inv = _merge(inv, status_changes.select(inv.columns).cast(dict(inv.schema)),
                     set(status_changes["invoice_id"].to_list()), ["invoice_id"])
    frames = {
        "invoices": inv,
        "invoice_lines": _merge(read_published(lake, "invoice_lines", where), lines_frame(drafts), ids,
                                ["invoice_id", "line_no"]).select(list(INVOICE_LINE_SCHEMA)),
        "invoice_tax_lines": _merge(read_published(lake, "invoice_tax_lines", where), tax_frame(drafts), ids,
                                    ["invoice_id", "tax_category", "tax_code"]).select(list(INVOICE_TAX_LINE_SCHEMA)),
    }
    run_id = digest(*(f.write_csv() for f in frames.values()))
    written = {}
    for name in ("invoice_lines", "invoice_tax_lines", "invoices"):  # header last: readers key on it
        written[name] = write_partition(lake, name, where, run_id, frames[name], inputs=inputs,
                                        catalogue_version=catalogue_version, extra=extra)
        if result is not None:
            result.written[name] = written[name].prefix
    return written


def published_period(settings: Settings, period: str) -> dict[str, pl.DataFrame]:
    lake = open_store(settings.lake_uri, settings.s3)
    out = {}
    for name, schema in (("invoices", INVOICES_SCHEMA), ("invoice_lines", INVOICE_LINE_SCHEMA),
                         ("invoice_tax_lines", INVOICE_TAX_LINE_SCHEMA)):
        frame = read_published(lake, name, {"period": period})
        out[name] = frame if frame is not None else pl.DataFrame(schema=schema)
    return out


def find_invoice(settings: Settings, invoice_number: str) -> dict[str, Any]:
    lake = open_store(settings.lake_uri, settings.s3)
    invoices = read_published(lake, "invoices")
    hit = None if invoices is None else invoices.filter(pl.col("invoice_number") == invoice_number)
    if hit is None or hit.height == 0:
        raise BillingError("UNKNOWN_INVOICE", f"no published invoice numbered {invoice_number!r}")
    return hit.to_dicts()[0]
