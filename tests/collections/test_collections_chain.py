"""The real chain: generated customers -> customers import -> bill cycle -> payments -> collections run,
and the next bill cycle reading our ``payments`` as payments brought forward."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import duckdb
import polars as pl
from collections_data import bank_file

from pipelines.billing.cycle import bill_cycle
from pipelines.collections import lake as lk
from pipelines.collections.intake import import_payments
from pipelines.collections.run import collections_run
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import generate
from pipelines.warehouse import build_warehouse


def test_bill_cycle_to_collections_and_back(local_settings, tmp_path, small_model):
    settings = local_settings
    data = generate(tmp_path / "gen", 30, period="2026-10", seed=4, faults=False)
    import_customers(settings, data.accounts_csv.read_bytes(), data.subscriptions_csv.read_bytes())
    bill_cycle(settings, "2026-10", documents=False)
    lake = open_store(settings.lake_uri)
    invoices = read_published(lake, "invoices").filter(pl.col("status") == "finalised").sort("account_id")
    assert invoices.height >= 6
    payers, partial, rest = invoices[:3], invoices[3], invoices[4:]
    rows = [(f"B{i}", str(r["issue_date"] + timedelta(days=5)), "CRDT", str(r["amount_due"]), r["account_id"],
             f"Rechnung {r['payment_reference']}", "") for i, r in enumerate(payers.iter_rows(named=True))]
    half = (partial["amount_due"].item() / 2).quantize(Decimal("0.01"))
    rows.append(("BP", str(partial["issue_date"].item() + timedelta(days=6)), "CRDT", str(half), "x",
                 partial["payment_reference"].item(), ""))
    result = import_payments(settings, bank_file(rows), "bank", "bank-2026-11.csv")
    assert result.counts["matched"] == 4 and result.counts["suspense"] == 0

    as_of = invoices["due_date"].max() + timedelta(days=25)
    run = collections_run(settings, as_of, model=small_model, export=False)
    listing = read_published(lake, "collections/list", {"as_of": as_of.isoformat()})
    listed = set(listing["account_id"].to_list())
    assert not listed & set(payers["account_id"].to_list()), "paid accounts are not chased"
    assert partial["account_id"].item() in listed
    owing = rest.filter(pl.col("total") >= Decimal("5.00"))
    assert set(owing["account_id"].to_list()) <= listed
    assert run.counts["list"] == listing.height and (listing["step"] >= 1).all()
    acc_partial = listing.filter(pl.col("account_id") == partial["account_id"].item())
    assert acc_partial["overdue"].item() == partial["total"].item() - half

    # the next bill cycle reads our payments as payments brought forward
    bill_cycle(settings, "2026-11", documents=False)
    november = read_published(lake, "invoices", {"period": "2026-11"})
    paid = read_published(lake, lk.PAYMENTS).group_by("account_id").agg(pl.col("amount").sum())
    brought = november.join(paid, on="account_id").select("payments_received", "amount")
    assert brought.height == 4 and (brought["payments_received"] == brought["amount"]).all()

    # the analyst views over the published lake
    path, skipped = build_warehouse(settings)
    assert not [s for s in skipped if s.startswith("40_collections")], skipped
    con = duckdb.connect(path, read_only=True)
    status = con.execute("select sum(collected), count(*) filter (where open_amount = 0) "
                         "from invoice_collection_status where period = '2026-10'").fetchone()
    assert status == (paid["amount"].sum(), 3)
    assert con.execute("select count(*) from collections_latest_list").fetchone()[0] == listing.height
    assert con.execute("select count(*) from payment_suspense").fetchone()[0] == 0
