"""Seeded-DuckDB tests of stage 1: landing folder -> staged tables, quarantine, reconciliation, contracts."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from insights.text import contains_pii
from pipelines.contracts import ContractError
from pipelines.landing import LandingError
from pipelines.loading import LoadReport, load_landing
from pipelines.warehouse import Warehouse

AS_OF = date(2026, 6, 30)
NEXT_AS_OF = date(2026, 7, 1)
COLUMNS = ["loan_id", "customer_id", "installment_no", "due_date", "amount_due", "paid_date", "amount_paid"]
TABLES = [
    "stg_repayments", "stg_calls", "stg_call_turns", "stg_customers", "quarantine", "load_reconciliation",
]

# (row, the rule it must get or None); the data row number is the position in this list, from 1
REPAYMENT_ROWS: list[tuple[list[str], str | None]] = [
    (["L1", "C1", "1", "2026-05-05", "100.00", "2026-05-04", "100.00"], None),
    (["L1", "C1", "2", "2026-06-05", "100.00", "2026-06-05", "60.00"], None),
    (["L1", "C1", "2", "2026-06-05", "100.00", "2026-06-20", "40.00"], None),
    (["L1", "C1", "3", "2026/7/5", "100.00", "", ""], None),
    (["L2", "C2", "1", "2026-06-05", "250.50", "", ""], None),
    (["", "C3", "1", "2026-06-05", "100.00", "", ""], "missing_key"),
    (["L3", "C3", "1", "2026-13-45", "100.00", "", ""], "bad_date"),
    (["L3", "C3", "1", "2026-06-05", "100.00", "2026-02-30", "100.00"], "bad_date"),
    (["L3", "C3", "1", "2026-06-05", "1O0.00", "", ""], "bad_amount"),
    (["L3", "C3", "1.5", "2026-06-05", "100.00", "", ""], "bad_amount"),
    (["L3", "C3", "1", "2026-06-05", "100.00", "2026-06-01", "-12.00"], "negative_amount"),
    (["L3", "C3", "1", "2026-06-05", "100.00", "2026-06-01", ""], "payment_incomplete"),
    (["L3", "C3", "1", "2026-06-05", "100.00", "", "100.00"], "payment_incomplete"),
    (["L3", "C3", "1", "2026-06-05", "100.00", "2025-06-04", "100.00"], "paid_too_early"),
    (["L1", "C1", "2", "2026-06-05", "100.00", "2026-06-05", "60.00"], "duplicate_row"),
    (["L2", "C2", "1", "2026-06-05", "250.5", "", ""], "duplicate_row"),
    (["L3", "C3", "1", "2026-06-05", "100.00", "2025-06-05", "100.00"], None),  # exactly 365 days early
]


def call(call_id: str, customer_id: str = "C1", **changes) -> dict:
    record = {
        "call_id": call_id,
        "customer_id": customer_id,
        "started_at": "2026-06-29T10:15:00+08:00",
        "direction": "outbound",
        "duration_s": 120,
        "turns": [
            {"speaker": "agent", "text": "您好，您的账单已经逾期了"},
            {"speaker": "customer", "text": "我失业了，这个月还不上，电话13812345678"},
        ],
    }
    return {**record, **changes}


CALL_LINES = [
    call("K1"),
    call("K2", "C2", direction="inbound", turns=[{"speaker": "customer", "text": "I forgot, paying today"}]),
    call("K1"),
    call("K3", started_at="2026-06-29 10:15:00"),
]
CUSTOMER_ROWS = [
    ["C1", "Asia/Shanghai", "zh-CN"], ["C2", "America/New_York", "en"], ["C3", "Nowhere/Land", "en"],
]


def write_landing(folder: Path, rows: list[list[str]] | None = None, *, encoding: str = "utf-8",
                  parquet: bool = False, calls: list[dict] | None = None,
                  customers: list[list[str]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [row for row, _ in REPAYMENT_ROWS] if rows is None else rows
    if parquet:
        pd.DataFrame(rows, columns=COLUMNS).to_parquet(folder / "repayments.parquet", index=False)
    else:
        lines = [",".join(COLUMNS + ["note"])] + [",".join(row + ["备注"]) for row in rows]
        (folder / "repayments.csv").write_bytes(("\n".join(lines) + "\n").encode(encoding))
    records = CALL_LINES if calls is None else calls
    text = "\n".join(json.dumps(record, ensure_ascii=False) for record in records) + "\n\n"
    (folder / "calls.jsonl").write_text(text, encoding="utf-8")
    customer_rows = CUSTOMER_ROWS if customers is None else customers
    lines = ["customer_id,timezone,language"] + [",".join(row) for row in customer_rows]
    (folder / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def snapshot(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    with warehouse.session(read_only=True) as session:
        return {table: session.frame(f"select * from {table} order by all") for table in TABLES}


def partition(warehouse: Warehouse, table: str, as_of: date = AS_OF) -> pd.DataFrame:
    with warehouse.session(read_only=True) as session:
        return session.frame(f"select * exclude (as_of) from {table} where as_of = $as_of order by all",
                             {"as_of": as_of})


@pytest.fixture
def loaded(tmp_path) -> tuple[Warehouse, LoadReport, Path]:
    landing = write_landing(tmp_path / "landing")
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    return warehouse, load_landing(landing, warehouse, AS_OF), landing


def test_every_repayment_rule_lands_in_quarantine_on_its_row(loaded):
    warehouse, _, _ = loaded
    quarantine = partition(warehouse, "quarantine")
    got = quarantine[quarantine["source_file"] == "repayments.csv"][["source_row", "rule"]]
    expected = [(number, rule) for number, (_, rule) in enumerate(REPAYMENT_ROWS, start=1) if rule]
    assert list(got.itertuples(index=False, name=None)) == expected
    good_rows = [number for number, (_, rule) in enumerate(REPAYMENT_ROWS, start=1) if rule is None]
    assert list(partition(warehouse, "stg_repayments")["source_row"]) == good_rows


def test_quarantine_detail_and_raw_record_explain_the_row(loaded):
    warehouse, _, _ = loaded
    quarantine = partition(warehouse, "quarantine").set_index(["source_file", "source_row"])
    negative = quarantine.loc[("repayments.csv", 11)]
    assert negative["detail"] == "amount_paid='-12.00'"
    assert json.loads(negative["raw_record"])["amount_paid"] == "-12.00"
    assert quarantine.loc[("repayments.csv", 6), "detail"] == "missing loan_id"
    assert quarantine.loc[("repayments.csv", 15), "detail"] == "duplicate of source_row 2"
    assert "366 days before" in quarantine.loc[("repayments.csv", 14), "detail"]
    assert not any(contains_pii(text) for text in quarantine["raw_record"])


def test_staged_rows_are_typed(loaded):
    warehouse, _, _ = loaded
    staged = partition(warehouse, "stg_repayments").set_index("source_row")
    assert staged.loc[4, "due_on"] == pd.Timestamp("2026-07-05") and pd.isna(staged.loc[4, "paid_on"])
    assert staged.loc[5, "amount_due"] == 250.5 and pd.isna(staged.loc[5, "amount_paid"])
    assert staged.loc[3, "installment_no"] == 2 and staged.loc[3, "amount_paid"] == 40.0


def test_calls_turns_and_customers_are_staged_and_redacted(loaded):
    warehouse, _, _ = loaded
    calls = partition(warehouse, "stg_calls")
    assert list(calls["call_id"]) == ["K1", "K2"] and list(calls["source_row"]) == [1, 2]
    assert calls.set_index("call_id").loc["K1", "started_at"] == pd.Timestamp("2026-06-29T02:15:00Z")
    turns = partition(warehouse, "stg_call_turns")
    assert len(turns) == 3 and not any(contains_pii(text) for text in turns["text"])
    assert "[PHONE]" in " ".join(turns["text"])
    customers = partition(warehouse, "stg_customers")
    assert list(customers["customer_id"]) == ["C1", "C2"] and list(customers["language"]) == ["zh", "en"]
    quarantine = partition(warehouse, "quarantine")
    others = quarantine[quarantine["source_file"] != "repayments.csv"]
    assert set(others[["source_file", "source_row", "rule"]].itertuples(index=False, name=None)) == {
        ("calls.jsonl", 3, "duplicate_call_id"), ("calls.jsonl", 4, "bad_timestamp"),
        ("customers.csv", 3, "bad_timezone"),
    }


def test_counts_reconcile_in_the_report_and_the_table(loaded):
    warehouse, report, _ = loaded
    files = report.files.set_index("source_file")
    assert files.loc["repayments.csv"].tolist() == [17, 6, 11]
    assert files.loc["calls.jsonl"].tolist() == [4, 2, 2]  # the trailing blank line is not a record
    assert files.loc["customers.csv"].tolist() == [3, 2, 1]
    stored = partition(warehouse, "load_reconciliation").set_index("source_file")
    pd.testing.assert_frame_equal(stored.sort_index(), files.sort_index(), check_dtype=False)
    assert (stored["rows_read"] == stored["rows_loaded"] + stored["rows_quarantined"]).all()
    by_rule = report.quarantine_by_rule
    assert by_rule["rows"].sum() == files["rows_quarantined"].sum()
    assert by_rule.iloc[0].tolist() == ["calls.jsonl", "bad_timestamp", 1]
    assert report.as_of == AS_OF


def test_rerunning_the_same_date_leaves_identical_tables(loaded):
    warehouse, _, landing = loaded
    before = snapshot(warehouse)
    load_landing(landing, warehouse, AS_OF)
    after = snapshot(warehouse)
    for table in TABLES:
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)


def test_a_second_date_keeps_the_first(loaded, tmp_path):
    warehouse, _, _ = loaded
    first = {table: partition(warehouse, table) for table in TABLES}
    landing = write_landing(tmp_path / "next", rows=[row for row, rule in REPAYMENT_ROWS if rule is None][:2],
                            calls=[call("K9")], customers=[["C1", "UTC", "en"]])
    load_landing(landing, warehouse, NEXT_AS_OF)
    for table in TABLES:
        pd.testing.assert_frame_equal(partition(warehouse, table), first[table], obj=table)
    assert len(partition(warehouse, "stg_repayments", NEXT_AS_OF)) == 2
    assert partition(warehouse, "quarantine", NEXT_AS_OF).empty


def test_parquet_gives_the_same_staged_rows_as_csv(loaded, tmp_path):
    warehouse, _, _ = loaded
    other = Warehouse(tmp_path / "parquet.duckdb")
    report = load_landing(write_landing(tmp_path / "parquet", parquet=True), other, AS_OF)
    for table in ["stg_repayments", "stg_calls", "stg_call_turns", "stg_customers"]:
        pd.testing.assert_frame_equal(partition(other, table), partition(warehouse, table), obj=table)
    # same rows, rules and details; raw_record differs only where Parquet holds "" and CSV an empty field
    csv_quarantine = partition(warehouse, "quarantine")[["source_row", "rule", "detail"]]
    parquet_quarantine = partition(other, "quarantine")
    assert set(parquet_quarantine["source_file"]) >= {"repayments.parquet"}
    pd.testing.assert_frame_equal(parquet_quarantine[["source_row", "rule", "detail"]], csv_quarantine)
    assert report.files["source_file"].tolist()[0] == "repayments.parquet"


def test_typed_parquet_columns_load_too(tmp_path):
    landing = write_landing(tmp_path / "typed", rows=[], calls=[call("K1")], customers=[])
    typed = pd.DataFrame({
        "loan_id": ["L1", "L1"], "customer_id": ["C1", "C1"], "installment_no": [1, 2],
        "due_date": pd.to_datetime(["2026-05-05", "2026-06-05"]), "amount_due": [100.0, 100.0],
        "paid_date": pd.to_datetime(["2026-05-04", None]), "amount_paid": [100.0, None],
    })
    (landing / "repayments.csv").unlink()
    typed.to_parquet(landing / "repayments.parquet", index=False)
    warehouse = Warehouse(tmp_path / "typed.duckdb")
    load_landing(landing, warehouse, AS_OF)
    staged = partition(warehouse, "stg_repayments")
    assert staged["due_on"].tolist() == [pd.Timestamp("2026-05-05"), pd.Timestamp("2026-06-05")]
    assert staged["source_row"].tolist() == [1, 2]


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_gb18030_and_bom_csv_load(tmp_path, encoding):
    rows = [
        ["贷款1", "客户甲", "1", "2026-06-05", "100.00", "", ""],
        ["贷款2", "客户乙", "1", "2026-06-05", "x", "", ""],
    ]
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = load_landing(write_landing(tmp_path / "landing", rows, encoding=encoding), warehouse, AS_OF)
    assert partition(warehouse, "stg_repayments")["customer_id"].tolist() == ["客户甲"]
    quarantined = partition(warehouse, "quarantine")
    raw = quarantined[quarantined["source_file"] == "repayments.csv"]["raw_record"].iloc[0]
    assert json.loads(raw)["loan_id"] == "贷款2"
    assert report.files.set_index("source_file").loc["repayments.csv"].tolist() == [2, 1, 1]


def test_the_encoding_setting_is_applied(tmp_path):
    rows = [["贷款1", "客户甲", "1", "2026-06-05", "100.00", "", ""]]
    landing = write_landing(tmp_path / "landing", rows, encoding="gb18030")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(LandingError, match=r"repayments\.csv cannot be decoded as utf-8 at byte offset \d+"):
        load_landing(landing, warehouse, AS_OF, encoding="utf-8")
    load_landing(landing, warehouse, AS_OF, encoding="gb18030")
    assert partition(warehouse, "stg_repayments")["loan_id"].tolist() == ["贷款1"]


@pytest.mark.parametrize(("engine", "ge_max_rows"), [("great_expectations", None), ("duckdb", None),
                                                      ("great_expectations", 1)])
def test_a_contract_failure_rolls_back_and_keeps_the_previous_partition(loaded, tmp_path, engine, ge_max_rows,
                                                                          caplog):
    warehouse, _, _ = loaded
    before = {table: partition(warehouse, table) for table in ["stg_repayments", "stg_calls"]}
    rows = [
        ["L1", "C1", "1", "2026-05-05", "100.00", "", ""],
        ["L1", "C9", "2", "2026-06-05", "100.00", "", ""],  # the same loan under another customer
        ["L5", "C5", "1", "2026-06-05", "100.00", "", "oops"],
    ]
    landing = write_landing(tmp_path / "conflict", rows, calls=[call("K7")])
    with pytest.raises(ContractError) as error:
        load_landing(landing, warehouse, AS_OF, contract_engine=engine, ge_max_rows=ge_max_rows)
    assert error.value.table == "stg_installments"
    # past ge_max_rows the suite still runs, through the SQL translation, and the log says so
    assert ("exceed landing.great_expectations_max_rows" in caplog.text) == (ge_max_rows is not None)
    assert "a loan belongs to one customer" in str(error.value)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(partition(warehouse, table), frame, obj=table)
    # quarantine and reconciliation of the failed run are kept for the user to see
    assert set(partition(warehouse, "quarantine")["rule"]) == {"bad_amount", "bad_timezone"}
    reconciliation = partition(warehouse, "load_reconciliation").set_index("source_file")
    assert reconciliation.loc["repayments.csv"].tolist() == [3, 2, 1]


def test_a_landing_error_writes_nothing(loaded, tmp_path):
    warehouse, _, _ = loaded
    before = snapshot(warehouse)
    landing = write_landing(tmp_path / "broken")
    (landing / "repayments.csv").write_text("loan_id,customer_id\nL1,C1\n", encoding="utf-8")
    missing = r"repayments\.csv is missing required column\(s\): installment_no"
    with pytest.raises(LandingError, match=missing):
        load_landing(landing, warehouse, AS_OF)
    (landing / "repayments.csv").write_text(",".join(COLUMNS) + "\nL1,C1,1\n", encoding="utf-8")
    with pytest.raises(LandingError, match="repayments.csv could not be read"):
        load_landing(landing, warehouse, AS_OF)
    after = snapshot(warehouse)
    for table in TABLES:
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)


def test_a_run_without_customers_empties_that_partition(loaded, tmp_path):
    warehouse, report, landing = loaded
    (landing / "customers.csv").unlink()
    report = load_landing(landing, warehouse, AS_OF)
    assert partition(warehouse, "stg_customers").empty
    assert "customers.csv" not in set(report.files["source_file"])
    assert "customers.csv" not in set(partition(warehouse, "quarantine")["source_file"])


# equal typed values under different spellings are duplicates; the detail names the first row of the values
SPELLED_DUPLICATES = [
    ["L1", "C1", "1", "2026-05-05", "100", "2026-05-04", "0.00"],
    ["L1", "C1", "1", "2026-05-05", "100", "2026-05-04", "-0.00"],
    [" L2", "C2", "1", "2026-05-05", "100", "", ""],
    ["L2", "C2", "1", "2026-05-05", "100.0", "", ""],
    ["L2", "C2", "1", "2026-05-05", "1e2", " ", ""],
    ["L3", "C3", "\u00a01", "2026/5/5", "100", "", ""],
    ["L3", "C3", "+1", "2026-05-05 ", "100", "", ""],
    ["L4", "C4", "1", "2026-05-05", "100", "", ""],
    ["L4", "C4", "1", "2026-05-05", "100", "", ""],
    ["L4", "C4", "1", "2026-05-05", "100", "", ""],
]


@pytest.mark.parametrize("engine", ["duckdb", "great_expectations"])
def test_duplicates_are_found_across_spellings_and_point_at_the_first_row(tmp_path, engine):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    load_landing(write_landing(tmp_path / "landing", SPELLED_DUPLICATES), warehouse, AS_OF, contract_engine=engine)
    quarantine = partition(warehouse, "quarantine")
    repayments = quarantine[quarantine["source_file"] == "repayments.csv"]
    assert list(zip(repayments["source_row"], repayments["rule"], repayments["detail"], strict=True)) == [
        (row, "duplicate_row", f"duplicate of source_row {first}")
        for row, first in [(2, 1), (4, 3), (5, 3), (7, 6), (9, 8), (10, 8)]
    ]
    assert json.loads(repayments["raw_record"].iloc[1])["amount_due"] == "100.0"
    assert list(partition(warehouse, "stg_repayments")["source_row"]) == [1, 3, 6, 8]
