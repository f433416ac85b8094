"""
### Mediation
Picks up CDR files landed since the last run and turns them into the published **usage** table.

* `find_new_files` lists landed files that are not in the file manifest yet, in batches;
* `stage_batch` (one mapped task per batch, any worker) parses, validates, deduplicates within the
  batch and guides each file, writing per-file staged outputs;
* `publish` (single writer) folds staged files into the `usage/usage_date=...` partitions and the
  file manifest, checks conservation, and updates the `telbill_usage` Asset, which triggers rating.

Rerunning is harmless: processed files are skipped, and results do not depend on batch order.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from pipelines.orchestration.dag_defaults import DEFAULT_ARGS, START, TAGS, USAGE


@dag(dag_id="mediation", schedule="@hourly", start_date=START, catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, tags=[*TAGS, "mediation"], doc_md=__doc__)
def mediation() -> None:
    @task
    def find_new_files() -> list[list[str]]:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.mediation_batches(Settings.from_env())

    @task(max_active_tis_per_dagrun=4)
    def stage_batch(keys: list[str]) -> list[str]:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.stage_mediation_batch(Settings.from_env(), keys)

    @task(outlets=[USAGE])
    def publish(staged: list[list[str]]) -> str:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.publish_mediation(Settings.from_env())

    publish(stage_batch.expand(keys=find_new_files()))


mediation()
