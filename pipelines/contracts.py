"""Table contracts: Great Expectations suites kept as YAML under ``data_contracts/``, run on pandas frames.

A contract names its table, states its grain and lists expectations (``type`` is the snake_case name of a
``gx.expectations`` class, ``kwargs`` its arguments, ``description`` why it holds). ``derived_columns`` are
SQL expressions the caller adds to the frame before validating (arithmetic rules); ``model`` names the SQL
model that builds the frame when the contract is about a derived grain rather than a stored table.
Great Expectations is imported inside :func:`contract_failures` and :func:`import_great_expectations` only:
the import takes seconds (the load starts it in a thread while DuckDB reads the landing files).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd
import yaml

log = logging.getLogger(__name__)

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "data_contracts"
FAILURE_COLUMNS = ["expectation", "column", "description", "unexpected_count", "element_count", "sample"]
_SAMPLE_SIZE = 5
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a contract: the GE expectation type, its arguments and a one-line description."""

    type: str
    kwargs: Mapping[str, Any]
    description: str

    @property
    def column(self) -> str:
        """Name the columns the expectation is about, for reports ('' for table-level expectations)."""
        if "column" in self.kwargs:
            return str(self.kwargs["column"])
        if "column_A" in self.kwargs:
            return f"{self.kwargs['column_A']}, {self.kwargs['column_B']}"
        return ", ".join(str(column) for column in self.kwargs.get("column_list", []))


@dataclass(frozen=True)
class Contract:
    """A table contract as read from ``data_contracts/<table>.yaml``."""

    table: str
    grain: str
    expectations: tuple[ExpectationSpec, ...]
    derived_columns: Mapping[str, str] = field(default_factory=dict)
    model: str | None = None


class ContractError(RuntimeError):
    """A frame broke its table contract; the message is a readable report of the failed expectations."""

    def __init__(self, contract: Contract, failures: pd.DataFrame) -> None:
        super().__init__(contract_report(contract, failures))
        self.table = contract.table
        self.failures = failures


def _spec(entry: Any, path: Path) -> ExpectationSpec:
    if not isinstance(entry, Mapping) or not str(entry.get("type", "")).startswith("expect_"):
        raise ValueError(f"{path}: every expectation needs a 'type' starting with expect_, got {entry!r}")
    kwargs = entry.get("kwargs") or {}
    description = entry.get("description")
    if not isinstance(kwargs, Mapping) or not description:
        raise ValueError(f"{path}: expectation {entry['type']} needs a 'kwargs' mapping and a 'description'")
    return ExpectationSpec(str(entry["type"]), dict(kwargs), str(description).strip())


def load_contract(path: Path | str) -> Contract:
    """Return the contract in the YAML file ``path``; raise ValueError when it is malformed."""
    path = Path(path)
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, Mapping) or not loaded.get("table") or not loaded.get("grain"):
        raise ValueError(f"{path}: a contract needs 'table', 'grain' and 'expectations'")
    entries = loaded.get("expectations") or []
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: 'expectations' must be a non-empty list")
    derived = loaded.get("derived_columns") or {}
    if not isinstance(derived, Mapping) or not all(_IDENTIFIER.match(str(name)) for name in derived):
        raise ValueError(f"{path}: 'derived_columns' must map plain column names to SQL expressions")
    return Contract(
        table=str(loaded["table"]),
        grain=" ".join(str(loaded["grain"]).split()),
        expectations=tuple(_spec(entry, path) for entry in entries),
        derived_columns={str(name): str(sql) for name, sql in derived.items()},
        model=loaded.get("model"),
    )


def partition_validator(table: str) -> Callable[[pd.DataFrame], None]:
    """Return a ``replace_partition(validate=...)`` check: ContractError when a partition breaks its contract.

    The contract is ``data_contracts/<table>.yaml``, evaluated by Great Expectations.
    """
    contract = table_contract(table)

    def validate(partition: pd.DataFrame) -> None:
        failures = contract_failures(partition, contract)
        if not failures.empty:
            raise ContractError(contract, failures)

    return validate


class PartitionChecks(TypedDict, total=False):
    """The keyword arguments of ``Session.replace_partition`` that check a partition (one of the two)."""

    validate: Callable[[pd.DataFrame], None]
    validate_in_place: Callable[[Any, str, dict[str, Any]], None]


def partition_checks(table: str, engine: str = "great_expectations") -> PartitionChecks:
    """Return the ``replace_partition`` keyword that checks a partition against ``data_contracts/<table>.yaml``.

    ``engine`` "great_expectations" validates the partition's frame with GE (``validate=``); "duckdb" evaluates
    the same suite translated to SQL inside the partition's transaction (``validate_in_place=``: no GE import, no
    frame). Either way a failure raises ContractError and rolls the replacement back.
    """
    if engine not in CONTRACT_ENGINES:
        raise ValueError(f"unknown contract engine {engine!r}: one of {', '.join(CONTRACT_ENGINES)}")
    if engine == "great_expectations":
        return {"validate": partition_validator(table)}
    contract = table_contract(table)
    derived = derived_select_list(contract)

    def check(session: Any, partition: str, params: dict[str, Any]) -> None:
        relation = f"(select *{derived} from {partition} as rows_checked)" if derived else partition
        failures = contract_failures_sql(session.frame, relation, contract, params)
        if not failures.empty:
            raise ContractError(contract, failures)

    return {"validate_in_place": check}


def derived_contract_engine(settings: Mapping[str, Any]) -> str:
    """Return the engine for the contracts of the tables the job derives (``contracts.derived_engine``)."""
    return str((settings.get("contracts") or {}).get("derived_engine", "duckdb"))


def table_contract(table: str) -> Contract:
    """Return the contract of ``table`` from ``data_contracts/<table>.yaml``."""
    return load_contract(CONTRACTS_DIR / f"{table}.yaml")


def derived_select_list(contract: Contract) -> str:
    """Return the ``, (<sql>) as <name>`` list adding the derived columns to a select ('' if none)."""
    return "".join(f", ({sql}) as {name}" for name, sql in contract.derived_columns.items())


def _expectation_classes() -> dict[str, type]:
    import great_expectations as gx

    classes = (getattr(gx.expectations, name) for name in dir(gx.expectations) if name.startswith("Expect"))
    return {str(getattr(cls, "expectation_type", "")): cls for cls in classes if isinstance(cls, type)}


def import_great_expectations() -> None:
    """Import Great Expectations (4-7 s) quietly, e.g. in a thread while the warehouse reads the landing files.

    Afterwards GE skips the md5 fingerprint of every pandas batch (a batch marker in the result's metadata, not
    a check): hashing every value of a 4M-row frame cost seconds per contract, twice per validation.
    """
    _quiet_great_expectations()  # before the import: GE logs at INFO while it imports
    import great_expectations  # noqa: F401
    from great_expectations.execution_engine import pandas_execution_engine

    _quiet_great_expectations()
    pandas_execution_engine.HASH_THRESHOLD = 0  # frames smaller than this are fingerprinted; none is


def checked_columns(contract: Contract) -> list[str] | None:
    """Return the columns the expectations of ``contract`` read, in first-use order.

    None when some expectation may read other columns too (a type or an argument, such as ``row_condition``,
    that only Great Expectations interprets): then the whole relation must be validated.
    """
    if not all(sql_translatable(spec) for spec in contract.expectations):
        return None
    columns = [column for spec in contract.expectations for column in _spec_columns(spec)]
    return list(dict.fromkeys(columns))


def _quiet_great_expectations() -> None:
    """Set GE's loggers to WARNING (some of its modules set their own logger to INFO when imported)."""
    names = [name for name in logging.root.manager.loggerDict if name.startswith("great_expectations.")]
    for name in ["great_expectations", *names]:
        logging.getLogger(name).setLevel(logging.WARNING)


def _suite(contract: Contract, positions: Sequence[int] | None = None) -> Any:
    """Build the GE suite of a contract, or of its expectations at ``positions``; each remembers its position."""
    import great_expectations as gx

    classes = _expectation_classes()
    suite = gx.ExpectationSuite(name=contract.table)
    chosen = range(len(contract.expectations)) if positions is None else positions
    for position in chosen:
        spec = contract.expectations[position]
        if spec.type not in classes:
            raise ValueError(f"contract {contract.table}: unknown expectation type {spec.type!r}")
        suite.add_expectation(
            classes[spec.type](**spec.kwargs, description=spec.description, meta={"position": position})
        )
    return suite


def expectation_groups(contract: Contract, present: Collection[str]) -> list[tuple[list[str] | None, list[int]]]:
    """Return (columns, expectation positions) per distinct column set the expectations read, in contract order.

    GE's pandas engine copies every column of the frame for each expectation (it drops the rows where the
    expectation's column is null), so each group is validated on a frame of its own columns only. Columns
    None: validate on the whole frame (an expectation that may read other columns, or a column ``present``
    lacks, which GE must report on the frame as given).
    """
    if checked_columns(contract) is None:
        return [(None, list(range(len(contract.expectations))))]
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for position, spec in enumerate(contract.expectations):
        columns = tuple(dict.fromkeys(_spec_columns(spec)))
        groups.setdefault(columns if set(columns) <= set(present) else None, []).append(position)
    return [(list(columns) if columns is not None else None, positions) for columns, positions in groups.items()]


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """Return the first error message in a GE exception_info (flat, or keyed by metric), or None."""
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    messages = [str(entry.get("exception_message")) for entry in entries if entry.get("raised_exception")]
    return messages[0] if messages else None


def _failure_row(spec: ExpectationSpec, result: Any) -> dict[str, Any]:
    """Return the report row of one failed expectation result."""
    details = dict(result.result or {})
    error = _exception_message(result.exception_info)
    if error is not None:
        sample: Any = f"error: {error}"
    elif "partial_unexpected_list" in details:
        sample = list(details["partial_unexpected_list"])[:_SAMPLE_SIZE]
    else:
        sample = f"observed: {details.get('observed_value')}"
    return {
        "expectation": spec.type,
        "column": spec.column,
        "description": spec.description,
        "unexpected_count": details.get("unexpected_count"),
        "element_count": details.get("element_count"),
        "sample": repr(sample),
    }


def _validation_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with numeric columns as float64: GE vectorises its pandas range checks only then."""
    numeric = [
        column for column, dtype in frame.dtypes.items()
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        and dtype not in ("int64", "float64")
    ]
    return frame.astype({column: "float64" for column in numeric}) if numeric else frame


def contract_failures(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Return one row per failed expectation of ``contract`` on ``frame`` (empty when all pass).

    Columns: expectation, column, description, unexpected_count, element_count, sample (up to 5 unexpected
    values, or the observed value / error). Derived columns must already be in ``frame``.
    """
    import_great_expectations()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(name=f"{contract.table}_source").add_dataframe_asset(
        name=contract.table
    )
    definition = asset.add_batch_definition_whole_dataframe("whole_frame")
    validated = _validation_frame(frame)
    results = []
    for columns, positions in expectation_groups(contract, set(frame.columns)):
        batch = definition.get_batch(
            batch_parameters={"dataframe": validated if columns is None else validated[columns]}
        )
        validation = batch.validate(
            _suite(contract, positions),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": _SAMPLE_SIZE},
        )
        results.extend(validation.results)
    failed = {result.expectation_config.meta["position"]: result for result in results if not result.success}
    failures = [_failure_row(contract.expectations[at], failed[at]) for at in sorted(failed)]
    return pd.DataFrame(failures, columns=FAILURE_COLUMNS)


def contract_report(contract: Contract, failures: pd.DataFrame) -> str:
    """Return a readable report of a contract's failed expectations: table, grain, then one line each."""
    lines = [f"contract {contract.table} failed {len(failures)} of {len(contract.expectations)} expectations "
             f"(grain: {contract.grain})"]
    for failure in failures.itertuples(index=False):
        count = (
            f"{failure.unexpected_count} of {failure.element_count} rows unexpected"
            if pd.notna(failure.unexpected_count) else "failed"
        )
        lines.append(
            f"  - {failure.expectation}({failure.column}): {failure.description} -- {count}; "
            f"sample {failure.sample}"
        )
    return "\n".join(lines)


# --- the DuckDB-backed path: the same suites, evaluated by the warehouse instead of pandas -----------------------
# The nightly load validates staged tables of millions of rows; pulling them into pandas for GE's pandas engine
# cost more than the load itself. Each expectation type below is translated to SQL with GE's semantics (nulls
# ignored by column-map expectations, both-null pairs and all-null compound keys ignored, bounds inclusive
# unless strict); anything else (another type or argument) runs through GE on a frame of the relation.
# tests/sql/test_contract_engines.py checks both engines report the same failures on the same rows.

_SQL_KWARGS: dict[str, frozenset[str]] = {
    "expect_column_values_to_not_be_null": frozenset({"column"}),
    "expect_column_values_to_be_unique": frozenset({"column"}),
    "expect_compound_columns_to_be_unique": frozenset({"column_list"}),
    "expect_column_values_to_be_between": frozenset({"column", "min_value", "max_value", "strict_min",
                                                     "strict_max"}),
    "expect_column_values_to_be_in_set": frozenset({"column", "value_set"}),
    "expect_column_values_to_not_match_regex": frozenset({"column", "regex"}),
    "expect_column_pair_values_a_to_be_greater_than_b": frozenset({"column_A", "column_B", "or_equal"}),
}
CONTRACT_ENGINES = ("duckdb", "great_expectations")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _spec_columns(spec: ExpectationSpec) -> list[str]:
    if "column" in spec.kwargs:
        return [str(spec.kwargs["column"])]
    if "column_A" in spec.kwargs:
        return [str(spec.kwargs["column_A"]), str(spec.kwargs["column_B"])]
    return [str(column) for column in spec.kwargs.get("column_list", [])]


def sql_translatable(spec: ExpectationSpec) -> bool:
    """Return True when the DuckDB-backed engine evaluates ``spec`` itself (else it goes to GE on pandas)."""
    allowed = _SQL_KWARGS.get(spec.type)
    return allowed is not None and set(spec.kwargs) <= allowed and all(
        _IDENTIFIER.match(column) for column in _spec_columns(spec))


def _unexpected_condition(spec: ExpectationSpec) -> str:
    """Return the SQL condition of a row the (non-regex, non-unique) expectation ``spec`` finds unexpected."""
    kwargs = spec.kwargs
    if spec.type == "expect_column_values_to_not_be_null":
        return f"{kwargs['column']} is null"
    if spec.type == "expect_column_values_to_be_between":
        column, bounds = kwargs["column"], []
        if kwargs.get("min_value") is not None:
            bounds.append(f"{column} {'>' if kwargs.get('strict_min') else '>='} {_literal(kwargs['min_value'])}")
        if kwargs.get("max_value") is not None:
            bounds.append(f"{column} {'<' if kwargs.get('strict_max') else '<='} {_literal(kwargs['max_value'])}")
        return f"{column} is not null and not ({' and '.join(bounds) or 'true'})"
    if spec.type == "expect_column_values_to_be_in_set":
        values = ", ".join(_literal(value) for value in kwargs["value_set"]) or "null"
        return f"{kwargs['column']} is not null and {kwargs['column']} not in ({values})"
    if spec.type == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = kwargs["column_A"], kwargs["column_B"]
        operator = ">=" if kwargs.get("or_equal") else ">"
        return f"not ({a} is null and {b} is null) and not coalesce({a} {operator} {b}, false)"
    raise ValueError(f"no SQL condition for {spec.type}")


def _duplicated_condition(spec: ExpectationSpec, relation: str) -> str:
    """Return the SQL condition of a row whose (compound) key occurs more than once, nulls ignored like GE."""
    columns = _spec_columns(spec)
    key = ", ".join(columns)
    present = " and ".join(f"{c} is not null" for c in columns) if spec.type.endswith("_be_unique") and len(
        columns) == 1 else "not (" + " and ".join(f"{c} is null" for c in columns) + ")"
    return (f"{present} and ({key}) in (select ({key}) from {relation} where {present} "
            f"group by {key} having count(*) > 1)")


def _sample(rows: pd.DataFrame) -> list[Any]:
    if rows.shape[1] == 1:
        return [None if pd.isna(value) else value for value in rows.iloc[:, 0].tolist()]
    return [tuple(row) for row in rows.itertuples(index=False, name=None)]


def contract_failures_sql(
    query: Callable[[str, Mapping[str, Any] | None], pd.DataFrame], relation: str, contract: Contract,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Return the failures of ``contract`` on the table or view ``relation``, evaluated in the warehouse.

    ``query(sql, params)`` returns a query's result as a frame (``Session.frame``); derived columns must
    already be columns of ``relation``. Same report as :func:`contract_failures`: one row per failed
    expectation (unexpected_count, element_count, up to 5 unexpected values), in contract order.
    """
    present = set(query(f"select * from {relation} limit 0", params).columns)
    specs = dict(enumerate(contract.expectations))
    translated = {at: spec for at, spec in specs.items() if sql_translatable(spec)}
    missing = {at: [c for c in _spec_columns(spec) if c not in present] for at, spec in translated.items()}
    counted = {
        at: (_duplicated_condition(spec, relation) if spec.type.endswith("_be_unique")
             else _unexpected_condition(spec))
        for at, spec in translated.items()
        if not missing[at] and spec.type != "expect_column_values_to_not_match_regex"
    }
    counts_sql = ", ".join(["count(*) as element_count"]
                           + [f"count(*) filter (where {condition}) as u{at}" for at, condition in counted.items()])
    counts = query(f"select {counts_sql} from {relation}", params).iloc[0]
    element_count = int(counts["element_count"])
    failures: dict[int, dict[str, Any]] = {}
    for at, spec in translated.items():
        if missing[at]:
            failures[at] = _sql_failure(spec, None, None, f"error: column(s) {', '.join(missing[at])} not found")
        elif at in counted and int(counts[f"u{at}"]):
            rows = query(f"select {', '.join(_spec_columns(spec))} from {relation} where {counted[at]} "
                         f"limit {_SAMPLE_SIZE}", params)
            failures[at] = _sql_failure(spec, int(counts[f"u{at}"]), element_count, _sample(rows))
        elif at not in counted:  # a regex: Python's re.search on the column, as GE's pandas engine does
            column = str(spec.kwargs["column"])
            values = query(f"select {column} from {relation} where {column} is not null", params)[column]
            matched = values[values.astype(str).str.contains(str(spec.kwargs["regex"]), regex=True)]
            if len(matched):
                failures[at] = _sql_failure(spec, len(matched), element_count, matched.head(_SAMPLE_SIZE).tolist())
    others = [at for at in specs if at not in translated]
    if others:  # expectations the SQL engine does not translate: GE's pandas engine on a frame of the relation
        rest = Contract(contract.table, contract.grain, tuple(specs[at] for at in others))
        found = contract_failures(query(f"select * from {relation}", params), rest)
        by_key = {(row["expectation"], row["column"], row["description"]): row for row in found.to_dict("records")}
        for at in others:
            key = (specs[at].type, specs[at].column, specs[at].description)
            if key in by_key:
                failures[at] = by_key[key]
    return pd.DataFrame([failures[at] for at in sorted(failures)], columns=FAILURE_COLUMNS)


def _sql_failure(spec: ExpectationSpec, unexpected: int | None, elements: int | None, sample: Any) -> dict[str, Any]:
    return {"expectation": spec.type, "column": spec.column, "description": spec.description,
            "unexpected_count": unexpected, "element_count": elements, "sample": repr(sample)}
