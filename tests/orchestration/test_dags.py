"""The DAG folder imports cleanly and cheaply, and every DAG is documented, tagged and retried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"mediation", "rating", "bill_cycle", "collections", "settlement", "assurance", "warehouse",
            "audit_rerun"}

INSPECT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags),
        "doc_md": dag.doc_md or "",
        "retries": {t.task_id: t.retries for t in dag.tasks},
        "params": sorted(dag.params.keys()),
    }
print("JSON" + json.dumps(out))
"""

HEAVY = r"""
import runpy, sys
for path in sys.argv[1:]:
    runpy.run_path(path)
heavy = sorted(m for m in ("polars", "duckdb", "pyarrow", "weasyprint", "pandera", "pycrate_core") if m in sys.modules)
print("HEAVY" + ",".join(heavy))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
                "PYTHONPATH": str(PROJECT_ROOT)})
    return env


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("dagbag")
    proc = subprocess.run([sys.executable, "-c", INSPECT, str(PROJECT_ROOT / "dags")], env=_env(tmp),
                          capture_output=True, text=True, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("JSON"))
    return json.loads(line[4:])


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_tags_docs_and_retries(dagbag, dag_id):
    dag = dagbag["dags"][dag_id]
    assert "telbill" in dag["tags"] and len(dag["tags"]) >= 2
    assert len(dag["doc_md"].strip()) > 80
    assert dag["retries"], "a DAG without tasks"
    assert all(r >= 2 for r in dag["retries"].values()), dag["retries"]


def test_bill_cycle_form_has_the_finance_params(dagbag):
    assert dagbag["dags"]["bill_cycle"]["params"] == ["accounts", "cycle_day", "dry_run", "period"]


def test_dag_files_do_no_heavy_imports(tmp_path):
    """Parsing a DAG file must not import the data stack (the scheduler parses them constantly)."""
    files = sorted(str(p) for p in (PROJECT_ROOT / "dags").glob("*.py"))
    proc = subprocess.run([sys.executable, "-c", HEAVY, *files], env=_env(tmp_path), capture_output=True,
                          text=True, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("HEAVY"))
    assert line == "HEAVY", f"DAG parsing imported {line[5:]}"
