"""Run log and lineage: one ``run_log`` row per stage attempt (and per failure alert), for analysts and on-call.

A row says which run handled which as-of date, which stage, when, how many rows went in, out and to quarantine,
which model, taxonomy, policy and settings versions were used, where it ran, how it ended and why it failed.
The same line goes to the log (so it is in the Airflow task log too). Unlike the business tables, ``run_log``
is append-only on purpose: it is the history of attempts, so a rerun adds rows and changes no result.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

STATUSES = ("success", "failed", "alert")
WORKER_ENV = "POSTLOAN_WORKER_NAME"
_ERROR_CHARS = 2000


@dataclasses.dataclass(frozen=True)
class RowCounts:
    """Rows a stage read, wrote and sent to quarantine (None: not meaningful for the stage)."""

    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None


@dataclasses.dataclass(frozen=True)
class Lineage:
    """The versions a stage ran with: embedding model, intent taxonomy, action policy, settings, code."""

    model_id: str = ""
    taxonomy_version: str = ""
    policy_version: str = ""
    settings_version: str = ""
    code_version: str = ""


@dataclasses.dataclass(frozen=True)
class RunLogEntry:
    """One row of ``run_log``."""

    run_id: str
    as_of: date
    stage: str
    status: str
    started_at: datetime
    ended_at: datetime
    try_number: int | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    model_id: str = ""
    taxonomy_version: str = ""
    policy_version: str = ""
    settings_version: str = ""
    code_version: str = ""
    worker: str = ""
    error: str = ""

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the attempt."""
        return (self.ended_at - self.started_at).total_seconds()

    def line(self) -> str:
        """Return the entry as one readable log line."""
        counts = f"in={self.rows_in} out={self.rows_out} quarantined={self.rows_quarantined}"
        text = (f"run_log {self.status.upper()} {self.stage} as_of={self.as_of} run={self.run_id} "
                f"try={self.try_number} {self.seconds:.1f}s {counts} model={self.model_id or '-'} "
                f"taxonomy={self.taxonomy_version or '-'} policy={self.policy_version or '-'} worker={self.worker}")
        return f"{text} error={self.error}" if self.error else text

    def with_lineage(self, lineage: Lineage) -> RunLogEntry:
        """Return a copy carrying ``lineage``'s versions."""
        return dataclasses.replace(
            self, model_id=lineage.model_id, taxonomy_version=lineage.taxonomy_version,
            policy_version=lineage.policy_version, settings_version=lineage.settings_version,
            code_version=lineage.code_version)


def worker_name() -> str:
    """Return where this process runs: ``$POSTLOAN_WORKER_NAME`` (set per Celery worker) else the host, plus pid."""
    return f"{os.environ.get(WORKER_ENV) or socket.gethostname()}/{os.getpid()}"


def _yaml_version(path: str | Path | None, packaged: str) -> str:
    """Return the ``version`` key of a versioned YAML file (the packaged one when ``path`` is empty)."""
    try:
        if path:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = importlib.resources.files("insights").joinpath(packaged).read_text(encoding="utf-8")
        loaded = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as error:
        return f"unreadable: {error}"
    return str(loaded.get("version", "")) if isinstance(loaded, dict) else ""


def configured_model_id(settings: Mapping[str, Any]) -> str:
    """Return the model id the embedding settings name (no model is loaded)."""
    from insights.embedding import embedder_from_config

    try:
        return embedder_from_config(settings["embedding"]).model_id
    except (FileNotFoundError, ValueError, KeyError) as error:
        return f"unavailable: {error}"


def versions(settings: Mapping[str, Any]) -> Lineage:
    """Return the model, taxonomy, policy, settings and code versions a run with ``settings`` uses."""
    from pipelines.nightly import PACKAGE_VERSION

    return Lineage(
        model_id=configured_model_id(settings),
        taxonomy_version=_yaml_version(settings.get("insight", {}).get("taxonomy"), "taxonomy.yaml"),
        policy_version=_yaml_version(settings.get("segment", {}).get("policy"), "policy.yaml"),
        settings_version=str(settings.get("version", "")),
        code_version=PACKAGE_VERSION,
    )


def _frame_sum(frame: Any, column: str) -> int | None:
    if frame is None or not hasattr(frame, "columns") or column not in frame.columns:
        return None
    return int(frame[column].sum())


def row_counts(stage: str, report: Any) -> RowCounts:
    """Return the row counts of a stage's report (whatever fields it has; None where it has none)."""
    if report is None:
        return RowCounts()
    if stage == "load":
        files = getattr(report, "files", None)
        return RowCounts(_frame_sum(files, "rows_read"), _frame_sum(files, "rows_loaded"),
                         _frame_sum(files, "rows_quarantined"))
    pairs = {
        "behaviour": ("customers", "in_scope"),
        "embed_plan": ("utterances", "pending"),
        "embed": ("utterances", "new_embeddings"),
        "embed_shard": ("texts", "vectors"),
        "call_insight": ("utterances", "calls"),
        "segments": (None, "customers"),
        "export": (None, "rows"),
    }
    rows_in, rows_out = pairs.get(stage.split("[")[0], (None, "rows"))

    def _field(name: str | None) -> int | None:
        value = getattr(report, name, None) if name else None
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    return RowCounts(rows_in=_field(rows_in), rows_out=_field(rows_out))


def _error_text(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return "".join(lines).strip()[:_ERROR_CHARS]


def write_entries(warehouse: Path, entries: list[RunLogEntry]) -> bool:
    """Append entries to ``run_log`` in the warehouse; log them. Returns False (and warns) when it cannot write.

    A failure to write the log never hides the stage's own outcome: the caller's error is what matters.
    """
    if not entries:
        return True
    import pandas as pd

    from pipelines.warehouse import Warehouse

    for entry in entries:
        (log.error if entry.status != "success" else log.info)("%s", entry.line())
    frame = pd.DataFrame([{**dataclasses.asdict(entry), "seconds": entry.seconds} for entry in entries])
    try:
        with Warehouse(warehouse).session() as session:
            session.insert_frame("run_log", frame)
    except Exception as error:  # noqa: BLE001 - the log must not mask the stage's result
        log.warning("could not write %d run_log rows to %s: %s", len(entries), warehouse, error)
        return False
    return True


@contextmanager
def recorded_stage(
    warehouse: Path,
    run_id: str,
    as_of: date,
    stage: str,
    settings: Mapping[str, Any],
    try_number: int | None = None,
    counts: Callable[[Any], RowCounts] | None = None,
) -> Iterator[dict[str, Any]]:
    """Record one stage attempt in ``run_log``: put the stage's report in the yielded dict under ``report``.

    On an exception the row has status ``failed`` and the error, and the exception propagates unchanged.
    """
    from pipelines.warehouse import Warehouse

    outcome: dict[str, Any] = {"report": None}
    Warehouse.memory_limit = (settings.get("warehouse") or {}).get("duckdb_memory_limit")
    started = datetime.now(UTC)
    status, error_text = "success", ""
    try:
        yield outcome
    except BaseException as error:
        status, error_text = "failed", _error_text(error)
        raise
    finally:
        report = outcome["report"]
        found = counts(report) if counts else row_counts(stage, report)
        entry = RunLogEntry(
            run_id=run_id, as_of=as_of, stage=stage, status=status, started_at=started, ended_at=datetime.now(UTC),
            try_number=try_number, rows_in=found.rows_in, rows_out=found.rows_out,
            rows_quarantined=found.rows_quarantined, worker=worker_name(), error=error_text,
        ).with_lineage(lineage_or_blank(settings, report))
        write_entries(warehouse, [entry])


def lineage_or_blank(settings: Mapping[str, Any], report: Any = None) -> Lineage:
    """Return the versions (blank when unreadable); the model the stage actually used wins over the configured."""
    try:
        found = versions(settings)
    except Exception as error:  # noqa: BLE001 - lineage is best effort, the stage result is not
        log.warning("could not read versions for the run log: %s", error)
        found = Lineage()
    used_model = getattr(report, "model_id", None)
    if isinstance(used_model, str) and used_model:
        found = dataclasses.replace(found, model_id=used_model)
    return found


def alert_entry(run_id: str, as_of: date, stage: str, try_number: int | None, error: str,
                started_at: datetime | None, settings: Mapping[str, Any] | None = None) -> RunLogEntry:
    """Return the ``alert`` row written when a task has failed for good (no retries left)."""
    ended = datetime.now(UTC)
    entry = RunLogEntry(run_id=run_id, as_of=as_of, stage=stage, status="alert", started_at=started_at or ended,
                        ended_at=ended, try_number=try_number, worker=worker_name(), error=error[:_ERROR_CHARS])
    return entry.with_lineage(lineage_or_blank(settings)) if settings else entry
