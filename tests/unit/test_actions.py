import copy

import pandas as pd
import pytest
import yaml

from insights.actions import (
    ACTION_COLUMNS,
    POLICY_PATH,
    action_policy_from_mapping,
    care_actions,
    control_bucket,
    customer_action,
    is_control,
    load_action_policy,
    matching_rule,
    rules_fired,
    taxonomy_sub_reasons,
    with_cost_caps,
)
from insights.intents import load_taxonomy

RAW = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
KNOWN = taxonomy_sub_reasons(load_taxonomy().sub_reasons)
NO_CONTROL = {**RAW, "experiment": {**RAW["experiment"], "control_share": {}}}
POLICY = action_policy_from_mapping(NO_CONTROL, KNOWN)


def customer(customer_id="C1", segment="hardship", sub_reason="job_loss", **values) -> dict:
    row = {"customer_id": customer_id, "segment": segment, "sub_reason": sub_reason, "confidence": 0.9,
           "days_past_due": 20, "amount_overdue": 1000.0, "clean_history_months": 12, "call_intent": segment,
           "behaviour_signal": segment}
    row.update(values)
    return row


def problems_of(raw) -> list[tuple[str, str, str]]:
    return [(p.severity, p.kind, p.rule_id) for p in action_policy_from_mapping(raw, KNOWN).problems]


def test_the_packaged_policy_loads_clean_and_every_segment_has_a_default():
    policy = load_action_policy(None, KNOWN)
    assert policy.version == RAW["version"] and policy.problems == ()
    for segment in ("hardship", "forgetful", "intent_to_default", "needs_review"):
        assert any(rule.rule_id == f"{segment}/default" for rule in policy.rules)
    assert {t.channel for t in policy.treatments.values()} == {"call", "sms", "app_push", "review"}
    assert policy.segment_labels["hardship"]["zh"]


def test_conditioned_rules_come_first_then_sub_reason_then_default():
    assert matching_rule("hardship", "job_loss", 75, POLICY).rule_id == "hardship_m3_plan_and_person"
    assert matching_rule("hardship", "illness_injury", 20, POLICY).rule_id == "hardship/illness_injury"
    assert matching_rule("hardship", "job_loss", 20, POLICY).rule_id == "hardship/default"
    assert matching_rule("needs_review", "", 0, POLICY).rule_id == "needs_review/default"


def test_each_row_says_which_rule_fired_and_why():
    action = customer_action(customer(sub_reason="illness_injury", days_past_due=12), POLICY)
    assert action["rule_id"] == "hardship/illness_injury"
    assert "illness_injury" in action["rule_why"] and "12 days past due" in action["rule_why"]
    assert action["treatments"] == "caring_sms;deferral_offer;interest_waiver_review"
    assert action["experiment_group"] == "treatment" and action["dropped_treatments"] == ""


def test_interest_waiver_needs_clean_history_and_a_verified_hardship_reason():
    short = customer_action(customer(sub_reason="illness_injury", clean_history_months=3), POLICY)
    assert "interest_waiver_review" not in short["treatments"].split(";")
    assert "interest_waiver_review: clean history 3 < 6 months" in short["dropped_treatments"]
    unverified = customer_action(customer(sub_reason="illness_injury", behaviour_signal=""), POLICY)
    assert "hardship reason not verified" in unverified["dropped_treatments"]
    assert unverified["cost"] == 0 and unverified["cap_status"] == ""
    verified = customer_action(customer(sub_reason="illness_injury"), POLICY)
    assert verified["cost"] == pytest.approx(1000 * 0.15 * 0.5) and verified["cap_status"] == "offered"
    assert verified["expected_benefit"] == pytest.approx(0.9 * 1000 * 0.25 - 75)


def test_an_ineligible_treatment_falls_back_when_the_policy_says_so():
    late = customer_action(customer(sub_reason="wage_arrears", days_past_due=60,
                                    behaviour_signal=""), POLICY)
    assert late["treatments"] == "caring_sms;deferral_offer;adjusted_due_date"
    raw = copy.deepcopy(NO_CONTROL)
    raw["rules"] = []
    policy = action_policy_from_mapping(raw, KNOWN)
    over = customer_action(customer(sub_reason="wage_arrears", days_past_due=95), policy)
    assert "deferral_offer: 95 days past due > 90" in over["dropped_treatments"]
    assert over["treatments"] == "caring_sms;installment_plan_offer;adjusted_due_date"


def test_control_group_is_deterministic_by_hash_and_stable_across_nights():
    assert control_bucket("C000123", "salt") == control_bucket("C000123", "salt")
    assert control_bucket("C000123", "salt") != control_bucket("C000123", "other")
    policy = load_action_policy(None, KNOWN)
    ids = [f"C{i:06d}" for i in range(4000)]
    held = [c for c in ids if is_control(c, "forgetful", policy)]
    assert 0.08 <= len(held) / len(ids) <= 0.12
    assert not any(is_control(c, "needs_review", policy) for c in ids)
    row = customer(customer_id=held[0], segment="forgetful", sub_reason="", days_past_due=3)
    night_one, night_two = customer_action(row, policy), customer_action({**row, "days_past_due": 2}, policy)
    assert night_one["experiment_group"] == night_two["experiment_group"] == "control"
    assert night_one["treatments"] == "standard_reminder"
    assert night_one["planned_treatments"] == "reminder_before_due;auto_debit_enrolment;credit_report_education"


def test_cost_cap_offers_by_expected_benefit_and_lists_who_it_excluded():
    raw = copy.deepcopy(NO_CONTROL)
    raw["cost_caps"]["waived_interest"]["nightly_limit"] = 200
    policy = action_policy_from_mapping(raw, KNOWN)
    customers = pd.DataFrame([
        customer("A", sub_reason="illness_injury", amount_overdue=1000.0, confidence=0.9),  # cost 75
        customer("B", sub_reason="illness_injury", amount_overdue=2000.0, confidence=0.9),  # cost 150, best
        customer("C", sub_reason="illness_injury", amount_overdue=600.0, confidence=0.6),   # cost 45
        customer("D", segment="forgetful", sub_reason=""),
    ])
    actions = care_actions(customers, policy).set_index("customer_id")
    assert list(actions.columns) == ACTION_COLUMNS[1:]
    assert actions.loc["B", "cost_rank"] == 1 and actions.loc["B", "cap_status"] == "offered"
    assert actions.loc["A", "cap_status"] == "excluded_by_cap"  # 150 + 75 > 200
    assert "interest_waiver_review" not in actions.loc["A", "treatments"].split(";")
    assert "nightly waived_interest cap of 200 reached (rank 2)" in actions.loc["A", "dropped_treatments"]
    assert actions.loc["C", "cap_status"] == "offered"  # still fits after A was skipped
    assert actions.loc[actions["cap_status"] == "offered", "cost"].sum() <= 200
    assert actions.loc["D", "cap_status"] == "" and pd.isna(actions.loc["D", "cost_rank"])
    fired = rules_fired(actions.reset_index(), policy).set_index("rule_id")["customers"]
    assert fired["hardship/illness_injury"] == 3 and fired["needs_review/default"] == 0


def test_with_cost_caps_leaves_everything_when_the_cap_is_large():
    actions = care_actions(pd.DataFrame([customer("A", sub_reason="disaster")]), POLICY)
    assert with_cost_caps(actions, POLICY)["cap_status"].tolist() == ["offered"]


def test_rules_that_match_nobody_and_partial_overlaps_are_reported_at_load():
    raw = copy.deepcopy(NO_CONTROL)
    raw["rules"] = [
        {"id": "wide", "segment": "forgetful", "min_days_past_due": 5, "treatments": ["human_follow_up"]},
        {"id": "inside_wide", "segment": "forgetful", "min_days_past_due": 10, "treatments": ["caring_sms"]},
        {"id": "partial", "segment": "forgetful", "max_days_past_due": 7, "sub_reasons": ["forgot_date"],
         "treatments": ["caring_sms"]},
        {"id": "wrong_reason", "segment": "hardship", "sub_reasons": ["forgot_date"], "treatments": ["caring_sms"]},
        {"id": "empty_range", "segment": "hardship", "min_days_past_due": 9, "max_days_past_due": 3,
         "treatments": ["caring_sms"]},
        {"id": "nobody_segment", "segment": "vip", "treatments": ["caring_sms"]},
    ]
    found = problems_of(raw)
    assert ("warning", "matches_nobody", "inside_wide") in found
    assert ("warning", "conflict", "partial") in found
    assert ("warning", "matches_nobody", "wrong_reason") in found
    assert ("warning", "matches_nobody", "empty_range") in found
    assert ("warning", "matches_nobody", "nobody_segment") in found
    assert not any(rule == "wide" for _, _, rule in found)


def test_errors_stop_the_load_with_every_reason():
    raw = copy.deepcopy(NO_CONTROL)
    raw["rules"] = [{"id": "clash", "segment": "hardship", "treatments": ["deferral_offer",
                                                                         "escalate_to_senior_collector"]},
                    {"id": "typo", "segment": "hardship", "treatments": ["caring_smss"]}]
    del raw["segments"]["needs_review"]
    with pytest.raises(ValueError) as error:
        action_policy_from_mapping(raw, KNOWN)
    message = str(error.value)
    assert "treatment_conflict [clash]" in message and "unknown_treatment [typo]" in message
    assert "missing_default [needs_review/default]" in message
    with pytest.raises(ValueError, match="needs 'version'"):
        action_policy_from_mapping({"segments": {}})
    with pytest.raises(FileNotFoundError):
        load_action_policy("/nonexistent/policy.yaml")


def test_the_policy_check_command_lists_rules_and_fails_on_errors(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["policy-check"]) == 0
    assert "no problems found" in capsys.readouterr().out
    raw = copy.deepcopy(RAW)
    raw["rules"].append({"id": "shadowed", "segment": "hardship", "min_days_past_due": 70,
                         "treatments": ["caring_sms"]})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert main(["policy-check", "--policy", str(path)]) == 0
    assert "matches_nobody [shadowed]: every customer it covers is taken first by hardship_m3_plan_and_person" in \
        capsys.readouterr().out
    raw["rules"].append({"id": "typo", "segment": "hardship", "treatments": ["nope"]})
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert main(["policy-check", "--policy", str(path)]) == 2


def test_a_batch_decides_each_customer_as_customer_action_does_alone():
    import itertools

    policy = load_action_policy(None, KNOWN)  # with the control split
    combos = itertools.product(["hardship", "forgetful", "intent_to_default", "needs_review"],
                               ["job_loss", "illness_injury", "disputes_debt", ""], [0, 5, 40, 95], [0, 3, 12])
    rows = [customer(f"C{n:03d}", segment, sub_reason, days_past_due=dpd, clean_history_months=months,
                     behaviour_signal="hardship" if n % 3 else "forgetful", amount_overdue=100.0 + n)
            for n, (segment, sub_reason, dpd, months) in enumerate(combos)]
    raw = copy.deepcopy(RAW)
    for cap in raw["cost_caps"].values():
        cap["nightly_limit"] = 10**9  # no cap: the batch must equal the rows one by one
    policy = action_policy_from_mapping(raw, KNOWN)
    batch = care_actions(pd.DataFrame(rows), policy).set_index("customer_id")
    alone = pd.DataFrame([customer_action(row, policy) for row in rows]).set_index("customer_id")
    columns = [c for c in ACTION_COLUMNS[1:] if c not in ("cost_rank",)]
    pd.testing.assert_frame_equal(batch[columns], alone.loc[batch.index, columns], check_dtype=False)
    assert batch["experiment_group"].nunique() == 2 and batch["dropped_treatments"].ne("").any()


def test_the_cap_skips_an_offer_that_no_longer_fits_and_keeps_going_down_the_ranking():
    raw = copy.deepcopy(NO_CONTROL)
    raw["cost_caps"]["waived_interest"]["nightly_limit"] = 100
    policy = action_policy_from_mapping(raw, KNOWN)
    customers = pd.DataFrame([customer(name, sub_reason="illness_injury", amount_overdue=amount, confidence=0.9)
                              for name, amount in (("A", 1000.0), ("B", 2000.0), ("C", 300.0), ("D", 600.0))])
    actions = care_actions(customers, policy).set_index("customer_id")
    # ranked B (150), A (75), D (45), C (22.5): B does not fit, A does, D does not (75 + 45 > 100), C does
    assert actions["cost_rank"].to_dict() == {"A": 2, "B": 1, "C": 4, "D": 3}
    assert actions["cap_status"].to_dict() == {"A": "offered", "B": "excluded_by_cap", "C": "offered",
                                               "D": "excluded_by_cap"}
    assert actions.loc[["B", "D"], "cost"].tolist() == [0.0, 0.0]
