"""
### Bill cycle
Produces the invoices of one bill period: recurring, one-off and usage charges, discounts, taxes,
adjustments; PDFs, TMF678 JSON and the GL journal.

* **Scheduled** daily at 06:00 UTC: bills the accounts whose bill cycle day is today, for the period
  that just ended.
* **Manual** (Trigger DAG w/ config): the form asks for the period, cycle day, accounts and dry run.

Before finalising it waits until rating of the period is complete (the published rating read the
current usage and catalogue) and no critical assurance hold is open (`telbill assurance
clear-hold` releases one). A finalised cycle is never issued twice: rerunning it is a no-op.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, Param, PokeReturnValue, dag, get_current_context, task

from pipelines.orchestration.dag_defaults import DEFAULT_ARGS, INVOICES, START, TAGS


@dag(
    dag_id="bill_cycle",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
    tags=[*TAGS, "billing"], doc_md=__doc__,
    params={
        "period": Param("", type="string", title="Bill period (YYYY-MM)", pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$",
                        description="Empty: the period that ended on the run date."),
        "cycle_day": Param(None, type=["null", "integer"], minimum=1, maximum=28, title="Bill cycle day",
                           description="Empty: every cycle day when a period is given, else the run date's day."),
        "accounts": Param("", type="string", title="Accounts",
                          description="Comma-separated account ids; empty bills every account in the cycle."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Compute and render drafts without finalising or numbering."),
    },
)
def bill_cycle() -> None:
    @task
    def resolve() -> dict:
        from pipelines.orchestration import tasks

        ctx = get_current_context()
        params = ctx["params"]
        logical = ctx.get("logical_date")
        cycle_day = params["cycle_day"]
        if not params["period"] and cycle_day is None and logical is not None:
            if logical.day > 28:
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(f"{logical.date()}: no bill cycle runs on days 29-31")
            cycle_day = logical.day
        return {
            "period": tasks.resolve_period(params["period"] or None, logical),
            "cycle_day": cycle_day,
            "accounts": [a.strip() for a in params["accounts"].split(",") if a.strip()],
            "dry_run": bool(params["dry_run"]),
        }

    @task.sensor(poke_interval=300, timeout=int(timedelta(hours=12).total_seconds()), mode="reschedule")
    def rating_complete(cycle: dict) -> PokeReturnValue:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        try:
            run_id = tasks.rating_complete(Settings.from_env(), cycle["period"])
        except tasks.NotReady as exc:
            print(f"waiting: {exc}")
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=run_id)

    @task.sensor(poke_interval=300, timeout=int(timedelta(days=3).total_seconds()), mode="reschedule")
    def assurance_clear(cycle: dict) -> PokeReturnValue:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        if cycle["dry_run"]:
            return PokeReturnValue(is_done=True, xcom_value="dry run: holds not checked")
        try:
            return PokeReturnValue(is_done=True, xcom_value=tasks.assurance_gate(Settings.from_env(), cycle["period"]))
        except tasks.NotReady as exc:
            print(f"waiting: {exc}")
            return PokeReturnValue(is_done=False)

    @task(outlets=[INVOICES])
    def run_cycle(cycle: dict) -> str:
        from pipelines.common.settings import Settings
        from pipelines.orchestration import tasks

        return tasks.bill(Settings.from_env(), cycle["period"], cycle["cycle_day"], cycle["accounts"],
                          cycle["dry_run"])

    cycle = resolve()
    [rating_complete(cycle), assurance_clear(cycle)] >> run_cycle(cycle)


bill_cycle()
