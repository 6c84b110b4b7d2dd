"""The report's pure parts on tiny frames and arrays: segment change, action counts, themes, PCA, CJK charts."""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.report import (
    action_counts,
    chart_bars,
    chart_call_map,
    chart_days_late,
    chart_segment_counts,
    mean_call_vectors,
    pca_2d,
    register_cjk_font,
    segment_change,
    theme_labels,
    theme_table,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _mix() -> pd.DataFrame:
    return pd.DataFrame({
        "as_of": pd.to_datetime(["2026-06-29", "2026-06-30", "2026-06-30", "2026-06-30"]),
        "segment": ["hardship", "needs_review", "hardship", "forgetful"],
        "customers": [5, 2, 7, 0],
        "previous_as_of": pd.to_datetime([None, "2026-06-29", "2026-06-29", "2026-06-29"]),
        "previous_customers": [None, 3, 5, 1],
        "change_vs_previous_night": [None, -1, 2, -1],
    })


def test_segment_change_keeps_tonight_in_segment_order():
    change = segment_change(_mix(), date(2026, 6, 30))
    assert list(change["segment"]) == ["hardship", "forgetful", "needs_review"]
    assert list(change["customers"]) == [7, 0, 2]
    assert list(change["change"]) == [2, -1, -1]
    assert segment_change(_mix(), date(2026, 7, 1)).empty


def test_action_counts_split_joined_actions_and_sort():
    rows = pd.DataFrame({"action": ["caring_sms+deferral_offer", "caring_sms", "", None],
                         "treatments": ["a;b", "b", "", "b"]})
    assert action_counts(rows).to_dict("list") == {"action": ["caring_sms", "deferral_offer"], "customers": [2, 1]}
    assert action_counts(rows, "treatments").to_dict("list") == {"action": ["b", "a"], "customers": [3, 1]}
    assert action_counts(rows.iloc[0:0]).empty


def test_theme_labels_name_clusters_and_group_outliers_by_intent():
    # the last call was an HDBSCAN outlier rescued into theme 1: it counts in that theme
    calls = pd.DataFrame({"cluster_id": [0, -1, 1, 5, 1], "is_outlier": [False, True, False, False, True],
                          "intent": ["hardship", "forgetful", "hardship", "unclear", "hardship"]})
    clusters = pd.DataFrame({"cluster_id": [0, 1], "name": ["失业 job", "病 ill"]})
    assert list(theme_labels(calls, clusters)) == ["失业 job", "unclustered: forgetful", "病 ill",
                                                   "unclustered: unclear", "病 ill"]


def test_theme_table_takes_the_clearest_distinct_quotes_and_stored_terms_first():
    calls = pd.DataFrame({
        "call_id": ["a", "b", "c", "d", "e"], "customer_id": ["x", "x", "y", "z", "z"],
        "theme": ["T", "T", "T", "T", "U"], "intent": ["hardship"] * 4 + ["unclear"],
        "intent_score": [0.5, 0.9, 0.7, 0.9, 0.1], "evidence": ["low", "high", "mid", "high", ""],
    })
    clusters = pd.DataFrame({"name": ["T"], "top_terms": ["失业 工资"]})
    table = theme_table(calls, clusters, {"T": ["ignored"], "U": ["嗯", "hello"]}, quotes_per_theme=2)
    first, second = table.to_dict("records")
    assert (first["theme"], first["calls"], first["customers"], first["top_terms"]) == ("T", 4, 3, "失业 工资")
    assert first["quotes"] == ["high", "mid"]
    assert (second["top_terms"], second["quotes"]) == ("嗯 hello", [])


def test_mean_call_vectors_average_each_calls_utterances_and_skip_unknown_hashes():
    utterances = pd.DataFrame({"call_id": ["b", "a", "a", "c"], "content_hash": ["h3", "h1", "h2", "missing"]})
    vectors = {"h1": np.array([1.0, 0.0]), "h2": np.array([3.0, 2.0]), "h3": np.array([0.0, 1.0])}
    call_ids, matrix = mean_call_vectors(utterances, vectors)
    assert call_ids == ["a", "b"]
    np.testing.assert_allclose(matrix, [[2.0, 1.0], [0.0, 1.0]])
    assert mean_call_vectors(utterances.iloc[0:0], vectors)[0] == []


def test_pca_2d_separates_blobs_deterministically():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    points = np.vstack([centre + rng.normal(scale=0.3, size=(20, 16)) for centre in centres])
    projected = pca_2d(points)
    assert projected.shape == (60, 2)
    np.testing.assert_allclose(projected, pca_2d(points.copy()))
    means = np.array([projected[i * 20:(i + 1) * 20].mean(axis=0) for i in range(3)])
    spread = max(projected[i * 20:(i + 1) * 20].std(axis=0).max() for i in range(3))
    assert min(np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i + 1, 3)) > 5 * spread
    assert pca_2d(points[:1]).shape == (1, 2)
    assert pca_2d(np.zeros((0, 4))).shape == (0, 2)


def test_register_cjk_font_finds_a_font_with_chinese_glyphs():
    from matplotlib.ft2font import FT2Font

    candidates = load_settings()["report"]["cjk_fonts"]
    family = register_cjk_font(candidates)
    assert family, f"no CJK font among {candidates}: run `make browser` (installs fonts-wqy-microhei)"
    path = next(c for c in candidates if __import__("pathlib").Path(c).is_file())
    font = FT2Font(path)
    assert all(font.get_char_index(ord(ch)) for ch in "逾期客户失业还款")
    assert register_cjk_font(["/nonexistent/font.ttc"]) is None


def test_charts_with_chinese_text_render_without_missing_glyphs():
    register_cjk_font(load_settings()["report"]["cjk_fonts"])
    change = segment_change(_mix(), date(2026, 6, 30))
    lateness = pd.DataFrame({"segment": ["hardship", "forgetful", "hardship"], "days_past_due": [40, 2, 10]})
    late = pd.DataFrame({"segment": ["forgetful", "forgetful"], "days_late": [1, 3]})
    points = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for tofu
        charts = [
            chart_segment_counts(change),
            chart_call_map(points, ["失业了 工资发不出来", "忘记还款日期", "失业了 工资发不出来"], themes_shown=1),
            chart_days_late(lateness, late),
            chart_bars(pd.DataFrame({"rule": ["日期格式错误", "bad_amount"], "rows": [3, 1]}), "rule", "rows",
                       "隔离 quarantine", "quarantine", "#c44e52"),
        ]
    for chart in charts:
        assert chart.png.startswith(PNG) and len(chart.png) > 5000, chart.key


@pytest.mark.parametrize("empty", [pd.DataFrame({"action": pd.Series(dtype=str),
                                                 "customers": pd.Series(dtype="int64")})])
def test_bar_chart_of_nothing_still_renders(empty):
    assert chart_bars(empty, "action", "customers", "none", "actions", "#000").png.startswith(PNG)
