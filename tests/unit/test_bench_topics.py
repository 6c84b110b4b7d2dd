"""Unit tests of bench/bench_topics.py: tokens, truth agreement, and both sides on a tiny seeded warehouse."""

from __future__ import annotations

import math
import sys
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_topics  # noqa: E402

from insights.intents import load_taxonomy  # noqa: E402
from insights.text import content_hash  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402

DAY = date(2026, 6, 30)
MODEL = "fake:groups"
DIMS = 16
GROUPS = {  # sub-reason: (axis, English turn, Chinese turn)
    "job_loss": (0, "i lost my job last month", "我失业了 公司裁员"),
    "forgot_date": (1, "sorry i forgot the date", "我忘记还款日了"),
    "complaint_threat": (2, "stop calling or i will complain", "再打电话我就投诉"),
}
CALLS_PER_GROUP = 30


def _vector(text: str, axis: int | None) -> list[float]:
    vector = 0.15 * np.random.default_rng(zlib.crc32(text.encode())).normal(size=DIMS)
    if axis is not None:
        vector[axis] += 1.0
    return list(vector / np.linalg.norm(vector))


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A warehouse holding one night's utterances and cached vectors, and a truth.csv for its customers."""
    folder = tmp_path_factory.mktemp("topics")
    rows, truth = [], []
    for group, (sub_reason, (axis, english, chinese)) in enumerate(GROUPS.items()):
        for i in range(CALLS_PER_GROUP):
            customer = f"C{group}{i:03d}"
            text = f"{english} {i}" if i % 2 else f"{chinese} {i}"
            rows += [(f"K{group}{i:03d}", customer, 1, text, axis), (f"K{group}{i:03d}", customer, 2, "hello", None)]
            truth.append((customer, "hardship", sub_reason if i < CALLS_PER_GROUP - 2 else ""))
    utterances = pd.DataFrame(rows, columns=["call_id", "customer_id", "turn_no", "text", "axis"])
    utterances["content_hash"] = [content_hash(text, MODEL) for text in utterances["text"]]
    utterances["model_id"] = MODEL
    examples = load_taxonomy().examples["text"]
    cache = pd.concat([
        pd.DataFrame({"content_hash": utterances["content_hash"], "model_id": MODEL,
                      "vector": [_vector(t, None if pd.isna(a) else int(a))
                                 for t, a in zip(utterances["text"], utterances["axis"], strict=True)]}),
        pd.DataFrame({"content_hash": [content_hash(t, MODEL) for t in examples], "model_id": MODEL,
                      "vector": [_vector(t, None) for t in examples]}),
    ]).drop_duplicates("content_hash")
    warehouse = folder / "w.duckdb"
    with Warehouse(warehouse).session() as session:
        session.replace_partition("call_utterances", DAY, utterances.drop(columns=["axis"]))
        session.insert_frame("embedding_cache", cache)
    truth_csv = folder / "truth.csv"
    pd.DataFrame(truth, columns=["customer_id", "segment", "sub_reason"]).to_csv(truth_csv, index=False)
    return warehouse, truth_csv


def test_bertopic_terms_split_chinese_with_jieba_and_english_by_words():
    terms = bench_topics.bertopic_terms("My number is [PHONE], I LOST my job 我失业了 公司裁员")
    assert {"my", "number", "is", "lost", "job", "失业", "裁员"} <= set(terms)
    assert "公司" in terms
    assert "phone" not in terms and "i" not in terms
    assert all(len(term) > 1 for term in terms)


def test_truth_sub_reasons_leave_out_customers_without_one(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("customer_id,segment,sub_reason\nA,hardship,job_loss\nB,none,\nC,forgetful,forgot_date\n",
                    encoding="utf-8")
    assert bench_topics.truth_sub_reasons(path).to_dict() == {"A": "job_loss", "C": "forgot_date"}
    path.write_text("customer_id,segment\nA,hardship\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sub_reason"):
        bench_topics.truth_sub_reasons(path)


def test_agreement_scores_labelled_calls_only():
    truth = pd.Series({"A": "x", "B": "x", "C": "y", "D": "y"})
    customers = np.array(["A", "B", "C", "D", "E"])
    perfect = bench_topics.agreement(np.array([3, 3, -1, -1, 7]), customers, truth)
    assert perfect == {"calls": 4, "ari": pytest.approx(1.0), "nmi": pytest.approx(1.0)}
    mixed = bench_topics.agreement(np.array([0, 1, 0, 1, 0]), customers, truth)
    assert mixed["calls"] == 4 and mixed["ari"] < 0.5 and mixed["nmi"] < 0.5
    nobody = bench_topics.agreement(np.array([0]), np.array(["Z"]), truth)
    assert nobody["calls"] == 0 and math.isnan(nobody["ari"])
    with pytest.raises(ValueError, match="labels"):
        bench_topics.agreement(np.array([0, 1]), customers, truth)


def test_compare_topics_without_bertopic_measures_our_side(night):
    warehouse, truth = night
    result = bench_topics.compare_topics(warehouse, DAY, truth, runs=2, with_bertopic=False)
    assert result["calls"] == 3 * CALLS_PER_GROUP and result["utterances"] == 6 * CALLS_PER_GROUP
    assert result["bertopic"] is None and result["bertopic_missing"] and result["ours_vs_bertopic"] is None
    ours = result["ours"]
    assert len(ours["runs_seconds"]) == 2 and ours["seconds"] > 0
    assert ours["same_labels_every_run"]
    assert ours["topics"] >= 1
    assert 0.0 <= ours["outlier_share"] <= 1.0 and 0.0 <= ours["final_outlier_share"] <= 1.0
    assert ours["truth_calls"] == 3 * (CALLS_PER_GROUP - 2)
    assert -1.0 <= ours["ari"] <= 1.0 and 0.0 <= ours["nmi"] <= 1.0
    bench_topics.print_comparison(result)


def test_compare_topics_rejects_no_runs(night):
    with pytest.raises(ValueError, match="runs"):
        bench_topics.compare_topics(night[0], DAY, None, runs=0, with_bertopic=False)


def test_bertopic_side_on_the_same_vectors(night, capsys):
    pytest.importorskip("bertopic")
    pytest.importorskip("umap")
    warehouse, truth = night
    result = bench_topics.compare_topics(warehouse, DAY, truth, runs=1, with_bertopic=True)
    theirs = result["bertopic"]
    assert theirs is not None and theirs["topics"] >= 2
    assert theirs["truth_calls"] == result["ours"]["truth_calls"]
    assert theirs["nmi"] > 0.5  # three well separated groups of calls
    assert result["ours_vs_bertopic"] == pytest.approx(result["ours"]["seconds"] / theirs["seconds"])
    bench_topics.print_comparison(result)
    assert "ours / BERTopic" in capsys.readouterr().out


def test_our_runs_start_without_segmented_texts():
    from insights import themes

    themes.text_terms("我失业了 lost my job")
    bench_topics._forget_text_terms()
    assert not getattr(themes, "_TERMS_MEMO", {})
