"""
### Collections, settlement and assurance
Three DAGs that follow the bill cycle:

* `collections` (daily 07:00 UTC): ages open invoices, moves accounts along the dunning ladder,
  writes the prioritised collections list, notifications and bar/unbar orders for the run date
  (param `as_of` overrides it).
* `settlement` (monthly, 3rd at 08:00 UTC, and when new ratings publish): partner statements
  (roaming, interconnect, content, dealers) for the period (param `period`, default last month).
* `assurance` (daily 05:00 UTC and after each bill cycle): revenue-assurance controls, KPIs,
  anomaly detection (critical anomalies place holds the bill cycle waits on) and the HTML report.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task

from pipelines.orchestration.dag_defaults import (
    ASSURANCE,
    COLLECTIONS,
    DEFAULT_ARGS,
    INVOICES,
    RATED,
    SETTLEMENT,
    START,
    TAGS,
)


def _period_param() -> Param:
    return Param("", type="string", pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$",
                 description="YYYY-MM; empty = the month before the run date")


@dag(dag_id="collections", schedule=CronTriggerTimetable("0 7 * * *", timezone="UTC"), start_date=START,
     catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS, tags=[*TAGS, "collections"], doc_md=__doc__,
     params={"as_of": Param("", type="string", description="YYYY-MM-DD; empty = the run date")})
def collections() -> None:
    @task(outlets=[COLLECTIONS])
    def run() -> str:
        from datetime import date

        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        ctx = get_current_context()
        as_of = ctx["params"]["as_of"]
        day = date.fromisoformat(as_of) if as_of else ctx["logical_date"].date()
        return tasks.collect(Settings.from_env(), day)

    run()


def _period_dag(dag_id: str, cron: str, after: object, outlet: object, step: str):  # noqa: ANN202
    """A DAG that runs ``tasks.<step>(settings, period)`` on a cron or when ``after`` publishes.

    Settlement and assurance differ only in these; the wiring stays in one place.
    """
    @dag(dag_id=dag_id, schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"),
                                                     assets=[after]),
         start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
         tags=[*TAGS, dag_id], doc_md=__doc__, params={"period": _period_param()})
    def period_dag() -> None:
        @task(outlets=[outlet])
        def run() -> str:
            from pipelines.common.settings import Settings
            from pipelines.orchestration import tasks

            ctx = get_current_context()
            period = tasks.resolve_period(ctx["params"]["period"] or None, ctx.get("logical_date"))
            return getattr(tasks, step)(Settings.from_env(), period)

        run()

    return period_dag()


collections()
settlement = _period_dag("settlement", "0 8 3 * *", RATED, SETTLEMENT, "settle")
assurance = _period_dag("assurance", "0 5 * * *", INVOICES, ASSURANCE, "assure")
