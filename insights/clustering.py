"""Clustering calls by what the customer said: call vectors, reduction, HDBSCAN labels, cluster top terms.

The stage works on *call* vectors (one per call), never on raw utterances:

- `call_vectors` pools a call's utterance embeddings into one unit vector, weighting each utterance (the
  caller passes weights; `insights.intents` gives intent-bearing turns far more weight than small talk), so
  two calls about a lost job land together even when one of them also said "hello, who is this" five times.
- `reduced_vectors` runs PCA (fixed `random_state`) because HDBSCAN on 512-d vectors is slow and its density
  estimates degrade in high dimensions (see shared/STACK.md); `n_components` is capped at `min(n - 1, d)`.
- `cluster_labels` runs HDBSCAN (`prediction_data=True`, one core-distance job: no extra threads spawned);
  -1 marks an outlier. Inputs too small to hold one cluster come back all -1 without calling the clusterer.
- `cluster_top_terms` names clusters with a class-based TF-IDF over English words and jieba-segmented
  Chinese words (`insights.themes` owns the segmenter and the stop words).

Model stages are objects passed in (`Reducer`, `Clusterer`); defaults are built when none is given.
Same input => same output: PCA and HDBSCAN are seeded or deterministic, and term ties break alphabetically.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # imported where used: together they take about 2 s, which every stage importing this paid
    import hdbscan
    from sklearn.decomposition import PCA

logger = logging.getLogger(__name__)

OUTLIER = -1

class Reducer(Protocol):
    """Anything with `fit_transform(X) -> (n, k) array`, e.g. `sklearn.decomposition.PCA`."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """Fit on `X` and return its reduced coordinates."""
        ...


class Clusterer(Protocol):
    """Anything with `fit_predict(X) -> labels`, -1 meaning outlier, e.g. `hdbscan.HDBSCAN`."""

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        """Fit on `X` and return one integer label per row."""
        ...


def call_vectors(vectors: np.ndarray, call_codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One L2-normalised vector per call: the weighted mean of its utterance vectors.

    `call_codes[i]` is the call (0..m-1) of utterance row i; every code in 0..max must occur; weights > 0.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    codes = np.asarray(call_codes, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if vectors.ndim != 2 or codes.shape != (len(vectors),) or weights.shape != (len(vectors),):
        raise ValueError("vectors must be (n, d) with one call code and one weight per row")
    if len(vectors) == 0:
        return np.zeros((0, vectors.shape[1]), dtype=np.float32)
    if np.any(weights <= 0) or not np.all(np.isfinite(weights)):
        raise ValueError("utterance weights must be finite and > 0")
    n_calls = int(codes.max()) + 1
    pooled = np.zeros((n_calls, vectors.shape[1]))
    np.add.at(pooled, codes, vectors * weights[:, None])
    return _unit_rows(pooled).astype(np.float32)


def default_reducer(n_samples: int, n_features: int, n_components: int = 15, seed: int = 42) -> PCA:
    """Return the default reducer: seeded PCA to `min(n_components, n_samples - 1, n_features)` dims."""
    from sklearn.decomposition import PCA

    components = max(1, min(n_components, n_samples - 1, n_features))
    return PCA(n_components=components, random_state=seed)


def reduced_vectors(
    vectors: np.ndarray, reducer: Reducer | None = None, n_components: int = 15, seed: int = 42
) -> np.ndarray:
    """Vectors reduced for density clustering; fewer than 2 rows are returned unchanged (nothing to fit)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-d, got shape {vectors.shape}")
    if len(vectors) < 2:
        return vectors.copy()
    if reducer is None:
        reducer = default_reducer(len(vectors), vectors.shape[1], n_components, seed)
    # Identical rows have zero total variance: sklearn divides by it for explained_variance_ratio_ only.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(reducer.fit_transform(vectors), dtype=np.float64)


def default_clusterer(min_cluster_size: int = 8, min_samples: int | None = None) -> hdbscan.HDBSCAN:
    """Return the default clusterer: HDBSCAN keeping prediction data (for `approximate_predict`), one job."""
    import hdbscan

    return hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        prediction_data=True,
        core_dist_n_jobs=1,
    )


def cluster_labels(
    reduced: np.ndarray,
    clusterer: Clusterer | None = None,
    min_cluster_size: int = 8,
    min_samples: int | None = None,
) -> np.ndarray:
    """Cluster id per row (-1 = outlier); all -1 when there are fewer rows than one cluster needs."""
    reduced = np.asarray(reduced, dtype=np.float64)
    if min_cluster_size < 2:
        raise ValueError(f"min_cluster_size must be >= 2, got {min_cluster_size}")
    needed = max(min_cluster_size, min_samples or 0)
    if len(reduced) < needed:
        logger.info("only %d calls (< %d): every call is an outlier", len(reduced), needed)
        return np.full(len(reduced), OUTLIER, dtype=np.int64)
    model = clusterer if clusterer is not None else default_clusterer(min_cluster_size, min_samples)
    labels = np.asarray(model.fit_predict(reduced), dtype=np.int64)
    if labels.shape != (len(reduced),):
        raise ValueError(f"clusterer returned {labels.shape} labels for {len(reduced)} rows")
    return labels


def text_terms(text: str) -> list[str]:
    """Terms of one utterance: English words and jieba-segmented Chinese words, stop words dropped.

    Delegates to `insights.themes.text_terms` (the stop words live in `insights/theme_terms.yaml`).
    """
    from insights.themes import text_terms as theme_text_terms

    return theme_text_terms(text)


def cluster_top_terms(
    texts: Sequence[str], labels: Sequence[Hashable], top_n: int = 5
) -> dict[Hashable, list[str]]:
    """Top terms per label by class-based TF-IDF, both languages together (ties break by term).

    The scores are `insights.themes.class_term_scores` (every label, outliers included, counts for the IDF).
    """
    from insights.themes import class_term_scores

    scores = class_term_scores(texts, labels, top_n=top_n)
    top: dict[Hashable, list[str]] = {label: [] for label in dict.fromkeys(labels)}
    for label in top:
        rows = scores[scores["label"] == label]
        top[label] = [term for _, term in sorted(zip(-rows["score"], rows["term"], strict=True))[:top_n]]
    return top


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
