"""Stage 4, call insight: embedded utterances -> stable themes -> intent per call -> promises -> optional LLM.

Reads what the embed stage wrote for the as-of date (``call_utterances``, ``calls_in_window``, the embedding
cache) and the theme fit in force (``theme_centroids``), computes with the pure functions of ``insights``
and replaces its own partitions, so a rerun of a date changes nothing:

| table | grain |
|---|---|
| ``call_insights`` | call: theme (``cluster_id``), outlier flags, intent, sub-reason, score, evidence, LLM flag |
| ``call_clusters`` | theme with calls tonight: size, name, intent, sub-reason (kept for existing queries) |
| ``call_themes`` | theme in force: size and share tonight, name, intent, sub-reason, 3 central quotes, new-theme flag |
| ``call_theme_terms`` | theme x language x rank: c-TF-IDF term, score, count (theme -1 = the review queue) |
| ``call_theme_members`` | call: theme, cosine to the centroid, outlier / review flags, central-quote rank |
| ``call_theme_drift`` | theme (review queue -1 included): calls, share tonight, share at fit time |
| ``call_theme_runs`` | night: fit in force, refit reason, drift, themes, outlier share before / after handling |
| ``theme_centroids`` | theme x fit night: written only on a refit night (the state later nights read) |
| ``promises`` | promise to pay found tonight (judged by the behaviour stage of later nights) |
| ``call_llm_insights`` | call: LLM summary and fields (only when ``insight.llm.backend`` is set) |
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pipelines.contracts import derived_contract_engine, partition_checks
from pipelines.warehouse import Session, Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InsightReport:
    """What the call-insight stage did."""

    calls: int
    utterances: int
    clusters: int
    outliers: int
    model_id: str
    review: int = 0
    refit_reason: str = ""
    drift: float | None = None
    new_themes: int = 0
    promises: int = 0
    llm_readings: int = 0
    llm_disagreements: int = 0
    outlier_share_before: float = 0.0
    outlier_share_after: float = 0.0


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recalled_text_terms(session: Session, texts: Iterable[str]) -> int:
    """Seed ``insights.themes.text_terms`` with the terms ``text_terms_cache`` holds for ``texts``; return how many."""
    from insights.themes import remember_text_terms, terms_version

    keyed = {_text_key(text): text for text in set(texts)}
    if not keyed or "text_terms_cache" not in session.table_names():
        return 0
    found = session.frame("select text_key, terms from text_terms_cache where terms_version = $version "
                          "and text_key in (select unnest($keys::varchar[]))",
                          {"version": terms_version(), "keys": sorted(keyed)})
    remember_text_terms({keyed[key]: list(terms) for key, terms in zip(found["text_key"], found["terms"],
                                                                        strict=True)})
    return len(found)


def stored_text_terms(session: Session, texts: Iterable[str]) -> int:
    """Add the terms of ``texts`` not yet cached to ``text_terms_cache``; return how many texts were offered."""
    from insights.themes import terms_version, text_terms

    distinct = sorted(set(texts))
    frame = pd.DataFrame({"text_key": [_text_key(text) for text in distinct], "terms_version": terms_version(),
                          "terms": [text_terms(text) for text in distinct]})
    return session.insert_frame("text_terms_cache", frame, ignore_existing_keys=True)


def build_call_insight(warehouse: Warehouse, as_of: date, settings: Mapping[str, Any]) -> InsightReport:
    """Run call insight for one as-of date and replace its partitions (see the module docstring)."""
    from insights import themes
    from insights.embedding import embedder_from_config
    from insights.intents import InsightSettings, call_evidence, decided_calls, intent_prototypes, load_taxonomy
    from insights.text import content_hash
    from pipelines.embed_shards import cached_vectors, stacked_vectors

    insight = settings["insight"]
    taxonomy = load_taxonomy(insight.get("taxonomy"))
    theme_settings = themes.ThemeSettings.from_config({
        "min_cluster_size": int(insight["min_cluster_size"]), "n_components": int(insight["n_components"]),
        "seed": int(insight["seed"]), **(insight.get("themes") or {})})
    with warehouse.session() as session:
        utterances = session.frame("select * from call_utterances where as_of = $as_of order by call_id, turn_no",
                                   {"as_of": as_of})
        recalled = recalled_text_terms(session, utterances["text"].astype(str))
        # the model the embed stage used; with no utterances, the configured one (cheap: loads on first encode)
        model_id = str(utterances["model_id"].iloc[0]) if len(utterances) else \
            embedder_from_config(settings["embedding"]).model_id
        window_calls = session.frame("select call_id, customer_id, started_at from calls_in_window "
                                     "where as_of = $as_of order by call_id", {"as_of": as_of})
        example_hashes = [content_hash(t, model_id) for t in taxonomy.examples["text"]]
        cached = cached_vectors(session, sorted(set(example_hashes) | set(utterances["content_hash"])), model_id)
        missing = (set(example_hashes) | set(utterances["content_hash"])) - set(cached)
        if missing:
            raise RuntimeError(f"{len(missing)} texts have no cached embedding for {model_id}; run the embed stage "
                               "for this date first")
        prototypes = intent_prototypes(taxonomy, stacked_vectors(cached, example_hashes))
        options = InsightSettings(min_cluster_size=int(insight["min_cluster_size"]),
                                  n_components=int(insight["n_components"]), seed=int(insight["seed"]))
        evidence = call_evidence(utterances[["call_id", "customer_id", "turn_no", "text"]],
                                 stacked_vectors(cached, list(utterances["content_hash"])), prototypes, options)

        previous, previous_fitted_on, next_id = _theme_state_before(session, as_of)
        theme_space = themes.guided_vectors(evidence.call_vectors, prototypes, theme_settings.guide_temperature)
        # theme centroids depend on the embedding model and, in the guided space, on the taxonomy
        theme_model_id = f"{model_id}|taxonomy={taxonomy.version}|guide={theme_settings.guide_temperature}"
        night = themes.theme_night(list(evidence.call_ids), theme_space, previous, previous_fitted_on,
                                   as_of, theme_model_id, next_id, theme_settings)
        labels = night.assignments["theme_id"].to_numpy(dtype=np.int64)
        calls, clusters = decided_calls(evidence, labels, options)
        calls = calls.assign(is_outlier=night.assignments["is_outlier"].to_numpy(dtype=bool),
                             is_review=night.assignments["is_review"].to_numpy(dtype=bool),
                             theme_similarity=night.assignments["similarity"].to_numpy(dtype=np.float64))
        theme_tables = _theme_tables(evidence, theme_space, calls, clusters, night, theme_settings, as_of)

        call_on = _call_local_dates(session, window_calls, as_of, str((insight.get("promises") or {}).get(
            "default_timezone") or "Asia/Shanghai"))
        found = _promises(utterances, call_on, insight.get("promises") or {})
        readings = _llm_readings(utterances, call_on, insight.get("llm") or {}, taxonomy)
        calls = calls.assign(llm_disagrees=_llm_disagrees(calls, readings))
        calls = _with_silent_calls(calls, window_calls).assign(model_id=model_id,
                                                               taxonomy_version=str(taxonomy.version))

        engine = derived_contract_engine(settings)
        session.replace_partition("call_insights", as_of, calls, **partition_checks("call_insights", engine))
        stored_text_terms(session, utterances["text"].astype(str))
        log.info("c-TF-IDF terms: %d of %d distinct texts recalled from text_terms_cache", recalled,
                 utterances["text"].nunique())
        session.replace_partition("call_clusters", as_of, theme_tables["call_clusters"].assign(model_id=model_id))
        for table in ("call_themes", "call_theme_terms", "call_theme_members", "call_theme_drift",
                      "call_theme_runs"):
            session.replace_partition(table, as_of, theme_tables[table].assign(model_id=model_id))
        if night.fitted_on == as_of:
            session.replace_partition("theme_centroids", as_of, night.state)
        else:
            session.execute("delete from theme_centroids where as_of = $as_of", {"as_of": as_of})
        session.replace_partition("promises", as_of, found, **partition_checks("promises", engine))
        if readings is not None:
            session.replace_partition("call_llm_insights", as_of, readings)
        elif "call_llm_insights" in session.table_names():
            session.execute("delete from call_llm_insights where as_of = $as_of", {"as_of": as_of})

    runs = theme_tables["call_theme_runs"].iloc[0]
    report = InsightReport(
        calls=len(calls), utterances=len(utterances), clusters=len(theme_tables["call_clusters"]),
        outliers=int(calls["is_outlier"].sum()) if len(calls) else 0, model_id=model_id,
        review=int(calls["is_review"].fillna(False).astype(bool).sum()) if len(calls) else 0,
        refit_reason=night.refit_reason, drift=night.drift, new_themes=int(runs["new_themes"]),
        promises=len(found), llm_readings=0 if readings is None else len(readings),
        llm_disagreements=int(calls["llm_disagrees"].fillna(False).astype(bool).sum()) if len(calls) else 0,
        outlier_share_before=float(runs["outlier_share_before"]),
        outlier_share_after=float(runs["outlier_share_after"]))
    log.info("call insight: %s", report)
    return report


def _theme_state_before(session: Session, as_of: date) -> tuple[pd.DataFrame, date | None, int]:
    """Return the fit in force before `as_of` (latest fit night strictly before it), its date, and the next free ID."""
    from insights.themes import STATE_COLUMNS

    fitted_on = session.scalar("select max(as_of) from theme_centroids where as_of < $as_of", {"as_of": as_of})
    next_id = session.scalar("select coalesce(max(theme_id), -1) + 1 from theme_centroids where as_of < $as_of",
                             {"as_of": as_of})
    if fitted_on is None:
        return pd.DataFrame(columns=STATE_COLUMNS), None, int(next_id)
    state = session.frame(f"select {', '.join(STATE_COLUMNS)} from theme_centroids where as_of = $fitted_on "
                          "order by theme_id", {"fitted_on": fitted_on})
    state["centroid"] = [np.asarray(c, dtype=np.float32) for c in state["centroid"]]
    state["first_seen_on"] = [pd.Timestamp(d).date() for d in state["first_seen_on"]]
    return state, pd.Timestamp(fitted_on).date(), int(next_id)


def _theme_tables(evidence: Any, theme_space: np.ndarray, calls: pd.DataFrame, clusters: pd.DataFrame,
                  night: Any, settings: Any, as_of: date) -> dict[str, pd.DataFrame]:
    """Return the analyst tables of the themes: names, terms, members, central quotes, drift and the night's figures."""
    from insights import themes

    labels = night.assignments["theme_id"].to_numpy(dtype=np.int64)
    utterance_labels = labels[evidence.call_codes] if len(labels) else np.zeros(0, dtype=np.int64)
    terms = themes.class_term_scores(evidence.utterances["text"].tolist(), utterance_labels.tolist(),
                                     settings.top_terms).rename(columns={"label": "theme_id"})
    terms["theme_id"] = terms["theme_id"].astype(np.int64)
    quotes = themes.central_quotes(theme_space, labels, night.state, calls["evidence"].tolist(),
                                   settings.quotes)
    by_cluster = clusters.set_index("cluster_id") if len(clusters) else pd.DataFrame()
    counts = pd.Series(labels).value_counts()
    rows = []
    for theme in night.state.itertuples(index=False):
        theme_id = int(theme.theme_id)
        known = theme_id in by_cluster.index
        intent = str(by_cluster.at[theme_id, "intent"]) if known else "unclear"
        sub_reason = str(by_cluster.at[theme_id, "sub_reason"]) if known else ""
        theme_terms = terms[terms["theme_id"] == theme_id]
        theme_quotes = quotes[quotes["theme_id"] == theme_id].sort_values("rank")["quote"].tolist()
        theme_quotes += [""] * (settings.quotes - len(theme_quotes))
        rows.append({
            "theme_id": theme_id, "size": int(counts.get(theme_id, 0)),
            "share": float(counts.get(theme_id, 0)) / max(len(labels), 1),
            "name": themes.theme_name(theme_terms, intent, sub_reason),
            "intent": intent, "sub_reason": sub_reason,
            "intent_score": float(by_cluster.at[theme_id, "intent_score"]) if known else 0.0,
            "top_terms_zh": " ".join(theme_terms[theme_terms["language"] == "zh"].sort_values("rank")["term"]),
            "top_terms_en": " ".join(theme_terms[theme_terms["language"] == "en"].sort_values("rank")["term"]),
            **{f"quote_{i + 1}": theme_quotes[i] for i in range(settings.quotes)},
            "fitted_on": night.fitted_on, "first_seen_on": theme.first_seen_on,
            "is_new": bool(theme.is_new) and night.fitted_on == as_of,
            "needs_review": bool(theme.is_new),
        })
    call_themes = pd.DataFrame(rows, columns=[
        "theme_id", "size", "share", "name", "intent", "sub_reason", "intent_score", "top_terms_zh",
        "top_terms_en", *[f"quote_{i + 1}" for i in range(settings.quotes)], "fitted_on", "first_seen_on",
        "is_new", "needs_review"])
    central = quotes.assign(call_id=[evidence.call_ids[row] for row in quotes["call_row"]])
    members = calls[["call_id", "customer_id", "cluster_id", "theme_similarity", "is_outlier", "is_review"]] \
        .rename(columns={"cluster_id": "theme_id", "theme_similarity": "similarity"}) \
        .merge(central[["call_id", "rank"]].rename(columns={"rank": "central_rank"}), on="call_id", how="left")
    names = call_themes.set_index("theme_id")["name"]
    call_clusters = clusters.assign(name=clusters["cluster_id"].map(names).fillna(clusters["name"])) \
        if len(clusters) else clusters
    drift = themes.theme_drift(labels, night.state).assign(fitted_on=night.fitted_on)
    n = max(len(labels), 1)
    runs = pd.DataFrame([{
        "fitted_on": night.fitted_on, "refit_reason": night.refit_reason, "drift": night.drift,
        "calls": len(labels), "themes": len(night.state), "new_themes": int(call_themes["is_new"].sum()),
        "retired_themes": len(night.retired_themes),
        "outlier_share_before": float(calls["is_outlier"].sum()) / n if len(labels) else 0.0,
        "outlier_share_after": float(calls["is_review"].sum()) / n if len(labels) else 0.0,
        "clusterer_noise_share": night.clusterer_noise_share,
    }])
    return {"call_themes": call_themes, "call_theme_terms": terms, "call_theme_members": members,
            "call_theme_drift": drift, "call_theme_runs": runs, "call_clusters": call_clusters}


def _call_local_dates(session: Session, window_calls: pd.DataFrame, as_of: date, default_timezone: str) -> pd.Series:
    """Return the local date of each call (customer's timezone from stg_customers, else the default), by call_id."""
    zones = session.model_frame("staging/customer_timezones", {"as_of": as_of})
    zone_of = dict(zip(zones["customer_id"], zones["timezone"], strict=True))
    started = pd.to_datetime(window_calls["started_at"], utc=True).reset_index(drop=True)
    zone = pd.Series([str(zone_of.get(c) or default_timezone) for c in window_calls["customer_id"]], dtype=object)
    dates = np.empty(len(window_calls), dtype=object)
    for name, rows in zone.groupby(zone, sort=True).groups.items():  # one conversion per timezone, not per call
        local = started.loc[rows].dt.tz_convert(ZoneInfo(str(name)))
        dates[np.asarray(rows, dtype=np.int64)] = [stamp.date() for stamp in local]
    return pd.Series(dates, index=window_calls["call_id"].to_numpy(), dtype=object)


def _promises(utterances: pd.DataFrame, call_on: pd.Series, config: Mapping[str, Any]) -> pd.DataFrame:
    from insights.promises import call_promises

    frame = utterances[["call_id", "customer_id", "turn_no", "text"]].assign(
        call_on=utterances["call_id"].map(call_on))
    return call_promises(frame[frame["call_on"].notna()], int(config.get("payday_day_of_month", 15)))


def _llm_readings(utterances: pd.DataFrame, call_on: pd.Series, config: Mapping[str, Any],
                  taxonomy: Any) -> pd.DataFrame | None:
    """LLM readings of tonight's calls, or None when the LLM stage is off."""
    from insights.llm import call_readings, reader_from_config

    sub_reasons = {intent: list(group["sub_reason"]) for intent, group in
                   taxonomy.sub_reasons.groupby("intent", sort=False)}
    reader = reader_from_config(config, sub_reasons)
    if reader is None:
        return None
    calls = utterances.sort_values(["call_id", "turn_no"]).groupby("call_id", sort=True).agg(
        customer_id=("customer_id", "first"), text=("text", lambda texts: "\n".join(texts))).reset_index()
    calls["call_on"] = calls["call_id"].map(call_on)
    max_calls = config.get("max_calls")
    readings = call_readings(calls, reader, int(max_calls) if max_calls else None)
    readings["promised_on"] = pd.to_datetime(readings["promised_on"])  # typed even when every value is null
    log.info("LLM call insight (%s): %d calls read, %d failed", reader.model_id, len(readings),
             int((readings["error"] != "").sum()))
    return readings


def _llm_disagrees(calls: pd.DataFrame, readings: pd.DataFrame | None) -> np.ndarray:
    from insights.llm import disagreements

    if readings is None or calls.empty:
        return np.zeros(len(calls), dtype=bool)
    return disagreements(calls, readings).to_numpy(dtype=bool)


def _with_silent_calls(calls: pd.DataFrame, window_calls: pd.DataFrame) -> pd.DataFrame:
    """Return call insights plus an ``unclear`` row for each call in the window where the customer said nothing.

    Such calls still count as contact (the customer picked up and only greeted or hung up); they belong to no
    theme and need no review.
    """
    silent = window_calls[~window_calls["call_id"].isin(calls["call_id"])].assign(
        cluster_id=-1, is_outlier=True, intent="unclear", sub_reason="", intent_score=0.0, evidence="",
        is_review=False, theme_similarity=0.0, llm_disagrees=False)
    started = window_calls[["call_id", "started_at"]]
    return pd.concat([calls.merge(started, on="call_id", how="left"), silent], ignore_index=True) \
        .sort_values("call_id", kind="stable").reset_index(drop=True)

