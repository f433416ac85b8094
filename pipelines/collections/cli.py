"""``telbill payments ...`` and ``telbill collections ...`` sub-commands (thin wrappers over the stages)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from pipelines.common.settings import Settings


def _read_input(path: str, settings: Settings) -> bytes:
    """A local file, or a key in the landing store (e.g. ``payments/bank-2026-10-15.csv``)."""
    if Path(path).is_file():
        return Path(path).read_bytes()
    from pipelines.common.storage import open_store

    return open_store(settings.landing_uri, settings.s3).read_bytes(path)


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of must be YYYY-MM-DD, got {text!r}") from exc


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.collections.intake import import_payments

    result = import_payments(settings, _read_input(args.file, settings), args.kind, args.file)
    if result.duplicate_file:
        print(f"{args.file}: already imported (sha256 {result.file_sha256[:16]}), nothing written")
        return 0
    for outcome, n in result.counts.items():
        print(f"  {outcome:<10} {n:>7}  {result.amounts[outcome]}")
    print(f"payments: {result.payments_prefix}\nintake:   {result.intake_prefix}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    import polars as pl

    from pipelines.collections import lake as lk
    from pipelines.collections.exports import tmf676_json
    from pipelines.collections.ledger import replay
    from pipelines.common.storage import open_store

    lake = open_store(settings.lake_uri, settings.s3)
    invoices, _ = lk.load_invoices(lake)
    payments, _ = lk.load_payments(lake)
    payments = payments.filter(pl.col("received_date") <= args.as_of)
    allocations, _ = replay(invoices, payments, args.as_of)
    data = tmf676_json(payments, allocations)
    if args.out == "-":
        print(data.decode(), end="")
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_bytes(data)
        print(f"{payments.height} payments -> {args.out}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.collections.run import collections_run

    result = collections_run(settings, args.as_of)
    print(f"collections run {result.as_of} (run {result.run_id}); model: {result.model_source}")
    for name, n in result.counts.items():
        print(f"  {name:<20} {n:>7}")
    for name, uri in result.exports.items():
        print(f"  export {name}: {uri}")
    return 0


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.collections.run import NotEnoughHistory, save_model, train_from_generated, train_from_lake
    from pipelines.common.storage import open_store

    try:
        model = (train_from_lake(settings) if args.source == "lake"
                 else train_from_generated(args.accounts, args.months, args.seed))
    except NotEnoughHistory as exc:
        print(f"error: {exc}")
        return 2
    uri = save_model(open_store(settings.lake_uri, settings.s3), model)
    print(f"model {model.model_id} -> {uri}")
    _print_metrics(model.metrics)
    return 0


def _print_metrics(metrics: dict) -> None:
    for key in ("train_examples", "holdout_examples", "holdout_base_rate", "holdout_auc", "train_auc",
                "holdout_auc_on_time_rate_only", "holdout_log_loss"):
        print(f"  {key:<32} {metrics.get(key)}")
    cal = metrics.get("holdout_calibration", {})
    print(f"  {'holdout_brier':<32} {cal.get('brier')}\n  {'holdout_ece':<32} {cal.get('ece')}")
    for b in cal.get("bins", []):
        print(f"    n={b['n']:<5} predicted={b['predicted']:<7} observed={b['observed']}")


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.collections.run import load_model
    from pipelines.common.storage import open_store

    model = load_model(open_store(settings.lake_uri, settings.s3))
    if model is None:
        print("no model in the lake: run `telbill collections train` first")
        return 2
    if args.json:
        print(model.to_json().decode(), end="")
        return 0
    print(f"model {model.model_id} trained on {json.dumps(model.trained_on, sort_keys=True)}")
    for name, coef in sorted(zip(model.features, model.coefficients, strict=True), key=lambda x: -abs(x[1])):
        print(f"  {name:<20} {coef:+.4f}")
    _print_metrics(model.metrics)
    return 0


def _holds(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.collections.run import import_holds

    result = import_holds(settings, _read_input(args.file, settings), args.file)
    print(f"{result.imported} holds imported from {args.file}, {result.rejected} rejected "
          "(see collections/hold_rejects)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    pay = sub.add_parser("payments", help="payment files: import, match, export (TMF676)")
    psub = pay.add_subparsers(dest="payments_command", required=True)
    imp = psub.add_parser("import", help="import a bank / card / wallet payment file")
    imp.add_argument("file", help="local path, or a key in the landing store")
    imp.add_argument("--kind", required=True, choices=["bank", "card", "wallet"])
    imp.set_defaults(func=_import)
    exp = psub.add_parser("export-tmf676", help="payments received by a date as TMF676 Payment JSON")
    exp.add_argument("--as-of", type=_as_of, required=True)
    exp.add_argument("--out", default="-", help="file to write (default: stdout)")
    exp.set_defaults(func=_export)

    col = sub.add_parser("collections", help="aging, dunning, prioritised collections list")
    csub = col.add_subparsers(dest="collections_command", required=True)
    run = csub.add_parser("run", help="the daily run: aging, ladder, orders, notifications, list")
    run.add_argument("--as-of", type=_as_of, required=True)
    run.set_defaults(func=_run)
    train = csub.add_parser("train", help="fit the recovery-probability model and store it in the lake")
    train.add_argument("--source", choices=["generated", "lake"], default="generated")
    train.add_argument("--accounts", type=int, default=1500)
    train.add_argument("--months", type=int, default=12)
    train.add_argument("--seed", type=int, default=7)
    train.set_defaults(func=_train)
    rep = csub.add_parser("model-report", help="the stored model's coefficients and held-out quality")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=_report)
    holds = csub.add_parser("import-holds", help="disputes / promises to pay that pause dunning")
    holds.add_argument("file")
    holds.set_defaults(func=_holds)
