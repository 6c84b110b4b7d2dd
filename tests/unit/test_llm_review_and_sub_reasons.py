"""The LLM disagreement rule in the care segment, and per-sub-reason accuracy of `postloan evaluate`."""

import pandas as pd
import pytest

from insights.segments import care_segments, load_policy
from pipelines.config import load_settings
from pipelines.evaluate import sub_reason_accuracy

THRESHOLDS = load_settings()["segment"]


def test_llm_disagreement_sends_the_customer_to_review():
    behaviour = pd.DataFrame({"customer_id": ["a", "b"], "days_past_due": [5, 5]})
    in_scope = behaviour[["customer_id"]]
    calls = pd.DataFrame({"customer_id": ["a", "b"], "call_id": ["1", "2"], "intent": ["hardship", "hardship"],
                          "intent_score": [0.9, 0.9], "sub_reason": ["job_loss", "job_loss"],
                          "evidence": ["我失业了", "我失业了"], "llm_disagrees": [True, False]})
    segments = care_segments(in_scope, behaviour, calls, THRESHOLDS, load_policy()).set_index("customer_id")
    assert segments.loc["a", "segment"] == "needs_review"
    assert "llm_call_conflict" in segments.loc["a", "reasons"]
    assert segments.loc["b", "segment"] == "hardship"
    without = care_segments(in_scope, behaviour, calls.drop(columns="llm_disagrees"), THRESHOLDS, load_policy())
    assert (without["segment"] == "hardship").all()


def test_sub_reason_accuracy_counts_customers_with_calls():
    truth = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
                          "segment": ["hardship", "hardship", "forgetful", "forgetful", "none"],
                          "sub_reason": ["job_loss", "job_loss", "forgot_date", "forgot_date", ""]})
    segments = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
                             "sub_reason": ["job_loss", "illness_injury", "forgot_date", "", ""],
                             "call_count": [1, 2, 1, 0, 1]})
    accuracy = sub_reason_accuracy(truth, segments).set_index("sub_reason")
    assert accuracy.loc["job_loss", ["customers", "correct"]].tolist() == [2, 1]
    assert accuracy.loc["forgot_date", "customers"] == 1  # d had no calls
    assert accuracy.loc["all", "accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="sub_reason"):
        sub_reason_accuracy(truth.drop(columns="sub_reason"), segments)
