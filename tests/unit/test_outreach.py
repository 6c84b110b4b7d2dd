import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from insights.actions import load_action_policy
from pipelines.contact_rules import ContactHistory, load_contact_rules
from pipelines.exports import CHANNEL_EXPORTS, _sha256, channel_exports, write_export_folder
from pipelines.landing import LandingError
from pipelines.outreach import (
    OUTREACH_COLUMNS,
    OutreachInputs,
    checked_attempts,
    contact_histories,
    do_not_call_customers,
    earliest_contact,
    outreach_plan,
    read_attempts,
    reminder_dates,
    routed_treatments,
)

AS_OF = date(2026, 7, 1)
RULES = load_contact_rules()
POLICY = load_action_policy()
CHANNELS = {code: t.channel for code, t in POLICY.treatments.items()}


def test_attempt_rows_are_checked_and_bad_ones_quarantined_with_their_rule():
    rows = [
        {"customer_id": "C1", "attempted_at": "2026-07-01T09:00:00+08:00", "outcome": "no_answer"},
        {"customer_id": "", "attempted_at": "2026-07-01T09:00:00+08:00", "outcome": "busy"},
        {"customer_id": "C1", "attempted_at": "2026-07-01 09:00", "outcome": "busy"},
        {"customer_id": "C1", "attempted_at": "2026-07-01T10:00:00+08:00", "outcome": "answered"},
        {"customer_id": "C1", "attempted_at": "2026-07-01T01:00:00Z", "outcome": "Busy"},  # = row 1
    ]
    checked = checked_attempts(rows)
    assert checked.rows_read == 5 and len(checked.good) == 1
    assert list(checked.quarantine["rule"]) == ["missing_key", "bad_timestamp", "bad_outcome", "duplicate_row"]
    assert list(checked.quarantine["source_row"]) == [2, 3, 4, 5]
    assert checked.good["attempted_at"].iloc[0] == pd.Timestamp("2026-07-01T01:00:00Z")


def test_the_attempts_file_needs_its_columns(tmp_path):
    path = tmp_path / "contact_attempts.csv"
    path.write_text("customer_id,attempted_at\nC1,2026-07-01T09:00:00+08:00\n", encoding="utf-8")
    with pytest.raises(LandingError, match="outcome"):
        read_attempts(path)
    path.write_text("Customer_ID,attempted_at,outcome\nC1,2026-07-01T09:00:00+08:00,voicemail\n\n", encoding="utf-8")
    assert len(read_attempts(path).good) == 1


def test_histories_count_outbound_calls_and_unanswered_attempts_and_conversations():
    calls = pd.DataFrame({"customer_id": ["A", "A", "B"], "direction": ["outbound", "inbound", "outbound"],
                          "customer_turn_count": [2, 1, 1],
                          "started_at": pd.to_datetime(["2026-06-29T02:00Z", "2026-06-30T02:00Z",
                                                        "2026-07-05T02:00Z"], utc=True)})
    attempts = pd.DataFrame({"customer_id": ["A"], "attempted_at": pd.to_datetime(["2026-06-30T03:00Z"], utc=True)})
    histories = contact_histories(calls, attempts, datetime(2026, 7, 2, tzinfo=UTC))
    assert len(histories["A"].call_attempts) == 2 and len(histories["A"].unanswered_attempts) == 1
    assert len(histories["A"].conversations) == 2
    assert "B" not in histories  # after the cut-off


def test_do_not_call_is_detected_in_customer_turns_only():
    turns = pd.DataFrame({"customer_id": ["A", "B", "C"], "speaker": ["customer", "agent", "customer"],
                          "text": ["你们别再打了", "stop calling me", "ok i will pay"]})
    assert do_not_call_customers(turns, RULES.do_not_call_phrases) == {"A"}


def test_routing_holds_disputes_and_complaints_and_turns_calls_into_messages_for_do_not_call():
    plan = ["caring_sms", "human_follow_up", "deferral_offer"]
    assert routed_treatments(plan, "standard", CHANNELS) == {
        "call": ["human_follow_up"], "sms": ["caring_sms"], "app_push": ["deferral_offer"], "review": []}
    assert routed_treatments(plan, "no_calls", CHANNELS)["sms"] == ["caring_sms", "human_follow_up"]
    held = routed_treatments(["escalate_to_senior_collector"], "dispute_hold", CHANNELS)
    assert held == {"call": [], "sms": [], "app_push": [], "review": ["dispute_review"]}
    assert routed_treatments(["compliance_review"], "compliance_hold", CHANNELS)["review"] == ["compliance_review"]


def test_reminders_fall_before_the_next_due_date_and_after_as_of():
    assert reminder_dates(date(2026, 7, 10), AS_OF, [3, 1]) == "2026-07-07;2026-07-09"
    assert reminder_dates(date(2026, 7, 3), AS_OF, [3, 1]) == "2026-07-02"
    assert reminder_dates(None, AS_OF, [3, 1]) == ""


def test_earliest_contact_is_the_next_local_midnight():
    assert earliest_contact(AS_OF, "Asia/Shanghai") == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
    assert earliest_contact(AS_OF, "America/New_York") == datetime(2026, 7, 2, 4, 0, tzinfo=UTC)


def actions_frame() -> pd.DataFrame:
    return pd.DataFrame([
        {"customer_id": "CN", "segment": "forgetful", "sub_reason": "",
         "treatments": "reminder_before_due;human_follow_up", "reasons": "habitual_1_3_days_late;dpd_m1;no_calls"},
        {"customer_id": "US", "segment": "hardship", "sub_reason": "job_loss",
         "treatments": "caring_sms;human_follow_up", "reasons": "call_hardship"},
        {"customer_id": "DISPUTE", "segment": "intent_to_default", "sub_reason": "disputes_debt",
         "treatments": "dispute_review", "reasons": "call_disputes_debt"},
        {"customer_id": "NOZONE", "segment": "needs_review", "sub_reason": "", "treatments": "human_review",
         "reasons": "weak_evidence"},
    ])


def inputs() -> OutreachInputs:
    talked = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # 10:00 in New York, day 1 of the quiet period
    return OutreachInputs(
        as_of=AS_OF, rules=RULES, treatment_channels=CHANNELS,
        timezones={"CN": "Asia/Shanghai", "US": "America/New_York", "DISPUTE": "Asia/Shanghai"},
        contacts=pd.DataFrame({"customer_id": ["US", "US"], "kind": ["call_attempts", "conversations"],
                               "at": pd.to_datetime([talked, talked], utc=True)}),
        do_not_call=frozenset(), next_due_on={"CN": date(2026, 7, 12)})


def test_outreach_rows_carry_portfolio_next_allowed_times_and_routes():
    plan = outreach_plan(actions_frame(), inputs()).set_index("customer_id")
    assert list(plan.reset_index().columns) == OUTREACH_COLUMNS
    cn, us = plan.loc["CN"], plan.loc["US"]
    assert cn["rule_set"] == "china" and cn["next_call_at_local"] == "2026-07-02T08:00:00+08:00"
    assert cn["reminder_dates"] == "2026-07-09;2026-07-11" and cn["call_attempts_left"] == 6
    assert us["rule_set"] == "us_reg_f" and us["call_block_reason"] == "conversation_quiet_days"
    assert us["next_call_at_local"] == "2026-07-08T08:00:00-04:00"
    assert us["next_message_at_local"] == "2026-07-02T08:00:00-04:00"
    assert plan.loc["DISPUTE", "route"] == "dispute_hold" and plan.loc["DISPUTE", "is_disputed"]
    assert plan.loc["DISPUTE", "call_treatments"] == "" and plan.loc["DISPUTE", "review_treatments"] == "dispute_review"
    assert plan.loc["NOZONE", "timezone"] == "Asia/Shanghai" and plan.loc["NOZONE", "portfolio"] == "cn_consumer"


def export_inputs():
    actions = actions_frame().assign(rule_id="r", experiment_group="treatment", dropped_treatments="",
                                     cap_status="", cost_rank=pd.NA, expected_benefit=0.0)
    plan = outreach_plan(actions, inputs())
    rows = actions.drop(columns=["reasons"]).merge(plan, on="customer_id")
    segments = pd.DataFrame({"customer_id": rows["customer_id"], "confidence": 0.8, "reasons": "x",
                             "evidence": "quote", "days_past_due": 5, "amount_overdue": 100.0})
    return rows, segments


def test_channel_exports_put_each_customer_on_the_lists_of_their_channels():
    rows, segments = export_inputs()
    frames = channel_exports(rows, segments, AS_OF, {"human_follow_up": "人工回访"}, {"forgetful": "遗忘型逾期"})
    assert set(frames) == {*CHANNEL_EXPORTS, "cap_excluded"}
    assert list(frames["call_list"]["customer_id"]) == ["CN", "US"]
    cn_call = frames["call_list"].set_index("customer_id").loc["CN"]
    assert cn_call["treatments"] == "human_follow_up" and cn_call["treatments_zh"] == "人工回访"
    assert cn_call["next_contact_at_utc"] == "2026-07-02T00:00:00Z" and cn_call["segment_zh"] == "遗忘型逾期"
    assert frames["sms_list"].set_index("customer_id").loc["CN", "reminder_dates"] == "2026-07-09;2026-07-11"
    assert set(frames["review_queue"]["customer_id"]) == {"DISPUTE", "NOZONE"}
    assert frames["review_queue"].set_index("customer_id").loc["DISPUTE", "review_reason"] == "dispute_hold"
    leaking = segments.assign(evidence="call me on 13812345678")
    with pytest.raises(ValueError, match="PII"):
        channel_exports(rows, leaking, AS_OF, {}, {})


def test_the_export_folder_is_replaced_whole_with_manifest_and_success_last(tmp_path):
    rows, segments = export_inputs()
    frames = channel_exports(rows, segments, AS_OF, {}, {})
    stale = tmp_path / "2026-07-01" / "old_list.csv"
    stale.parent.mkdir()
    stale.write_text("left from an earlier run")
    report = write_export_folder(frames, tmp_path, AS_OF, ["csv", "parquet"], {"policy_version": "p1"})
    folder = tmp_path / "2026-07-01"
    assert not stale.exists() and (folder / "_SUCCESS").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-07-01"]  # no temporary folder left
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["policy_version"] == "p1" and manifest["exports"]["call_list"]["rows"] == 2
    for export in manifest["exports"].values():
        for name, file in export["files"].items():
            assert _sha256(folder / name) == file["sha256"]
    assert report.rows_by_export["review_queue"] == 2
    assert pd.read_parquet(folder / "call_list.parquet")["customer_id"].tolist() == ["CN", "US"]
    again = write_export_folder(frames, tmp_path, AS_OF, ["csv"], {"policy_version": "p1"})
    assert (folder / "_SUCCESS").is_file() and not (folder / "call_list.parquet").exists()
    assert again.files["call_list.csv"] == report.files["call_list.csv"]


def test_each_customer_gets_the_next_call_the_contact_rules_give_for_their_own_history():
    import random

    from pipelines.contact_rules import next_allowed_contact

    chooser = random.Random(7)
    zones = ["America/New_York", "America/Chicago", "Asia/Shanghai", "Europe/London", ""]
    customers = [f"C{n:03d}" for n in range(240)]
    timezones = {c: chooser.choice(zones) for c in customers}
    events = []
    for customer in customers[:200]:
        for _ in range(chooser.randint(0, 10)):
            at = datetime(2026, 7, 2, 16, tzinfo=UTC) - pd.Timedelta(hours=chooser.randint(0, 12 * 24))
            kind = chooser.choice(["call_attempts", "unanswered_attempts", "conversations"])
            events.append({"customer_id": customer, "kind": kind, "at": at})
    contacts = pd.DataFrame(events).assign(at=lambda f: pd.to_datetime(f["at"], utc=True))
    actions = pd.DataFrame({"customer_id": customers + customers[:3], "treatments": "human_follow_up",
                            "sub_reason": "", "reasons": ""})
    given = OutreachInputs(as_of=AS_OF, rules=RULES, treatment_channels=CHANNELS, timezones=timezones,
                           contacts=contacts, do_not_call=frozenset(), next_due_on={})
    plan = outreach_plan(actions, given)
    assert len(plan) == len(actions) and plan["call_block_reason"].nunique() > 1
    for row in plan.itertuples(index=False):
        mine = contacts[contacts["customer_id"] == row.customer_id]
        history = ContactHistory(**{kind: tuple(sorted(mine.loc[mine["kind"] == kind, "at"].dt.to_pydatetime()))
                                    for kind in ("call_attempts", "unanswered_attempts", "conversations")})
        expected = next_allowed_contact(earliest_contact(AS_OF, row.timezone), row.timezone,
                                        RULES.rule_sets[row.rule_set], history)
        assert (row.next_call_at_utc, row.next_call_at_local) == (expected.at_utc, expected.at_local.isoformat())
        assert (row.call_block_reason, row.call_attempts_left) == (expected.reason, expected.attempts_left)


def _attempts_as_dict_reader_reads_them(path) -> list[dict]:
    import csv

    with path.open("r", encoding="utf-8", newline="") as handle:
        return [{key.strip().lower(): value for key, value in row.items() if key}
                for row in csv.DictReader(handle)
                if any((value or "").strip() for value in row.values() if isinstance(value, str))]


@pytest.mark.parametrize(("header", "ragged"), [("customer_id,attempted_at,outcome,note", True),
                                                ("customer_id,attempted_at,outcome,note", False),
                                                (" Customer_ID ,attempted_at,outcome,OUTCOME", True)])
def test_attempt_files_read_like_csv_dict_reader_rows_even_when_ragged(tmp_path, header, ragged):
    path = tmp_path / "contact_attempts.csv"
    path.write_text("\n".join([
        header,
        "C1,2026-07-01T09:00:00+08:00,no_answer,x",
        "C2,2026-07-01T09:00:00+08:00,busy" + ("" if ragged else ","),  # short row: the missing field is None
        "C3,2026-07-01T09:05:00+08:00,voicemail," + ("x,extra,fields" if ragged else "\t"),  # long row: extras dropped
        "",
        " , , , ",  # blank
        "C1,2026-07-01T01:00:00Z,No_Answer,x",  # duplicate of row 1
        "C4,not a time,busy,x",
        'C5,"2026-07-01T09:00:00+08:00",answered,"a, b"',
        ",2026-07-01T09:00:00+08:00,busy,x",
    ]) + "\n", encoding="utf-8")
    got = read_attempts(path)
    expected = checked_attempts(_attempts_as_dict_reader_reads_them(path))
    assert got.rows_read == expected.rows_read
    pd.testing.assert_frame_equal(got.good, expected.good)
    pd.testing.assert_frame_equal(got.quarantine, expected.quarantine)
    assert len(got.quarantine) >= 3
    if header.startswith("customer_id"):
        details = dict(zip(got.quarantine["source_row"], got.quarantine["detail"], strict=True))
        assert details[4] == "same customer and time as row 1" and got.quarantine["rule"].tolist() == [
            "duplicate_row", "bad_timestamp", "bad_outcome", "missing_key"]


def test_exports_count_every_row_whose_evidence_holds_pii_even_when_texts_repeat():
    from pipelines.exports import export_frame

    segments = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "segment": "forgetful", "confidence": 0.5,
                             "action": "x", "reasons": "r", "sub_reason": "", "days_past_due": 1,
                             "amount_overdue": 1.0,
                             "evidence": ["call me on 13812345678", None, "call me on 13812345678", "ok"]})
    with pytest.raises(ValueError, match="^2 export rows carry PII"):
        export_frame(segments, AS_OF)
    clean = export_frame(segments.assign(evidence=["ok", None, "ok", "fine"]), AS_OF)
    assert clean["customer_id"].tolist() == ["A", "B", "C", "D"]


def test_the_care_actions_contract_can_be_checked_in_duckdb_and_stops_a_bad_partition(tmp_path):
    from pipelines.contracts import ContractError, partition_checks
    from pipelines.warehouse import Warehouse

    rows = pd.DataFrame({"customer_id": ["A", "A"], "segment": "forgetful", "rule_id": "r", "rule_why": "w",
                         "experiment_group": "treatment", "planned_treatments": "", "treatments": "",
                         "cost": [0.0, 1.0]})
    with Warehouse(tmp_path / "w.duckdb").session() as session:
        with pytest.raises(ContractError, match="customer_id"):
            session.replace_partition("care_actions", AS_OF, rows, **partition_checks("care_actions", "duckdb"))
        assert session.scalar("select count(*) from care_actions") == 0  # rolled back
        session.replace_partition("care_actions", AS_OF, rows.iloc[:1], **partition_checks("care_actions", "duckdb"))
        assert session.scalar("select count(*) from care_actions") == 1
