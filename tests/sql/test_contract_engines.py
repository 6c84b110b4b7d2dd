"""The DuckDB-backed contract engine reports the same failures as Great Expectations' pandas engine."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.contracts import (
    FAILURE_COLUMNS,
    Contract,
    ExpectationSpec,
    contract_failures,
    contract_failures_sql,
    table_contract,
)
from pipelines.warehouse import Warehouse

AS_OF = date(2026, 6, 30)
_SPEC = importlib.util.spec_from_file_location(
    "contract_frames", Path(__file__).resolve().parent.parent / "unit" / "test_contracts.py")
assert _SPEC is not None and _SPEC.loader is not None
frames = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(frames)
TABLES = list(frames.TABLE_CONTRACTS)


def both_engines(tmp_path: Path, frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (GE's failures on the frame, the SQL engine's failures on the same rows stored in DuckDB)."""
    with Warehouse(tmp_path / "w.duckdb").session() as session:
        session.replace_partition("rows_checked", AS_OF, frame)
        relation = "(select * exclude (as_of) from rows_checked where as_of = $as_of)"
        in_sql = contract_failures_sql(session.frame, relation, contract, {"as_of": AS_OF})
    return contract_failures(frame, contract), in_sql


def summary(failures: pd.DataFrame) -> list[tuple]:
    return list(failures[["expectation", "column", "unexpected_count", "element_count"]]
                .itertuples(index=False, name=None))


@pytest.mark.parametrize("table", TABLES)
def test_good_frames_pass_in_both_engines(tmp_path, table):
    ge, in_sql = both_engines(tmp_path, frames.GOOD[table](), table_contract(table))
    assert ge.empty and in_sql.empty and list(in_sql.columns) == FAILURE_COLUMNS


@pytest.mark.parametrize("table", TABLES)
def test_broken_frames_fail_the_same_expectations_with_the_same_counts(tmp_path, table):
    frame, expected = frames.broken(table)
    ge, in_sql = both_engines(tmp_path, frame, table_contract(table))
    assert summary(in_sql) == summary(ge)
    assert set(zip(in_sql["expectation"], in_sql["column"], strict=True)) == expected


def test_nulls_are_treated_like_great_expectations(tmp_path):
    frame = pd.DataFrame({
        "call_id": ["a", "a", None, "b"], "customer_id": ["c"] * 4,
        "started_at": pd.to_datetime(["2026-01-01"] * 4, utc=True), "direction": ["outbound", "inbound", None, "x"],
        "duration_s": [1.0, None, -1.0, 2.0], "turn_count": [2.0, None, 1.0, None],
        "customer_turn_count": [1.0, 1.0, None, None], "source_row": [1, 2, 3, 4],
    })
    ge, in_sql = both_engines(tmp_path, frame, table_contract("stg_calls"))
    assert summary(in_sql) == summary(ge) and len(ge) == 6


def test_an_untranslated_expectation_runs_through_great_expectations(tmp_path):
    contract = Contract("t", "g", (
        ExpectationSpec("expect_column_values_to_be_between", {"column": "x", "min_value": 0, "mostly": 0.9}, "x"),
        ExpectationSpec("expect_column_values_to_be_in_set", {"column": "y", "value_set": ["a"]}, "y"),
    ))
    frame = pd.DataFrame({"x": [-1.0, 1.0, 2.0], "y": ["a", "b", "a"]})
    ge, in_sql = both_engines(tmp_path, frame, contract)
    assert summary(in_sql) == summary(ge) == [("expect_column_values_to_be_between", "x", 1, 3),
                                              ("expect_column_values_to_be_in_set", "y", 1, 3)]


def test_a_missing_column_is_reported_as_a_failure_not_a_crash(tmp_path):
    frame = frames.customers().drop(columns=["language"])
    _, in_sql = both_engines(tmp_path, frame, table_contract("stg_customers"))
    assert list(in_sql["column"]) == ["language"] and in_sql["sample"].iloc[0].startswith("'error:")


def test_the_load_stops_on_the_same_contract_in_both_engines(tmp_path):
    from pipelines.contracts import ContractError
    from pipelines.loading import load_landing

    spec = importlib.util.spec_from_file_location(
        "loading_tests", Path(__file__).resolve().parent / "test_loading.py")
    assert spec is not None and spec.loader is not None
    loading = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loading)
    rows = [["L1", "C1", "1", "2026-05-05", "100.00", "", ""], ["L1", "C9", "2", "2026-06-05", "100.00", "", ""]]
    landing = loading.write_landing(tmp_path / "conflict", rows, calls=[loading.call("K7")])
    reports = {}
    for engine in ("duckdb", "great_expectations"):
        with pytest.raises(ContractError) as error:
            load_landing(landing, Warehouse(tmp_path / f"{engine}.duckdb"), AS_OF, contract_engine=engine)
        assert error.value.table == "stg_installments"
        reports[engine] = summary(error.value.failures)
    assert reports["duckdb"] == reports["great_expectations"] == [
        ("expect_column_values_to_be_between", "customers_per_loan", 2, 2)]
    with pytest.raises(ValueError, match="unknown contract engine"):
        load_landing(landing, Warehouse(tmp_path / "x.duckdb"), AS_OF, contract_engine="pandas")


def test_the_load_takes_a_duckdb_memory_limit(tmp_path):
    from pipelines.loading import load_landing

    spec = importlib.util.spec_from_file_location(
        "loading_tests", Path(__file__).resolve().parent / "test_loading.py")
    assert spec is not None and spec.loader is not None
    loading = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loading)
    landing = loading.write_landing(tmp_path / "landing")
    report = load_landing(landing, Warehouse(tmp_path / "w.duckdb"), AS_OF, memory_limit="256MB")
    assert report.files.set_index("source_file").loc["repayments.csv"].tolist() == [17, 6, 11]
    with pytest.raises(ValueError, match="memory limit must look like"):
        load_landing(landing, Warehouse(tmp_path / "w.duckdb"), AS_OF, memory_limit="3GB'; drop table x; --")
