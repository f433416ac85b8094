"""The analyst views: the warehouse builder runs 50_settlement.sql and 60_assurance.sql over the lake, and a
KPI drills down to the records behind it."""

from __future__ import annotations

import shutil

import duckdb
from assurance_month import LEAKS, PERIOD, write_month

from pipelines import warehouse
from pipelines.assurance.run import run_assurance
from pipelines.settlement.statements import run_settlement
from pipelines.warehouse import SQL_DIR, build_warehouse


def test_views_rerun_the_controls_and_drill_down(local_settings, tmp_path, monkeypatch):
    # only this area's SQL files: other areas' views expect columns beyond the contracts this fixture writes
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    for name in ("50_settlement.sql", "60_assurance.sql"):
        shutil.copy(SQL_DIR / name, sql_dir / name)
    monkeypatch.setattr(warehouse, "SQL_DIR", sql_dir)
    write_month(local_settings, LEAKS)
    run = run_assurance(local_settings, PERIOD, data_quality=False, report=False)
    run_settlement(local_settings, PERIOD, documents=False)
    path, skipped = build_warehouse(local_settings)
    assert not [s for s in skipped if s.startswith(("50_", "60_"))], skipped
    con = duckdb.connect(path, read_only=True)
    try:
        views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        assert all(any(v.startswith(f"ra_c{i:02d}_") for v in views) for i in range(1, 11))
        assert {"ra_findings", "ra_kpis", "settlement_roaming", "settlement_interconnect",
                "settlement_partner_balances"} <= views
        per_control = dict(con.execute("select control_id, count(*) from ra_findings where period = ? group by 1",
                                       [PERIOD]).fetchall())
        assert per_control == {r["control_id"]: r["findings"] for r in run.results.to_dicts() if r["findings"]}
        # drill down: the leakage KPI -> its findings -> the usage record behind the prepaid mismatch
        leak = con.execute("select value from ra_kpis where period = ? and kpi = 'leakage_value'", [PERIOD]).fetchone()[0]
        parts = con.execute("select sum(value_eur) from ra_findings where period = ? and control_id in "
                            "('C05','C07','C08','C09')", [PERIOD]).fetchone()[0]
        assert leak == parts
        msisdn, charged = con.execute(
            "select u.msisdn, u.charged_amount from ra_c09_prepaid_debits f join usage u using (record_id) "
            "where f.period = ?", [PERIOD]).fetchone()
        assert msisdn.startswith("49151") and charged is not None
    finally:
        con.close()
