"""The daily collections run and the model store: the I/O edges around the pure ledger/dunning/model code.

``collections_run(settings, as_of)`` reads the published lake (invoices, payments, customers, holds, the
previous day's dunning state), computes aging, moves accounts along the ladder, scores delinquent
accounts, and writes one partition ``as_of=YYYY-MM-DD`` per output dataset, the dunning state last
(it is what the next day builds on). Rerunning the same day with the same inputs writes the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import polars as pl

from pipelines.collections import lake as lk
from pipelines.collections.dunning import advance, next_action, notifications, provisioning_orders
from pipelines.collections.exports import tmf676_json
from pipelines.collections.history import generate_history
from pipelines.collections.intake import rematch_suspense
from pipelines.collections.ledger import BUCKETS, aging, replay
from pipelines.collections.model import (
    RecoveryModel,
    features_at,
    monthly_snapshots,
    train,
    training_examples,
)
from pipelines.collections.policy import load_policy
from pipelines.common.csv_safe import safe_csv
from pipelines.common.partitions import (
    digest,
    published_manifests,
    read_manifested,
    run_id_for,
    write_partition,
)
from pipelines.common.settings import Settings
from pipelines.common.storage import Store, open_store
from schemas.contracts import CURRENCY_AMOUNT, DUNNING_STATE_SCHEMA

MODELS = "collections/models"
CURRENT_MODEL = f"{MODELS}/_current.json"
GENERATED = {"n_accounts": 1500, "months": 12, "seed": 7}

LIST_SCHEMA: dict[str, pl.DataType] = {
    "priority": pl.Int32, "account_id": pl.String, "name": pl.String, "segment": pl.String,
    **{b: CURRENCY_AMOUNT for b in BUCKETS}, "overdue": CURRENCY_AMOUNT, "currency": pl.String,
    "days_past_due": pl.Int32, "step": pl.Int32, "step_code": pl.String, "step_since": pl.Date,
    "excluded_reason": pl.String, "next_action": pl.String, "next_action_date": pl.Date, "channel": pl.String,
    "contact": pl.String, "p_recovery": pl.Float64, "customer_value": pl.Float64, "priority_score": pl.Float64,
    "reasons": pl.String,
}


# -- model store -----------------------------------------------------------------------------
def save_model(lake: Store, model: RecoveryModel) -> str:
    """Write the model JSON, then point ``_current.json`` at it (the pointer is the commit)."""
    key = f"{MODELS}/{model.model_id}.json"
    lake.write_bytes(key, model.to_json())
    lake.write_bytes(CURRENT_MODEL, json.dumps({"model_id": model.model_id}).encode() + b"\n")
    return lake.uri_for(key)


def load_model(lake: Store) -> RecoveryModel | None:
    if not lake.exists(CURRENT_MODEL):
        return None
    model_id = json.loads(lake.read_bytes(CURRENT_MODEL))["model_id"]
    return RecoveryModel.from_json(lake.read_bytes(f"{MODELS}/{model_id}.json"))


def train_from_generated(n_accounts: int = 1500, months: int = 12, seed: int = 7) -> RecoveryModel:
    """Fit on the deterministic history generator (used before the lake has months of real history)."""
    h = generate_history(n_accounts, months, seed)
    examples = training_examples(h.invoices, h.payments, h.accounts, monthly_snapshots(h.invoices))
    return train(examples, {"source": "generated", "n_accounts": n_accounts, "months": months, "seed": seed})


class NotEnoughHistory(RuntimeError):
    """The lake holds too little payment history to fit a model."""


def train_from_lake(settings: Settings, min_examples: int = 200) -> RecoveryModel:
    """Fit on the published invoices and payments (the warehouse's payment history)."""
    lake = open_store(settings.lake_uri, settings.s3)
    invoices, inv_v = lk.load_invoices(lake)
    payments, pay_v = lk.load_payments(lake)
    accounts, _ = lk.load_accounts(lake)
    if invoices.is_empty():
        raise NotEnoughHistory("no published invoices: run bill cycles first or train with --source generated")
    examples = training_examples(invoices, payments, accounts, monthly_snapshots(invoices))
    labels = set(examples["recovered"].to_list()) if examples.height else set()
    if examples.height < min_examples or labels != {0, 1}:
        raise NotEnoughHistory(f"only {examples.height} delinquency examples (need {min_examples} with both "
                               "outcomes); train with --source generated until more history is published")
    return train(examples, {"source": "lake", "invoices": inv_v, "payments": pay_v})


# -- holds -------------------------------------------------------------------------------------
HOLD_TYPES = ("dispute", "promise_to_pay")
HOLD_REJECTS = "collections/hold_rejects"
HOLD_REJECT_SCHEMA = {"source_file": pl.String, "line": pl.Int64, "reason_code": pl.String, "message": pl.String,
                      "account_id": pl.String, "hold_type": pl.String, "start_date": pl.String,
                      "end_date": pl.String, "reference": pl.String}


@dataclass(frozen=True)
class HoldImport:
    imported: int
    rejected: int


def _hold_reject(row: dict, known: set[str]) -> tuple[str, str] | None:
    """(reason code, message) for a hold row that cannot be used, None for a good one."""
    if not row["account_id"] or not row["hold_type"] or not row["start_date"] or not row["end_date"]:
        return "MISSING_FIELD", "account_id, hold_type, start_date and end_date are required"
    if row["hold_type"] not in HOLD_TYPES:
        return "BAD_HOLD_TYPE", f"hold_type must be one of {HOLD_TYPES}, got {row['hold_type']!r}"
    try:
        start, end = date.fromisoformat(row["start_date"]), date.fromisoformat(row["end_date"])
    except ValueError as exc:
        return "BAD_DATE", f"dates must be YYYY-MM-DD: {exc}"
    if end < start:
        return "BAD_DATE_RANGE", f"end_date {end} is before start_date {start}"
    if row["account_id"] not in known:
        return "UNKNOWN_ACCOUNT", f"account {row['account_id']} is not in customers/accounts"
    return None


def import_holds(settings: Settings, data: bytes, source_file: str) -> HoldImport:
    """Disputes and promises to pay (CSV: account_id,hold_type,start_date,end_date,reference).

    Rows that cannot be used go to ``collections/hold_rejects`` with a reason code (MISSING_FIELD,
    BAD_HOLD_TYPE, BAD_DATE, BAD_DATE_RANGE, UNKNOWN_ACCOUNT); the good ones are imported. Rows in =
    imported + rejected. Both are sorted on every column, so the same file gives the same bytes.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"holds file {source_file}: not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("account_id", "hold_type", "start_date", "end_date") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"holds file {source_file}: header lacks {', '.join(missing)} "
                         "(account_id,hold_type,start_date,end_date,reference)")
    lake = open_store(settings.lake_uri, settings.s3)
    accounts, _ = lk.load_accounts(lake)
    known = set(accounts["account_id"].drop_nulls().to_list())
    good, bad = [], []
    for line, raw in enumerate(reader, start=2):
        row = {k: (raw.get(k) or "").strip() if isinstance(raw.get(k), str) else ""
               for k in ("account_id", "hold_type", "start_date", "end_date", "reference")}
        problem = _hold_reject(row, known)
        if problem:
            bad.append({"source_file": source_file, "line": line, "reason_code": problem[0], "message": problem[1],
                        **row})
        else:
            good.append({**row, "start_date": date.fromisoformat(row["start_date"]),
                         "end_date": date.fromisoformat(row["end_date"]), "reference": row["reference"] or None,
                         "source_file": source_file})
    sha = hashlib.sha256(data).hexdigest()
    rows = pl.DataFrame(good, schema=lk.HOLD_SCHEMA, orient="row") if good else pl.DataFrame(schema=lk.HOLD_SCHEMA)
    rejects = (pl.DataFrame(bad, schema=HOLD_REJECT_SCHEMA, orient="row") if bad
               else pl.DataFrame(schema=HOLD_REJECT_SCHEMA))
    write_partition(lake, lk.HOLDS, {"file_sha": sha[:16]}, sha[:16], rows.sort(rows.columns, nulls_last=True),
                    inputs={"file": sha})
    write_partition(lake, HOLD_REJECTS, {"file_sha": sha[:16]}, sha[:16], rejects.sort("line"), inputs={"file": sha})
    return HoldImport(rows.height, rejects.height)


# -- the daily run -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    as_of: date
    run_id: str
    counts: dict[str, int]
    model_source: str
    exports: dict[str, str] = field(default_factory=dict)


def content_version(frame: pl.DataFrame) -> str:
    """Digest of a frame's content, independent of row order and of which files it was read from."""
    return digest(frame.sort(frame.columns, nulls_last=True).write_csv()) if frame.height else "empty"


def previous_state(lake: Store, as_of: date) -> tuple[pl.DataFrame, str]:
    """The latest published dunning state strictly before ``as_of`` (empty before the first run)."""
    earlier = [m for m in published_manifests(lake, lk.DUNNING_STATE) if m.partition["as_of"] < as_of.isoformat()]
    if not earlier:
        return pl.DataFrame(schema=DUNNING_STATE_SCHEMA), "none"
    last = max(earlier, key=lambda m: m.partition["as_of"])
    return lk.conform(read_manifested(lake, [last]), DUNNING_STATE_SCHEMA), last.prefix


def _references(items: pl.DataFrame, invoices: pl.DataFrame) -> dict[str, str]:
    """Payment reference of each account's oldest open invoice (what a reminder asks them to quote)."""
    oldest = items.filter(pl.col("open_amount") > 0).sort("due_date", "invoice_id").group_by(
        "account_id", maintain_order=True).first()
    joined = oldest.join(invoices.select("invoice_id", "payment_reference"), on="invoice_id", how="left")
    return {a: r for a, r in joined.select("account_id", "payment_reference").iter_rows() if r}


def prioritise(model: RecoveryModel, feats: pl.DataFrame) -> pl.DataFrame:
    """p_recovery, priority score and reasons per delinquent account.

    priority_score = overdue x (1 - p_recovery) x (1 + value / (value + 50)): the expected loss if
    nobody acts, weighted up to twice for customers worth keeping (value = mean of the last 6 bills).
    """
    if feats.is_empty():
        return pl.DataFrame(schema={"account_id": pl.String, "p_recovery": pl.Float64,
                                    "customer_value": pl.Float64, "priority_score": pl.Float64,
                                    "reasons": pl.String})
    p = model.predict(feats)
    factors = model.top_factors(feats)
    rows = []
    for i, r in enumerate(feats.iter_rows(named=True)):
        value, overdue = r["customer_value"], r["overdue"]
        score = overdue * (1 - p[i]) * (1 + value / (value + 50))
        reasons = list(factors[i])
        if overdue >= 100:
            reasons.append(f"high amount at stake ({overdue:.2f})")
        if value >= 50:
            reasons.append(f"valuable customer ({value:.2f}/month)")
        rows.append((r["account_id"], round(float(p[i]), 4), round(value, 2), round(score, 4),
                     "; ".join(reasons) or "low risk"))
    return pl.DataFrame(rows, schema={"account_id": pl.String, "p_recovery": pl.Float64,
                                      "customer_value": pl.Float64, "priority_score": pl.Float64,
                                      "reasons": pl.String}, orient="row")


def collections_list(policy, book, state, accounts, scores, holds_frozen: set[str], as_of: date) -> pl.DataFrame:
    """The morning list: every account on the ladder or overdue, highest priority first."""
    acc = accounts.select("account_id", "name", "segment", "currency", "email", "phone")
    frame = (state.join(book.select("account_id", *BUCKETS), on="account_id", how="left")
             .join(acc, on="account_id", how="left").join(scores, on="account_id", how="left"))
    extra = []
    for r in frame.iter_rows(named=True):
        action, when, channel = next_action(policy, r["step"], r["overdue"], r["days_past_due"], r["segment"],
                                            r["account_id"] in holds_frozen, as_of)
        contact = r["phone"] if channel in {"sms", "call"} else r["email"] if channel == "email" else None
        extra.append((r["account_id"], action, when, channel, contact))
    extra_frame = pl.DataFrame(extra, schema={"account_id": pl.String, "next_action": pl.String,
                                              "next_action_date": pl.Date, "channel": pl.String,
                                              "contact": pl.String}, orient="row")
    out = frame.join(extra_frame, on="account_id", how="left").with_columns(
        pl.col("currency").fill_null(policy.currency),
        pl.col("priority_score").fill_null(0.0),
    ).sort(["priority_score", "account_id"], descending=[True, False]).with_row_index("priority", offset=1)
    zero = pl.lit(Decimal("0.00")).cast(CURRENCY_AMOUNT)
    out = out.with_columns(*[pl.col(b).fill_null(zero) for b in BUCKETS])
    return out.select(list(LIST_SCHEMA)).cast(LIST_SCHEMA)


def write_current_allocations(lake: Store, allocations: pl.DataFrame, as_of: date, run_id: str,
                              inputs: dict[str, str]) -> bool:
    """Publish the allocations as of the latest run day as ``collections/allocations`` (no partition key).

    The dataset is one current snapshot, so readers that sum it (revenue assurance, analysts) never
    count a payment once per day. Every day's snapshot stays in the lake as its own committed run; a
    rerun of an earlier day writes its run but does not replace a later day's published one. Any day's
    allocations can also be recomputed with ``ledger.replay``.
    """
    current = published_manifests(lake, lk.ALLOCATIONS)
    newest = max((m.extra.get("as_of", "") for m in current), default="")
    publish = as_of.isoformat() >= newest
    write_partition(lake, lk.ALLOCATIONS, {}, run_id, allocations, inputs=inputs,
                    extra={"as_of": as_of.isoformat()}, publish=publish)
    return publish


def collections_run(settings: Settings, as_of: date, model: RecoveryModel | None = None,
                    export: bool = True, rematch: bool = True) -> RunResult:
    """One daily run for ``as_of``; see the module docstring. It first re-matches payments held in
    suspense (``rematch``), so a payment that arrived before its invoice counts as soon as it can."""
    lake = open_store(settings.lake_uri, settings.s3)
    policy = load_policy(settings.tariffs_dir)
    rematched = rematch_suspense(settings, as_of) if rematch else None
    invoices, _ = lk.load_invoices(lake)
    payments, _ = lk.load_payments(lake, as_of=as_of)
    accounts, _ = lk.load_accounts(lake)
    subs, _ = lk.load_subscriptions(lake)
    holds, _ = lk.load_holds(lake)
    prev, prev_v = previous_state(lake, as_of)
    model_source = "given"
    if model is None:
        model = load_model(lake)
        model_source = "lake model store"
    if model is None:
        model = train_from_generated(**GENERATED)
        model_source = ("generated history (no trained model in the lake yet: run `telbill collections train`)")

    allocations, items = replay(invoices, payments, as_of)
    book = aging(items, allocations, as_of)
    state = advance(policy, book, prev, accounts, holds, as_of)
    orders = provisioning_orders(prev, state, subs, as_of)
    notes = notifications(policy, prev, state, accounts, _references(items, invoices), as_of)
    feats = features_at(invoices, payments, accounts, as_of, ledger=(allocations, items))
    scores = prioritise(model, feats)
    frozen = set(holds.filter((pl.col("start_date") <= as_of) & (pl.col("end_date") >= as_of)
                              & pl.col("hold_type").is_in(list(policy.freeze_on)))["account_id"].to_list())
    worklist = collections_list(policy, book, state, accounts, scores, frozen, as_of)

    # run id from the content the run can see as of its date, so a later payment file does not change
    # a past day's run: rerunning any day with the same history gives the same run id and bytes
    inputs = {"invoices": content_version(invoices.filter(pl.col("issue_date") <= as_of)),
              "payments": content_version(payments.filter(pl.col("received_date") <= as_of)),
              "accounts": content_version(accounts), "subscriptions": content_version(subs),
              "holds": content_version(holds), "previous_state": prev_v, "policy": policy.version,
              "model": model.model_id}
    run_id = run_id_for(inputs, as_of=as_of.isoformat())
    part = {"as_of": as_of.isoformat()}
    extra = {"model_source": model_source, "policy": policy.name}
    # every output carries as_of as a data column too (not only in the partition path): DuckDB 1.5.5
    # crashes on min/max over a hive-only partition column when reading a file list with union_by_name
    outputs = {"collections/aging": book, "collections/list": worklist.with_columns(pl.lit(as_of).alias("as_of")),
               "collections/notifications": notes, "collections/provisioning_orders": orders,
               lk.DUNNING_STATE: state}
    write_current_allocations(lake, allocations.with_columns(pl.lit(as_of).alias("as_of")), as_of, run_id, inputs)
    for dataset, frame in outputs.items():
        write_partition(lake, dataset, part, run_id, frame, inputs=inputs, catalogue_version=policy.version,
                        extra=extra)
    exports = {}
    if export:
        out = open_store(settings.output_dir, settings.s3)
        base = f"collections/{as_of.isoformat()}"
        for name, frame in (("collections_list", worklist), ("notifications", notes),
                            ("provisioning_orders", orders), ("aging", book)):
            exports[name] = out.write_bytes(f"{base}/{name}.csv", safe_csv(frame))
        # the day's payments (received since the previous run) as TMF676; full history: `payments export-tmf676`
        since = date.fromisoformat(prev_v.split("as_of=")[1][:10]) if "as_of=" in prev_v else as_of - timedelta(days=1)
        todays = payments.filter((pl.col("received_date") > since) & (pl.col("received_date") <= as_of))
        exports["tmf676_payments"] = out.write_bytes(f"{base}/tmf676_payments.json", tmf676_json(todays, allocations))
    counts = {"allocations": allocations.height,
              **{name.split("/")[-1]: frame.height for name, frame in outputs.items()}}
    if rematched is not None:
        counts["suspense_resolved"] = rematched.resolved
    return RunResult(as_of, run_id, counts, model_source, exports)
