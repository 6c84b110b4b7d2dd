"""The outcome views (sql/marts) on a seeded two-night warehouse."""

from datetime import date

import pandas as pd
import pytest

from pipelines.outreach import OUTCOME_VIEWS, _create_views
from pipelines.warehouse import Warehouse

FIRST, SECOND = date(2026, 6, 30), date(2026, 7, 1)


def action(customer_id: str, segment: str, group: str) -> dict:
    return {"customer_id": customer_id, "segment": segment, "sub_reason": "", "rule_id": f"{segment}/default",
            "rule_why": "w", "experiment_group": group, "planned_treatments": "t", "treatments": "t",
            "rule_set": "china", "portfolio": "cn_consumer", "route": "standard", "call_block_reason": "window",
            "call_treatments": "t", "is_do_not_call": False, "is_disputed": False, "is_complaint": False}


def segment(customer_id: str, name: str) -> dict:
    return {"customer_id": customer_id, "segment": name, "confidence": 0.9, "action": "a", "reasons": "r",
            "evidence": "e", "sub_reason": ""}


@pytest.fixture()
def warehouse(tmp_path):
    path = tmp_path / "wh.duckdb"
    with Warehouse(path).session() as session:
        session.execute("create table customer_behaviour (as_of date, customer_id varchar, days_past_due integer)")
        session.execute("create table promise_outcomes (as_of date, promise_id varchar, customer_id varchar, "
                        "due_by date, status varchar)")
        session.replace_partition("customer_behaviour", FIRST, pd.DataFrame(
            {"customer_id": ["A", "B", "C", "D"], "days_past_due": [10, 10, 30, 5]}))
        session.replace_partition("customer_behaviour", SECOND, pd.DataFrame(
            {"customer_id": ["A", "B", "C", "D"], "days_past_due": [0, 11, 31, 6]}))
        session.replace_partition("stg_repayments", SECOND, pd.DataFrame({
            "source_row": [1, 2, 3], "loan_id": ["L1", "L1", "L3"], "customer_id": ["A", "A", "C"],
            "installment_no": [1, 2, 1], "due_on": pd.to_datetime(["2026-05-20", "2026-06-20", "2026-05-31"]),
            "amount_due": [100.0, 100.0, 80.0], "paid_on": pd.to_datetime(["2026-05-20", "2026-07-01", None]),
            "amount_paid": [100.0, 100.0, None]}))
        session.replace_partition("promise_outcomes", SECOND, pd.DataFrame({
            "promise_id": ["p1", "p2"], "customer_id": ["D", "D"],
            "due_by": pd.to_datetime(["2026-07-01", "2026-07-05"]), "status": ["kept", "pending"]}))
        session.replace_partition("care_actions", FIRST, pd.DataFrame([
            action("A", "forgetful", "treatment"), action("B", "forgetful", "control"),
            action("C", "hardship", "treatment"), action("D", "hardship", "treatment")]))
        session.replace_partition("care_actions", SECOND, pd.DataFrame([
            action("B", "hardship", "control"), action("C", "hardship", "treatment"),
            action("D", "hardship", "treatment")]))
        session.replace_partition("care_segments", FIRST, pd.DataFrame([
            segment("A", "forgetful"), segment("B", "forgetful"), segment("C", "hardship"), segment("D", "hardship")]))
        session.replace_partition("care_segments", SECOND, pd.DataFrame([
            segment("B", "hardship"), segment("C", "hardship"), segment("D", "hardship")]))
        _create_views(session)
    return path


def view(path, sql: str) -> pd.DataFrame:
    with Warehouse(path).session(read_only=True) as session:
        return session.frame(sql)


def test_action_outcomes_follow_each_action_to_later_nights(warehouse):
    outcomes = view(warehouse, "select * from action_outcomes order by customer_id").set_index("customer_id")
    assert len(outcomes) == 4 and (outcomes["days_after"] == 1).all()
    assert outcomes.loc["A", "is_cured"] and outcomes.loc["A", "amount_recovered"] == 100.0
    assert not outcomes.loc["B", "is_cured"] and not outcomes.loc["B", "is_rolled"]
    assert outcomes.loc["C", "is_rolled"] and outcomes.loc["C", "amount_recovered"] == 0  # M1 -> M2
    assert outcomes.loc["D", "promises_due"] == 1 and outcomes.loc["D", "promises_kept"] == 1
    assert outcomes.loc["A", "promises_due"] == 0


def test_treatment_outcomes_and_treatment_vs_control(warehouse):
    rates = view(warehouse, "select * from treatment_outcomes order by segment, experiment_group")
    forgetful = rates[rates["segment"] == "forgetful"].set_index("experiment_group")
    assert forgetful.loc["treatment", "cure_rate"] == 1.0 and forgetful.loc["control", "cure_rate"] == 0.0
    hardship = rates[rates["segment"] == "hardship"].iloc[0]
    assert hardship["roll_rate"] == 0.5 and hardship["promise_kept_rate"] == 1.0
    assert pd.isna(forgetful.loc["treatment", "promise_kept_rate"])
    versus = view(warehouse, "select * from treatment_vs_control").set_index("segment")
    assert versus.loc["forgetful", "cure_rate_uplift"] == 1.0
    assert versus.loc["forgetful", "treatment_recovered_per_customer"] == 100.0
    assert versus.loc["hardship", "control_customers"] == 0 and pd.isna(versus.loc["hardship", "control_cure_rate"])


def test_segment_change_log_keeps_entries_moves_and_exits(warehouse):
    log = view(warehouse, "select * from segment_change_log order by changed_on, customer_id")
    first = log[log["changed_on"].dt.date == FIRST]
    assert len(first) == 4 and first["from_segment"].isna().all()
    later = log[log["changed_on"].dt.date == SECOND].set_index("customer_id")
    assert later.loc["B", "from_segment"] == "forgetful" and later.loc["B", "to_segment"] == "hardship"
    assert later.loc["A", "to_segment"] == "out_of_scope"
    assert set(later.index) == {"A", "B"}


def test_contact_rule_outcomes_counts_routes_per_night(warehouse):
    counts = view(warehouse, "select * from contact_rule_outcomes order by as_of")
    assert counts["customers"].tolist() == [4, 3] and set(counts["rule_set"]) == {"china"}
    assert set(OUTCOME_VIEWS) <= set(view(warehouse, "select table_name from information_schema.tables")[
        "table_name"])
