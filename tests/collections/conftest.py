"""Area fixtures: a lake holding accounts, lines and invoices in the contract shapes."""

from __future__ import annotations

import pytest
from collections_data import BASE_INVOICES, publish_customers, publish_invoices

from pipelines.common.settings import Settings


@pytest.fixture
def billed(local_settings: Settings) -> Settings:
    """A lake with five accounts, their lines and one finalised September invoice each."""
    publish_customers(local_settings)
    publish_invoices(local_settings, BASE_INVOICES)
    return local_settings


@pytest.fixture(scope="session")
def small_model():
    """A recovery model fitted once per session on a small generated history (deterministic)."""
    from pipelines.collections.run import train_from_generated

    return train_from_generated(n_accounts=400, months=9, seed=3)
