"""
### Audit rerun
Manually triggered by auditors: recomputes a published period from the raw landing files and the
catalogue version archived when it was rated, in a separate audit namespace, and writes a
difference report against what was published. The run fails (red) when anything differs, and the
report (`var/out/audit/<period>-<id>/audit_report.json`) says what.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from pipelines.orchestration.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(dag_id="audit_rerun", schedule=None, start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, tags=[*TAGS, "audit"], doc_md=__doc__,
     params={"period": Param("2026-10", type="string", pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                             title="Period to audit (YYYY-MM)")})
def audit_rerun() -> None:
    @task
    def rerun() -> str:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.audit(Settings.from_env(), get_current_context()["params"]["period"])

    rerun()


audit_rerun()
