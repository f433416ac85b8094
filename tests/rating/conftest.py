"""Rating fixtures: the shipped catalogue and a default set of accounts."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.rating.catalogue import Catalogue, load_catalogue
from rating.helpers import DEFAULT_ACCOUNTS, TARIFFS, accounts_frame


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue(TARIFFS)


@pytest.fixture
def accounts() -> pl.DataFrame:
    return accounts_frame(*DEFAULT_ACCOUNTS)
