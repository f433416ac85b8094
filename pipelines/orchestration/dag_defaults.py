"""Defaults every telbill DAG shares: owner, retries, start date and the Assets that chain the DAGs.

Kept free of heavy imports: DAG files import it at parse time.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset

START = pendulum.datetime(2026, 1, 1, tz="UTC")
DEFAULT_ARGS = {
    "owner": "telbill",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
}
TAGS = ["telbill"]

USAGE = Asset("telbill_usage")
"""Published usage partitions (mediation)."""
RATED = Asset("telbill_rated")
"""Published rated usage, rating suspense and settlement entries (rating)."""
INVOICES = Asset("telbill_invoices")
"""Published invoices, invoice lines, PDFs and TMF678 JSON (bill cycle)."""
COLLECTIONS = Asset("telbill_collections")
SETTLEMENT = Asset("telbill_settlement")
ASSURANCE = Asset("telbill_assurance")
