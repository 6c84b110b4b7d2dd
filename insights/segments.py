"""The care-segment decision: repayment behaviour and the customer's own words, combined per customer.

Glossary: dpd = days past due; fpd = first-payment default (installment 1 never paid).

Each in-scope customer gets one of ``hardship``, ``forgetful``, ``intent_to_default`` or ``needs_review``:
- behaviour alone points somewhere: a long clean record that breaks -> hardship; habitual 1-3 day lateness with a
  short current delinquency -> forgetful; first-payment default -> intent_to_default;
- the calls point somewhere when an intent is stated with a score above ``min_call_score``;
- both agree -> that segment with a combined confidence; only one speaks -> that one; they disagree, or neither
  speaks, or the confidence ends below ``needs_review_below`` -> needs_review, saying why in ``reasons``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from insights.text import redact_pii

SEGMENTS = ("hardship", "forgetful", "intent_to_default", "needs_review")
CALL_INTENTS = ("hardship", "forgetful", "intent_to_default")
POLICY_PATH = Path(__file__).with_name("policy.yaml")
EVIDENCE_CHARS = 80

SEGMENT_COLUMNS = [
    "customer_id", "segment", "confidence", "action", "reasons", "evidence", "sub_reason", "days_past_due",
    "amount_overdue", "is_overdue", "call_count", "call_intent", "behaviour_signal",
]


def load_policy(path: Path | str | None = None) -> dict[str, Any]:
    """Return the action policy, checking that every segment has a default action list."""
    chosen = Path(path) if path else POLICY_PATH
    policy = yaml.safe_load(chosen.read_text(encoding="utf-8"))
    if not isinstance(policy, dict) or "version" not in policy or "segments" not in policy:
        raise ValueError(f"policy file {chosen} needs 'version' and 'segments'")
    missing = [s for s in SEGMENTS if not policy["segments"].get(s, {}).get("default")]
    if missing:
        raise ValueError(f"policy file {chosen} has no default action for: {', '.join(missing)}")
    return policy


def action_for(segment: str, sub_reason: str | None, policy: Mapping[str, Any]) -> str:
    """Return the '+'-joined action codes the policy gives a segment and (optionally) its sub-reason."""
    rules = policy["segments"][segment]
    steps = (rules.get("sub_reasons") or {}).get(sub_reason or "") or rules["default"]
    return "+".join(steps)


def _column(frame: pd.DataFrame, name: str, default: Any) -> pd.Series:
    if name in frame.columns:
        return frame[name].fillna(default)
    return pd.Series(default, index=frame.index)


def behaviour_signals(behaviour: pd.DataFrame, thresholds: Mapping[str, Any]) -> pd.DataFrame:
    """Return per customer the segment the repayment behaviour points to (or None), its strength, codes and fact."""
    dpd = _column(behaviour, "days_past_due", 0).astype(int)
    share_late = _column(behaviour, "share_paid_1_3_days_late", 0.0).astype(float)
    paid = _column(behaviour, "installments_paid", 0).astype(int)
    streak = _column(behaviour, "on_time_streak_before_break", 0).astype(int)
    partial = _column(behaviour, "partial_payment_count", 0).astype(int)
    is_overdue = dpd > 0
    is_fpd = _column(behaviour, "is_first_payment_default", False).astype(bool) & (dpd > 0)
    # FPD30: a first installment 30+ days unpaid is the classic no-intent/fraud sign; earlier it is weak evidence
    is_fpd_confirmed = is_fpd & (dpd >= int(thresholds["fpd_confirmed_days_past_due"]))
    is_habitual = ((share_late >= float(thresholds["habitual_late_share"]))
                   & (paid >= int(thresholds["habitual_late_min_paid"]))
                   & (dpd <= int(thresholds["forgetful_max_days_past_due"])))
    is_clean_break = is_overdue & (streak >= int(thresholds["clean_streak_min"]))
    # early payment default: stopped paying after the first installment or two and stayed away a month or more
    is_epd = ~is_fpd & ~is_clean_break & (paid <= int(thresholds["epd_max_paid_installments"])) & (
        dpd >= int(thresholds["epd_min_days_past_due"]))
    # issue 3: promises to pay broken (judged on earlier nights' calls) point to intent_to_default, last in line
    broken = _column(behaviour, "promises_broken", 0).astype(int)
    is_broken_promises = broken >= int(thresholds.get("broken_promises_min", 2))
    segment = np.select([is_fpd, is_clean_break, is_habitual, is_epd, is_broken_promises],
                        ["intent_to_default", "hardship", "forgetful", "intent_to_default", "intent_to_default"],
                        default="")
    strength = np.select(
        [is_fpd, is_clean_break, is_habitual, is_epd, is_broken_promises],
        [np.where(is_fpd_confirmed, 0.8, 0.4),
         np.minimum(0.85, 0.6 + 0.02 * (streak - int(thresholds["clean_streak_min"])) + 0.05 * (partial > 0)),
         np.minimum(0.85, 0.55 + 0.5 * (share_late - float(thresholds["habitual_late_share"]))),
         np.full(len(dpd), 0.6), np.minimum(0.8, 0.5 + 0.1 * broken)],
        default=0.0,
    )
    codes = [
        ";".join(code for code, hit in (
            ("first_payment_default", f), ("early_payment_default", e), ("clean_record_broken", c),
            ("habitual_1_3_days_late", h), ("partial_payments", p > 0), (f"dpd_{_bucket(d)}", True)) if hit)
        for f, e, c, h, p, d in zip(is_fpd, is_epd, is_clean_break, is_habitual, partial, dpd, strict=True)
    ]
    facts = [_behaviour_fact(s, d, st, sl, pd_, pa, f) for s, d, st, sl, pd_, pa, f in
             zip(segment, dpd, streak, share_late, paid, partial, is_fpd, strict=True)]
    only_promises = is_broken_promises & ~(is_fpd | is_clean_break | is_habitual | is_epd)
    codes = [f"{c};broken_promises" if b else c for c, b in zip(codes, is_broken_promises, strict=True)]
    facts = [f"{n} promises to pay broken; {d} days past due" if o else f
             for f, n, d, o in zip(facts, broken, dpd, only_promises, strict=True)]
    return pd.DataFrame({
        "customer_id": behaviour["customer_id"].to_numpy(),
        "behaviour_segment": [s or None for s in segment],
        "behaviour_strength": strength.astype(float),
        "behaviour_reasons": codes,
        "behaviour_fact": facts,
        "days_past_due": dpd.to_numpy(),
        "amount_overdue": _column(behaviour, "amount_overdue", 0.0).astype(float).to_numpy(),
        "is_overdue": is_overdue.to_numpy(),
    })


def _bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "m1"
    if days_past_due <= 60:
        return "m2"
    return "m3" if days_past_due <= 90 else "m3_plus"


def _behaviour_fact(segment: str, dpd: int, streak: int, share_late: float, paid: int, partial: int,
                    is_fpd: bool) -> str:
    if segment == "intent_to_default":
        if is_fpd:
            return f"first installment never paid; {dpd} days past due"
        return f"stopped paying after {paid} installment(s); {dpd} days past due"
    if segment == "hardship":
        extra = f", {partial} partial payment(s)" if partial else ""
        return f"{streak} installments on time, then missed; {dpd} days past due{extra}"
    if segment == "forgetful":
        return f"{share_late:.0%} of {paid} paid installments were 1-3 days late; {dpd} days past due"
    return f"no clear repayment pattern; {dpd} days past due"


def customer_call_intents(calls: pd.DataFrame, min_call_score: float) -> pd.DataFrame:
    """Return per customer the intent their calls state, its score, sub-reason and best evidence quote.

    Calls with intent ``unclear`` or a score under ``min_call_score`` count but state nothing. When strong calls
    disagree, the winning intent's score is scaled by its share of the strong evidence.
    """
    columns = ["customer_id", "call_count", "call_intent", "call_score", "call_sub_reason", "call_evidence"]
    if calls.empty:
        return pd.DataFrame(columns=columns)
    ranked = calls.sort_values(["customer_id", "intent_score", "call_id"], ascending=[True, False, True],
                               kind="stable")
    best_any = ranked.drop_duplicates("customer_id").set_index("customer_id")
    result = pd.DataFrame({
        "customer_id": best_any.index,
        "call_count": calls.groupby("customer_id").size().reindex(best_any.index).to_numpy(),
        "call_intent": "unclear",
        "call_score": best_any["intent_score"].astype(float).to_numpy(),
        "call_sub_reason": "",
        "call_evidence": best_any["evidence"].fillna("").astype(str).to_numpy(),
    })
    strong = ranked[ranked["intent"].isin(CALL_INTENTS) & (ranked["intent_score"] >= min_call_score)]
    if not strong.empty:
        totals = strong.groupby(["customer_id", "intent"], as_index=False)["intent_score"].sum()
        totals = totals.sort_values(["customer_id", "intent_score", "intent"], ascending=[True, False, True])
        winners = totals.drop_duplicates("customer_id").set_index("customer_id")
        agreement = winners["intent_score"] / totals.groupby("customer_id")["intent_score"].sum()
        best = strong.merge(winners[["intent"]].reset_index(), on=["customer_id", "intent"]) \
            .drop_duplicates("customer_id").set_index("customer_id")  # ranked order: best call first
        decided = result["customer_id"].isin(best.index).to_numpy()
        ids = result.loc[decided, "customer_id"]
        result.loc[decided, "call_intent"] = best.loc[ids, "intent"].to_numpy()
        result.loc[decided, "call_score"] = (best.loc[ids, "intent_score"] * agreement.loc[ids]).to_numpy()
        result.loc[decided, "call_sub_reason"] = best.loc[ids, "sub_reason"].fillna("").astype(str).to_numpy()
        result.loc[decided, "call_evidence"] = best.loc[ids, "evidence"].fillna("").astype(str).to_numpy()
    return result.reset_index(drop=True)


def _short_quote(text: str) -> str:
    quote = redact_pii(" ".join(text.split()))
    return quote if len(quote) <= EVIDENCE_CHARS else quote[: EVIDENCE_CHARS - 1] + "…"


def _decision(row: Any, thresholds: Mapping[str, Any]) -> tuple[str, float, list[str], str, str]:
    """Return (segment, confidence, reason codes, evidence, sub_reason) for one customer."""
    min_call = float(thresholds["min_call_score"])
    behaviour = row.behaviour_segment if isinstance(row.behaviour_segment, str) else None
    behaviour_strength = float(row.behaviour_strength) if behaviour else 0.0
    call = row.call_intent if isinstance(row.call_intent, str) and row.call_intent in CALL_INTENTS else None
    call_score = float(row.call_score) if call and float(row.call_score) >= min_call else 0.0
    call = call if call_score else None
    sub_reason = str(row.call_sub_reason) if call and isinstance(row.call_sub_reason, str) else ""
    reasons = [c for c in str(row.behaviour_reasons or "").split(";") if c]
    if call:
        reasons += [f"call_{call}"] + ([f"call_{sub_reason}"] if sub_reason else [])
    elif int(row.call_count or 0) == 0:
        reasons.append("no_calls")
    else:
        reasons.append("call_unclear")
    quote = _short_quote(str(row.call_evidence)) if isinstance(row.call_evidence, str) else ""
    fact = str(row.behaviour_fact) if isinstance(row.behaviour_fact, str) else "no repayment records"
    if call and behaviour:
        if call == behaviour:
            confidence = 1 - (1 - call_score) * (1 - behaviour_strength)
            return call, confidence, reasons, quote or fact, sub_reason
        reasons.append("behaviour_call_conflict")
        return "needs_review", 0.8, reasons, f"{quote} | {fact}" if quote else fact, sub_reason
    if call:
        return call, 0.9 * call_score, reasons, quote, sub_reason
    if behaviour:
        return behaviour, behaviour_strength, reasons, fact, ""
    reasons.append("weak_evidence")
    return "needs_review", 1 - max(call_score, behaviour_strength), reasons, quote or fact, ""


def care_segments(
    in_scope: pd.DataFrame,
    behaviour: pd.DataFrame,
    calls: pd.DataFrame,
    thresholds: Mapping[str, Any],
    policy: Mapping[str, Any],
) -> pd.DataFrame:
    """Return one care-segment row per in-scope customer (columns :data:`SEGMENT_COLUMNS`)."""
    signals = behaviour_signals(behaviour, thresholds)
    intents = customer_call_intents(calls, float(thresholds["min_call_score"]))
    merged = (in_scope[["customer_id"]].drop_duplicates()
              .merge(signals, on="customer_id", how="left")
              .merge(intents, on="customer_id", how="left")
              .sort_values("customer_id", kind="stable").reset_index(drop=True))
    merged["call_count"] = merged["call_count"].fillna(0).astype(int)
    floor = float(thresholds["needs_review_below"])
    # issue 3: the optional LLM reading disagreeing with the embedding intent on a call -> needs_review
    llm_conflicts = set(calls.loc[calls["llm_disagrees"].fillna(False).astype(bool), "customer_id"]) \
        if "llm_disagrees" in calls.columns else set()
    decided = []
    for row in merged.itertuples(index=False):
        segment, confidence, reasons, evidence, sub_reason = _decision(row, thresholds)
        if row.customer_id in llm_conflicts:
            segment, reasons = "needs_review", [*reasons, "llm_call_conflict"]
        if segment != "needs_review" and confidence < floor:
            segment, reasons = "needs_review", [*reasons, "low_confidence"]
        decided.append({
            "customer_id": row.customer_id,
            "segment": segment,
            "confidence": round(float(confidence), 4),
            "action": action_for(segment, sub_reason, policy),
            "reasons": ";".join(reasons),
            "evidence": evidence,
            "sub_reason": sub_reason,
            "days_past_due": int(row.days_past_due) if pd.notna(row.days_past_due) else 0,
            "amount_overdue": float(row.amount_overdue) if pd.notna(row.amount_overdue) else 0.0,
            "is_overdue": bool(row.is_overdue) if pd.notna(row.is_overdue) else False,
            "call_count": int(row.call_count),
            "call_intent": row.call_intent if isinstance(row.call_intent, str) else "",
            "behaviour_signal": row.behaviour_segment if isinstance(row.behaviour_segment, str) else "",
        })
    return pd.DataFrame(decided, columns=SEGMENT_COLUMNS)
