"""A self-contained Airflow environment for telbill: SQLite metadata in a local folder, our DAGs only.

Used by ``make demo`` (``airflow dags test`` per DAG), ``make airflow`` (``airflow standalone``) and the
tests. Store locations reach the tasks as ``TELBILL_*`` variables, read once by
:meth:`pipelines.common.settings.Settings.from_env` at the task edge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.common.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "dags"


class DagRunFailed(RuntimeError):
    """An ``airflow dags test`` run ended in a failed state; the message points at its log."""


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    conf: dict
    log_path: str
    state: str


def airflow_env(home: Path, settings: Settings, parallelism: int = 4) -> dict[str, str]:
    """Environment for Airflow commands: our DAG folder, SQLite metadata under ``home``, no examples."""
    home = home.resolve()
    airflow_bin = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "PATH": f"{airflow_bin}:{env.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p),
        "TELBILL_LANDING_URI": settings.landing_uri,
        "TELBILL_LAKE_URI": settings.lake_uri,
        "TELBILL_WAREHOUSE": settings.warehouse_path,
        "TELBILL_TARIFFS_DIR": settings.tariffs_dir,
        "TELBILL_OUTPUT_DIR": settings.output_dir,
    })
    if settings.s3.endpoint_url:
        env["TELBILL_S3_ENDPOINT_URL"] = settings.s3.endpoint_url
    if settings.s3.access_key_id:
        env["AWS_ACCESS_KEY_ID"] = settings.s3.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = settings.s3.secret_access_key or ""
    env["AWS_DEFAULT_REGION"] = settings.s3.region
    return env


def ensure_metadata_db(home: Path, env: dict[str, str]) -> None:
    """Create/upgrade the SQLite metadata DB once (``airflow db migrate`` takes ~5 s)."""
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / ".migrated"
    if stamp.exists() and (home / "airflow.db").exists():
        return
    proc = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed in {home}:\n{proc.stderr[-2000:]}")
    stamp.write_text("ok\n")


def run_dag_test(dag_id: str, conf: dict, home: Path, settings: Settings,
                 logical_date: str = "2026-01-01") -> DagRunResult:
    """Run one DAG end to end with ``airflow dags test`` and raise if the run failed."""
    home = home.resolve()
    env = airflow_env(home, settings)
    ensure_metadata_db(home, env)
    log_dir = home / "dag-test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag_id}.log"
    with log_path.open("w") as log:
        proc = subprocess.run(
            ["airflow", "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
            env=env, stdout=log, stderr=subprocess.STDOUT, check=False, cwd=str(PROJECT_ROOT),
        )
    state = "success" if proc.returncode == 0 else "failed"
    if proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise DagRunFailed(f"DAG {dag_id} failed (conf {conf}); full log: {log_path}\n{tail}")
    return DagRunResult(dag_id, conf, str(log_path), state)


def _standalone(args, settings: Settings) -> int:  # noqa: ANN001
    """``airflow standalone`` with telbill's DAGs: UI and API on 127.0.0.1:8080."""
    home = Path(args.home).resolve()
    env = airflow_env(home, settings)
    env["AIRFLOW__API__HOST"] = "127.0.0.1"
    env["AIRFLOW__API__PORT"] = str(args.port)
    ensure_metadata_db(home, env)
    print(f"Airflow UI on http://127.0.0.1:{args.port} (user admin; password in "
          f"{home / 'simple_auth_manager_passwords.json.generated'})", flush=True)
    return subprocess.call(["airflow", "standalone"], env=env, cwd=str(PROJECT_ROOT))


def _dag_test(args, settings: Settings) -> int:  # noqa: ANN001
    conf = json.loads(args.conf) if args.conf else {}
    result = run_dag_test(args.dag_id, conf, Path(args.home).resolve(), settings)
    print(f"{result.dag_id}: {result.state} (log {result.log_path})")
    return 0


def register(sub) -> None:  # noqa: ANN001
    af = sub.add_parser("airflow", help="run telbill's DAGs in a local Airflow (SQLite metadata)")
    asub = af.add_subparsers(dest="airflow_command", required=True)
    standalone = asub.add_parser("standalone", help="UI + scheduler with telbill's DAGs")
    standalone.add_argument("--home", default="var/airflow")
    standalone.add_argument("--port", type=int, default=8080)
    standalone.set_defaults(func=_standalone)
    test = asub.add_parser("test", help="run one DAG end to end with `airflow dags test`")
    test.add_argument("dag_id")
    test.add_argument("--conf", help="JSON for dag_run.conf / params")
    test.add_argument("--home", default="var/airflow")
    test.set_defaults(func=_dag_test)
