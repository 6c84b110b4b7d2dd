"""The nightly job's stages, each a function of (paths, as-of date, settings) called by the CLI and by Airflow.

A stage reads what earlier stages wrote for the same as-of date, computes with pure functions from
``pipelines``/``insights`` and replaces its own partitions, so any stage can be rerun alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.warehouse import Session, Warehouse

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


@dataclass(frozen=True)
class InsightReport:
    """What the call-insight stage did."""

    calls: int
    utterances: int
    clusters: int
    outliers: int
    model_id: str


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


def stage_load(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 1: landing files -> staged tables + quarantine, checked against the data contracts."""
    from pipelines.loading import load_landing

    return load_landing(paths.landing, Warehouse(paths.warehouse), as_of,
                        encoding=str(settings["landing"]["encoding"]))


def stage_behaviour(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 2: repayment-behaviour features and the in-scope population."""
    from pipelines.behaviour import build_behaviour

    return build_behaviour(Warehouse(paths.warehouse), as_of,
                           in_scope_call_days=int(settings["windows"]["in_scope_call_days"]))


def _cached_vectors(session: Session, hashes: list[str], model_id: str) -> dict[str, np.ndarray]:
    if not hashes:
        return {}
    rows = session.frame(
        "select content_hash, vector from embedding_cache "
        "where model_id = $model_id and content_hash in (select unnest($hashes))",
        {"model_id": model_id, "hashes": hashes},
    )
    return {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["content_hash"], rows["vector"], strict=True)}


def _store_vectors(session: Session, new: Mapping[str, np.ndarray], model_id: str) -> None:
    if new:
        session.insert_frame("embedding_cache", pd.DataFrame({
            "content_hash": list(new), "model_id": model_id, "vector": [v.astype(np.float32) for v in new.values()],
        }), ignore_existing_keys=True)


def _with_silent_calls(calls: pd.DataFrame, window_calls: pd.DataFrame) -> pd.DataFrame:
    """Return call insights plus an ``unclear`` row for each call in the window where the customer said nothing.

    Such calls still count as contact (the customer picked up and only greeted or hung up).
    """
    silent = window_calls[~window_calls["call_id"].isin(calls["call_id"])].assign(
        cluster_id=-1, is_outlier=True, intent="unclear", sub_reason="", intent_score=0.0, evidence="")
    started = window_calls[["call_id", "started_at"]]
    return pd.concat([calls.merge(started, on="call_id", how="left"), silent], ignore_index=True) \
        .sort_values("call_id", kind="stable").reset_index(drop=True)


def _taxonomy(settings: Mapping[str, Any]) -> Any:
    from insights.intents import load_taxonomy

    path = settings["insight"].get("taxonomy")
    return load_taxonomy(Path(path) if path else None)


def stage_embed(
    paths: RunPaths, as_of: date, settings: Mapping[str, Any], embedder: Any | None = None
) -> EmbedReport:
    """Stage 3: the customers' own turns in the call window -> ``call_utterances`` + cached embeddings.

    Only texts not yet in ``embedding_cache`` for this model are encoded, so a rerun embeds nothing new.
    The taxonomy's example phrases are embedded (and cached) with the same model.
    """
    from insights.embedding import embedder_from_config, embeddings_with_cache
    from insights.text import content_hash, customer_utterances

    embedder = embedder or embedder_from_config(settings["embedding"])
    example_texts = list(_taxonomy(settings).examples["text"])
    with Warehouse(paths.warehouse).session() as session:
        turns = session.model_frame("insight/customer_turns_in_window", {
            "as_of": as_of, "lookback_days": int(settings["windows"]["call_lookback_days"])})
        utterances = customer_utterances(turns, min_chars=int(settings["insight"]["min_utterance_chars"]))
        texts = example_texts + list(utterances["text"])
        cached = _cached_vectors(session, sorted({content_hash(t, embedder.model_id) for t in texts}),
                                 embedder.model_id)
        log.info("embedding for %s: %d calls in the window, %d customer utterances, %d texts already embedded",
                 as_of, turns["call_id"].nunique(), len(utterances), len(cached))
        _, new = embeddings_with_cache(texts, embedder, cached)
        _store_vectors(session, new, embedder.model_id)
        window_calls = turns.drop_duplicates("call_id")[["call_id", "customer_id", "started_at"]]
        session.replace_partition("call_utterances", as_of, utterances.assign(
            content_hash=[content_hash(t, embedder.model_id) for t in utterances["text"]],
            model_id=embedder.model_id))
        session.replace_partition("calls_in_window", as_of, window_calls)
    report = EmbedReport(calls=len(window_calls), utterances=len(utterances), new_embeddings=len(new),
                         model_id=embedder.model_id)
    log.info("embedding: %s", report)
    return report


def stage_call_insight(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> InsightReport:
    """Stage 4: embedded utterances -> clusters -> intent, sub-reason, score and evidence per call."""
    from insights.embedding import embedder_from_config
    from insights.intents import InsightSettings, call_insight, intent_prototypes
    from insights.text import content_hash

    insight = settings["insight"]
    taxonomy = _taxonomy(settings)
    with Warehouse(paths.warehouse).session() as session:
        utterances = session.frame("select * from call_utterances where as_of = $as_of order by call_id, turn_no",
                                   {"as_of": as_of})
        # the model the embed stage used; with no utterances, the configured one (cheap: loads on first encode)
        model_id = str(utterances["model_id"].iloc[0]) if len(utterances) else \
            embedder_from_config(settings["embedding"]).model_id
        window_calls = session.frame("select call_id, customer_id, started_at from calls_in_window "
                                     "where as_of = $as_of order by call_id", {"as_of": as_of})
        example_hashes = [content_hash(t, model_id) for t in taxonomy.examples["text"]]
        cached = _cached_vectors(session, sorted(set(example_hashes) | set(utterances["content_hash"])), model_id)
        missing = (set(example_hashes) | set(utterances["content_hash"])) - set(cached)
        if missing:
            raise RuntimeError(f"{len(missing)} texts have no cached embedding for {model_id}; run the embed stage "
                               "for this date first")
        prototypes = intent_prototypes(taxonomy, _stacked(cached, example_hashes))
        options = InsightSettings(min_cluster_size=int(insight["min_cluster_size"]),
                                  n_components=int(insight["n_components"]), seed=int(insight["seed"]))
        calls, clusters = call_insight(utterances[["call_id", "customer_id", "turn_no", "text"]],
                                       _stacked(cached, list(utterances["content_hash"])), prototypes, options)
        calls = _with_silent_calls(calls, window_calls).assign(model_id=model_id,
                                                               taxonomy_version=str(taxonomy.version))
        session.replace_partition("call_insights", as_of, calls)
        session.replace_partition("call_clusters", as_of, clusters.assign(model_id=model_id))
    report = InsightReport(calls=len(calls), utterances=len(utterances), clusters=len(clusters),
                           outliers=int(calls["is_outlier"].sum()) if len(calls) else 0, model_id=model_id)
    log.info("call insight: %s", report)
    return report


def _stacked(vectors: Mapping[str, np.ndarray], hashes: list[str]) -> np.ndarray:
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack([vectors[h] for h in hashes]).astype(np.float32)


def stage_segments(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> SegmentReport:
    """Stage 5: one care segment per in-scope customer, written to ``care_segments`` (history by as_of)."""
    from insights.segments import care_segments, load_policy

    thresholds = settings["segment"]
    policy = load_policy(thresholds.get("policy"))
    with Warehouse(paths.warehouse).session() as session:
        in_scope = session.frame("select * from in_scope_customers where as_of = $as_of", {"as_of": as_of})
        behaviour = session.frame("select * from customer_behaviour where as_of = $as_of", {"as_of": as_of})
        calls = session.frame("select * from call_insights where as_of = $as_of", {"as_of": as_of}) \
            if "call_insights" in _tables(session) else pd.DataFrame()
        model_id = str(calls["model_id"].iloc[0]) if len(calls) else ""
        segments = care_segments(in_scope, behaviour, calls, thresholds, policy).assign(
            policy_version=str(policy["version"]), model_id=model_id)
        session.replace_partition("care_segments", as_of, segments)
    by_segment = {str(k): int(v) for k, v in segments["segment"].value_counts().sort_index().items()}
    log.info("care segments for %s: %d customers %s", as_of, len(segments), by_segment)
    return SegmentReport(customers=len(segments), by_segment=by_segment)


def _tables(session: Session) -> set[str]:
    return set(session.frame("select table_name from information_schema.tables")["table_name"])


def stage_export(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> Any:
    """Stage 6: export the date's care segments for the collections team (CSV, Parquet, manifest)."""
    from pipelines.exports import export_frame, write_exports

    with Warehouse(paths.warehouse).session(read_only=True) as session:
        segments = session.frame("select * from care_segments where as_of = $as_of order by customer_id",
                                 {"as_of": as_of})
    if segments.empty:
        log.warning("no care segments for %s: exporting an empty file", as_of)
    meta = {
        "policy_version": str(segments["policy_version"].iloc[0]) if len(segments) else "",
        "model_id": str(segments["model_id"].iloc[0]) if len(segments) else "",
        "postloan_care_version": PACKAGE_VERSION,
    }
    return write_exports(export_frame(segments, as_of), paths.exports, as_of, "care_segments",
                         list(settings["exports"]["formats"]), meta)


STAGES: dict[str, Callable[[RunPaths, date, Mapping[str, Any]], Any]] = {
    "load": stage_load,
    "behaviour": stage_behaviour,
    "embed": stage_embed,
    "call_insight": stage_call_insight,
    "segments": stage_segments,
    "export": stage_export,
}


def run_nightly(paths: RunPaths, as_of: date, settings: Mapping[str, Any]) -> RunSummary:
    """Run every stage in order for one as-of date; stop at the first failure."""
    summary = RunSummary(as_of=as_of)
    for number, (name, stage) in enumerate(STAGES.items(), start=1):
        log.info("[%d/%d] %s: starting for %s", number, len(STAGES), name, as_of)
        started = time.perf_counter()
        summary.reports[name] = stage(paths, as_of, settings)
        summary.seconds_by_stage[name] = time.perf_counter() - started
        log.info("[%d/%d] %s: done in %.1f s", number, len(STAGES), name, summary.seconds_by_stage[name])
    return summary
