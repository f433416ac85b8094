"""``telbill charging serve|topup|adjust|balance|flush|load-subscribers|audit``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_DB = "var/charging/chf.sqlite"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("charging", help="real-time prepaid charging sidecar (Nchf_ConvergedCharging)")
    cmds = parser.add_subparsers(dest="charging_command", required=True, metavar="ACTION")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite balance store (default {DEFAULT_DB})")
        return p

    serve = with_db(cmds.add_parser("serve", help="run the HTTP service"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8085, help="0 picks a free port (see --port-file)")
    serve.add_argument("--port-file", help="write the bound port here once listening")
    serve.add_argument("--token", help="bearer token clients must send")
    serve.add_argument("--token-file", help="file holding the bearer token (preferred over --token)")
    serve.add_argument("--subscriptions", help="subscriptions CSV (SUBSCRIPTION_SCHEMA); default: customers dataset")
    serve.add_argument("--rates", help="fixed rate table CSV instead of the catalogue (tests, benchmarks)")
    serve.add_argument("--validity", type=int, default=600, help="validityTime of granted quota, seconds")
    serve.add_argument("--flush-seconds", type=float, default=5.0, help="charging record flush interval")
    serve.add_argument("--max-body", type=int, default=65536, help="largest request body in bytes")
    serve.add_argument("--fsync", action="store_true",
                       help="synchronous=FULL: survive power loss too (default survives process kills)")
    serve.set_defaults(func=_serve)

    topup = with_db(cmds.add_parser("topup", help="top up a subscriber's main money bucket"))
    topup.add_argument("--msisdn", required=True)
    topup.add_argument("--amount", required=True, help="EUR, e.g. 10.00")
    topup.add_argument("--id", help="top-up id: repeating it applies the top-up once")
    topup.set_defaults(func=_topup)

    adjust = with_db(cmds.add_parser("adjust", help="adjust a bucket (positive or negative)"))
    adjust.add_argument("--bucket", required=True)
    adjust.add_argument("--amount", required=True)
    adjust.add_argument("--id", help="adjustment id (idempotency key)")
    adjust.add_argument("--reason", default="manual adjustment")
    adjust.set_defaults(func=_adjust)

    balance = with_db(cmds.add_parser("balance", help="show a subscriber's buckets as JSON"))
    balance.add_argument("--msisdn", required=True)
    balance.set_defaults(func=_balance)

    flush = with_db(cmds.add_parser("flush", help="write queued charging records to the landing area"))
    flush.set_defaults(func=_flush)

    load = with_db(cmds.add_parser("load-subscribers", help="load prepaid subscriptions into the store"))
    load.add_argument("--subscriptions", help="subscriptions CSV; default: customers dataset")
    load.set_defaults(func=_load)

    prune = with_db(cmds.add_parser("prune", help="drop replay state and landed records of long-closed sessions"))
    prune.add_argument("--before", required=True, help="ISO instant, e.g. 2026-10-01T00:00:00Z")
    prune.set_defaults(func=_prune)

    audit = with_db(cmds.add_parser("audit", help="check every balance equals its ledger (exit 1 if not)"))
    audit.set_defaults(func=_audit)


def _store(args: argparse.Namespace):  # noqa: ANN202
    from charging.store import Store

    return Store(args.db)


def _now():  # noqa: ANN202
    from charging.server import utc_now

    return utc_now()


def _load_subscribers(store, subscriptions: str | None, settings) -> int:  # noqa: ANN001
    from charging.server import prepaid_subscribers_from_csv, prepaid_subscribers_from_lake

    rows = prepaid_subscribers_from_csv(subscriptions) if subscriptions else prepaid_subscribers_from_lake(settings)
    return store.upsert_subscribers(rows)


def _serve(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    from charging.engine import ChargingEngine
    from charging.pricing import CataloguePricer, TablePricer
    from charging.server import ChargingServer, utc_now
    from pipelines.common.storage import open_store

    token = Path(args.token_file).read_text().strip() if args.token_file else args.token
    if not token:
        print("a bearer token is required: --token-file F or --token T", file=sys.stderr)
        return 2
    from charging.store import Store

    store = Store(args.db, durable=args.fsync)
    loaded = _load_subscribers(store, args.subscriptions, settings)
    pricer = TablePricer.from_csv(args.rates) if args.rates else CataloguePricer(settings.tariffs_dir)
    engine = ChargingEngine(store, pricer, utc_now, validity_s=args.validity)
    server = ChargingServer(engine, token, open_store(settings.landing_uri, settings.s3), args.host, args.port,
                            args.flush_seconds, args.max_body)

    def ready(srv: ChargingServer) -> None:
        if args.port_file:
            Path(args.port_file).write_text(str(srv.bound_port))
        print(f"charging service on {srv.url} ({loaded} prepaid subscribers)", file=sys.stderr, flush=True)

    server.run_forever(ready)
    return 0


def _topup(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    from charging.store import ChargingStoreError

    store = _store(args)
    now = _now()
    try:
        bucket = store.add_bucket(args.msisdn, "money", 0, at=now, priority=1000)
        applied, _ = store.credit(bucket, args.amount, "topup", args.id, at=now, note="cli topup")
    except ChargingStoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps({"bucket": bucket, "applied": applied}))
    return 0


def _adjust(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    from charging.store import ChargingStoreError

    try:
        applied, _ = _store(args).credit(args.bucket, args.amount, "adjustment", args.id, at=_now(), note=args.reason)
    except ChargingStoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps({"bucket": args.bucket, "applied": applied}))
    return 0


def _balance(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    from charging.api import _bucket_json

    print(json.dumps([_bucket_json(b) for b in _store(args).buckets(args.msisdn, _now())], indent=2))
    return 0


def _flush(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    from charging.records import flush
    from pipelines.common.storage import open_store

    for key in flush(_store(args), open_store(settings.landing_uri, settings.s3)):
        print(key)
    return 0


def _load(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    print(f"{_load_subscribers(_store(args), args.subscriptions, settings)} prepaid subscribers loaded")
    return 0


def _prune(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    from datetime import datetime

    before = datetime.fromisoformat(args.before)
    if before.tzinfo is None:
        print("--before needs a time zone (e.g. ...Z)", file=sys.stderr)
        return 2
    print(json.dumps(_store(args).prune(before)))
    return 0


def _audit(args: argparse.Namespace, settings) -> int:  # noqa: ANN001
    problems = _store(args).audit()
    for p in problems:
        print(p)
    return 1 if problems else 0
