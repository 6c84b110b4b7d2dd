"""What an Airflow task of the nightly DAG runs: resolve the as-of date, paths and settings, call one stage.

Kept out of the DAG file so the DAG only wires tasks and imports nothing heavy at parse time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from pipelines.config import load_settings
from pipelines.nightly import STAGES, RunPaths, parse_as_of

log = logging.getLogger(__name__)

PATH_ENV = {"landing": "POSTLOAN_LANDING", "warehouse": "POSTLOAN_WAREHOUSE", "exports": "POSTLOAN_EXPORTS"}


def as_of_for_run(data_interval_start: datetime | None, override: str | None, timezone: str) -> date:
    """Return the business date a run handles: the override, else the local date its data interval starts on."""
    if override:
        return parse_as_of(override)
    if data_interval_start is None:
        raise ValueError("this run has no data interval: trigger it with the 'as_of' param (YYYY-MM-DD)")
    return data_interval_start.astimezone(ZoneInfo(timezone)).date()


def run_paths(params: Mapping[str, Any], as_of: date) -> RunPaths:
    """Return the run's paths from the DAG params, else $POSTLOAN_LANDING/_WAREHOUSE/_EXPORTS.

    ``{as_of}`` in the landing path is replaced by the date, so a dated landing layout works unchanged.
    """
    resolved: dict[str, Path] = {}
    for key, env in PATH_ENV.items():
        value = str(params.get(key) or os.environ.get(env, ""))
        if not value:
            raise ValueError(f"no {key} path: set the DAG param '{key}' or the environment variable {env}")
        resolved[key] = Path(value.replace("{as_of}", as_of.isoformat()))
    return RunPaths(**resolved)


def _summary(report: Any) -> Any:
    """Return an XCom-friendly summary (pointers and counts, never data)."""
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return {f.name: _summary(getattr(report, f.name)) for f in dataclasses.fields(report)}
    if isinstance(report, pd.DataFrame):
        return report.to_dict(orient="records") if len(report) <= 50 else {"rows": len(report)}
    if isinstance(report, (date, Path)):
        return str(report)
    if isinstance(report, dict):
        return {str(k): _summary(v) for k, v in report.items()}
    return report


def settings_for_run(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run's settings: ``config`` param (else $POSTLOAN_CONFIG / defaults), plus ``full_refit``.

    ``full_refit: true`` makes tonight a refit night for the call themes instead of assigning the calls to the
    themes in force: ``insight.themes.refit_every_days: 1``, and the fit in force is always from an earlier night.
    """
    overrides = {"insight": {"themes": {"refit_every_days": 1}}} if params.get("full_refit") else None
    return load_settings(params.get("config") or None, overrides)


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """What a task of the nightly DAG works on, resolved from its Airflow context."""

    run_id: str
    try_number: int | None
    as_of: date
    paths: RunPaths
    settings: dict[str, Any]


def task_run(context: Mapping[str, Any]) -> TaskRun:
    """Resolve the as-of date, paths and settings of the task run in ``context``."""
    params = context.get("params") or {}
    timezone = str(getattr(context.get("dag"), "timezone", None) or "UTC")
    as_of = as_of_for_run(context.get("data_interval_start"), params.get("as_of"), timezone)
    ti = context.get("ti")
    return TaskRun(run_id=str(context.get("run_id") or "manual"), try_number=getattr(ti, "try_number", None),
                   as_of=as_of, paths=run_paths(params, as_of), settings=settings_for_run(params))


def _merge_embedding_with_shard_log(paths: RunPaths, as_of: date, settings: Mapping[str, Any],
                                    run: TaskRun | None = None) -> Any:
    """Run the DAG's ``embed`` task: log every shard's figures in ``run_log``, then merge the shards."""
    from pipelines.embed_shards import merge_embedding, shard_reports, work_dir
    from pipelines.run_log import RunLogEntry, lineage_or_blank, write_entries

    if run is not None:
        write_entries(paths.warehouse, [RunLogEntry(
            run_id=run.run_id, as_of=as_of, stage=f"embed_shard[{report.shard}]", status="success",
            started_at=datetime.fromisoformat(report.started_at), ended_at=datetime.fromisoformat(report.ended_at),
            try_number=run.try_number, rows_in=report.texts, rows_out=report.vectors, worker=report.worker,
        ).with_lineage(lineage_or_blank(settings, report))
            for report in shard_reports(work_dir(paths, as_of, settings))])
    return merge_embedding(paths, as_of, settings)


def run_stage(stage: str, context: Mapping[str, Any]) -> Any:
    """Run one stage of the nightly job for the run in ``context``, record it in ``run_log``, return its summary.

    In the DAG the ``embed`` stage only merges: planning and the shards are their own tasks
    (:func:`plan_embed_shards`, :func:`run_embed_shard`).
    """
    from pipelines.run_log import recorded_stage

    run = task_run(context)
    log.info("stage %s for as-of %s (landing %s, warehouse %s, run %s, try %s)", stage, run.as_of,
             run.paths.landing, run.paths.warehouse, run.run_id, run.try_number)
    with recorded_stage(run.paths.warehouse, run.run_id, run.as_of, stage, run.settings,
                        try_number=run.try_number) as outcome:
        if stage == "embed":
            outcome["report"] = _merge_embedding_with_shard_log(run.paths, run.as_of, run.settings, run)
        else:
            outcome["report"] = STAGES[stage](run.paths, run.as_of, run.settings)
    return _summary(outcome["report"])


READY_MARKER = "_READY"


def landing_ready(context: Mapping[str, Any]) -> bool:
    """Return whether the run's landing folder holds the ``_READY`` marker (its producer has finished)."""
    run = task_run(context)
    marker = run.paths.landing / READY_MARKER
    log.info("landing for %s: %s %s", run.as_of, marker, "found" if marker.is_file() else "not there yet")
    return marker.is_file()


def plan_embed_shards(context: Mapping[str, Any]) -> list[int]:
    """Plan the run's embedding (writes DuckDB); return the shard numbers to map the shard task over."""
    from pipelines.embed_shards import plan_embedding
    from pipelines.run_log import recorded_stage

    run = task_run(context)
    with recorded_stage(run.paths.warehouse, run.run_id, run.as_of, "embed_plan", run.settings,
                        try_number=run.try_number) as outcome:
        outcome["report"] = plan = plan_embedding(run.paths, run.as_of, run.settings)
    return list(range(plan.shards))


def run_embed_shard(shard: int, context: Mapping[str, Any]) -> Any:
    """Encode one shard into its Parquet file. Touches no DuckDB file, so shards run in parallel anywhere."""
    from pipelines.embed_shards import embed_shard, work_dir

    run = task_run(context)
    return _summary(embed_shard(work_dir(run.paths, run.as_of, run.settings), shard, run.settings))


def alert_text(dag_id: str, task_id: str, run_id: str, as_of: object, try_number: object, error: object,
               log_url: object) -> str:
    """Return the one-paragraph alert for a task that failed for good."""
    return (f"ALERT postloan-care: {dag_id}.{task_id} failed for as-of {as_of} (run {run_id}, try {try_number}, "
            f"no retries left): {error or 'unknown error'}. Log: {log_url or '-'}. Rerun the task after fixing "
            "the cause; every stage replaces its date's data, so a rerun is safe.")


def alert_on_failure(context: Mapping[str, Any]) -> None:
    """Failure callback: log a readable alert and add an ``alert`` row to ``run_log`` (when the paths resolve)."""
    from pipelines.run_log import alert_entry, write_entries

    ti = context.get("ti")
    task_id = str(getattr(ti, "task_id", "?"))
    map_index = getattr(ti, "map_index", -1)
    stage = f"{task_id}[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else task_id
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error or "")
    dag_id = str(getattr(context.get("dag"), "dag_id", "care_segments_nightly"))
    try:
        run: TaskRun | None = task_run(context)
    except (ValueError, OSError) as problem:
        log.error("the alert cannot go to run_log: %s", problem)
        run = None
    text = alert_text(dag_id, stage, str(context.get("run_id")), run.as_of if run else "?",
                      getattr(ti, "try_number", "?"), error_text, getattr(ti, "log_url", None))
    log.error("%s", text)
    if run is not None:
        started = getattr(ti, "start_date", None)
        write_entries(run.paths.warehouse, [alert_entry(run.run_id, run.as_of, stage, run.try_number, text,
                                                        started if isinstance(started, datetime) else None,
                                                        run.settings)])
