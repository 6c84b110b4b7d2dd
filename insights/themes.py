"""Call themes analysts can follow from night to night: names, stable IDs, outliers, drift.

Glossary: a *theme* is a group of calls about the same thing, found by HDBSCAN and then kept as a *centroid*
(the normalised mean call vector of its members, in the embedding space) with a *core similarity* (the cosine
most of its fit members reach, the theme's extent). A *fit* is one HDBSCAN run that sets the centroids; between
fits, calls are only *assigned* to them. The *review queue* holds calls no theme explains (theme id -1).

Every night (`theme_night`, pure: the stage does the I/O):

1. Tonight's calls are assigned to the previous fit's centroids (nearest centroid by cosine). A call inside a
   theme's core belongs to it; a call outside every core is an *outlier* (what HDBSCAN would call noise): it
   gets its nearest theme when the cosine reaches `outlier_min_similarity`, else goes to the review queue.
2. *Drift* is the Jensen-Shannon distance (base 2, 0..1) between tonight's theme shares (review queue
   included) and the shares at fit time.
3. A refit happens when there is no previous fit, the embedding model changed, the previous fit is
   `refit_every_days` old, or drift reached `drift_threshold`. A refit reduces (seeded PCA) and clusters
   (HDBSCAN) tonight's call vectors, computes centroids, and matches them one-to-one to the previous centroids
   (Hungarian assignment on cosine, pairs below `match_min_similarity` stay unmatched): a matched theme keeps
   its ID, an unmatched one gets a fresh ID (one above any ID ever used) and `is_new`, for review.
4. Tonight's calls are assigned (step 1's rule) to the centroids in force.

Membership is a pure function of (call vector, centroids in force), so a rerun of a date gives the same IDs,
and a call keeps its theme on every night of its look-back window until a refit. Theme names come from a
class-based TF-IDF (BERTopic's c-TF-IDF) over jieba-segmented Chinese and English words, with the call-filler
stop words of `insights/theme_terms.yaml`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import logging
import math
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import yaml

from insights import clustering

logger = logging.getLogger(__name__)

REVIEW = -1
QUOTE_MAX_CHARS = 80

_REDACTION = re.compile(r"\[[A-Z_]+\]")
_ENGLISH_WORD = re.compile(r"[a-z][a-z']*[a-z]|[a-z]")
_CHINESE_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_HAS_CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

STATE_COLUMNS = ["theme_id", "centroid", "core_similarity", "size", "share", "first_seen_on", "matched_from",
                 "is_new", "model_id"]


@dataclass(frozen=True)
class ThemeSettings:
    """Knobs of theme tracking; every one is in `pipelines/settings.yaml` under `insight.themes`."""

    guide_temperature: float = 0.03
    """Softmax temperature of the taxonomy-guided theme space (0: cluster raw embeddings instead)."""
    refit_every_days: int = 7
    """Refit when the fit in force is this many days old."""
    drift_threshold: float = 0.25
    """Refit when the Jensen-Shannon distance of tonight's theme shares from the fit's reaches this."""
    match_min_similarity: float = 0.8
    """Least centroid cosine for a refit theme to inherit a previous theme's ID."""
    outlier_min_similarity: float = 0.65
    """Least cosine for an outlier call to join its nearest theme; below it the call goes to review."""
    core_quantile: float = 0.05
    """A theme's core similarity is this quantile of its fit members' cosine to the centroid."""
    min_cluster_size: int = 8
    """HDBSCAN's smallest theme."""
    min_samples: int | None = None
    """HDBSCAN's density smoothing (None = min_cluster_size)."""
    n_components: int = 15
    """PCA dimensions before HDBSCAN."""
    seed: int = 42
    """Seed of the PCA."""
    top_terms: int = 10
    """Terms stored per theme and language."""
    quotes: int = 3
    """Central quotes stored per theme."""

    def __post_init__(self) -> None:
        """Reject settings that would make tracking meaningless."""
        checks = {
            "refit_every_days must be >= 1": self.refit_every_days >= 1,
            "drift_threshold must be in (0, 1]": 0.0 < self.drift_threshold <= 1.0,
            "match_min_similarity must be in [-1, 1]": -1.0 <= self.match_min_similarity <= 1.0,
            "outlier_min_similarity must be in [-1, 1]": -1.0 <= self.outlier_min_similarity <= 1.0,
            "core_quantile must be in [0, 1)": 0.0 <= self.core_quantile < 1.0,
            "min_cluster_size must be >= 2": self.min_cluster_size >= 2,
            "top_terms and quotes must be >= 1": self.top_terms >= 1 and self.quotes >= 1,
        }
        problems = [message for message, ok in checks.items() if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> ThemeSettings:
        """Return settings from a mapping of field names (unknown keys are an error)."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown theme settings {unknown}")
        return cls(**config)


@dataclass(frozen=True, eq=False)
class ThemeNight:
    """What one night's theme tracking decided: per-call themes, the centroids in force, and the figures."""

    assignments: pd.DataFrame  # call_id, theme_id, similarity, is_outlier (outside every core), is_review
    state: pd.DataFrame  # STATE_COLUMNS: the centroids in force tonight
    refit_reason: str  # "" when tonight only assigned
    fitted_on: date | None  # the date of the fit in force (tonight when refit)
    drift: float | None  # against the previous fit; None without one
    clusterer_noise_share: float | None  # HDBSCAN's own noise share on a refit night
    retired_themes: tuple[int, ...]  # previous themes a refit did not match


# --- words -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TermLists:
    """Stop words per language and the domain words added to the Chinese segmenter."""

    stop_zh: frozenset[str]
    stop_en: frozenset[str]
    domain_words: tuple[str, ...]


@functools.cache
def term_lists() -> TermLists:
    """Return the packaged `insights/theme_terms.yaml` word lists."""
    text = importlib.resources.files("insights").joinpath("theme_terms.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    stop = raw["stop_words"]
    return TermLists(stop_zh=frozenset(str(w) for w in stop["zh"]),
                     stop_en=frozenset(str(w).lower() for w in stop["en"]),
                     domain_words=tuple(str(w) for w in raw.get("domain_words") or ()))


@functools.cache
def _segmenter() -> Any:
    """One jieba tokenizer per process, with the domain words added (its dictionary ships in the wheel)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    for word in term_lists().domain_words:
        tokenizer.add_word(word)
    return tokenizer


def chinese_words(text: str) -> list[str]:
    """Jieba words of the Chinese runs of `text` (exact mode, HMM on), in order."""
    segmenter = _segmenter()
    return [word for run in _CHINESE_RUN.findall(text) for word in segmenter.lcut(run)]


_TERMS_MEMO: dict[str, tuple[str, ...]] = {}


def text_terms(text: str) -> list[str]:
    """Terms of one utterance: English words and jieba-segmented Chinese words of 2+ characters, stop words out.

    Redaction placeholders ([PHONE] ...) are dropped; single Chinese characters are mostly particles, so dropped.
    Memoised per text in this process (a night names its clusters and its themes from the same utterances, and
    jieba is the slowest step of both); :func:`remember_text_terms` seeds the memo from the warehouse's
    ``text_terms_cache``, so a text is segmented once, ever, per :func:`terms_version`.
    """
    terms = _TERMS_MEMO.get(text)
    if terms is None:
        terms = _TERMS_MEMO[text] = _computed_terms(text)
    return list(terms)


def remember_text_terms(known: Mapping[str, Sequence[str]]) -> None:
    """Seed the memo of :func:`text_terms` with terms computed earlier (text -> terms, same terms_version)."""
    _TERMS_MEMO.update((text, tuple(terms)) for text, terms in known.items())


@functools.cache
def terms_version() -> str:
    """Return the version of the term lists and segmenter: terms cached under another version are recomputed."""
    import jieba

    text = importlib.resources.files("insights").joinpath("theme_terms.yaml").read_bytes()
    return f"jieba-{jieba.__version__}-{hashlib.sha256(text).hexdigest()[:12]}"


def _computed_terms(text: str) -> tuple[str, ...]:
    words = term_lists()
    cleaned = _REDACTION.sub(" ", text).lower()
    english = [word for word in _ENGLISH_WORD.findall(cleaned) if word not in words.stop_en and len(word) > 1]
    chinese = [word for word in chinese_words(cleaned) if len(word) > 1 and word not in words.stop_zh]
    return tuple(english + chinese)


def term_language(term: str) -> str:
    """Return 'zh' for a term with Chinese characters, else 'en'."""
    return "zh" if _HAS_CHINESE.search(term) else "en"


def class_term_scores(texts: Sequence[str], labels: Sequence[Hashable], top_n: int = 10) -> pd.DataFrame:
    """Top terms per label and language by class-based TF-IDF (BERTopic's c-TF-IDF).

    score = (count of the term in the class / terms in the class) x log(1 + mean terms per class / count of
    the term in all classes). Every label, the review queue included, counts for the IDF, so words common to
    all calls sink. Columns: label, language, rank (1 = best), term, score, count; ties break by term.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    per_class: dict[Hashable, Counter[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        per_class.setdefault(label, Counter()).update(text_terms(text))
    totals: Counter[str] = Counter()
    for counts in per_class.values():
        totals.update(counts)
    average_size = sum(totals.values()) / max(len(per_class), 1)
    rows = []
    for label, counts in per_class.items():
        size = sum(counts.values())
        by_language: dict[str, list[tuple[float, str, int]]] = {}
        for term, count in counts.items():
            score = (count / size) * math.log(1 + average_size / totals[term])
            by_language.setdefault(term_language(term), []).append((-score, term, count))
        for language, scored in sorted(by_language.items()):
            for rank, (negative, term, count) in enumerate(sorted(scored)[:top_n], start=1):
                rows.append((label, language, rank, term, -negative, count))
    return pd.DataFrame(rows, columns=["label", "language", "rank", "term", "score", "count"])


def theme_name(terms: pd.DataFrame, intent: str, sub_reason: str, per_language: int = 3) -> str:
    """Return a readable name: 'intent/sub_reason: top zh terms | top en terms'."""
    parts = [" ".join(terms[terms["language"] == language].sort_values("rank")["term"].head(per_language))
             for language in ("zh", "en")]
    words = " | ".join(part for part in parts if part)
    prefix = f"{intent}/{sub_reason}" if sub_reason else intent
    return f"{prefix}: {words}" if words else prefix


# --- vectors -----------------------------------------------------------------------------------------------


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def fitted_centroids(
    vectors: np.ndarray,
    settings: ThemeSettings = ThemeSettings(),  # noqa: B008 - frozen, so a shared default is safe
    reducer: clustering.Reducer | None = None,
    clusterer: clustering.Clusterer | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Fit themes on call vectors: HDBSCAN labels per row, and per label its centroid, core similarity and size.

    The frame has columns label, centroid (unit vector in the input space), core_similarity, size; ordered by
    size descending, then label.
    """
    vectors = unit_rows(vectors)
    reduced = clustering.reduced_vectors(vectors, reducer, settings.n_components, settings.seed)
    labels = clustering.cluster_labels(reduced, clusterer, settings.min_cluster_size, settings.min_samples)
    rows = []
    for label in sorted(int(x) for x in np.unique(labels) if x != clustering.OUTLIER):
        members = vectors[labels == label]
        centroid = unit_rows(members.mean(axis=0, keepdims=True))[0]
        similarity = members @ centroid
        rows.append((label, centroid, float(np.quantile(similarity, settings.core_quantile)), len(members)))
    frame = pd.DataFrame(rows, columns=["label", "centroid", "core_similarity", "size"])
    return labels, frame.sort_values(["size", "label"], ascending=[False, True], kind="stable") \
        .reset_index(drop=True)


def matched_theme_ids(
    new_centroids: np.ndarray,
    previous_centroids: np.ndarray,
    previous_ids: Sequence[int],
    min_similarity: float,
    next_id: int,
) -> tuple[list[int], list[int | None]]:
    """Theme ID per new centroid: the matched previous ID (one-to-one, Hungarian on cosine) or a fresh one.

    Returns (ids, matched_from) where matched_from is the previous ID or None; fresh IDs count up from
    `next_id` in the order of `new_centroids`.
    """
    from scipy.optimize import linear_sum_assignment

    new = unit_rows(new_centroids)
    matched: dict[int, int] = {}
    if len(new) and len(previous_centroids):
        previous = unit_rows(previous_centroids)
        if previous.shape[1] == new.shape[1]:
            similarity = new @ previous.T
            rows, columns = linear_sum_assignment(-similarity)
            matched = {int(r): int(previous_ids[c]) for r, c in zip(rows, columns, strict=True)
                       if similarity[r, c] >= min_similarity}
    ids: list[int] = []
    sources: list[int | None] = []
    for row in range(len(new)):
        if row in matched:
            ids.append(matched[row])
            sources.append(matched[row])
        else:
            ids.append(next_id)
            sources.append(None)
            next_id += 1
    return ids, sources


def assigned_themes(
    vectors: np.ndarray, state: pd.DataFrame, outlier_min_similarity: float
) -> pd.DataFrame:
    """Per vector: nearest theme (cosine), its similarity, whether it is outside every core, whether to review.

    Columns theme_id (-1 = review queue), similarity, is_outlier, is_review. With no themes every row goes to
    review.
    """
    vectors = unit_rows(vectors)
    if state.empty or len(vectors) == 0 or np.vstack(state["centroid"].to_list()).shape[1] != vectors.shape[1]:
        return pd.DataFrame({"theme_id": np.full(len(vectors), REVIEW, dtype=np.int64),
                             "similarity": np.zeros(len(vectors)), "is_outlier": np.ones(len(vectors), bool),
                             "is_review": np.ones(len(vectors), bool)})
    centroids = unit_rows(np.vstack(state["centroid"].to_list()))
    similarity = vectors @ centroids.T
    nearest = similarity.argmax(axis=1)
    best = similarity[np.arange(len(vectors)), nearest]
    core = state["core_similarity"].to_numpy(dtype=np.float64)[nearest]
    is_outlier = best < core
    is_review = is_outlier & (best < outlier_min_similarity)
    ids = state["theme_id"].to_numpy(dtype=np.int64)[nearest]
    return pd.DataFrame({"theme_id": np.where(is_review, REVIEW, ids).astype(np.int64), "similarity": best,
                         "is_outlier": is_outlier, "is_review": is_review})


def theme_shares(theme_ids: Sequence[int] | np.ndarray, themes: Sequence[int]) -> pd.Series:
    """Share of calls per theme (every theme listed, the review queue -1 included), indexed by theme id."""
    index = sorted({*(int(t) for t in themes), REVIEW})
    counts = pd.Series(np.asarray(theme_ids, dtype=np.int64)).value_counts()
    counts = counts.reindex(index, fill_value=0).astype(float)
    total = counts.sum()
    return counts / total if total else counts


def drift_distance(current: pd.Series, reference: pd.Series) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two share vectors over the union of their themes."""
    index = sorted(set(current.index) | set(reference.index))
    p = current.reindex(index, fill_value=0.0).to_numpy(dtype=np.float64)
    q = reference.reindex(index, fill_value=0.0).to_numpy(dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0 if p.sum() == q.sum() else 1.0
    p, q = p / p.sum(), q / q.sum()
    mean = (p + q) / 2

    def _kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return float(math.sqrt(max(0.0, (_kl(p, mean) + _kl(q, mean)) / 2)))


def refit_reason(
    previous: pd.DataFrame, previous_fitted_on: date | None, as_of: date, model_id: str, drift: float | None,
    settings: ThemeSettings,
) -> str:
    """Why tonight refits ('' = assign only): first_fit, model_changed, schedule or drift."""
    if previous.empty or previous_fitted_on is None:
        return "first_fit"
    if set(previous["model_id"]) != {model_id}:
        return "model_changed"
    if (as_of - previous_fitted_on).days >= settings.refit_every_days:
        return "schedule"
    if drift is not None and drift >= settings.drift_threshold:
        return "drift"
    return ""


def theme_night(
    call_ids: Sequence[str],
    vectors: np.ndarray,
    previous: pd.DataFrame,
    previous_fitted_on: date | None,
    as_of: date,
    model_id: str,
    next_id: int,
    settings: ThemeSettings = ThemeSettings(),  # noqa: B008 - frozen, so a shared default is safe
    reducer: clustering.Reducer | None = None,
    clusterer: clustering.Clusterer | None = None,
) -> ThemeNight:
    """Assign tonight's calls to themes, refitting when due (see the module docstring).

    `previous` is the fit in force before tonight (STATE_COLUMNS, may be empty); `next_id` is one above any
    theme ID ever used. Deterministic: same inputs, same output.
    """
    vectors = unit_rows(vectors)
    if len(vectors) != len(call_ids):
        raise ValueError(f"{len(call_ids)} call ids but {len(vectors)} vectors")
    drift = None
    if not previous.empty:
        trial = assigned_themes(vectors, previous, settings.outlier_min_similarity)
        drift = drift_distance(theme_shares(trial["theme_id"], previous["theme_id"]), _fit_shares(previous))
    reason = refit_reason(previous, previous_fitted_on, as_of, model_id, drift, settings)
    state, fitted_on, noise_share, retired = previous, previous_fitted_on, None, ()
    if reason:
        labels, fitted = fitted_centroids(vectors, settings, reducer, clusterer)
        noise_share = float(np.mean(labels == clustering.OUTLIER)) if len(labels) else None
        if fitted.empty and not previous.empty:
            logger.warning("themes: refit (%s) found no themes in %d calls; keeping the fit of %s",
                           reason, len(vectors), previous_fitted_on)
            reason = f"{reason}_failed"
        else:
            state = _refit_state(fitted, previous, len(vectors), as_of, model_id, next_id, settings)
            fitted_on = as_of
            retired = tuple(sorted(set(previous["theme_id"]) - set(state["theme_id"]))) if len(previous) else ()
    assignments = assigned_themes(vectors, state, settings.outlier_min_similarity)
    if fitted_on == as_of and reason:
        # the fit's shares are what its own night assigned (outliers rescued), so later drift compares like with like
        counts = assignments["theme_id"].value_counts()
        state = state.assign(size=state["theme_id"].map(counts).fillna(0).astype(np.int64),
                             share=state["theme_id"].map(counts).fillna(0).to_numpy(dtype=np.float64)
                             / max(len(vectors), 1))
    assignments.insert(0, "call_id", list(call_ids))
    logger.info("themes for %s: %s, %d themes, drift %s, %d outliers, %d to review", as_of,
                f"refit ({reason})" if reason else "assigned", len(state),
                "n/a" if drift is None else f"{drift:.3f}", int(assignments["is_outlier"].sum()),
                int(assignments["is_review"].sum()))
    return ThemeNight(assignments=assignments, state=state.reset_index(drop=True), refit_reason=reason,
                      fitted_on=fitted_on, drift=drift, clusterer_noise_share=noise_share, retired_themes=retired)


def _fit_shares(state: pd.DataFrame) -> pd.Series:
    shares = pd.Series(state["share"].to_numpy(dtype=np.float64), index=state["theme_id"].astype(int))
    review = max(0.0, 1.0 - float(shares.sum()))
    return pd.concat([shares, pd.Series([review], index=[REVIEW])]).sort_index()


def _refit_state(fitted: pd.DataFrame, previous: pd.DataFrame, n_calls: int, as_of: date, model_id: str,
                 next_id: int, settings: ThemeSettings) -> pd.DataFrame:
    """Return the new state: fitted centroids with IDs matched to the previous fit's (same model only)."""
    same_model = not previous.empty and set(previous["model_id"]) == {model_id}
    new_centroids = np.vstack(fitted["centroid"].to_list()) if len(fitted) else np.zeros((0, 1))
    previous_centroids = np.vstack(previous["centroid"].to_list()) if same_model else np.zeros((0, 1))
    ids, sources = matched_theme_ids(new_centroids, previous_centroids,
                                     list(previous["theme_id"]) if same_model else [],
                                     settings.match_min_similarity, next_id)
    first_seen = dict(zip(previous["theme_id"], previous["first_seen_on"], strict=True)) if same_model else {}
    return pd.DataFrame({
        "theme_id": pd.Series(ids, dtype=np.int64),
        "centroid": [np.asarray(c, dtype=np.float32) for c in fitted["centroid"]],
        "core_similarity": fitted["core_similarity"].to_numpy(dtype=np.float64),
        "size": fitted["size"].to_numpy(dtype=np.int64),
        "share": fitted["size"].to_numpy(dtype=np.float64) / max(n_calls, 1),
        "first_seen_on": [first_seen.get(i, as_of) if s is not None else as_of for i, s in zip(ids, sources,
                                                                                               strict=True)],
        "matched_from": pd.Series(sources, dtype="Int64"),
        "is_new": [s is None for s in sources],
        "model_id": model_id,
    }, columns=STATE_COLUMNS)


def guided_vectors(call_vectors: np.ndarray, prototypes: Any, temperature: float = 0.03) -> np.ndarray:
    """Call vectors in the taxonomy-guided theme space: a softmax over cosines to each sub-reason's centroid.

    A sub-reason centroid is the mean of its Chinese and English example phrases (plus one for neutral small
    talk), so the space has no language axis: a Chinese and an English call about a lost job land together.
    Raw multilingual embeddings cluster by language and phrasing first (measured on the demo: adjusted Rand
    index with the true sub-reason about 0 on raw vectors, about 0.3 here). `temperature` 0 returns the raw
    (unit) vectors. `prototypes` is an `insights.intents.IntentPrototypes`.
    """
    vectors = unit_rows(call_vectors)
    if temperature <= 0 or len(vectors) == 0:
        return vectors
    labels = prototypes.labels
    phrase_vectors = np.asarray(prototypes.vectors, dtype=np.float64)
    groups = [labels["sub_reason"].to_numpy() == code for code in pd.unique(labels["sub_reason"]) if code]
    groups.append(labels["intent"].to_numpy() == "neutral")
    centroids = unit_rows(np.vstack([phrase_vectors[mask].mean(axis=0) for mask in groups if mask.any()]))
    logits = vectors @ centroids.T / temperature
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


# --- what analysts read ------------------------------------------------------------------------------------


def central_quotes(
    vectors: np.ndarray, theme_ids: np.ndarray, state: pd.DataFrame, quotes: Sequence[str], n: int = 3
) -> pd.DataFrame:
    """Return the `n` calls nearest each theme's centroid: theme_id, rank, call_row, similarity, quote.

    Duplicate quotes within a theme are skipped (ASR calls repeat stock phrases).
    """
    vectors = unit_rows(vectors)
    rows = []
    for theme_id, centroid in zip(state["theme_id"], state["centroid"], strict=True):
        members = np.flatnonzero(np.asarray(theme_ids) == theme_id)
        if not len(members):
            continue
        similarity = vectors[members] @ unit_rows(np.asarray(centroid)[None, :])[0]
        order = members[np.lexsort((members, -similarity))]
        seen: set[str] = set()
        for row in order:
            quote = _trimmed(quotes[row])
            if not quote or quote in seen:
                continue
            seen.add(quote)
            rows.append((int(theme_id), len(seen), int(row), float(vectors[row] @ unit_rows(
                np.asarray(centroid)[None, :])[0]), quote))
            if len(seen) == n:
                break
    return pd.DataFrame(rows, columns=["theme_id", "rank", "call_row", "similarity", "quote"])


def theme_drift(theme_ids: np.ndarray, state: pd.DataFrame) -> pd.DataFrame:
    """Share of tonight's calls per theme (review queue -1 included) beside its share at fit time."""
    shares = theme_shares(theme_ids, state["theme_id"])
    counts = pd.Series(np.asarray(theme_ids, dtype=np.int64)).value_counts()
    at_fit = _fit_shares(state) if not state.empty else pd.Series([0.0], index=[REVIEW])
    frame = pd.DataFrame({"theme_id": shares.index.astype(np.int64),
                          "calls": counts.reindex(shares.index, fill_value=0).to_numpy(dtype=np.int64),
                          "share": shares.to_numpy(),
                          "share_at_fit": at_fit.reindex(shares.index, fill_value=0.0).to_numpy()})
    frame["share_change"] = frame["share"] - frame["share_at_fit"]
    return frame


def _trimmed(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= QUOTE_MAX_CHARS else text[: QUOTE_MAX_CHARS - 1] + "…"
