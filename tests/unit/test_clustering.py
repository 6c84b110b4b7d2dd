"""Unit tests of insights.clustering on make_blobs arrays and tiny hand-made vectors (no model needed)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from insights import clustering


def _blobs(n_samples: int = 60, centers: int = 3, n_features: int = 32) -> tuple[np.ndarray, np.ndarray]:
    points, truth = make_blobs(
        n_samples=n_samples, centers=centers, n_features=n_features, cluster_std=0.5, random_state=7
    )
    return points, truth


class _RecordingReducer:
    """A stub reducer that keeps the first two columns and records that it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        return X[:, :2]


class _ConstantClusterer:
    def __init__(self, labels: list[int]) -> None:
        self.labels = labels

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.labels)


# --- call_vectors ---------------------------------------------------------------------------------


def test_call_vectors_are_weighted_unit_means():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    codes = np.array([0, 0, 1])
    weights = np.array([3.0, 1.0, 0.5])

    pooled = clustering.call_vectors(vectors, codes, weights)

    expected_first = np.array([3.0, 1.0]) / np.linalg.norm([3.0, 1.0])
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled[0], expected_first, rtol=1e-6)
    np.testing.assert_allclose(pooled[1], [0.0, 1.0])


def test_call_vectors_do_not_mutate_inputs():
    vectors = np.array([[1.0, 2.0], [3.0, 4.0]])
    codes = np.array([0, 0])
    weights = np.array([1.0, 2.0])
    before = (vectors.copy(), codes.copy(), weights.copy())

    clustering.call_vectors(vectors, codes, weights)

    for original, kept in zip((vectors, codes, weights), before, strict=True):
        np.testing.assert_array_equal(original, kept)


def test_call_vectors_empty_and_bad_inputs():
    assert clustering.call_vectors(np.zeros((0, 4)), np.zeros(0), np.zeros(0)).shape == (0, 4)
    with pytest.raises(ValueError, match="weights"):
        clustering.call_vectors(np.ones((2, 3)), np.array([0, 1]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="one call code"):
        clustering.call_vectors(np.ones((2, 3)), np.array([0]), np.array([1.0, 1.0]))


# --- reduced_vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_rows", "n_features", "expected"), [(60, 32, 15), (5, 32, 4), (40, 3, 3), (2, 8, 1)]
)
def test_reduced_vectors_cap_components(n_rows, n_features, expected):
    vectors = np.random.default_rng(0).normal(size=(n_rows, n_features))

    assert clustering.reduced_vectors(vectors, n_components=15).shape == (n_rows, expected)


def test_reduced_vectors_are_deterministic_and_seeded():
    vectors, _ = _blobs()

    first = clustering.reduced_vectors(vectors, seed=3)
    second = clustering.reduced_vectors(vectors, seed=3)

    np.testing.assert_array_equal(first, second)


def test_reduced_vectors_single_row_and_identical_rows():
    one = np.ones((1, 5))
    assert clustering.reduced_vectors(one).shape == (1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = clustering.reduced_vectors(np.ones((10, 5)))
    assert np.all(np.isfinite(flat))


def test_reduced_vectors_use_the_given_reducer():
    reducer = _RecordingReducer()

    reduced = clustering.reduced_vectors(np.ones((4, 6)), reducer=reducer)

    assert reducer.calls == 1
    assert reduced.shape == (4, 2)


# --- cluster_labels -------------------------------------------------------------------------------


def test_cluster_labels_recover_blobs():
    vectors, truth = _blobs()

    labels = clustering.cluster_labels(clustering.reduced_vectors(vectors), min_cluster_size=8)

    assert set(labels) == {0, 1, 2}
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)


def test_cluster_labels_are_deterministic():
    vectors, _ = _blobs(n_samples=90, centers=4)
    reduced = clustering.reduced_vectors(vectors)

    np.testing.assert_array_equal(clustering.cluster_labels(reduced), clustering.cluster_labels(reduced))


@pytest.mark.parametrize("n_rows", [0, 1, 2, 7])
def test_cluster_labels_tiny_inputs_are_all_outliers(n_rows):
    reduced = np.random.default_rng(1).normal(size=(n_rows, 3))

    labels = clustering.cluster_labels(reduced, min_cluster_size=8)

    assert labels.shape == (n_rows,)
    assert np.all(labels == clustering.OUTLIER)


def test_cluster_labels_min_samples_larger_than_input():
    reduced = np.random.default_rng(1).normal(size=(9, 3))

    labels = clustering.cluster_labels(reduced, min_cluster_size=5, min_samples=12)

    assert np.all(labels == clustering.OUTLIER)


def test_cluster_labels_use_the_given_clusterer_and_check_its_output():
    reduced = np.zeros((3, 2))
    labels = clustering.cluster_labels(reduced, _ConstantClusterer([0, 0, -1]), min_cluster_size=2)
    assert list(labels) == [0, 0, -1]
    with pytest.raises(ValueError, match="labels"):
        clustering.cluster_labels(reduced, _ConstantClusterer([0]), min_cluster_size=2)
    with pytest.raises(ValueError, match="min_cluster_size"):
        clustering.cluster_labels(reduced, min_cluster_size=1)


# --- top terms ------------------------------------------------------------------------------------


def test_text_terms_english_words_and_jieba_chinese_words():
    terms = clustering.text_terms("I got LAID off 那个 我失业了 [PHONE]")

    assert "laid" in terms and "off" in terms and "失业" in terms
    assert "i" not in terms and "got" not in terms and "那个" not in terms
    assert "phone" not in terms


def test_cluster_top_terms_prefer_distinctive_terms():
    texts = [
        "laid off again 我失业了",
        "laid off last month 失业好久",
        "forgot the date 忘记还款",
        "forgot again 忘记了",
        "hello again 你好",
    ]
    labels = [0, 0, 1, 1, -1]

    top = clustering.cluster_top_terms(texts, labels, top_n=3)

    assert set(top[0][:2]) == {"laid", "off"}
    assert "forgot" in top[1] and "忘记" in top[1]
    assert "again" not in top[0] and "again" not in top[1]
    assert clustering.cluster_top_terms(texts, labels, top_n=3) == top


def test_cluster_top_terms_checks_lengths():
    with pytest.raises(ValueError, match="labels"):
        clustering.cluster_top_terms(["a b"], [0, 1])
