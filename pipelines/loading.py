"""Stage 1 of the nightly job: load the landing folder into the staged tables, under contract.

:func:`load_landing` is the one entry point (the CLI and the Airflow task call it). For its as-of date it
replaces the partition of every staged table, of ``quarantine`` and of ``load_reconciliation``, so a rerun
changes nothing. Order of work: check the folder (LandingError before anything is written), check every row
(bad rows go to quarantine, never dropped), write quarantine and reconciliation, check that every file
reconciles, then write each staged table with its contract run inside the partition replacement: a failed
contract rolls that partition back and stops the run (ContractError), the earlier partitions stay.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipelines.contracts import (
    CONTRACT_ENGINES,
    Contract,
    ContractError,
    checked_columns,
    contract_failures,
    contract_failures_sql,
    derived_select_list,
    import_great_expectations,
    table_contract,
)
from pipelines.landing import (
    TURN_COLUMNS,
    CheckedRows,
    LandingError,
    LandingFiles,
    checked_customers,
    column_mapping,
    csv_encoding,
    csv_header,
    landing_files,
    quarantine_frame,
    read_calls,
    read_customers,
    redacted_record,
    utf8_copy,
)
from pipelines.warehouse import Session, Warehouse, checked_memory_limit, sql_text

log = logging.getLogger(__name__)

FILE_COLUMNS = ["source_file", "rows_read", "rows_loaded", "rows_quarantined"]
RULE_COLUMNS = ["source_file", "rule", "rows"]
STAGED_TABLES = ("stg_repayments", "stg_calls", "stg_call_turns", "stg_customers")
# contracts run inside the replacement of each staged table; stg_installments is derived from stg_repayments
CONTRACTS_BY_TABLE = {
    "stg_repayments": ("stg_repayments", "stg_installments"),
    "stg_calls": ("stg_calls",),
    "stg_call_turns": ("stg_call_turns",),
    "stg_customers": ("stg_customers",),
}
_DATE_COLUMNS = ("due_date", "paid_date")
# explicit dialect, no comment lines, no skipped top rows: the sniffer must never drop a row on its own
_CSV_OPTIONS = (
    "header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', comment = '', skip = 0, "
    "strict_mode = true"
)


class ReconciliationError(RuntimeError):
    """Rows were lost or duplicated between reading a file and writing it: a bug, never a data problem."""


@dataclass(frozen=True)
class LoadReport:
    """What one load did: per source file rows read/loaded/quarantined, and quarantined rows per rule."""

    as_of: date
    files: pd.DataFrame  # source_file, rows_read, rows_loaded, rows_quarantined
    quarantine_by_rule: pd.DataFrame  # source_file, rule, rows


@dataclass(frozen=True)
class _RepaymentsSource:
    """How to read the repayments file: its path, format, encoding and contract column -> file column."""

    path: Path
    encoding: str | None  # None for Parquet
    columns: dict[str, str]
    timestamp_columns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _FileCheck:
    """The row counts and quarantined rows of one landing file, before anything is written."""

    source_file: str
    rows_read: int
    rows_loaded: int
    quarantine: pd.DataFrame


# --- pure helpers ----------------------------------------------------------------------------------


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _row_count(session: Session, table: str, where: str = "true", params: dict[str, Any] | None = None) -> int:
    # Session.frame, not Session.scalar: scalar's fetchone leaves a DuckDB 2 result open, and the next
    # unparameterised Session.frame on the connection then fails with "unfinished result"
    return int(session.frame(f"select count(*) as n from {table} where {where}", params)["n"].iloc[0])


def reconciliation_frame(checks: Sequence[_FileCheck]) -> pd.DataFrame:
    """Return one row per source file: rows read, loaded and quarantined."""
    rows = [(c.source_file, c.rows_read, c.rows_loaded, len(c.quarantine)) for c in checks]
    return pd.DataFrame(rows, columns=FILE_COLUMNS).astype(
        {"rows_read": "int64", "rows_loaded": "int64", "rows_quarantined": "int64"}
    )


def unreconciled_files(files: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of ``files`` where rows_read != rows_loaded + rows_quarantined."""
    return files[files["rows_read"] != files["rows_loaded"] + files["rows_quarantined"]]


def quarantine_by_rule(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Return the number of quarantined rows per source file and rule, most frequent first."""
    counts = quarantine.groupby(["source_file", "rule"], as_index=False).size()
    counts = counts.rename(columns={"size": "rows"})
    ordered = counts.sort_values(["source_file", "rows", "rule"], ascending=[True, False, True])
    return ordered.reset_index(drop=True).reindex(columns=RULE_COLUMNS).astype({"rows": "int64"})


def _file_summary(files: pd.DataFrame, by_rule: pd.DataFrame, source_file: str) -> str:
    row = files[files["source_file"] == source_file].iloc[0]
    rules = by_rule[by_rule["source_file"] == source_file].head(3)
    top = ", ".join(f"{rule} {rows}" for rule, rows in zip(rules["rule"], rules["rows"], strict=True))
    return (
        f"{source_file}: read {row['rows_read']}, loaded {row['rows_loaded']}, "
        f"quarantined {row['rows_quarantined']}" + (f" (top rules: {top})" if top else "")
    )


# --- repayments: read into DuckDB and checked there ------------------------------------------------


def _repayments_source(path: Path, encoding: str) -> _RepaymentsSource:
    """Check the repayments file's encoding and columns (raising LandingError) and say how to read it."""
    if path.suffix == ".parquet":
        schema = pq.read_schema(path)
        columns = column_mapping(schema.names, "repayments", path.name)
        timestamps = frozenset(
            column for column in _DATE_COLUMNS
            if str(schema.field(columns[column]).type).startswith("timestamp")
        )
        return _RepaymentsSource(path, None, columns, timestamps)
    chosen = csv_encoding(path, encoding)
    return _RepaymentsSource(path, chosen, column_mapping(csv_header(path, chosen), "repayments", path.name))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _landing_view(source: _RepaymentsSource, readable: Path) -> str:
    """Return the select of the contract columns as text, in file order, from the file ``readable``."""
    path = _sql_string(str(readable))
    if source.encoding is None:
        # a timestamp-typed date column is cut to its date, so it reads like a CSV date
        select = ", ".join(
            f"cast(cast({_quoted(name)} as date) as varchar) as {column}"
            if column in source.timestamp_columns
            else f"cast({_quoted(name)} as varchar) as {column}"
            for column, name in source.columns.items()
        )
        return (f"select {select} from (select * from read_parquet({path}, file_row_number = true) "
                "order by file_row_number)")
    select = ", ".join(f"{_quoted(name)} as {column}" for column, name in source.columns.items())
    return f"select {select} from read_csv({path}, {_CSV_OPTIONS})"


def _read_repayments(session: Session, source: _RepaymentsSource, scratch: Path) -> None:
    """Create the temp table repayments_checked: every row of the file, typed, with its row rule, in file order.

    The file is read once: the temp view landing_repayments (its contract columns as text) is typed and
    checked in the statement that reads it, so the table's rowid + 1 is the row's source_row.
    """
    # DuckDB reads UTF-8 only (other encodings need a downloaded extension): re-encode a GB18030 file
    is_gb18030 = source.encoding == "gb18030"
    readable = utf8_copy(source.path, "gb18030", scratch) if is_gb18030 else source.path
    try:
        session.execute(f"create or replace temp view landing_repayments as {_landing_view(source, readable)}")
        session.execute("create or replace temp table repayments_checked as "
                        f"select * from (\n{sql_text('staging/repayments_checked')}\n)")
    except Exception as error:  # DuckDB's own exception types stay inside pipelines.warehouse
        raise LandingError(f"{source.path.name} could not be read: {error}") from error


def _checked_repayments(session: Session, source: _RepaymentsSource, scratch: Path,
                        staged_from: date | None = None, as_of: date | None = None) -> _FileCheck:
    """Read and check the repayments file in DuckDB; the rows stay in the temp table repayments_checked.

    With ``staged_from`` (a delta night), a row repeating one staged from that night up to the night before
    ``as_of`` is a duplicate too.
    """
    started = time.perf_counter()
    _read_repayments(session, source, scratch)
    rows_read = _row_count(session, "repayments_checked")
    session.execute("create or replace temp table repayment_duplicates as "
                    f"select * from (\n{sql_text('staging/repayment_duplicates')}\n)")
    # joined on rowid: "where rowid + 1 in (select ...)" scanned the whole table (seconds at 4M rows)
    if staged_from is not None and as_of is not None and staged_from < as_of:
        session.execute("insert into repayment_duplicates (source_row, staged_on) select source_row, staged_on "
                        f"from (\n{sql_text('staging/repayment_staged_duplicates')}\n)",
                        {"staged_from": staged_from, "as_of": as_of})
    session.execute("update repayments_checked set is_duplicate = true from repayment_duplicates "
                    "where repayments_checked.rowid = repayment_duplicates.source_row - 1")
    rows_good = _row_count(session, "repayments_checked", "row_rule is null and not is_duplicate")
    quarantined = session.model_frame("staging/repayments_quarantine")
    quarantine = quarantine_frame(
        {
            "source_file": source.path.name,
            "source_row": int(row.source_row),
            "rule": str(row.rule),
            "detail": redacted_record(str(row.detail)),
            "raw_record": redacted_record(json.loads(str(row.raw_record))),
        }
        for row in quarantined.itertuples(index=False)
    )
    seconds = time.perf_counter() - started
    log.info("%s: read and checked %d rows in %.1f s", source.path.name, rows_read, seconds)
    return _FileCheck(source.path.name, rows_read, rows_good, quarantine)


def _file_check(checked: CheckedRows) -> _FileCheck:
    return _FileCheck(checked.source_file, checked.rows_read, len(checked.good), checked.quarantine)


# --- contracts -------------------------------------------------------------------------------------


def _contract_relation(session: Session, contract: Contract, partition: str, params: dict[str, Any]) -> str:
    """Return the relation a contract checks: the partition or the contract's model, plus derived columns.

    A model (an aggregate over the partition) is materialised once into a temp table, as every expectation
    scans it.
    """
    derived = derived_select_list(contract)
    if not contract.model:
        return f"(select *{derived} from {partition} as rows_checked)" if derived else partition
    session.execute(f"create or replace temp table contract_rows as select *{derived} from (\n"
                    f"{sql_text(contract.model)}\n) as model", params)
    return "contract_rows"


def _validated_frame(session: Session, relation: str, contract: Contract, params: dict[str, Any]) -> pd.DataFrame:
    """Return the rows of ``relation`` for GE's pandas engine: every row, only the columns the contract reads.

    A column an expectation names but the relation lacks stays out of the select, so GE reports it missing.
    """
    columns = checked_columns(contract)
    if columns is None:
        return session.frame(f"select * from {relation}", params)
    present = set(session.frame(f"select * from {relation} limit 0", params).columns)
    select = ", ".join(_quoted(column) for column in columns if column in present)
    return session.frame(f"select {select or '*'} from {relation}", params)


def _contract_check(
    as_of: date, contracts: Sequence[Contract], engine: str = "duckdb", ge_max_rows: int | None = None,
) -> Callable[[Session, str, dict[str, Any]], None]:
    """Return the in-place validate callback of a partition replacement: run ``contracts``, raise the first failure.

    ``engine`` "duckdb" evaluates the suites in the warehouse (``contract_failures_sql``); "great_expectations"
    pulls each relation into pandas and runs GE's pandas engine (slower; the reference). A relation of more than
    ``ge_max_rows`` rows goes to the SQL translation even with GE, and says so: GE's pandas engine needs the
    relation in memory (21M repayment rows peaked at 9.2 GB), the SQL engine streams it.
    """
    if engine not in CONTRACT_ENGINES:
        raise ValueError(f"unknown contract engine {engine!r}: one of {', '.join(CONTRACT_ENGINES)}")

    def check(session: Session, partition: str, params: dict[str, Any]) -> None:
        for contract in contracts:
            started = time.perf_counter()
            relation = _contract_relation(session, contract, partition, params)
            used = engine
            if engine == "great_expectations" and ge_max_rows is not None:
                rows = _row_count(session, relation, params=params)
                if rows > ge_max_rows:
                    used = "duckdb"
                    log.warning("contract %s: %d rows exceed landing.great_expectations_max_rows (%d), so its suite "
                                "is evaluated by the SQL translation instead of GE's pandas engine", contract.table,
                                rows, ge_max_rows)
            if used == "duckdb":
                failures = contract_failures_sql(session.frame, relation, contract, params)
            else:
                failures = contract_failures(_validated_frame(session, relation, contract, params), contract)
            session.execute("drop table if exists contract_rows")
            if not failures.empty:
                raise ContractError(contract, failures)
            log.info("contract %s passed (%s): %d expectations in %.1f s", contract.table, used,
                     len(contract.expectations), time.perf_counter() - started)

    return check


# --- the entry point -------------------------------------------------------------------------------


def _write_checked(
    session: Session, as_of: date, checks: Sequence[_FileCheck]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace the quarantine and load_reconciliation partitions; return (files, quarantine_by_rule)."""
    quarantine = pd.concat([check.quarantine for check in checks], ignore_index=True)
    files = reconciliation_frame(checks)
    session.replace_partition("quarantine", as_of, quarantine)
    session.replace_partition("load_reconciliation", as_of, files)
    by_rule = quarantine_by_rule(quarantine)
    for source_file in files["source_file"]:
        log.info("%s", _file_summary(files, by_rule, source_file))
    broken = unreconciled_files(files)
    if not broken.empty:
        raise ReconciliationError(f"rows_read != rows_loaded + rows_quarantined for:\n{broken.to_string()}")
    return files, by_rule


def _write_staged(
    session: Session, as_of: date, sources: dict[str, pd.DataFrame | str], contracts: dict[str, Contract],
    engine: str = "duckdb", ge_max_rows: int | None = None,
) -> dict[str, int]:
    """Replace each staged table's partition under its contracts; return the rows written per table."""
    written = {}
    for table in STAGED_TABLES:
        check = _contract_check(as_of, [contracts[name] for name in CONTRACTS_BY_TABLE[table]], engine, ge_max_rows)
        written[table] = session.replace_partition(table, as_of, sources[table], validate_in_place=check)
    return written


def _expect_written(written: dict[str, int], expected: dict[str, int]) -> None:
    wrong = {table: (written[table], rows) for table, rows in expected.items() if written[table] != rows}
    if wrong:
        raise ReconciliationError(f"rows written differ from rows checked (written, expected): {wrong}")


def _checked_side_files(files: LandingFiles, encoding: str,
                        staged_calls: Mapping[str, str] | None = None) -> tuple[CheckedRows, CheckedRows]:
    """Return the checked calls and customers (no customers file: none) of a landing folder."""
    calls = read_calls(files.calls, staged_calls)
    return calls, read_customers(files.customers, encoding) if files.customers else checked_customers([])


def load_landing(landing_dir: Path, warehouse: Warehouse, as_of: date, encoding: str = "auto",
                 contract_engine: str = "great_expectations", memory_limit: str | None = None,
                 staged_from: date | None = None, ge_max_rows: int | None = None) -> LoadReport:
    """Load the landing folder into the as_of partitions of the staged tables, quarantine and reconciliation.

    ``contract_engine`` says how the table contracts are evaluated: "great_expectations" (the default: Great
    Expectations' pandas engine on frames pulled from the warehouse) or "duckdb" (the same suites translated to
    SQL and run in the warehouse, faster at scale). ``memory_limit`` (DuckDB
    syntax, e.g. "3GB") caps DuckDB's memory in this load: past it DuckDB spills to disk, so the peak RSS of a
    large night stays bounded (DuckDB's own default is 80% of the machine's RAM). ``staged_from`` marks a delta
    night (``pipelines.warehouse.staged_from_of``): its state adds to the partitions staged from that night on, so
    a repayment row repeating one of theirs is quarantined as ``duplicate_row``. With the GE engine, a staged
    partition of more than ``ge_max_rows`` rows is checked by the SQL translation of its suite (bounded memory).

    Raises LandingError (bad folder, encoding or columns; nothing written), ReconciliationError (a bug) or
    ContractError (quarantine and reconciliation written, the failing table's partition rolled back).
    """
    if contract_engine not in CONTRACT_ENGINES:
        raise ValueError(f"unknown contract engine {contract_engine!r}: one of {', '.join(CONTRACT_ENGINES)}")
    limit = checked_memory_limit(memory_limit) if memory_limit else None
    started = time.perf_counter()
    landing_dir = Path(landing_dir)
    files = landing_files(landing_dir)
    repayments_source = _repayments_source(files.repayments, encoding)
    contracts = {name: table_contract(name) for names in CONTRACTS_BY_TABLE.values() for name in names}
    # the calls and customers are checked in Python, and Great Expectations is imported, while DuckDB checks
    # the repayments (it releases the GIL); their LandingError still comes before anything is written
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="landing-check") as pool, \
            tempfile.TemporaryDirectory(prefix="postloan-landing-") as scratch, warehouse.session() as session:
        # a delta night adds calls: a call_id staged on an earlier night of its state is a duplicate
        staged_calls = {} if staged_from is None or staged_from >= as_of else dict(session.frame(
            "select call_id, cast(min(as_of) as varchar) as staged_on from stg_calls "
            "where as_of >= $staged_from and as_of < $as_of group by call_id",
            {"staged_from": staged_from, "as_of": as_of}).itertuples(index=False, name=None))
        side_files = pool.submit(_checked_side_files, files, encoding, staged_calls)
        imported = pool.submit(import_great_expectations) if contract_engine == "great_expectations" else None
        session.execute("set enable_progress_bar = false")  # DuckDB draws one on long queries otherwise
        if limit:
            session.execute(f"set memory_limit = '{limit}'")
        try:
            repayments = _checked_repayments(session, repayments_source, Path(scratch), staged_from, as_of)
            calls, customers = side_files.result()
            turns = calls.extra if calls.extra is not None else pd.DataFrame(columns=TURN_COLUMNS)
            checks = [repayments, _file_check(calls)] + ([_file_check(customers)] if files.customers else [])
            report_files, by_rule = _write_checked(session, as_of, checks)
            sources: dict[str, pd.DataFrame | str] = {
                "stg_repayments": sql_text("staging/stg_repayments"),
                "stg_calls": calls.good,
                "stg_call_turns": turns,
                "stg_customers": customers.good,
            }
            if imported is not None:
                imported.result()
            written = _write_staged(session, as_of, sources, contracts, contract_engine, ge_max_rows)
            _expect_written(written, {
                "stg_repayments": repayments.rows_loaded,
                "stg_calls": len(calls.good),
                "stg_call_turns": int(calls.good["turn_count"].sum()),
                "stg_customers": len(customers.good),
            })
        finally:
            for temp_table in ("repayment_duplicates", "repayments_checked"):
                session.execute(f"drop table if exists {temp_table}")
            session.execute("drop view if exists landing_repayments")
    log.info("loaded %s for %s in %.1f s", landing_dir, as_of, time.perf_counter() - started)
    return LoadReport(as_of, report_files, by_rule)


__all__ = ["ContractError", "LandingError", "LoadReport", "ReconciliationError", "load_landing"]
