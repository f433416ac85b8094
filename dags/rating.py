"""
### Rating
Rates usage against the effective-dated catalogue, per bill period, in DuckDB.

Runs when mediation publishes new usage (`telbill_usage` Asset) and daily at 02:00 UTC. With no
`period` param it rates every period that has usage (rating is idempotent: an unchanged period
rewrites the same run). Each period is a mapped task, so periods rate in parallel on any worker.
Publishes `rated`, `rating_suspense` and `settlement_entries` and updates `telbill_rated`.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task

from pipelines.orchestration.dag_defaults import DEFAULT_ARGS, RATED, START, TAGS, USAGE


@dag(
    dag_id="rating",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"), assets=[USAGE]),
    start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
    tags=[*TAGS, "rating"], doc_md=__doc__,
    params={"period": Param("", type="string", pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$",
                            description="YYYY-MM; empty = every period with usage")},
)
def rating() -> None:
    @task
    def periods() -> list[str]:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.periods_with_usage(Settings.from_env(), get_current_context()["params"]["period"] or None)

    @task(outlets=[RATED])
    def rate(period: str) -> str:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.rate(Settings.from_env(), period)

    rate.expand(period=periods())


rating()
