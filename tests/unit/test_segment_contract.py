import pandas as pd
import pytest

from pipelines.contracts import ContractError, partition_validator


def segments(**overrides: object) -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": ["C1", "C2"], "segment": ["hardship", "needs_review"], "confidence": [0.9, 0.6],
        "action": ["deferral_offer", "human_review"], "reasons": ["clean_record_broken", "weak_evidence"],
        "evidence": ["我失业了 电话[PHONE]", "no clear repayment pattern; 3 days past due"], "days_past_due": [40, 3],
    })
    return frame.assign(**overrides)


def test_good_segments_pass_the_contract():
    partition_validator("care_segments")(segments())


@pytest.mark.parametrize(("overrides", "expectation"), [
    ({"customer_id": ["C1", "C1"]}, "expect_column_values_to_be_unique"),
    ({"segment": ["hardship", "bad_actor"]}, "expect_column_values_to_be_in_set"),
    ({"confidence": [0.9, 1.4]}, "expect_column_values_to_be_between"),
    ({"evidence": ["call me on 13812345678", "ok"]}, "expect_column_values_to_not_match_regex"),
])
def test_broken_segments_stop_with_a_report_naming_the_expectation(overrides, expectation):
    with pytest.raises(ContractError, match=expectation):
        partition_validator("care_segments")(segments(**overrides))


def call_insights(**overrides: object) -> pd.DataFrame:
    return pd.DataFrame({"call_id": ["K1", "K2"], "customer_id": ["C1", "C2"], "intent": ["hardship", "unclear"],
                         "intent_score": [0.8, 0.0], "evidence": ["我失业了", ""]}).assign(**overrides)


def promises(**overrides: object) -> pd.DataFrame:
    return pd.DataFrame({"promise_id": ["P1", "P2"], "call_on": pd.to_datetime(["2026-06-28", "2026-06-28"]),
                         "promised_on": pd.to_datetime(["2026-06-28", "2026-07-15"]),
                         "amount": [500.0, None]}).assign(**overrides)


def care_actions(**overrides: object) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["C1", "C2"], "rule_id": ["hardship_default", "review"],
                         "experiment_group": ["treatment", "control"], "cost": [12.5, 0.0]}).assign(**overrides)


@pytest.mark.parametrize(("table", "good", "broken", "expectation"), [
    ("call_insights", call_insights(), call_insights(intent=["hardship", None]), "expect_column_values_to_not_be_null"),
    ("call_insights", call_insights(), call_insights(intent_score=[0.8, 1.5]), "expect_column_values_to_be_between"),
    ("promises", promises(), promises(promised_on=pd.to_datetime(["2026-06-27", "2026-07-15"])),
     "expect_column_pair_values_a_to_be_greater_than_b"),
    ("care_actions", care_actions(), care_actions(experiment_group=["treatment", "holdout"]),
     "expect_column_values_to_be_in_set"),
])
def test_insight_and_action_tables_have_contracts(table, good, broken, expectation):
    partition_validator(table)(good)
    with pytest.raises(ContractError, match=expectation):
        partition_validator(table)(broken)


@pytest.mark.parametrize("engine", ["great_expectations", "duckdb"])
@pytest.mark.parametrize(("table", "good", "broken", "expectation"), [
    ("care_segments", segments(), segments(confidence=[0.9, 1.4]), "expect_column_values_to_be_between"),
    ("care_segments", segments(), segments(evidence=["call me on 13812345678", "ok"]),
     "expect_column_values_to_not_match_regex"),
    ("call_insights", call_insights(), call_insights(intent=["hardship", None]), "expect_column_values_to_not_be_null"),
    ("care_actions", care_actions(segment="hardship", rule_why="w", planned_treatments="", treatments=""),
     care_actions(customer_id=["C1", "C1"], segment="hardship", rule_why="w", planned_treatments="", treatments=""),
     "expect_column_values_to_be_unique"),
])
def test_both_engines_stop_a_broken_partition_and_roll_it_back(tmp_path, engine, table, good, broken, expectation):
    from datetime import date

    from pipelines.contracts import partition_checks
    from pipelines.warehouse import Warehouse

    as_of = date(2026, 6, 30)
    with Warehouse(tmp_path / "w.duckdb").session() as session:
        assert session.replace_partition(table, as_of, good, **partition_checks(table, engine)) == 2
        with pytest.raises(ContractError, match=expectation):
            session.replace_partition(table, as_of, broken, **partition_checks(table, engine))
        kept = session.frame(f"select * exclude (as_of) from {table} order by all")
    assert len(kept) == 2 and kept.iloc[:, 0].tolist() == sorted(good.iloc[:, 0].tolist())


def test_an_unknown_engine_is_refused():
    from pipelines.contracts import partition_checks

    with pytest.raises(ValueError, match="unknown contract engine"):
        partition_checks("care_segments", "pandas")
