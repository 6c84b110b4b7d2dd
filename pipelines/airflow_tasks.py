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


def run_stage(stage: str, context: Mapping[str, Any]) -> Any:
    """Run one stage of the nightly job for the run in ``context`` and return its summary."""
    params = context.get("params") or {}
    timezone = str(getattr(context.get("dag"), "timezone", None) or "UTC")
    as_of = as_of_for_run(context.get("data_interval_start"), params.get("as_of"), timezone)
    settings = load_settings(params.get("config") or None)
    paths = run_paths(params, as_of)
    log.info("stage %s for as-of %s (landing %s, warehouse %s)", stage, as_of, paths.landing, paths.warehouse)
    return _summary(STAGES[stage](paths, as_of, settings))
