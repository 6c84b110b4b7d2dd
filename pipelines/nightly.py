"""The nightly job's stages, each a function of (paths, as-of date, settings) called by the CLI and by Airflow.

A stage reads what earlier stages wrote for the same as-of date, computes with pure functions from
``pipelines``/``insights`` and replaces its own partitions, so any stage can be rerun alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.warehouse import Warehouse

log = logging.getLogger(__name__)

PACKAGE_VERSION = "0.1.0"


@dataclass(frozen=True)
class RunPaths:
    """Where a run reads landing files and writes the warehouse and the exports."""

    landing: Path
    warehouse: Path
    exports: Path


@dataclass(frozen=True)
class EmbedReport:
    """What the embedding stage did."""

    calls: int
    utterances: int
    new_embeddings: int
    model_id: str
    shards: int = 0


@dataclass(frozen=True)
class SegmentReport:
    """What the segment stage wrote."""

    customers: int
    by_segment: dict[str, int]


@dataclass
class RunSummary:
    """Figures of a whole run, for the console summary."""

    as_of: date
    seconds_by_stage: dict[str, float] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)


def parse_as_of(text: str) -> date:
    """Return the business date from ``YYYY-MM-DD``, with a readable error."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as error:
        raise ValueError(f"as-of date must be YYYY-MM-DD, got {text!r}") from error


LANDING_KINDS = ("auto", "snapshot", "delta")


def landing_kind(landing: Path, configured: str = "auto") -> str:
    """Return "snapshot" or "delta": the configured kind, or with "auto" a ``_DELTA`` marker file in the folder."""
    if configured not in LANDING_KINDS:
        raise ValueError(f"landing.kind must be one of {', '.join(LANDING_KINDS)}, got {configured!r}")
    if configured != "auto":
        return configured
    from pipelines.delta import DELTA_MARKER

    return "delta" if (Path(landing) / DELTA_MARKER).is_file() else "snapshot"


def stage_load(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 1: landing files -> staged tables + quarantine, checked against the data contracts.

    A snapshot landing holds the full extract as of the night; a delta landing (``_DELTA`` marker, or
    ``landing.kind: delta``) holds only what is new since the previous night, and later stages read the latest
    snapshot plus the deltas after it. The kind is recorded in ``landing_loads``.
    """
    from pipelines.loading import load_landing
    from pipelines.warehouse import staged_from_of

    kind = landing_kind(paths.landing, str(settings["landing"].get("kind", "auto")))
    warehouse = Warehouse(paths.warehouse)
    with warehouse.session() as session:
        kinds = session.staged_kinds(as_of)
    # a delta night with a night missing before it fails here, before anything is written
    staged_from = staged_from_of(as_of, {**kinds, as_of: kind})
    if kind == "delta":
        log.info("delta landing for %s: the night's state is the staged partitions %s..%s", as_of, staged_from, as_of)
    report = load_landing(paths.landing, warehouse, as_of,
                          encoding=str(settings["landing"]["encoding"]),
                          contract_engine=str(settings["landing"].get("contract_engine", "great_expectations")),
                          memory_limit=settings["landing"].get("duckdb_memory_limit"),
                          staged_from=staged_from if kind == "delta" else None,
                          ge_max_rows=settings["landing"].get("great_expectations_max_rows"))
    with warehouse.session() as session:
        session.replace_partition("landing_loads", as_of, pd.DataFrame({
            "landing_kind": [kind], "landing_dir": [str(Path(paths.landing).resolve())],
            "loaded_at": [pd.Timestamp.now(tz="UTC")]}))
    return report


def stage_behaviour(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 2: repayment-behaviour features and the in-scope population."""
    from pipelines.behaviour import build_behaviour

    return build_behaviour(Warehouse(paths.warehouse), as_of,
                           in_scope_call_days=int(settings["windows"]["in_scope_call_days"]),
                           promise_grace_days=int(settings["insight"].get("promises", {}).get("grace_days", 1)))


def stage_embed(
    paths: RunPaths, as_of: date, settings: Mapping[str, Any], embedder: Any | None = None
) -> EmbedReport:
    """Stage 3: the customers' own turns in the call window -> ``call_utterances`` + cached embeddings.

    Only texts not yet in ``embedding_cache`` for this model are encoded, so a rerun embeds nothing new.
    The taxonomy's example phrases are embedded (and cached) with the same model. Runs the same plan and shards
    the DAG spreads over workers (``pipelines.embed_shards``) in this process, without the shards' Parquet files:
    the model loads while the texts are cleaned, and each shard's vectors are stored while the next one encodes.
    """
    from pipelines.embed_shards import embed_all_shards

    return embed_all_shards(paths, as_of, settings, embedder)


def stage_call_insight(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 4: embedded utterances -> stable themes -> intent, sub-reason, score, evidence; promises; LLM (opt.)."""
    from pipelines.call_insight import build_call_insight

    return build_call_insight(Warehouse(paths.warehouse), as_of, settings)


def stage_segments(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> SegmentReport:
    """Stage 5: one care segment per in-scope customer, written to ``care_segments`` (history by as_of)."""
    from insights.segments import care_segments, load_policy
    from pipelines.contracts import derived_contract_engine, partition_checks

    thresholds = settings["segment"]
    policy = load_policy(thresholds.get("policy"))
    with Warehouse(paths.warehouse).session() as session:
        in_scope = session.frame("select * from in_scope_customers where as_of = $as_of", {"as_of": as_of})
        # only the in-scope customers' behaviour: segments are decided for them alone (43% of customers at M)
        behaviour = session.frame("select * from customer_behaviour where as_of = $as_of and customer_id in "
                                  "(select customer_id from in_scope_customers where as_of = $as_of)",
                                  {"as_of": as_of})
        calls = session.frame("select * from call_insights where as_of = $as_of", {"as_of": as_of}) \
            if "call_insights" in session.table_names() else pd.DataFrame()
        model_id = str(calls["model_id"].iloc[0]) if len(calls) else ""
        segments = care_segments(in_scope, behaviour, calls, thresholds, policy).assign(
            policy_version=str(policy["version"]), model_id=model_id)
        session.replace_partition("care_segments", as_of, segments,
                                  **partition_checks("care_segments", derived_contract_engine(settings)))
    by_segment = {str(k): int(v) for k, v in segments["segment"].value_counts().sort_index().items()}
    log.info("care segments for %s: %d customers %s", as_of, len(segments), by_segment)
    return SegmentReport(customers=len(segments), by_segment=by_segment)


def stage_actions(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 6: care actions by the action policy, contact rules and routing per customer (``care_actions``)."""
    from pipelines.outreach import build_care_actions

    return build_care_actions(paths.warehouse, paths.landing, as_of, settings)


def stage_export(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 7: the night's exports folder: care segments and the per-channel outreach lists, swapped in whole."""
    from insights.actions import load_action_policy
    from pipelines.exports import channel_exports, export_frame, write_export_folder

    with Warehouse(paths.warehouse).session(read_only=True) as session:
        segments = session.frame("select * from care_segments where as_of = $as_of order by customer_id",
                                 {"as_of": as_of})
        actions = session.frame("select * from care_actions where as_of = $as_of order by customer_id",
                                {"as_of": as_of})
    if segments.empty:
        log.warning("no care segments for %s: exporting empty files", as_of)
    policy = load_action_policy(settings["segment"].get("policy"))
    frames = {"care_segments": export_frame(segments, as_of), **channel_exports(
        actions, segments, as_of, {code: t.label_zh for code, t in policy.treatments.items()},
        {segment: labels.get("zh", segment) for segment, labels in policy.segment_labels.items()})}
    meta = {
        "policy_version": str(segments["policy_version"].iloc[0]) if len(segments) else "",
        "model_id": str(segments["model_id"].iloc[0]) if len(segments) else "",
        "contact_rules_version": str(actions["contact_rules_version"].iloc[0]) if len(actions) else "",
        "postloan_care_version": PACKAGE_VERSION,
    }
    return write_export_folder(frames, paths.exports, as_of, list(settings["exports"]["formats"]), meta)


def stage_publish(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 7: the analyst views, and a read-only snapshot for analysts (``published/current.duckdb``)."""
    from pipelines.publish import publish_warehouse

    return publish_warehouse(paths.warehouse, as_of, settings)


def stage_report(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 8: the nightly HTML insight report, read from the snapshot the publish stage wrote."""
    from pipelines.publish import published_dir, snapshot_name
    from pipelines.report import reports_dir, write_report

    snapshot = published_dir(paths.warehouse, (settings.get("publish") or {}).get("dir")) / snapshot_name(as_of)
    return write_report(snapshot, as_of, reports_dir(paths.warehouse, settings), settings)


STAGES: dict[str, Callable[[RunPaths, date, Mapping[str, Any]], Any]] = {
    "load": stage_load,
    "behaviour": stage_behaviour,
    "embed": stage_embed,
    "call_insight": stage_call_insight,
    "segments": stage_segments,
    "actions": stage_actions,
    "export": stage_export,
    "publish": stage_publish,
    "report": stage_report,
}


def run_nightly(paths: RunPaths, as_of: date, settings: Mapping[str, Any], run_id: str | None = None) -> RunSummary:
    """Run every stage in order for one as-of date; stop at the first failure.

    Every stage attempt is recorded in the warehouse's ``run_log`` (and logged), under ``run_id``
    (default ``cli-<UTC timestamp>``).
    """
    from pipelines.run_log import recorded_stage

    run_id = run_id or f"cli-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
    summary = RunSummary(as_of=as_of)
    for number, (name, stage) in enumerate(STAGES.items(), start=1):
        log.info("[%d/%d] %s: starting for %s", number, len(STAGES), name, as_of)
        started = time.perf_counter()
        with recorded_stage(paths.warehouse, run_id, as_of, name, settings) as outcome:
            outcome["report"] = summary.reports[name] = stage(paths, as_of, settings)
        summary.seconds_by_stage[name] = time.perf_counter() - started
        log.info("[%d/%d] %s: done in %.1f s", number, len(STAGES), name, summary.seconds_by_stage[name])
    return summary
