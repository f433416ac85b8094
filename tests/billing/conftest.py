"""Billing test fixtures: a small lake of hand-checked accounts (see billing_fixtures.py)."""

from __future__ import annotations

import pytest
from billing_fixtures import build_lake


@pytest.fixture
def billing_lake(local_settings):
    build_lake(local_settings)
    return local_settings
