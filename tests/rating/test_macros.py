"""The BIGINT fast path of ``div_round_wide`` gives exactly ``div_round`` (HUGEINT) and the Python twin."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.rating.engine import SQL_MACROS
from pipelines.rating.quote import div_round

METHODS = ("down", "up", "half_up", "half_even")
EDGES = [0, 1, 2, 999_999_999, 10**9, 2**61 - 1, 2**61, 2**62, 2**63 - 1, 2**63, 10**30, 2**120]


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(SQL_MACROS)
    return con


def _both(con: duckdb.DuckDBPyConnection, n: int, d: int, method: str) -> tuple[int, int]:
    return con.execute("SELECT div_round_wide(CAST($1 AS HUGEINT), CAST($2 AS HUGEINT), $3), "
                       "div_round(CAST($1 AS HUGEINT), CAST($2 AS HUGEINT), $3)", [n, d, method]).fetchone()


def test_fast_path_equals_hugeint_and_python_at_the_edges() -> None:
    con = _con()
    for n in EDGES:
        for d in (1, 2, 3, 10**9, 10**18, 10**18 + 1, 2**62, 10**20):
            for method in METHODS:
                wide, hugeint = _both(con, n, d, method)
                assert wide == hugeint == div_round(n, d, method), (n, d, method)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 2**100), d=st.integers(1, 10**19), method=st.sampled_from(METHODS))
def test_fast_path_equals_python_twin(n: int, d: int, method: str) -> None:
    wide, hugeint = _both(_con(), n, d, method)
    assert wide == hugeint == div_round(n, d, method)
