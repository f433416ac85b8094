"""Money and percentages in the assurance SQL never pass through DOUBLE, and no suspense row drops out of C06."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import polars as pl
from assurance_month import LEAKS, PERIOD, write_month

from pipelines.assurance.controls import open_assurance_db
from pipelines.common.partitions import write_partition
from pipelines.common.storage import open_store

NANO = Decimal("0.000000001")


def column_types(con, view: str) -> dict[str, str]:
    return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())


def test_values_and_kpis_are_exact_decimals(local_settings):
    write_month(local_settings, LEAKS)
    con, _, _ = open_assurance_db(local_settings)
    try:
        assert column_types(con, "ra_unit_price")["price_per_unit"] == "DECIMAL(38,9)"
        for view in ("ra_c05_unrated_usage", "ra_c06_rating_suspense", "ra_findings"):
            assert column_types(con, view)["value_eur"] == "DECIMAL(38,9)", view
        assert column_types(con, "ra_kpis")["value"] == "DECIMAL(38,9)"
        # C06: quantity * (sum of the period's charges / sum of its quantities), half-up at 9 decimals
        rid, quantity, service, value = con.execute(
            "SELECT f.record_id, u.quantity, u.service, f.value_eur FROM ra_c06_rating_suspense f "
            "JOIN usage u USING (record_id) WHERE f.period = ?", [PERIOD]).fetchone()
        charges, quantities = con.execute(
            "SELECT sum(charge), sum(quantity) FROM rated WHERE bill_period = ? AND service = ?",
            [PERIOD, service]).fetchone()
        expected = (Decimal(quantity) * charges / Decimal(quantities)).quantize(NANO, rounding=ROUND_HALF_UP)
        assert expected != 0 and value == expected, rid
        # KPIs: 100 * part / whole, half-up at 9 decimals, from the raw sums
        kpi = dict(con.execute("SELECT kpi, value FROM ra_kpis WHERE period = ?", [PERIOD]).fetchall())
        rin, rej, dup = con.execute("SELECT sum(records_in), sum(records_rejected), sum(records_duplicate) "
                                    "FROM ra_stg_file_manifest WHERE ra_period = ?", [PERIOD]).fetchone()
        assert kpi["duplicate_rate_pct"] == (Decimal(100 * dup) / Decimal(rin)).quantize(NANO, ROUND_HALF_UP)
        assert kpi["reject_rate_pct"] == (Decimal(100 * rej) / Decimal(rin)).quantize(NANO, ROUND_HALF_UP)
        assert kpi["leakage_pct"] == (100 * kpi["leakage_value"] / kpi["rated_revenue"]).quantize(NANO, ROUND_HALF_UP)
        # an exact value DOUBLE cannot hold: 1/3 of a cent per unit over 3 units is exactly one cent
        assert con.execute("SELECT ra_usage_value(3, 0.01, 3), ra_pct(1, 3)").fetchone() == \
            (Decimal("0.010000000"), Decimal("33.333333333"))
    finally:
        con.close()


def test_suspense_row_without_usage_is_still_a_finding(local_settings):
    write_month(local_settings, LEAKS)
    orphan = pl.DataFrame({"record_id": ["ghost-1"], "reason_code": ["NO_PLAN"], "message": ["plan gone"]})
    write_partition(open_store(local_settings.lake_uri), "rating_suspense", {"period": "2026-11"}, "fixture", orphan)
    con, _, _ = open_assurance_db(local_settings)
    try:
        rows = con.execute("SELECT period, value_eur, detail FROM ra_c06_rating_suspense WHERE record_id = 'ghost-1'"
                           ).fetchall()
        assert rows == [("unknown", Decimal(0), "plan gone")]
        total = con.execute("SELECT count(*) FROM ra_c06_rating_suspense").fetchone()[0]
        assert total == con.execute("SELECT count(DISTINCT record_id) FROM rating_suspense").fetchone()[0]
    finally:
        con.close()
