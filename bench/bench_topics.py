"""Our clustering + naming vs a BERTopic-style pipeline on the same call vectors, side by side in one run.

Usage: python bench/bench_topics.py --warehouse W.duckdb --as-of YYYY-MM-DD [--truth truth.csv] [--runs 3]

Both sides start from what the call_insight stage has once it has read the night (untimed, done once, reported as
"shared preparation"): tonight's customer utterances (``call_utterances``) with their cached vectors
(``embedding_cache``), scored against the taxonomy and pooled into one unit vector per call (``call_evidence``).

- **ours** is the stage's own path from those call vectors to named themes, a fresh fit (what it does on a refit
  night): the taxonomy-guided theme space (``guided_vectors``), PCA + HDBSCAN and the assignment of outliers
  (``theme_night`` with no previous fit), the call and cluster decisions (``decided_calls``), and the analyst
  tables (``call_insight._theme_tables``: c-TF-IDF terms over jieba words, names, central quotes, drift).
- **BERTopic** gets the same call vectors (``fit_transform(documents, embeddings=vectors)``, no embedding model,
  so nothing is downloaded) with the documents being each call's customer turns joined: UMAP(n_neighbors=15,
  n_components=5, min_dist=0, cosine, random_state=42; BERTopic's defaults plus the seed), HDBSCAN with our
  min_cluster_size, and c-TF-IDF over a CountVectorizer that splits Chinese with jieba's default dictionary and
  English into words (tokens of 2+ characters, no stop words, like BERTopic's default vectorizer).

The two alternate (ours, BERTopic, ours, ...); medians of ``runs`` are printed. Before timing, each side pays its
one-off costs, reported as the warm-ups: ours imports and loads jieba's dictionary; BERTopic is imported and fitted
once on the first 4,200 calls, so numba's JIT compilation (NN-descent included) is not counted in its runs. The
process-wide memo of segmented texts (``insights.themes.text_terms``) is emptied before each of our runs: a
night's first fit on new calls segments them all. With a truth file (the demo's truth.csv: customer_id, ...,
sub_reason), each method's topics (outliers / review queue as one more label) are scored against the customers'
true sub-reason over the calls of customers with one: adjusted Rand index and normalised mutual information.
Redaction placeholders ([PHONE] ...) are dropped from BERTopic's tokens. BERTopic is optional: without it only
our side is measured. Asserts nothing.

UMAP is not reproducible here despite ``random_state``: the neighbour graph is bit-identical between fits, but
its spectral initialisation (scipy ``eigsh`` per connected component of the graph) is not, so BERTopic's topics
change from run to run; topic counts, outlier shares, ARI and NMI are therefore medians over the runs, with
each run's value alongside.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import re
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

UMAP_NEIGHBOURS = 15
UMAP_COMPONENTS = 5
WARMUP_CALLS = 4_200  # more than UMAP's exact-neighbour limit (4,096), so NN-descent is compiled too

_REDACTION = re.compile(r"\[[A-Z_]+\]")
_ENGLISH_WORD = re.compile(r"[a-z][a-z']*[a-z]")
_CHINESE_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


@dataclass(frozen=True, eq=False)
class NightInputs:
    """What the call_insight stage holds before clustering: the call evidence and the settings it clusters with."""

    as_of: date
    evidence: Any  # insights.intents.CallEvidence
    prototypes: Any  # insights.intents.IntentPrototypes
    options: Any  # insights.intents.InsightSettings
    theme_settings: Any  # insights.themes.ThemeSettings
    theme_model_id: str
    call_customers: np.ndarray  # customer_id per call, in evidence.call_ids order
    documents: list[str]  # per call: its customer turns joined with newlines, in turn order


@dataclass(frozen=True, eq=False)
class TopicRun:
    """One method's topics on the night's calls."""

    labels: np.ndarray  # topic per call (-1: outlier / review queue), in evidence.call_ids order
    topics: int
    outlier_share: float  # share of calls the clusterer left as noise
    final_outlier_share: float  # share of calls left without a topic in the output
    names: list[str]  # topic names, largest topic first


def bertopic_available() -> bool:
    """Return whether BERTopic (and the UMAP it needs) can be imported here."""
    return all(importlib.util.find_spec(name) is not None for name in ("bertopic", "umap"))


def night_inputs(warehouse: Path, as_of: date, settings: dict[str, Any] | None = None) -> NightInputs:
    """Read the night's utterances and vectors (read-only) and build the call evidence as the stage does."""
    from insights import themes
    from insights.intents import InsightSettings, call_evidence, intent_prototypes, load_taxonomy
    from insights.text import content_hash
    from pipelines.config import load_settings
    from pipelines.embed_shards import cached_vectors, stacked_vectors
    from pipelines.warehouse import Warehouse

    settings = settings or load_settings()
    insight = settings["insight"]
    taxonomy = load_taxonomy(insight.get("taxonomy"))
    theme_settings = themes.ThemeSettings.from_config({
        "min_cluster_size": int(insight["min_cluster_size"]), "n_components": int(insight["n_components"]),
        "seed": int(insight["seed"]), **(insight.get("themes") or {})})
    options = InsightSettings(min_cluster_size=int(insight["min_cluster_size"]),
                              n_components=int(insight["n_components"]), seed=int(insight["seed"]))
    with Warehouse(warehouse).session(read_only=True) as session:
        utterances = session.frame("select * from call_utterances where as_of = $as_of order by call_id, turn_no",
                                   {"as_of": as_of})
        if utterances.empty:
            raise SystemExit(f"{warehouse} has no call_utterances for {as_of}: run the embed stage first")
        model_id = str(utterances["model_id"].iloc[0])
        example_hashes = [content_hash(text, model_id) for text in taxonomy.examples["text"]]
        wanted = set(example_hashes) | set(utterances["content_hash"])
        cached = cached_vectors(session, sorted(wanted), model_id)
    missing = wanted - set(cached)
    if missing:
        raise SystemExit(f"{len(missing)} texts have no cached embedding for {model_id}: run the embed stage first")
    prototypes = intent_prototypes(taxonomy, stacked_vectors(cached, example_hashes))
    evidence = call_evidence(utterances[["call_id", "customer_id", "turn_no", "text"]],
                             stacked_vectors(cached, list(utterances["content_hash"])), prototypes, options)
    table = evidence.utterances
    customers = table["customer_id"].groupby(evidence.call_codes, sort=True).first().to_numpy()
    documents = table["text"].astype(str).groupby(evidence.call_codes, sort=True).agg("\n".join).tolist()
    return NightInputs(
        as_of=as_of, evidence=evidence, prototypes=prototypes, options=options, theme_settings=theme_settings,
        theme_model_id=f"{model_id}|taxonomy={taxonomy.version}|guide={theme_settings.guide_temperature}",
        call_customers=customers, documents=documents)


def our_topics(inputs: NightInputs) -> TopicRun:
    """Run the stage's clustering + naming on the night's call vectors as a fresh fit (no previous themes)."""
    from insights import themes
    from insights.intents import decided_calls
    from pipelines.call_insight import _theme_tables

    evidence, settings = inputs.evidence, inputs.theme_settings
    theme_space = themes.guided_vectors(evidence.call_vectors, inputs.prototypes, settings.guide_temperature)
    night = themes.theme_night(list(evidence.call_ids), theme_space, pd.DataFrame(columns=themes.STATE_COLUMNS),
                               None, inputs.as_of, inputs.theme_model_id, 0, settings)
    labels = night.assignments["theme_id"].to_numpy(dtype=np.int64)
    calls, clusters = decided_calls(evidence, labels, inputs.options)
    calls = calls.assign(is_outlier=night.assignments["is_outlier"].to_numpy(dtype=bool),
                         is_review=night.assignments["is_review"].to_numpy(dtype=bool),
                         theme_similarity=night.assignments["similarity"].to_numpy(dtype=np.float64))
    tables = _theme_tables(evidence, theme_space, calls, clusters, night, settings, inputs.as_of)
    named = tables["call_themes"].sort_values(["size", "theme_id"], ascending=[False, True], kind="stable")
    return TopicRun(labels=labels, topics=len(night.state),
                    outlier_share=float(night.clusterer_noise_share or 0.0),
                    final_outlier_share=float(np.mean(labels == themes.REVIEW)) if len(labels) else 0.0,
                    names=[str(name) for name in named["name"]])


@functools.cache
def _jieba() -> Any:
    """jieba's default tokenizer (no domain words: the BERTopic side knows nothing of ours)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba.Tokenizer()


def bertopic_terms(text: str) -> list[str]:
    """Tokens for BERTopic's CountVectorizer: English words and jieba words of Chinese runs, 2+ characters.

    Redaction placeholders ([PHONE], [ID] ...) are dropped: the customer did not say them, and left in they
    name every topic.
    """
    lowered = _REDACTION.sub(" ", str(text)).lower()
    english = _ENGLISH_WORD.findall(lowered)
    chinese = [word for run in _CHINESE_RUN.findall(lowered) for word in _jieba().lcut(run) if len(word) > 1]
    return english + chinese


def bertopic_topics(documents: Sequence[str], vectors: np.ndarray, min_cluster_size: int,
                    seed: int = 42) -> TopicRun:
    """Fit BERTopic (UMAP -> HDBSCAN -> c-TF-IDF) on precomputed vectors; no embedding model is loaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    model = BERTopic(
        embedding_model=None,
        umap_model=UMAP(n_neighbors=UMAP_NEIGHBOURS, n_components=UMAP_COMPONENTS, min_dist=0.0, metric="cosine",
                        random_state=seed),
        hdbscan_model=HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean", cluster_selection_method="eom",
                              prediction_data=True, core_dist_n_jobs=1),
        vectorizer_model=CountVectorizer(tokenizer=bertopic_terms, token_pattern=None, lowercase=False),
        top_n_words=10,
        language="multilingual",  # "english" would strip every non-ASCII character (all Chinese) before c-TF-IDF
    )
    with warnings.catch_warnings():  # "n_jobs value 1 overridden to 1 by setting random_state": known, harmless
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        topics, _ = model.fit_transform(list(documents), embeddings=np.asarray(vectors, dtype=np.float32))
    labels = np.asarray(topics, dtype=np.int64)
    info = model.get_topic_info()
    named = info[info["Topic"] != -1].sort_values(["Count", "Topic"], ascending=[False, True], kind="stable")
    outliers = float(np.mean(labels == -1)) if len(labels) else 0.0
    return TopicRun(labels=labels, topics=int(len(named)), outlier_share=outliers, final_outlier_share=outliers,
                    names=[str(name) for name in named["Name"]])


def truth_sub_reasons(truth: Path) -> pd.Series:
    """Return the true sub-reason per customer_id from the demo's truth.csv (customers without one left out)."""
    frame = pd.read_csv(truth, dtype=str, keep_default_na=False)
    if not {"customer_id", "sub_reason"} <= set(frame.columns):
        raise ValueError(f"{truth}: needs customer_id and sub_reason columns, has {list(frame.columns)}")
    known = frame[frame["sub_reason"].str.strip() != ""]
    return pd.Series(known["sub_reason"].to_numpy(), index=known["customer_id"].to_numpy(), dtype=object)


def agreement(labels: np.ndarray, call_customers: np.ndarray, sub_reasons: pd.Series) -> dict[str, float | int]:
    """Adjusted Rand index and normalised mutual information of topics vs true sub-reasons, over labelled calls.

    Outliers (-1) count as one more topic: a method does not gain by leaving hard calls out.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels)
    if labels.shape != (len(call_customers),):
        raise ValueError(f"{labels.shape[0]} labels for {len(call_customers)} calls")
    truth = pd.Series(call_customers, dtype=object).map(sub_reasons)
    known = truth.notna().to_numpy()
    if not known.any():
        return {"calls": 0, "ari": float("nan"), "nmi": float("nan")}
    expected = truth[known].astype(str).to_numpy()
    return {"calls": int(known.sum()), "ari": float(adjusted_rand_score(expected, labels[known])),
            "nmi": float(normalized_mutual_info_score(expected, labels[known]))}


def _imported(names: Sequence[str]) -> list[Any]:
    return [importlib.import_module(name) for name in names]


def _our_warmup(documents: Sequence[str]) -> None:
    """Pay our side's one-off costs outside its runs: imports and jieba's dictionary."""
    from insights import themes

    _imported(("hdbscan", "sklearn.decomposition", "scipy.optimize", "pipelines.call_insight"))
    for document in documents:
        themes.text_terms(document)


def _forget_text_terms() -> None:
    """Empty the process-wide memo of `insights.themes.text_terms`, so every run of ours segments its texts.

    The memo would make runs after the first skip jieba, which a night's first fit of new calls cannot do.
    """
    from insights import themes

    memo = getattr(themes, "_TERMS_MEMO", None)
    if isinstance(memo, dict):
        memo.clear()


def _timed(function: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def _summary(seconds: list[float], runs: list[TopicRun], call_customers: np.ndarray,
             sub_reasons: pd.Series | None) -> dict[str, Any]:
    """Figures of one method: medians over its runs (each run's value too), names from the last run."""
    per_run: dict[str, list[float]] = {
        "topics": [run.topics for run in runs], "outlier_share": [run.outlier_share for run in runs],
        "final_outlier_share": [run.final_outlier_share for run in runs]}
    if sub_reasons is not None:
        scores = [agreement(run.labels, call_customers, sub_reasons) for run in runs]
        per_run.update(ari=[s["ari"] for s in scores], nmi=[s["nmi"] for s in scores])
    summary: dict[str, Any] = {"seconds": statistics.median(seconds), "runs_seconds": seconds}
    summary.update({name: statistics.median(values) for name, values in per_run.items()})
    summary.update({f"{name}_per_run": values for name, values in per_run.items()})
    summary.update(same_labels_every_run=all(np.array_equal(runs[0].labels, run.labels) for run in runs),
                   top_names=runs[-1].names[:5])
    if sub_reasons is not None:
        summary["truth_calls"] = scores[-1]["calls"]
    return summary


def compare_topics(warehouse: Path, as_of: date, truth: Path | None, runs: int = 3,
                   with_bertopic: bool | None = None) -> dict[str, Any]:
    """Time our clustering + naming and BERTopic on the night's call vectors, alternating; return the figures.

    Keys: as_of, calls, utterances, vector_dims, runs, min_cluster_size, prepare_seconds; ours / bertopic:
    seconds (median), runs_seconds, topics, outlier_share (the clusterer's noise), final_outlier_share (calls
    left without a topic), and with a truth file ari, nmi, truth_calls (medians over runs; ``<name>_per_run``
    holds each run's), same_labels_every_run, top_names; ours_warmup_seconds, bertopic_import_seconds,
    bertopic_warmup_seconds, warmup_calls, ours_vs_bertopic (our median seconds / BERTopic's). Without
    BERTopic, bertopic is None and bertopic_missing says why.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    missing = "" if with_bertopic or bertopic_available() else "bertopic or umap-learn is not installed"
    missing = "skipped (with_bertopic=False)" if with_bertopic is False else missing
    with_bertopic = not missing
    prepare_seconds, inputs = _timed(night_inputs, warehouse, as_of)
    vectors = inputs.evidence.call_vectors
    min_cluster_size = inputs.theme_settings.min_cluster_size
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(), "calls": len(inputs.documents), "utterances": len(inputs.evidence.utterances),
        "vector_dims": int(vectors.shape[1]) if vectors.ndim == 2 else 0, "runs": runs,
        "min_cluster_size": min_cluster_size, "prepare_seconds": prepare_seconds, "bertopic": None,
        "bertopic_missing": missing,
        "ours_warmup_seconds": None, "bertopic_import_seconds": None,
        "bertopic_warmup_seconds": None, "warmup_calls": 0, "ours_vs_bertopic": None}
    result["ours_warmup_seconds"], _ = _timed(_our_warmup, inputs.documents[:WARMUP_CALLS])
    if with_bertopic:
        result["bertopic_import_seconds"], _ = _timed(_imported, ("bertopic", "umap"))
        warm = slice(0, min(WARMUP_CALLS, len(inputs.documents)))
        result["warmup_calls"] = warm.stop
        result["bertopic_warmup_seconds"], _ = _timed(
            bertopic_topics, inputs.documents[warm], vectors[warm], min_cluster_size,
            inputs.theme_settings.seed)
    ours_seconds: list[float] = []
    ours_runs: list[TopicRun] = []
    theirs_seconds: list[float] = []
    theirs_runs: list[TopicRun] = []
    for _ in range(runs):
        _forget_text_terms()
        seconds, run = _timed(our_topics, inputs)
        ours_seconds.append(seconds)
        ours_runs.append(run)
        if with_bertopic:
            seconds, run = _timed(bertopic_topics, inputs.documents, vectors, min_cluster_size,
                                  inputs.theme_settings.seed)
            theirs_seconds.append(seconds)
            theirs_runs.append(run)
    sub_reasons = truth_sub_reasons(truth) if truth is not None else None
    for key, seconds_list, method_runs in (("ours", ours_seconds, ours_runs),
                                           ("bertopic", theirs_seconds, theirs_runs)):
        if method_runs:
            result[key] = _summary(seconds_list, method_runs, inputs.call_customers, sub_reasons)
    if result["bertopic"] is not None:
        result["ours_vs_bertopic"] = result["ours"]["seconds"] / result["bertopic"]["seconds"]
    return result


def print_comparison(result: dict[str, Any]) -> None:
    """Print the figures of `compare_topics` as a small table."""
    print(f"clustering + naming vs BERTopic on the same {result['calls']:,} call vectors "
          f"({result['vector_dims']}-d, from {result['utterances']:,} utterances; as-of {result['as_of']}); "
          f"shared preparation (read + call evidence) {result['prepare_seconds']:.1f} s, untimed below")
    methods = [("ours", result["ours"])] + ([("BERTopic", result["bertopic"])] if result["bertopic"] else [])
    truth = "ari" in result["ours"]
    header = f"{'method':<10}{'seconds':>9}{'runs':>22}{'topics':>8}{'noise':>8}{'no topic':>10}"
    print(header + (f"{'ARI':>7}{'NMI':>7}" if truth else ""))
    for name, figures in methods:
        runs = " ".join(f"{s:.1f}" for s in figures["runs_seconds"])
        line = (f"{name:<10}{figures['seconds']:>9.1f}{runs:>22}{figures['topics']:>8.0f}"
                f"{figures['outlier_share']:>8.1%}{figures['final_outlier_share']:>10.1%}")
        print(line + (f"{figures['ari']:>7.3f}{figures['nmi']:>7.3f}" if truth else ""))
    if truth:
        print(f"ARI/NMI vs the customers' true sub-reason over {result['ours']['truth_calls']:,} calls "
              "(no topic counted as one more label)")
    if result["bertopic"] is None:
        print(f"BERTopic: not measured ({result['bertopic_missing']})")
        return
    print(f"ours / BERTopic: {result['ours_vs_bertopic']:.2f}x (medians of {result['runs']}, alternating); not in "
          f"the runs: our warm-up {result['ours_warmup_seconds']:.1f} s, BERTopic import "
          f"{result['bertopic_import_seconds']:.1f} s and warm-up fit on {result['warmup_calls']:,} calls (numba JIT) "
          f"{result['bertopic_warmup_seconds']:.1f} s")
    unstable = [name for name, figures in methods if not figures["same_labels_every_run"]]
    for name in unstable:
        figures = dict(methods)[name]
        print(f"{name}: labels differed between runs (figures are medians); per run: topics "
              + " ".join(f"{t:.0f}" for t in figures["topics_per_run"])
              + ("; ARI " + " ".join(f"{a:.3f}" for a in figures["ari_per_run"]) if truth else ""))
    for name, figures in methods:
        print(f"{name} largest topics: " + "; ".join(figures["top_names"][:3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="a warehouse after the embed stage (read only)")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--truth", type=Path, default=None, help="the demo's truth.csv (customer_id, sub_reason)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each method (median printed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = compare_topics(args.warehouse, args.as_of, args.truth, args.runs)
    print_comparison(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
