"""Unit tests of insights.themes: words, c-TF-IDF, stable IDs, outliers, drift (make_blobs, no model)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from insights import themes
from insights.intents import IntentPrototypes

DAY = date(2026, 6, 30)
SETTINGS = themes.ThemeSettings(min_cluster_size=5, n_components=5, outlier_min_similarity=0.5)


def _blobs(n: int = 90, centers: int = 3, seed: int = 7, dims: int = 16) -> tuple[np.ndarray, np.ndarray]:
    centre_points = np.eye(dims)[:centers] * 10
    points, truth = make_blobs(n_samples=n, centers=centre_points, n_features=dims, cluster_std=0.8,
                               random_state=seed)
    return points, truth


def _ids(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


# --- words ---------------------------------------------------------------------------------------------------


def test_text_terms_segment_chinese_with_jieba_and_drop_fillers():
    terms = themes.text_terms("嗯 那个 就是 我被公司裁员了 呃 现在还没找到工作 [PHONE]")
    assert "裁员" in terms and "找到" in terms and "工作" in terms
    assert not {"嗯", "那个", "就是", "呃", "phone"} & set(terms)
    assert all(len(term) > 1 for term in terms)


def test_text_terms_english_and_domain_words():
    terms = themes.text_terms("Uh I got LAID off, the 反催收 group said 停息挂账")
    assert {"laid", "off", "反催收", "停息挂账"} <= set(terms)
    assert not {"uh", "i", "got", "the"} & set(terms)


def test_class_term_scores_prefer_distinctive_terms_per_language():
    texts = ["laid off again 我失业了", "laid off last month 失业好久", "forgot the date 忘记还款日",
             "forgot again 我忘记了", "again 你好"]
    labels = [0, 0, 1, 1, -1]
    terms = themes.class_term_scores(texts, labels, top_n=3)
    first = terms[(terms["label"] == 0) & (terms["language"] == "en")].sort_values("rank")["term"].tolist()
    assert set(first[:2]) == {"laid", "off"}
    assert "失业" in terms[(terms["label"] == 0) & (terms["language"] == "zh")]["term"].tolist()
    assert "忘记" in terms[(terms["label"] == 1) & (terms["language"] == "zh")]["term"].tolist()
    assert "again" not in first
    pd.testing.assert_frame_equal(terms, themes.class_term_scores(texts, labels, top_n=3))
    with pytest.raises(ValueError, match="labels"):
        themes.class_term_scores(["a"], [0, 1])


def test_theme_name_joins_both_languages():
    terms = pd.DataFrame({"language": ["zh", "en", "zh"], "rank": [1, 1, 2], "term": ["失业", "laid", "裁员"]})
    assert themes.theme_name(terms, "hardship", "job_loss") == "hardship/job_loss: 失业 裁员 | laid"
    assert themes.theme_name(terms.iloc[0:0], "unclear", "") == "unclear"


# --- matching, assignment, drift -----------------------------------------------------------------------------


def test_matched_theme_ids_are_one_to_one_and_fresh_below_the_threshold():
    previous = np.eye(3)
    new = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, -1.0]])
    ids, sources = themes.matched_theme_ids(new, previous, [10, 11, 12], 0.8, next_id=13)
    assert ids[0] == 11 and ids[1] == 10  # permuted clusters keep their IDs
    assert ids[2] == 13 and sources[2] is None  # the second candidate for theme 10 gets a fresh ID
    assert ids[3] == 14 and sources[3] is None  # nothing like it before
    assert themes.matched_theme_ids(new, np.zeros((0, 3)), [], 0.8, next_id=0)[0] == [0, 1, 2, 3]


def test_assigned_themes_core_outlier_and_review():
    state = pd.DataFrame({"theme_id": [4, 7], "centroid": [np.array([1.0, 0, 0]), np.array([0, 1.0, 0])],
                          "core_similarity": [0.95, 0.95]})
    vectors = np.array([[1.0, 0.05, 0], [0.7, 0.0, 0.71], [0.1, 0.1, 1.0]])
    got = themes.assigned_themes(vectors, state, outlier_min_similarity=0.5)
    assert got["theme_id"].tolist() == [4, 4, -1]
    assert got["is_outlier"].tolist() == [False, True, True]
    assert got["is_review"].tolist() == [False, False, True]
    empty = themes.assigned_themes(vectors, state.iloc[0:0], 0.5)
    assert (empty["theme_id"] == -1).all() and empty["is_review"].all()


def test_drift_distance_bounds():
    shares = pd.Series([0.5, 0.5, 0.0], index=[0, 1, -1])
    assert themes.drift_distance(shares, shares) == pytest.approx(0.0)
    assert themes.drift_distance(pd.Series([1.0], index=[0]), pd.Series([1.0], index=[1])) == pytest.approx(1.0)
    assert 0 < themes.drift_distance(shares, pd.Series([0.4, 0.4, 0.2], index=[0, 1, -1])) < 0.5


def test_refit_reasons():
    state = pd.DataFrame({"model_id": ["m"]})
    settings = themes.ThemeSettings(refit_every_days=7, drift_threshold=0.3)
    assert themes.refit_reason(state.iloc[0:0], None, DAY, "m", None, settings) == "first_fit"
    assert themes.refit_reason(state, DAY, DAY, "other", 0.0, settings) == "model_changed"
    assert themes.refit_reason(state, DAY - timedelta(days=7), DAY, "m", 0.0, settings) == "schedule"
    assert themes.refit_reason(state, DAY - timedelta(days=1), DAY, "m", 0.31, settings) == "drift"
    assert themes.refit_reason(state, DAY - timedelta(days=1), DAY, "m", 0.1, settings) == ""


def test_settings_validate_and_reject_unknown_keys():
    with pytest.raises(ValueError, match="drift_threshold"):
        themes.ThemeSettings(drift_threshold=0)
    with pytest.raises(ValueError, match="unknown"):
        themes.ThemeSettings.from_config({"nonsense": 1})


# --- whole nights ---------------------------------------------------------------------------------------------


def test_first_night_fits_and_a_rerun_gives_the_same_ids():
    points, truth = _blobs()
    empty = pd.DataFrame(columns=themes.STATE_COLUMNS)
    first = themes.theme_night(_ids(len(points)), points, empty, None, DAY, "m", 0, SETTINGS)
    again = themes.theme_night(_ids(len(points)), points, empty, None, DAY, "m", 0, SETTINGS)
    assert first.refit_reason == "first_fit" and first.fitted_on == DAY
    assert len(first.state) == 3 and first.state["is_new"].all()
    pd.testing.assert_frame_equal(first.assignments, again.assignments)
    # each true blob maps to exactly one theme
    labels = first.assignments["theme_id"].to_numpy()
    assert all(len(set(labels[truth == t])) == 1 for t in range(3))


def test_next_night_assigns_without_refitting_and_keeps_ids():
    points, _ = _blobs()
    empty = pd.DataFrame(columns=themes.STATE_COLUMNS)
    first = themes.theme_night(_ids(len(points)), points, empty, None, DAY, "m", 0, SETTINGS)
    later, _ = _blobs(n=60, seed=8)
    night = themes.theme_night(_ids(len(later), "D"), later, first.state, DAY, DAY + timedelta(days=1), "m", 3,
                               SETTINGS)
    assert night.refit_reason == "" and night.fitted_on == DAY
    assert night.drift is not None and night.drift < SETTINGS.drift_threshold
    # a call seen on both nights keeps its theme
    both = themes.theme_night(_ids(len(points)), points, first.state, DAY, DAY + timedelta(days=1), "m", 3,
                              SETTINGS)
    pd.testing.assert_frame_equal(both.assignments, first.assignments)


def test_scheduled_refit_keeps_ids_of_the_same_themes():
    points, _ = _blobs()
    empty = pd.DataFrame(columns=themes.STATE_COLUMNS)
    first = themes.theme_night(_ids(len(points)), points, empty, None, DAY, "m", 0, SETTINGS)
    order = np.random.default_rng(1).permutation(len(points))
    shuffled_ids = [_ids(len(points))[i] for i in order]
    refit = themes.theme_night(shuffled_ids, points[order], first.state, DAY, DAY + timedelta(days=7), "m", 3,
                               SETTINGS)
    assert refit.refit_reason == "schedule" and refit.fitted_on == DAY + timedelta(days=7)
    assert set(refit.state["theme_id"]) == set(first.state["theme_id"])
    assert not refit.state["is_new"].any()
    before = dict(zip(_ids(len(points)), first.assignments["theme_id"], strict=True))
    kept = np.mean([before[c] == t for c, t in zip(refit.assignments["call_id"], refit.assignments["theme_id"],
                                                  strict=True)])
    assert kept == 1.0


def test_drift_from_a_new_topic_refits_and_flags_the_new_theme():
    points, _ = _blobs(centers=2)
    empty = pd.DataFrame(columns=themes.STATE_COLUMNS)
    first = themes.theme_night(_ids(len(points)), points, empty, None, DAY, "m", 0, SETTINGS)
    assert len(first.state) == 2
    three, _ = _blobs(centers=3, seed=9)
    night = themes.theme_night(_ids(len(three), "D"), three, first.state, DAY, DAY + timedelta(days=1), "m", 2,
                               SETTINGS)
    assert night.refit_reason == "drift"
    assert len(night.state) == 3
    new = night.state[night.state["is_new"]]
    assert new["theme_id"].tolist() == [2]
    assert set(night.state.loc[~night.state["is_new"], "theme_id"]) == {0, 1}


def test_theme_drift_table_and_central_quotes():
    points, _ = _blobs()
    empty = pd.DataFrame(columns=themes.STATE_COLUMNS)
    first = themes.theme_night(_ids(len(points)), points, empty, None, DAY, "m", 0, SETTINGS)
    labels = first.assignments["theme_id"].to_numpy()
    drift = themes.theme_drift(labels, first.state)
    assert drift["share"].sum() == pytest.approx(1.0)
    assert -1 in drift["theme_id"].tolist()
    quotes = themes.central_quotes(points, labels, first.state, [f"q{i % 20}" for i in range(len(points))], n=3)
    assert quotes.groupby("theme_id").size().max() == 3
    assert not quotes.duplicated(["theme_id", "quote"]).any()
    first_quotes = quotes[quotes["rank"] == 1]
    assert (first_quotes["similarity"].to_numpy() >= quotes.groupby("theme_id")["similarity"].max().to_numpy()
            - 1e-12).all()


def test_guided_vectors_put_languages_together():
    labels = pd.DataFrame({"intent": ["hardship", "hardship", "forgetful", "forgetful", "neutral"],
                           "sub_reason": ["job_loss", "job_loss", "forgot_date", "forgot_date", ""]})
    # phrase vectors: axis 0/1 = the two topics, axis 2/3 = a language direction
    vectors = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1]], dtype=np.float32)
    prototypes = IntentPrototypes(labels=labels, vectors=themes.unit_rows(vectors).astype(np.float32))
    calls = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0]], dtype=np.float64)
    guided = themes.guided_vectors(calls, prototypes, temperature=0.05)
    assert guided.shape == (3, 3)
    np.testing.assert_allclose(guided.sum(axis=1), 1.0)
    assert guided[0] @ guided[1] > guided[0] @ guided[2]
    np.testing.assert_allclose(themes.guided_vectors(calls, prototypes, 0), themes.unit_rows(calls))
