"""Intents from the customer's own words: taxonomy, prototype scoring, and the call-level decision.

Glossary: an *utterance* is one customer turn; a *prototype* is one embedded example phrase of the taxonomy;
`neutral` is the null class of small talk; `unclear` is the decision when no intent is supported well enough.

Utterance scores (`utterance_intent_scores`). Each utterance is compared (cosine) with every example
phrase. An intent's similarity is the mean of its `top_k` best phrase similarities (more robust than the
single nearest phrase; per-phrase prototypes also keep sub-reasons: the best sub-reason is the one whose two
nearest phrases match best). The neutral similarity is floored at `null_similarity`, so an utterance that
matches *nothing* well (off-topic chatter) scores as neutral instead of being forced into the least-bad
intent. A softmax with `temperature` turns the similarities into probabilities over the intents + neutral;
temperature and floor were chosen on a leave-one-out pass over the taxonomy phrases plus a list of off-topic
sentences, with the USE model (held-out figures in tests/unit/test_intents.py).

Call decision (`call_insight`). A call's *own* score per intent is the best probability any of its utterances
gives that intent (one clear sentence is enough; small talk around it does not dilute it). Calls are clustered
(`insights.clustering`) on a call vector that weights each utterance by `1 - p(neutral) + small_talk_weight`,
and each cluster's *prior* is the mean own score of its members. The combined score is
`(1 - cluster_weight) * own + cluster_weight * prior` (outliers: own only). Then:

1. If the call's own scores are decisive (best >= `min_intent_score` and ahead of the runner-up intent by
   >= `min_margin`), the call keeps its own intent: the cluster can never flip strong, contrary evidence.
   The cluster still moves the reported confidence (the combined score): up when it agrees, down when not.
2. Otherwise the combined scores decide with the same two thresholds: a cluster can tip a call whose own
   evidence was weak or split, but with `cluster_weight < min_intent_score` a call of pure small talk (own
   scores near 0) can never reach the threshold, so it stays `unclear`.
3. Anything else is `unclear`, with score `1 - best combined intent score`.

The sub-reason and the evidence come from the call's own utterance that best supports the chosen intent
(for `unclear`, its most neutral utterance).
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from insights import clustering

logger = logging.getLogger(__name__)

NEUTRAL = "neutral"
UNCLEAR = "unclear"
REQUIRED_LANGUAGES = ("zh", "en")
EVIDENCE_MAX_CHARS = 80
TOP_TERMS = 5

_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_SUB_REASON_TOP_K = 2
_SCORING_BLOCK = 4096
_UTTERANCE_COLUMNS = ("call_id", "customer_id", "turn_no", "text")
_CALL_COLUMNS = (
    "call_id",
    "customer_id",
    "cluster_id",
    "is_outlier",
    "intent",
    "sub_reason",
    "intent_score",
    "evidence",
)
_CLUSTER_COLUMNS = ("cluster_id", "size", "name", "intent", "sub_reason", "intent_score", "top_terms")


@dataclass(frozen=True, eq=False)
class Taxonomy:
    """The intent taxonomy as frames: sub-reasons with labels, and every example phrase (neutral included)."""

    version: str
    intents: tuple[str, ...]
    sub_reasons: pd.DataFrame  # intent, sub_reason, label_en, label_zh
    examples: (
        pd.DataFrame
    )  # intent, sub_reason, language, text; neutral rows: intent "neutral", sub_reason ""
    descriptions: pd.DataFrame  # intent, description_en, description_zh


@dataclass(frozen=True, eq=False)
class IntentPrototypes:
    """Embedded example phrases: one unit vector per phrase, labelled with its intent and sub-reason."""

    labels: pd.DataFrame  # intent, sub_reason
    vectors: np.ndarray  # (n_phrases, d) float32, L2-normalised rows

    @property
    def intents(self) -> tuple[str, ...]:
        """The real intents (not neutral), in taxonomy order."""
        return tuple(intent for intent in pd.unique(self.labels["intent"]) if intent != NEUTRAL)


@dataclass(frozen=True)
class InsightSettings:
    """Knobs of the call-insight stage; defaults were measured with the USE multilingual model."""

    min_cluster_size: int = 8
    """Smallest group of calls HDBSCAN reports as a cluster; smaller inputs make every call an outlier."""
    min_samples: int | None = None
    """HDBSCAN's density smoothing (None = min_cluster_size); higher means more outliers."""
    n_components: int = 15
    """PCA dimensions before HDBSCAN, capped at min(n_calls - 1, embedding dimension)."""
    seed: int = 42
    """Seed of every random step (PCA's randomized solver)."""
    min_intent_score: float = 0.4
    """Least probability an intent needs to be chosen; below it the call is unclear."""
    min_margin: float = 0.1
    """Least lead of the chosen intent over the runner-up intent; a closer split is unclear."""
    cluster_weight: float = 0.3
    """Share of the cluster's mean scores in a clustered call's score; keep it below min_intent_score."""
    top_k: int = 3
    """Phrases averaged per intent when scoring an utterance (mean of the k best similarities)."""
    temperature: float = 0.03
    """Softmax temperature turning cosine similarities into probabilities (smaller = sharper)."""
    null_similarity: float = 0.4
    """Floor of the neutral similarity: an utterance matching no phrase better than this scores neutral."""
    small_talk_weight: float = 0.05
    """Base weight of every utterance in its call vector, so a small-talk-only call still has a vector."""

    def __post_init__(self) -> None:
        """Reject settings that would make the decision meaningless."""
        checks = {
            "min_cluster_size must be >= 2": self.min_cluster_size >= 2,
            "min_samples must be >= 1 or None": self.min_samples is None or self.min_samples >= 1,
            "n_components must be >= 1": self.n_components >= 1,
            "min_intent_score must be in [0, 1]": 0.0 <= self.min_intent_score <= 1.0,
            "min_margin must be in [0, 1]": 0.0 <= self.min_margin <= 1.0,
            "cluster_weight must be in [0, 1)": 0.0 <= self.cluster_weight < 1.0,
            "top_k must be >= 1": self.top_k >= 1,
            "temperature must be > 0": self.temperature > 0,
            "small_talk_weight must be > 0": self.small_talk_weight > 0,
        }
        problems = [message for message, ok in checks.items() if not ok]
        if problems:
            raise ValueError("; ".join(problems))


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Return the taxonomy read from `path` (None or "": the packaged insights/taxonomy.yaml), validated."""
    if not path:
        source = "insights/taxonomy.yaml"
        text = importlib.resources.files("insights").joinpath("taxonomy.yaml").read_text(encoding="utf-8")
    else:
        source = str(path)
        text = Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{source}: not valid YAML: {error}") from error
    return taxonomy_from_mapping(raw, source)


def taxonomy_from_mapping(raw: object, source: str = "taxonomy") -> Taxonomy:
    """Return a validated Taxonomy from parsed YAML; raise ValueError naming the first problem found."""
    top = _mapping(raw, source, {"version", "intents", "neutral"})
    version = top.get("version")
    if version is None or isinstance(version, bool) or not str(version).strip():
        raise ValueError(f"{source}: 'version' is missing or empty")
    intents = _mapping(top.get("intents"), f"{source}: intents", None)
    if not intents:
        raise ValueError(f"{source}: 'intents' must list at least one intent")

    sub_reason_rows: list[tuple[str, str, str, str]] = []
    example_rows: list[tuple[str, str, str, str]] = []
    description_rows: list[tuple[str, str, str]] = []
    for intent, intent_body in intents.items():
        where = f"{source}: intent {intent!r}"
        _check_code(intent, where)
        if intent in (NEUTRAL, UNCLEAR):
            raise ValueError(f"{where}: the name is reserved")
        body = _mapping(intent_body, where, {"description", "sub_reasons"})
        description = _bilingual(body.get("description"), f"{where}: description")
        description_rows.append((intent, description["en"], description["zh"]))
        sub_reasons = _mapping(body.get("sub_reasons"), f"{where}: sub_reasons", None)
        if not sub_reasons:
            raise ValueError(f"{where}: 'sub_reasons' must list at least one sub-reason")
        for code, sub_body in sub_reasons.items():
            sub_where = f"{where}: sub-reason {code!r}"
            _check_code(code, sub_where)
            if any(code == row[1] for row in sub_reason_rows):
                raise ValueError(f"{sub_where}: the code is used twice")
            sub = _mapping(sub_body, sub_where, {"label", "examples"})
            label = _bilingual(sub.get("label"), f"{sub_where}: label")
            sub_reason_rows.append((intent, code, label["en"], label["zh"]))
            for language, text in _phrases(sub.get("examples"), f"{sub_where}: examples"):
                example_rows.append((intent, code, language, text))
    for language, text in _phrases(top.get("neutral"), f"{source}: neutral"):
        example_rows.append((NEUTRAL, "", language, text))

    examples = pd.DataFrame(example_rows, columns=["intent", "sub_reason", "language", "text"])
    _check_no_conflicting_phrases(examples, source)
    return Taxonomy(
        version=str(version).strip(),
        intents=tuple(intents),
        sub_reasons=pd.DataFrame(sub_reason_rows, columns=["intent", "sub_reason", "label_en", "label_zh"]),
        examples=examples,
        descriptions=pd.DataFrame(description_rows, columns=["intent", "description_en", "description_zh"]),
    )


def intent_prototypes(taxonomy: Taxonomy, vectors_for_examples: np.ndarray) -> IntentPrototypes:
    """Prototypes from the caller's embeddings of `taxonomy.examples.text` (row for row), re-normalised."""
    vectors = np.asarray(vectors_for_examples, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(taxonomy.examples):
        raise ValueError(
            f"expected one vector per example phrase ({len(taxonomy.examples)}), got shape {vectors.shape}"
        )
    if not np.all(np.isfinite(vectors)) or np.any(np.linalg.norm(vectors, axis=1) == 0):
        raise ValueError("example vectors must be finite and non-zero")
    labels = taxonomy.examples[["intent", "sub_reason"]].reset_index(drop=True)
    return IntentPrototypes(labels=labels, vectors=_unit_rows(vectors).astype(np.float32))


def utterance_intent_scores(
    vectors: np.ndarray,
    prototypes: IntentPrototypes,
    top_k: int = 3,
    temperature: float = 0.03,
    null_similarity: float = 0.4,
) -> pd.DataFrame:
    """Per utterance: a probability per intent and for neutral (rows sum to 1), and each intent's sub-reason.

    Columns: one per intent, `neutral`, then `<intent>_sub_reason` for each intent.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[1] != prototypes.vectors.shape[1]:
        raise ValueError(
            f"vectors must be (n, {prototypes.vectors.shape[1]}) like the prototypes, got {vectors.shape}"
        )
    classes = [*prototypes.intents, NEUTRAL]
    sub_reason_columns = [f"{intent}_sub_reason" for intent in prototypes.intents]
    blocks = [
        _scores_block(
            vectors[start : start + _SCORING_BLOCK], prototypes, top_k, temperature, null_similarity
        )
        for start in range(0, len(vectors), _SCORING_BLOCK)
    ]
    if not blocks:
        return pd.DataFrame(
            {column: pd.Series(dtype=np.float64) for column in classes}
            | {column: pd.Series(dtype=str) for column in sub_reason_columns}
        )
    return pd.concat(blocks, ignore_index=True)


def _scores_block(
    vectors: np.ndarray, prototypes: IntentPrototypes, top_k: int, temperature: float, null_similarity: float
) -> pd.DataFrame:
    """Return `utterance_intent_scores` for one block of rows (blocks bound the memory of similarities)."""
    similarity = _unit_rows(vectors) @ prototypes.vectors.T.astype(np.float64)
    intent_labels = prototypes.labels["intent"].to_numpy()
    sub_labels = prototypes.labels["sub_reason"].to_numpy()
    classes = [*prototypes.intents, NEUTRAL]

    class_similarity = np.column_stack(
        [_top_k_mean(similarity[:, intent_labels == name], top_k) for name in classes]
    )
    class_similarity[:, -1] = np.maximum(class_similarity[:, -1], null_similarity)
    scores = pd.DataFrame(_softmax(class_similarity / temperature), columns=classes)
    for intent in prototypes.intents:
        codes = list(pd.unique(sub_labels[intent_labels == intent]))
        per_code = np.column_stack(
            [_top_k_mean(similarity[:, sub_labels == code], _SUB_REASON_TOP_K) for code in codes]
        )
        scores[f"{intent}_sub_reason"] = pd.Series([codes[i] for i in per_code.argmax(axis=1)], dtype=str)
    return scores


@dataclass(frozen=True, eq=False)
class CallEvidence:
    """What the customer's own words say, per utterance and per call, before any clustering."""

    utterances: pd.DataFrame  # the utterances ordered by call_id, turn_no (index 0..n-1)
    scores: pd.DataFrame  # utterance_intent_scores, row for row
    call_codes: np.ndarray  # call index (0..m-1) of each utterance row
    call_ids: pd.Index  # the m call ids, sorted
    own_scores: np.ndarray  # (m, intents): best probability any utterance of the call gives each intent
    evidence_rows: np.ndarray  # (m, intents): the utterance row holding that best probability
    neutral_rows: np.ndarray  # (m,): the call's most neutral utterance row
    call_vectors: np.ndarray  # (m, d): unit vectors pooled with weights 1 - p(neutral) + small_talk_weight
    intents: tuple[str, ...]


def call_evidence(
    utterances: pd.DataFrame,
    vectors: np.ndarray,
    prototypes: IntentPrototypes,
    settings: InsightSettings = InsightSettings(),  # noqa: B008 - frozen, so a shared default is safe
) -> CallEvidence:
    """Score every utterance against the prototypes and pool them into one vector per call."""
    _check_utterances(utterances, vectors, prototypes)
    positioned = utterances[list(_UTTERANCE_COLUMNS)].reset_index(drop=True)
    order = positioned.sort_values(["call_id", "turn_no"], kind="stable").index.to_numpy()
    table = positioned.iloc[order].reset_index(drop=True)
    ordered_vectors = np.asarray(vectors, dtype=np.float64)[order]
    intents = prototypes.intents
    scores = utterance_intent_scores(
        ordered_vectors, prototypes, settings.top_k, settings.temperature, settings.null_similarity
    )
    call_codes, call_ids = pd.factorize(table["call_id"], sort=True)
    if table.empty:
        width = prototypes.vectors.shape[1]
        empty = np.zeros((0, len(intents)))
        return CallEvidence(table, scores, call_codes, call_ids, empty, empty.astype(np.int64),
                            np.zeros(0, np.int64), np.zeros((0, width), np.float32), intents)
    own_scores, evidence_rows = _call_best(scores[list(intents)].to_numpy(), call_codes)
    _, neutral_rows = _call_best(scores[[NEUTRAL]].to_numpy(), call_codes)
    weights = 1.0 - scores[NEUTRAL].to_numpy() + settings.small_talk_weight
    pooled = clustering.call_vectors(ordered_vectors, call_codes, weights)
    return CallEvidence(table, scores, call_codes, call_ids, own_scores, evidence_rows, neutral_rows[:, 0],
                        pooled, intents)


def decided_calls(
    evidence: CallEvidence,
    labels: np.ndarray,
    settings: InsightSettings = InsightSettings(),  # noqa: B008 - frozen, so a shared default is safe
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per call: intent, sub-reason, confidence, evidence, given one cluster label per call (-1 = none).

    Returns `(calls, clusters)`; see the module docstring for how own and cluster scores combine.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(evidence.call_ids),):
        raise ValueError(f"need one label per call ({len(evidence.call_ids)}), got shape {labels.shape}")
    if evidence.utterances.empty:
        return _empty_calls(), _empty_clusters()
    own_scores = evidence.own_scores
    prior = _cluster_prior(own_scores, labels)
    share = np.where(labels == clustering.OUTLIER, 0.0, settings.cluster_weight)[:, None]
    combined = (1.0 - share) * own_scores + share * prior
    chosen = _chosen_intents(own_scores, combined, settings)
    calls = _calls_frame(
        evidence.utterances,
        evidence.scores,
        evidence.call_codes,
        evidence.call_ids,
        labels,
        combined,
        chosen,
        evidence.intents,
        evidence.evidence_rows,
        evidence.neutral_rows,
    )
    clusters = _clusters_frame(
        evidence.utterances, evidence.scores, evidence.call_codes, labels, own_scores, evidence.evidence_rows,
        evidence.intents, settings
    )
    logger.info(
        "call insight: %d calls, %d clusters, %d outliers; intents %s",
        len(calls),
        len(clusters),
        int((labels == clustering.OUTLIER).sum()),
        calls["intent"].value_counts().to_dict(),
    )
    return calls, clusters


def call_insight(
    utterances: pd.DataFrame,
    vectors: np.ndarray,
    prototypes: IntentPrototypes,
    settings: InsightSettings = InsightSettings(),  # noqa: B008 - frozen, so a shared default is safe
    reducer: clustering.Reducer | None = None,
    clusterer: clustering.Clusterer | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per call: cluster, intent, sub-reason, confidence, evidence; per cluster: size, name, intent.

    Clusters tonight's calls from scratch (the nightly stage uses `insights.themes` for stable themes and
    calls `decided_calls` itself). Returns `(calls, clusters)`.
    """
    evidence = call_evidence(utterances, vectors, prototypes, settings)
    if evidence.utterances.empty:
        logger.info("call insight: no utterances")
        return _empty_calls(), _empty_clusters()
    reduced = clustering.reduced_vectors(evidence.call_vectors, reducer, settings.n_components, settings.seed)
    labels = clustering.cluster_labels(reduced, clusterer, settings.min_cluster_size, settings.min_samples)
    return decided_calls(evidence, labels, settings)


def _chosen_intents(own: np.ndarray, combined: np.ndarray, settings: InsightSettings) -> np.ndarray:
    """Index of the chosen intent per call, -1 for unclear: own if decisive, else combined if decisive."""
    own_top, own_ok = _decisive(own, settings.min_intent_score, settings.min_margin)
    combined_top, combined_ok = _decisive(combined, settings.min_intent_score, settings.min_margin)
    return np.where(own_ok, own_top, np.where(combined_ok, combined_top, -1))


def _decisive(scores: np.ndarray, min_score: float, min_margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Best column per row, and whether it clears the score floor and leads the runner-up by the margin."""
    top = scores.argmax(axis=1)
    ranked = np.sort(scores, axis=1)
    best = ranked[:, -1]
    runner_up = ranked[:, -2] if scores.shape[1] > 1 else np.zeros(len(scores))
    return top, (best >= min_score) & (best - runner_up >= min_margin)


def _call_best(probabilities: np.ndarray, call_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per call and column: the highest probability and the utterance row holding it (first on ties)."""
    frame = pd.DataFrame(probabilities)
    grouped = frame.groupby(call_codes, sort=True)
    return grouped.max().to_numpy(), grouped.idxmax().to_numpy()


def _cluster_prior(own: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per call, the mean own scores of its cluster's members (zeros for outliers)."""
    prior = np.zeros_like(own)
    for cluster_id in np.unique(labels[labels != clustering.OUTLIER]):
        members = labels == cluster_id
        prior[members] = own[members].mean(axis=0)
    return prior


def _calls_frame(
    table: pd.DataFrame,
    scores: pd.DataFrame,
    call_codes: np.ndarray,
    call_ids: pd.Index,
    labels: np.ndarray,
    combined: np.ndarray,
    chosen: np.ndarray,
    intents: tuple[str, ...],
    evidence_rows: np.ndarray,
    neutral_rows: np.ndarray,
) -> pd.DataFrame:
    """Return the per-call output frame."""
    calls = np.arange(len(call_ids))
    clear = chosen >= 0
    safe_choice = np.where(clear, chosen, 0)
    rows = np.where(clear, evidence_rows[calls, safe_choice], neutral_rows)
    intent = np.where(clear, np.asarray(intents, dtype=object)[safe_choice], UNCLEAR)
    sub_reason = np.full(len(rows), "", dtype=object)
    for name in intents:  # one vectorised lookup per intent, not one .at per call
        chosen_here = intent == name
        if chosen_here.any():
            column = scores[f"{name}_sub_reason"].to_numpy(dtype=object)
            sub_reason[chosen_here] = column[rows[chosen_here].astype(np.int64)]
    score = np.where(clear, combined[calls, safe_choice], 1.0 - combined.max(axis=1))
    first_rows = pd.Series(np.arange(len(call_codes))).groupby(call_codes, sort=True).min().to_numpy()
    return pd.DataFrame(
        {
            "call_id": call_ids.to_numpy(),
            "customer_id": table["customer_id"].to_numpy()[first_rows],
            "cluster_id": labels.astype(np.int64),
            "is_outlier": labels == clustering.OUTLIER,
            "intent": pd.Series(intent, dtype=str),
            "sub_reason": pd.Series(sub_reason, dtype=str),
            "intent_score": np.clip(score, 0.0, 1.0).astype(np.float64),
            "evidence": pd.Series([_trimmed(text) for text in table["text"].to_numpy(dtype=object)[
                rows.astype(np.int64)]], dtype=str),
        },
        columns=list(_CALL_COLUMNS),
    )


def _clusters_frame(
    table: pd.DataFrame,
    scores: pd.DataFrame,
    call_codes: np.ndarray,
    labels: np.ndarray,
    own: np.ndarray,
    evidence_rows: np.ndarray,
    intents: tuple[str, ...],
    settings: InsightSettings,
) -> pd.DataFrame:
    """Return the per-cluster output frame: size, aggregate intent and sub-reason, name from top terms."""
    cluster_ids = [int(c) for c in np.unique(labels) if c != clustering.OUTLIER]
    if not cluster_ids:
        return _empty_clusters()
    terms = clustering.cluster_top_terms(table["text"].tolist(), labels[call_codes].tolist(), TOP_TERMS)
    rows = []
    for cluster_id in cluster_ids:
        members = np.flatnonzero(labels == cluster_id)
        mean = own[members].mean(axis=0, keepdims=True)
        top, ok = _decisive(mean, settings.min_intent_score, settings.min_margin)
        if ok[0]:
            intent, score = intents[top[0]], float(mean[0, top[0]])
            sub_reason = _cluster_sub_reason(scores, own, evidence_rows, members, intent, top[0])
            prefix = f"{intent}/{sub_reason}"
        else:
            intent, sub_reason, score, prefix = UNCLEAR, "", float(1.0 - mean.max()), UNCLEAR
        top_terms = " ".join(terms.get(cluster_id, []))
        rows.append(
            (cluster_id, len(members), f"{prefix}: {top_terms}".strip(), intent, sub_reason, score, top_terms)
        )
    return pd.DataFrame(rows, columns=list(_CLUSTER_COLUMNS)).astype(
        {"cluster_id": np.int64, "size": np.int64, "intent_score": np.float64}
    )


def _cluster_sub_reason(
    scores: pd.DataFrame,
    own: np.ndarray,
    evidence_rows: np.ndarray,
    members: np.ndarray,
    intent: str,
    intent_index: int,
) -> str:
    """Return the sub-reason weighing most among members' best utterances for `intent` (ties: by code)."""
    codes = scores[f"{intent}_sub_reason"].to_numpy()[evidence_rows[members, intent_index]]
    weight = pd.Series(own[members, intent_index]).groupby(codes).sum()
    return str(sorted(weight.items(), key=lambda item: (-item[1], item[0]))[0][0])


def _check_utterances(utterances: pd.DataFrame, vectors: np.ndarray, prototypes: IntentPrototypes) -> None:
    """Raise ValueError when the utterance frame and vectors do not fit together."""
    missing = [column for column in _UTTERANCE_COLUMNS if column not in utterances.columns]
    if missing:
        raise ValueError(f"utterances lack columns {missing}")
    shape = np.shape(vectors)
    if len(shape) != 2 or shape[0] != len(utterances):
        raise ValueError(f"need one vector per utterance ({len(utterances)}), got shape {shape}")
    if len(utterances) and shape[1] != prototypes.vectors.shape[1]:
        raise ValueError(f"vectors have {shape[1]} dims, the prototypes {prototypes.vectors.shape[1]}")
    nulls = [column for column in ("call_id", "text") if utterances[column].isna().any()]
    if nulls:
        raise ValueError(f"utterances have missing values in {nulls}")


def _empty_calls() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "call_id": pd.Series(dtype=object),
            "customer_id": pd.Series(dtype=object),
            "cluster_id": pd.Series(dtype=np.int64),
            "is_outlier": pd.Series(dtype=bool),
            "intent": pd.Series(dtype=str),
            "sub_reason": pd.Series(dtype=str),
            "intent_score": pd.Series(dtype=np.float64),
            "evidence": pd.Series(dtype=str),
        }
    )


def _empty_clusters() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cluster_id": pd.Series(dtype=np.int64),
            "size": pd.Series(dtype=np.int64),
            "name": pd.Series(dtype=str),
            "intent": pd.Series(dtype=str),
            "sub_reason": pd.Series(dtype=str),
            "intent_score": pd.Series(dtype=np.float64),
            "top_terms": pd.Series(dtype=str),
        }
    )


def _trimmed(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= EVIDENCE_MAX_CHARS else text[: EVIDENCE_MAX_CHARS - 1] + "…"


def _top_k_mean(similarity: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k largest values per row (all of them when a row has fewer than k)."""
    if similarity.shape[1] == 0:
        return np.full(len(similarity), -1.0)
    k = min(k, similarity.shape[1])
    return np.partition(similarity, similarity.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _mapping(value: object, where: str, allowed: set[str] | None) -> dict[str, object]:
    """`value` as a str-keyed dict, checking its keys against `allowed` (None: any keys)."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    bad_keys = [key for key in value if not isinstance(key, str)]
    if bad_keys:
        raise ValueError(f"{where}: keys must be strings, got {bad_keys}")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (allowed: {sorted(allowed or [])})")
    return value


def _bilingual(value: object, where: str) -> dict[str, str]:
    """Return the `en` and `zh` strings of a bilingual mapping, both non-empty."""
    texts = _mapping(value, where, {"en", "zh"})
    for language in ("en", "zh"):
        text = texts.get(language)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: '{language}' must be a non-empty string")
    return {language: str(texts[language]).strip() for language in ("en", "zh")}


def _phrases(value: object, where: str) -> list[tuple[str, str]]:
    """(language, phrase) pairs from a language -> list-of-phrases mapping with every required language."""
    by_language = _mapping(value, where, None)
    pairs: list[tuple[str, str]] = []
    for language, phrases in by_language.items():
        if not _LANGUAGE.match(language):
            raise ValueError(f"{where}: {language!r} is not a two-letter language code")
        if not isinstance(phrases, list) or not phrases:
            raise ValueError(f"{where}: '{language}' must be a non-empty list of phrases")
        for phrase in phrases:
            if not isinstance(phrase, str) or not phrase.strip():
                raise ValueError(f"{where}: '{language}' has an empty or non-text phrase: {phrase!r}")
            pairs.append((language, " ".join(phrase.split())))
    absent = [language for language in REQUIRED_LANGUAGES if language not in by_language]
    if absent:
        raise ValueError(f"{where}: no phrases for languages {absent}")
    return pairs


def _check_code(code: str, where: str) -> None:
    if not _CODE.match(code):
        raise ValueError(f"{where}: codes must be lower_snake_case")


def _check_no_conflicting_phrases(examples: pd.DataFrame, source: str) -> None:
    """Raise when one phrase is an example of two different intents or sub-reasons."""
    keyed = examples.assign(key=examples["text"].str.lower())
    owners = keyed.drop_duplicates(["key", "intent", "sub_reason"]).groupby("key")["sub_reason"].count()
    conflicts = sorted(owners[owners > 1].index)
    if conflicts:
        raise ValueError(f"{source}: phrases listed under more than one sub-reason: {conflicts[:5]}")
