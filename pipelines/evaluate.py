"""Scores of the care segments against known answers (the demo's truth.csv, or a labelled sample)."""

from __future__ import annotations

import pandas as pd

from insights.segments import SEGMENTS

NOT_IN_SCOPE = "not_in_scope"


def labelled_predictions(truth: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Return truth vs prediction per customer: every labelled customer and every segmented one.

    Customers the truth marks ``none`` (not expected in scope) count only when the job segmented them;
    labelled customers the job did not segment are predicted ``not_in_scope``.
    """
    labelled = truth[["customer_id", "segment"]].rename(columns={"segment": "true_segment"})
    predicted = segments[["customer_id", "segment", "call_count"]].rename(columns={"segment": "predicted_segment"})
    joined = labelled.merge(predicted, on="customer_id", how="outer")
    joined["true_segment"] = joined["true_segment"].fillna("none")
    joined["predicted_segment"] = joined["predicted_segment"].fillna(NOT_IN_SCOPE)
    joined["has_calls"] = joined["call_count"].fillna(0).astype(int) > 0
    keep = (joined["true_segment"] != "none") | (joined["predicted_segment"] != NOT_IN_SCOPE)
    return joined[keep].drop(columns=["call_count"]).sort_values("customer_id").reset_index(drop=True)


def segment_scores(pairs: pd.DataFrame) -> pd.DataFrame:
    """Return precision, recall, F1 and support per segment, plus a ``macro`` row (mean F1 over present ones)."""
    rows = []
    for segment in SEGMENTS:
        true_positive = int(((pairs["true_segment"] == segment) & (pairs["predicted_segment"] == segment)).sum())
        predicted = int((pairs["predicted_segment"] == segment).sum())
        support = int((pairs["true_segment"] == segment).sum())
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"segment": segment, "precision": precision, "recall": recall, "f1": f1,
                     "support": support, "predicted": predicted})
    scores = pd.DataFrame(rows)
    present = scores[scores["support"] > 0]
    macro = {"segment": "macro", "precision": present["precision"].mean() if len(present) else 0.0,
             "recall": present["recall"].mean() if len(present) else 0.0,
             "f1": present["f1"].mean() if len(present) else 0.0,
             "support": int(present["support"].sum()), "predicted": int(scores["predicted"].sum())}
    return pd.concat([scores, pd.DataFrame([macro])], ignore_index=True)


def evaluation(truth: pd.DataFrame, segments: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return segment scores for all customers, those with calls and those without."""
    pairs = labelled_predictions(truth, segments)
    return {
        "all": segment_scores(pairs),
        "with_calls": segment_scores(pairs[pairs["has_calls"]]),
        "without_calls": segment_scores(pairs[~pairs["has_calls"]]),
    }


def confusion(truth: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Return a confusion table: true segment (rows) by predicted segment (columns)."""
    pairs = labelled_predictions(truth, segments)
    return pd.crosstab(pairs["true_segment"], pairs["predicted_segment"])


def sub_reason_accuracy(truth: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Return per true sub-reason: customers with calls, how many got it right, accuracy; plus an ``all`` row.

    Only labelled customers with a true sub-reason who were segmented with at least one call count: the
    sub-reason comes from their words. A customer whose calls stated nothing gets '' and counts as wrong.
    """
    if "sub_reason" not in truth.columns:
        raise ValueError("truth has no sub_reason column")
    labelled = truth.loc[truth["sub_reason"].fillna("") != "", ["customer_id", "segment", "sub_reason"]] \
        .rename(columns={"sub_reason": "true_sub_reason", "segment": "true_segment"})
    predicted = segments[["customer_id", "sub_reason", "call_count"]].rename(
        columns={"sub_reason": "predicted_sub_reason"})
    pairs = labelled.merge(predicted, on="customer_id", how="inner")
    pairs = pairs[pairs["call_count"].fillna(0).astype(int) > 0]
    pairs = pairs.assign(correct=pairs["predicted_sub_reason"].fillna("") == pairs["true_sub_reason"])
    rows = [{"sub_reason": code, "customers": len(group), "correct": int(group["correct"].sum()),
             "accuracy": float(group["correct"].mean())}
            for code, group in pairs.groupby("true_sub_reason", sort=True)]
    rows.append({"sub_reason": "all", "customers": len(pairs), "correct": int(pairs["correct"].sum()),
                 "accuracy": float(pairs["correct"].mean()) if len(pairs) else 0.0})
    return pd.DataFrame(rows, columns=["sub_reason", "customers", "correct", "accuracy"])
