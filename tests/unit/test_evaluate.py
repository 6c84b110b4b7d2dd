import pandas as pd
import pytest

from pipelines.evaluate import confusion, evaluation, labelled_predictions


def test_scores_count_misses_and_extra_customers():
    truth = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
                          "segment": ["hardship", "hardship", "forgetful", "none", "intent_to_default"]})
    segments = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                             "segment": ["hardship", "forgetful", "forgetful", "forgetful"],
                             "call_count": [1, 0, 2, 0]})
    pairs = labelled_predictions(truth, segments)
    assert pairs.set_index("customer_id").loc["e", "predicted_segment"] == "not_in_scope"
    scores = evaluation(truth, segments)["all"].set_index("segment")
    assert scores.loc["hardship", "precision"] == 1.0 and scores.loc["hardship", "recall"] == 0.5
    assert scores.loc["forgetful", "precision"] == pytest.approx(1 / 3)
    assert scores.loc["intent_to_default", "f1"] == 0.0
    macro = (2 / 3 + 0.5 + 0.0) / 3
    assert scores.loc["macro", "f1"] == pytest.approx(macro)
    with_calls = evaluation(truth, segments)["with_calls"].set_index("segment")
    assert with_calls.loc["macro", "f1"] == pytest.approx(1.0)
    assert confusion(truth, segments).loc["hardship", "forgetful"] == 1
