import pandas as pd
import pytest

from insights.segments import (
    SEGMENT_COLUMNS,
    action_for,
    behaviour_signals,
    care_segments,
    customer_call_intents,
    load_policy,
)
from pipelines.config import load_settings

THRESHOLDS = load_settings()["segment"]
POLICY = load_policy()


def behaviour_row(customer_id: str, **values: object) -> dict:
    row = {"customer_id": customer_id, "days_past_due": 0, "share_paid_1_3_days_late": 0.0,
           "installments_paid": 0, "on_time_streak_before_break": 0, "partial_payment_count": 0,
           "is_first_payment_default": False, "amount_overdue": 0.0}
    row.update(values)
    return row


def call_row(customer_id: str, call_id: str, intent: str, score: float, sub_reason: str = "",
             evidence: str = "quote") -> dict:
    return {"customer_id": customer_id, "call_id": call_id, "intent": intent, "intent_score": score,
            "sub_reason": sub_reason, "evidence": evidence}


BEHAVIOUR = pd.DataFrame([
    behaviour_row("clean_break", days_past_due=20, installments_paid=12, on_time_streak_before_break=12,
                  amount_overdue=900.0),
    behaviour_row("habitual", days_past_due=3, installments_paid=10, share_paid_1_3_days_late=0.6),
    behaviour_row("fpd", days_past_due=40, is_first_payment_default=True),
    behaviour_row("plain", days_past_due=10, installments_paid=2),
])


def test_behaviour_signals_point_each_pattern_to_its_segment():
    signals = behaviour_signals(BEHAVIOUR, THRESHOLDS).set_index("customer_id")
    assert signals.loc["clean_break", "behaviour_segment"] == "hardship"
    assert signals.loc["habitual", "behaviour_segment"] == "forgetful"
    assert signals.loc["fpd", "behaviour_segment"] == "intent_to_default"
    assert pd.isna(signals.loc["plain", "behaviour_segment"])
    assert "clean_record_broken" in signals.loc["clean_break", "behaviour_reasons"]
    assert signals.loc["habitual", "behaviour_fact"].startswith("60% of 10")


def test_habitual_lateness_with_a_long_delinquency_is_not_forgetful():
    frame = pd.DataFrame([behaviour_row("x", days_past_due=45, installments_paid=10,
                                        share_paid_1_3_days_late=0.8)])
    assert pd.isna(behaviour_signals(frame, THRESHOLDS)["behaviour_segment"].iloc[0])


def test_customer_call_intents_weighs_disagreeing_calls():
    calls = pd.DataFrame([
        call_row("a", "c1", "hardship", 0.9, "job_loss", "lost my job"),
        call_row("a", "c2", "hardship", 0.7, "job_loss"),
        call_row("a", "c3", "intent_to_default", 0.8, "refusal"),
        call_row("b", "c4", "unclear", 0.2),
    ])
    intents = customer_call_intents(calls, 0.45).set_index("customer_id")
    assert intents.loc["a", "call_intent"] == "hardship"
    assert intents.loc["a", "call_score"] == pytest.approx(0.9 * 1.6 / 2.4)
    assert intents.loc["a", "call_evidence"] == "lost my job"
    assert intents.loc["a", "call_count"] == 3
    assert intents.loc["b", "call_intent"] == "unclear"


def test_care_segments_combines_words_and_behaviour():
    in_scope = pd.DataFrame({"customer_id": ["clean_break", "habitual", "fpd", "plain", "called_only"]})
    calls = pd.DataFrame([
        call_row("clean_break", "c1", "hardship", 0.8, "illness_injury", "我老婆住院了 电话[PHONE]"),
        call_row("habitual", "c2", "intent_to_default", 0.9, "refusal", "not paying"),
        call_row("called_only", "c3", "forgetful", 0.9, "forgot_date", "oh I totally forgot"),
    ])
    original = calls.copy()
    segments = care_segments(in_scope, BEHAVIOUR, calls, THRESHOLDS, POLICY).set_index("customer_id")
    pd.testing.assert_frame_equal(calls, original)
    assert list(segments.reset_index().columns) == SEGMENT_COLUMNS
    agree = segments.loc["clean_break"]
    assert agree["segment"] == "hardship" and agree["confidence"] > 0.8
    assert agree["action"] == "caring_sms+deferral_offer+interest_waiver_review"
    assert "call_illness_injury" in agree["reasons"] and agree["evidence"].startswith("我老婆住院了")
    conflict = segments.loc["habitual"]
    assert conflict["segment"] == "needs_review" and "behaviour_call_conflict" in conflict["reasons"]
    assert segments.loc["fpd", "segment"] == "intent_to_default"
    assert segments.loc["fpd", "evidence"] == "first installment never paid; 40 days past due"
    assert segments.loc["plain", "segment"] == "needs_review"
    assert "weak_evidence" in segments.loc["plain", "reasons"]
    assert segments.loc["called_only", "segment"] == "forgetful"
    assert segments.loc["called_only", "days_past_due"] == 0


def test_low_confidence_goes_to_review():
    in_scope = pd.DataFrame({"customer_id": ["c"]})
    calls = pd.DataFrame([call_row("c", "c1", "hardship", 0.5, "job_loss")])
    segment = care_segments(in_scope, BEHAVIOUR.iloc[:0], calls, THRESHOLDS, POLICY).iloc[0]
    assert segment["segment"] == "needs_review"
    assert segment["reasons"].endswith("low_confidence")


def test_evidence_is_short_and_redacted():
    in_scope = pd.DataFrame({"customer_id": ["c"]})
    quote = "我失业了 打我电话13812345678 " + "真的没钱 " * 30
    calls = pd.DataFrame([call_row("c", "c1", "hardship", 0.95, "job_loss", quote)])
    evidence = care_segments(in_scope, BEHAVIOUR.iloc[:0], calls, THRESHOLDS, POLICY)["evidence"].iloc[0]
    assert len(evidence) <= 80 and "13812345678" not in evidence


def test_policy_sub_reason_overrides_default_and_missing_default_is_an_error(tmp_path):
    assert action_for("forgetful", "auto_debit_problem", POLICY).startswith("auto_debit_card_update")
    assert action_for("forgetful", "unknown", POLICY) == "+".join(POLICY["segments"]["forgetful"]["default"])
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: x\nsegments:\n  hardship: {default: [a]}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="forgetful"):
        load_policy(broken)


def test_an_early_first_payment_miss_alone_goes_to_review_but_fpd30_is_intent():
    frame = pd.DataFrame([behaviour_row("early", days_past_due=12, is_first_payment_default=True),
                          behaviour_row("fpd30", days_past_due=30, is_first_payment_default=True)])
    in_scope = pd.DataFrame({"customer_id": ["early", "fpd30"]})
    segments = care_segments(in_scope, frame, pd.DataFrame(), THRESHOLDS, POLICY).set_index("customer_id")
    assert segments.loc["early", "segment"] == "needs_review"
    assert "first_payment_default" in segments.loc["early", "reasons"]
    assert segments.loc["fpd30", "segment"] == "intent_to_default"


def test_stopping_after_one_or_two_installments_points_to_intent():
    frame = pd.DataFrame([behaviour_row("epd", days_past_due=45, installments_paid=2),
                          behaviour_row("recent", days_past_due=20, installments_paid=2),
                          behaviour_row("long", days_past_due=45, installments_paid=5)])
    signals = behaviour_signals(frame, THRESHOLDS).set_index("customer_id")
    assert signals.loc["epd", "behaviour_segment"] == "intent_to_default"
    assert "early_payment_default" in signals.loc["epd", "behaviour_reasons"]
    assert signals.loc["epd", "behaviour_fact"] == "stopped paying after 2 installment(s); 45 days past due"
    assert pd.isna(signals.loc["recent", "behaviour_segment"])
    assert pd.isna(signals.loc["long", "behaviour_segment"])
