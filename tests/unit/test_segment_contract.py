import pandas as pd
import pytest

from pipelines.contracts import ContractError
from pipelines.nightly import _contract_check


def segments(**overrides: object) -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": ["C1", "C2"], "segment": ["hardship", "needs_review"], "confidence": [0.9, 0.6],
        "action": ["deferral_offer", "human_review"], "reasons": ["clean_record_broken", "weak_evidence"],
        "evidence": ["我失业了 电话[PHONE]", "no clear repayment pattern; 3 days past due"], "days_past_due": [40, 3],
    })
    return frame.assign(**overrides)


def test_good_segments_pass_the_contract():
    _contract_check("care_segments")(segments())


@pytest.mark.parametrize(("overrides", "expectation"), [
    ({"customer_id": ["C1", "C1"]}, "expect_column_values_to_be_unique"),
    ({"segment": ["hardship", "bad_actor"]}, "expect_column_values_to_be_in_set"),
    ({"confidence": [0.9, 1.4]}, "expect_column_values_to_be_between"),
    ({"evidence": ["call me on 13812345678", "ok"]}, "expect_column_values_to_not_match_regex"),
])
def test_broken_segments_stop_with_a_report_naming_the_expectation(overrides, expectation):
    with pytest.raises(ContractError, match=expectation):
        _contract_check("care_segments")(segments(**overrides))
