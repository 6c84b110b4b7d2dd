"""Nightly care segments for overdue customers.

load (contracts + quarantine) -> repayment behaviour -> embeddings -> call insight -> care segments -> exports.
The as-of date is the local date the run's data interval starts on (the business day that just closed), or
the ``as_of`` param of a manual run. Every task replaces that date's partition, so reruns change nothing.
This file only wires tasks; the work lives in ``pipelines`` and ``insights``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

TIMEZONE = "Asia/Shanghai"
# the stages of pipelines.nightly.STAGES, in order (a literal: nothing is imported at parse time)
STAGES = ["load", "behaviour", "embed", "call_insight", "segments", "export"]

DEFAULT_ARGS = {
    "owner": "postloan-care",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=3),
}


def _run(stage: str) -> object:
    from pipelines.airflow_tasks import run_stage

    return run_stage(stage, get_current_context())


@dag(
    dag_id="care_segments_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone=TIMEZONE),
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
    },
)
def care_segments_nightly() -> None:
    """Wire the stages in order (one DuckDB writer at a time)."""
    previous = None
    for stage in STAGES:
        current = task(task_id=stage)(_run)(stage)
        if previous is not None:
            previous >> current
        previous = current


care_segments_nightly()
