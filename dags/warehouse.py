"""
### Warehouse
Rebuilds the DuckDB warehouse (`var/warehouse.duckdb` by default): one view per published lake
dataset plus the analyst views in `warehouse/*.sql`. Runs whenever any stage publishes. It is the
only writer of the warehouse file, so analysts always open a consistent set of views.
"""

from __future__ import annotations

from airflow.sdk import AssetAny, dag, task

from pipelines.orchestration.dag_defaults import (
    ASSURANCE,
    COLLECTIONS,
    DEFAULT_ARGS,
    INVOICES,
    RATED,
    SETTLEMENT,
    START,
    TAGS,
    USAGE,
)


@dag(dag_id="warehouse", schedule=AssetAny(USAGE, RATED, INVOICES, COLLECTIONS, SETTLEMENT, ASSURANCE),
     start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=[*TAGS, "warehouse"], doc_md=__doc__)
def warehouse() -> None:
    @task
    def build() -> str:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.build_warehouse(Settings.from_env())

    build()


warehouse()
