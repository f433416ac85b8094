"""The real chain: generate -> customers import -> mediate -> rate -> bill cycle (no fixture data)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from pipelines.billing import bill_cycle
from pipelines.billing.lifecycle import verify_cycle
from pipelines.common.partitions import read_published
from pipelines.common.storage import open_store
from pipelines.customers import import_customers
from pipelines.generate import generate, upload_landing
from pipelines.mediation.pipeline import mediate
from pipelines.rating.stage import rate_period


def test_generate_mediate_rate_bill(local_settings, tmp_path):
    settings = local_settings
    data = generate(tmp_path / "gen", 40, period="2026-10", seed=7, faults=False, per_subscriber=15)
    upload_landing(data, settings)
    import_customers(settings, data.accounts_csv.read_bytes(), data.subscriptions_csv.read_bytes())
    mediate(settings)
    rating = rate_period(settings, "2026-10")
    assert rating.rated > 0

    result = bill_cycle(settings, "2026-10", documents=False)
    assert result.errors == [] and result.finalised, result.message
    lake = open_store(settings.lake_uri)
    rated = read_published(lake, "rated", {"period": "2026-10"})
    lines = read_published(lake, "invoice_lines", {"period": "2026-10"})
    invoices = read_published(lake, "invoices", {"period": "2026-10"})
    # every postpaid rated cent billed to an invoiced account is on a usage line (rounded once per line)
    billed_accounts = set(invoices["account_id"].to_list())
    accounts = read_published(lake, "customers/accounts")
    root = {r["account_id"]: (r["parent_account_id"] or r["account_id"]) for r in accounts.to_dicts()}
    post = rated.filter((pl.col("payment_type") == "postpaid") & (pl.col("bill_period") == "2026-10"))
    post = post.with_columns(root=pl.col("account_id").replace_strict(root, default=pl.col("account_id")))
    post = post.filter(pl.col("root").is_in(list(billed_accounts)))
    usage = lines.filter(pl.col("line_type") == "usage")
    assert usage["amount_precise"].sum() == post["charge"].sum()
    assert usage["quantity"].sum() == post["quantity"].sum()
    # every postpaid line gets a recurring charge; invoices satisfy the identity
    assert lines.filter(pl.col("line_type") == "recurring").height > 0
    for row in invoices.to_dicts():
        mine = lines.filter(pl.col("invoice_id") == row["invoice_id"])
        assert row["subtotal"] == mine["amount"].sum() or (mine.height == 0 and row["subtotal"] == Decimal(0))
    assert verify_cycle(settings, "2026-10").ok
