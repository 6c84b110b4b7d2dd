"""Nightly care segments for overdue customers.

wait_for_landing (``_READY`` marker) -> load (contracts + quarantine) -> repayment behaviour -> embeddings
(plan -> one mapped task per shard, in parallel -> merge) -> call insight -> care segments -> exports.
The as-of date is the local date the run's data interval starts on (the business day that just closed), or
the ``as_of`` param of a manual run. Every task replaces that date's partition, so reruns and backfills change
nothing; every stage attempt is recorded in the warehouse's ``run_log`` table.

Schedule and time zone come from the environment of the Airflow processes (``POSTLOAN_SCHEDULE``, a cron
expression, default ``0 2 * * *``; ``POSTLOAN_TIMEZONE``, default ``Asia/Shanghai``): the timetable must be
known at parse time, and reading an environment variable costs nothing, where an Airflow Variable would be a
metadata-database query on every parse. This file only wires tasks; the work lives in ``pipelines``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

SCHEDULE = os.environ.get("POSTLOAN_SCHEDULE") or "0 2 * * *"
TIMEZONE = os.environ.get("POSTLOAN_TIMEZONE") or "Asia/Shanghai"
# the stages of pipelines.nightly.STAGES, in order (a literal: nothing is imported at parse time);
# the single place the linear stages are named. "embed" is fanned out: embed_plan -> embed_shard[i] -> embed.
STAGES = ["load", "behaviour", "embed", "call_insight", "segments", "actions", "export", "publish", "report"]
SHARDED_STAGE = "embed"


def _alert(context: Any) -> None:
    """On a task's final failure: a readable alert in the log and a row in ``run_log``."""
    from pipelines.airflow_tasks import alert_on_failure

    alert_on_failure(context)


DEFAULT_ARGS = {
    "owner": "postloan-care",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": _alert,
}


def _run(stage: str) -> object:
    from pipelines.airflow_tasks import run_stage

    return run_stage(stage, get_current_context())


def _landing_ready() -> bool:
    from pipelines.airflow_tasks import landing_ready

    return landing_ready(get_current_context())


def _plan_shards() -> list[int]:
    from pipelines.airflow_tasks import plan_embed_shards

    return plan_embed_shards(get_current_context())


def _embed_shard(shard: int) -> object:
    from pipelines.airflow_tasks import run_embed_shard

    return run_embed_shard(shard, get_current_context())


@dag(
    dag_id="care_segments_nightly",
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["postloan-care", "collections"],
    doc_md=__doc__,
    params={
        "as_of": Param("", type="string", description="business date YYYY-MM-DD (empty: from the data interval)"),
        "landing": Param("", type="string", description="landing folder ({as_of} allowed); empty: $POSTLOAN_LANDING"),
        "warehouse": Param("", type="string", description="DuckDB file; empty: $POSTLOAN_WAREHOUSE"),
        "exports": Param("", type="string", description="exports folder; empty: $POSTLOAN_EXPORTS"),
        "config": Param("", type="string", description="settings YAML; empty: $POSTLOAN_CONFIG or defaults"),
        "full_refit": Param(False, type="boolean", description="refit the call themes instead of assigning"),
    },
)
def care_segments_nightly() -> None:
    """Wire the stages in order (one DuckDB writer at a time; only the embedding shards run side by side)."""
    previous: Any = task.sensor(task_id="wait_for_landing", mode="reschedule", poke_interval=300,
                                timeout=6 * 3600, retries=0)(_landing_ready)()
    for stage in STAGES:
        if stage == SHARDED_STAGE:
            plan = task(task_id=f"{stage}_plan")(_plan_shards)()
            shards = task(task_id=f"{stage}_shard", execution_timeout=timedelta(hours=1))(_embed_shard) \
                .expand(shard=plan)
            # no new texts: no shard runs (skipped), the merge still does
            current = task(task_id=stage, trigger_rule="none_failed")(_run)(stage)
            previous >> plan
            shards >> current
        else:
            current = task(task_id=stage)(_run)(stage)
            previous >> current
        previous = current


care_segments_nightly()
