"""Collections benchmark: payment intake, the daily run and model training on generated history.

Rows: payment lines imported per second (bank file, reference matching), accounts per second for one
daily collections run (replayed ledger, aging, ladder, scoring, exports), model training time, and the
model's held-out AUC against its best single feature (on-time rate) as the baseline.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, parse_scale, peak_rss_mb, timed  # noqa: E402
from pipelines.collections import lake as lk  # noqa: E402
from pipelines.collections.history import generate_history  # noqa: E402
from pipelines.collections.intake import import_payments  # noqa: E402
from pipelines.collections.run import collections_run, train_from_generated  # noqa: E402
from pipelines.common.partitions import write_partition  # noqa: E402
from pipelines.common.settings import Settings  # noqa: E402

AREA = "collections"


def bank_file(invoices: pl.DataFrame, day: date) -> bytes:
    """One bank statement paying every invoice by its reference (one line each)."""
    head = ("transaction_id,booking_date,value_date,transaction_code,amount,currency,counterparty_name,"
            "counterparty_iban,remittance_info,original_transaction_id\n")
    lines = [f"BX{i:08d},{day},{day},CRDT,{total},EUR,Payer {acc},DE00,Invoice {ref},\n"
             for i, (acc, total, ref) in enumerate(invoices.select("account_id", "total", "payment_reference").iter_rows())]
    return (head + "".join(lines)).encode()


def main() -> int:
    scale = parse_scale()
    n_accounts = max(200, int(20_000 * scale))
    root = Path(tempfile.mkdtemp(prefix="bench-collections-"))
    settings = Settings(landing_uri=str(root / "landing"), lake_uri=str(root / "lake"),
                        warehouse_path=str(root / "wh.duckdb"),
                        tariffs_dir=str(Path(__file__).resolve().parents[1] / "tariffs"), output_dir=str(root / "out"))
    history = generate_history(n_accounts, 12, seed=99)
    from pipelines.common.storage import open_store

    lake = open_store(settings.lake_uri)
    write_partition(lake, lk.ACCOUNTS, {}, "bench", history.accounts)
    for (period,), part in history.invoices.group_by(["period"], maintain_order=True):
        write_partition(lake, lk.INVOICES, {"period": period}, "bench", part)
    write_partition(lake, lk.PAYMENTS, {"file_sha": "history"}, "bench", history.payments)

    last = history.invoices.filter(pl.col("period") == history.invoices["period"].max())
    data = bank_file(last, last["due_date"].max() - timedelta(days=3))
    seconds, result = timed(lambda: import_payments(settings, data, "bank", "bench.csv"))
    lines = sum(result.counts.values())
    emit(AREA, "payment_intake_lines_per_s", round(lines / seconds), "lines/s", target=">= 5000")
    emit(AREA, "payment_intake_seconds", round(seconds, 2), "s", target=f"{lines} lines")

    seconds, model = timed(lambda: train_from_generated(1500, 12, 7))
    emit(AREA, "model_training_seconds", round(seconds, 2), "s", target="1500 accounts x 12 months")
    emit(AREA, "model_holdout_auc", model.metrics["holdout_auc"], "", target=">= 0.75",
         baseline=str(model.metrics["holdout_auc_on_time_rate_only"]),
         ratio=str(round(model.metrics["holdout_auc"] / model.metrics["holdout_auc_on_time_rate_only"], 3)))
    emit(AREA, "model_holdout_ece", model.metrics["holdout_calibration"]["ece"], "", target="< 0.05")

    as_of = last["due_date"].max() + timedelta(days=20)
    seconds, run = timed(lambda: collections_run(settings, as_of, model=model))
    emit(AREA, "daily_run_accounts_per_s", round(n_accounts / seconds), "accounts/s", target=">= 1000")
    emit(AREA, "daily_run_seconds", round(seconds, 2), "s", target=f"{n_accounts} accounts, "
         f"{history.invoices.height} invoices, {history.payments.height + lines} payments")
    emit(AREA, "daily_run_listed_accounts", run.counts["list"], "accounts")
    emit(AREA, "peak_rss", round(peak_rss_mb()), "MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
