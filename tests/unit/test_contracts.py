"""Table contracts on tiny frames: every contract passes a good frame and names what fails in a bad one."""

from datetime import date

import pandas as pd
import pytest

from pipelines.contracts import (
    CONTRACTS_DIR,
    FAILURE_COLUMNS,
    Contract,
    ContractError,
    ExpectationSpec,
    _expectation_classes,
    checked_columns,
    contract_failures,
    contract_report,
    derived_select_list,
    expectation_groups,
    import_great_expectations,
    load_contract,
    table_contract,
)

TABLE_CONTRACTS = ["stg_repayments", "stg_installments", "stg_calls", "stg_call_turns", "stg_customers"]


def repayments() -> pd.DataFrame:
    return pd.DataFrame({
        "as_of": [date(2026, 6, 30)] * 3,
        "source_row": [1, 2, 3],
        "loan_id": ["L1", "L1", "L2"],
        "customer_id": ["C1", "C1", "C2"],
        "installment_no": [1, 2, 1],
        "due_on": pd.to_datetime(["2026-05-05", "2026-06-05", "2026-06-05"]),
        "amount_due": [100.0, 100.0, 250.0],
        "paid_on": pd.to_datetime(["2026-05-04", None, "2026-06-07"]),
        "amount_paid": [100.0, None, 50.0],
        "is_payment_complete": [True, True, True],
        "days_paid_before_due": [1.0, None, -2.0],
    })


def installments() -> pd.DataFrame:
    return pd.DataFrame({
        "loan_id": ["L1", "L1", "L2"],
        "installment_no": [1, 2, 1],
        "customer_id": ["C1", "C1", "C2"],
        "due_dates_per_installment": [1, 1, 1],
        "amounts_due_per_installment": [1, 1, 1],
        "customers_per_loan": [1, 1, 1],
        "total_paid": [100.0, 0.0, 50.0],
        "amount_due": [100.0, 100.0, 0.0],
        "paid_ratio": [1.0, 0.0, None],
    })


def calls() -> pd.DataFrame:
    return pd.DataFrame({
        "source_row": [1, 2],
        "call_id": ["K1", "K2"],
        "customer_id": ["C1", "C2"],
        "started_at": pd.to_datetime(["2026-06-05T02:15:00Z", "2026-06-06T09:00:00Z"]),
        "direction": ["outbound", "inbound"],
        "duration_s": [95.0, None],
        "turn_count": pd.array([2, 3], dtype="int32"),
        "customer_turn_count": pd.array([1, 2], dtype="int32"),
    })


def call_turns() -> pd.DataFrame:
    return pd.DataFrame({
        "call_id": ["K1", "K1", "K2"],
        "turn_no": [1, 2, 1],
        "speaker": ["agent", "customer", "customer"],
        "text": ["您好", "我的电话是[PHONE]", ""],
    })


def customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "timezone": ["Asia/Shanghai", "Europe/London", None],
        "language": ["zh", "en", None],
    })


GOOD = {
    "stg_repayments": repayments,
    "stg_installments": installments,
    "stg_calls": calls,
    "stg_call_turns": call_turns,
    "stg_customers": customers,
}


def broken(table: str) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """A copy of the good frame with known breaks, and the (expectation, column) pairs that must fail."""
    frame = GOOD[table]()
    if table == "stg_repayments":
        frame.loc[1, "source_row"] = 1
        frame.loc[2, "amount_paid"] = -1.0
        frame.loc[0, "days_paid_before_due"] = 400.0
        return frame, {("expect_column_values_to_be_unique", "source_row"),
                       ("expect_column_values_to_be_between", "amount_paid"),
                       ("expect_column_values_to_be_between", "days_paid_before_due")}
    if table == "stg_installments":
        frame.loc[2, "customers_per_loan"] = 2
        frame.loc[0, "paid_ratio"] = 3.5
        return frame, {("expect_column_values_to_be_between", "customers_per_loan"),
                       ("expect_column_values_to_be_between", "paid_ratio")}
    if table == "stg_calls":
        frame.loc[1, "call_id"] = "K1"
        frame.loc[0, "direction"] = "sideways"
        frame.loc[1, "customer_turn_count"] = 4
        return frame, {("expect_column_values_to_be_unique", "call_id"),
                       ("expect_column_values_to_be_in_set", "direction"),
                       ("expect_column_pair_values_a_to_be_greater_than_b",
                        "turn_count, customer_turn_count")}
    if table == "stg_call_turns":
        frame.loc[1, "turn_no"] = 1
        frame.loc[2, "text"] = "call me on 13812345678"
        return frame, {("expect_compound_columns_to_be_unique", "call_id, turn_no"),
                       ("expect_column_values_to_not_match_regex", "text")}
    frame.loc[2, "customer_id"] = "C1"
    frame.loc[1, "language"] = "fr"
    return frame, {("expect_column_values_to_be_unique", "customer_id"),
                   ("expect_column_values_to_be_in_set", "language")}


def test_every_contract_file_loads_and_uses_known_expectations():
    classes = _expectation_classes()
    names = sorted(path.stem for path in CONTRACTS_DIR.glob("stg_*.yaml"))
    assert names == sorted(TABLE_CONTRACTS)
    for name in names:
        contract = table_contract(name)
        assert contract.table == name and contract.grain
        assert all(spec.type in classes and spec.description for spec in contract.expectations)


@pytest.mark.parametrize("table", TABLE_CONTRACTS)
def test_a_good_frame_passes(table):
    failures = contract_failures(GOOD[table](), table_contract(table))
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures.empty, failures.to_string()


@pytest.mark.parametrize("table", TABLE_CONTRACTS)
def test_a_broken_frame_fails_with_the_expected_expectations(table):
    frame, expected = broken(table)
    contract = table_contract(table)
    failures = contract_failures(frame, contract)
    assert set(zip(failures["expectation"], failures["column"], strict=True)) == expected
    assert (failures["unexpected_count"] >= 1).all()
    report = str(ContractError(contract, failures))
    assert f"contract {table} failed {len(expected)} of {len(contract.expectations)}" in report
    for expectation, column in expected:
        assert f"{expectation}({column})" in report


def test_the_report_gives_description_counts_and_sample():
    frame, _ = broken("stg_installments")
    contract = table_contract("stg_installments")
    error = ContractError(contract, contract_failures(frame, contract))
    assert error.table == "stg_installments" and len(error.failures) == 2
    assert "a loan belongs to one customer -- 1 of 3 rows unexpected; sample [2" in str(error)
    assert "grain: one row per loan installment" in str(error)


def test_the_frame_is_not_changed():
    frame = calls()
    before = frame.copy()
    contract_failures(frame, table_contract("stg_calls"))
    pd.testing.assert_frame_equal(frame, before)


def test_a_missing_column_is_reported_as_a_failure_not_a_crash():
    frame = customers().drop(columns=["language"])
    failures = contract_failures(frame, table_contract("stg_customers"))
    assert list(failures["column"]) == ["language"]
    assert failures["sample"].iloc[0].startswith("'error:")


def test_derived_columns_become_a_select_list():
    contract = table_contract("stg_installments")
    assert contract.model == "staging/installments"
    assert derived_select_list(contract) == ", (total_paid / nullif(amount_due, 0)) as paid_ratio"
    assert derived_select_list(table_contract("stg_calls")) == ""


def test_load_contract_reads_a_minimal_file_and_refuses_malformed_ones(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("table: t\ngrain: one row per thing\nexpectations:\n"
                    "  - type: expect_column_values_to_not_be_null\n    kwargs: {column: id}\n"
                    "    description: ids are present\n", encoding="utf-8")
    assert load_contract(path) == Contract(
        "t", "one row per thing",
        (ExpectationSpec("expect_column_values_to_not_be_null", {"column": "id"}, "ids are present"),))
    for text, message in [
        ("table: t\nexpectations: []\n", "needs 'table', 'grain'"),
        ("table: t\ngrain: g\nexpectations: []\n", "non-empty list"),
        ("table: t\ngrain: g\nexpectations:\n  - type: not_an_expectation\n", "starting with expect_"),
        ("table: t\ngrain: g\nexpectations:\n  - type: expect_x\n    kwargs: {}\n", "description"),
        ("table: t\ngrain: g\nderived_columns: {Bad Name: x}\nexpectations:\n  - type: expect_x\n"
         "    description: d\n", "derived_columns"),
    ]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_contract(path)


def test_an_unknown_expectation_type_is_refused():
    contract = Contract("t", "g", (ExpectationSpec("expect_the_unexpected", {}, "nope"),))
    with pytest.raises(ValueError, match="unknown expectation type 'expect_the_unexpected'"):
        contract_failures(pd.DataFrame({"a": [1]}), contract)


def test_report_of_an_empty_failure_frame_is_just_the_header():
    contract = table_contract("stg_calls")
    assert contract_report(contract, pd.DataFrame(columns=FAILURE_COLUMNS)).count("\n") == 0


def test_checked_columns_are_the_columns_the_expectations_read_or_none():
    assert checked_columns(table_contract("stg_customers")) == ["customer_id", "language"]
    assert checked_columns(table_contract("stg_installments"))[:2] == ["loan_id", "installment_no"]
    conditional = Contract("t", "g", (ExpectationSpec(
        "expect_column_values_to_not_be_null", {"column": "a", "row_condition": "b > 0"}, "a when b"),))
    assert checked_columns(conditional) is None


def test_expectations_are_grouped_by_the_columns_they_read():
    contract = table_contract("stg_repayments")
    groups = expectation_groups(contract, set(checked_columns(contract) or []))
    assert groups[0] == (["source_row"], [0, 1])
    assert sorted(at for _, positions in groups for at in positions) == list(range(len(contract.expectations)))
    assert (["amount_due"], [6, 8]) in groups
    # columns the frame lacks: those expectations run on the whole frame, so GE reports the columns missing
    assert expectation_groups(contract, {"source_row", "loan_id"})[2] == (None, list(range(3, 12)))


def test_grouped_validation_reports_what_one_suite_on_the_whole_frame_reports():
    frame = repayments()
    frame["amount_due"] = [-1.0, 100.0, None]
    frame["source_row"] = [1, 1, 3]
    contract = table_contract("stg_repayments")
    failures = contract_failures(frame, contract)
    assert list(zip(failures["column"], failures["unexpected_count"], strict=True)) == [
        ("source_row", 2), ("amount_due", 1), ("amount_due", 1)]
    assert failures["element_count"].tolist() == [3, 3, 3]


def test_importing_great_expectations_turns_off_the_batch_fingerprint():
    import_great_expectations()
    from great_expectations.execution_engine import pandas_execution_engine

    assert pandas_execution_engine.HASH_THRESHOLD == 0
