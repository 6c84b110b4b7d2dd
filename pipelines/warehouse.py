"""The one module that talks to DuckDB.

Every other module passes frames, arrays, table names and dates; this module owns the connection, the SQL files
under ``sql/`` and partition replacement. A partition is the set of rows of a table with one ``as_of`` date:
writing it always deletes that date first, inside one transaction, so a rerun of the same date changes nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pandas as pd

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def sql_text(name: str) -> str:
    """Return the text of ``sql/<name>.sql`` (e.g. ``features/customer_behaviour``)."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"SQL model {name!r} not found at {path}")
    return path.read_text(encoding="utf-8")


def checked_memory_limit(text: str) -> str:
    """Return a DuckDB memory limit like "3GB" or "512MB"; raise ValueError for anything else."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", str(text).strip(), flags=re.IGNORECASE):
        raise ValueError(f"memory limit must look like 3GB or 512MB, got {text!r}")
    return str(text).strip()


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def _used_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keep only the ``$name`` parameters the statement uses (DuckDB rejects unused ones)."""
    if not params:
        return {}
    return {key: value for key, value in params.items() if re.search(rf"\${key}\b", sql)}


class StagedStateError(ValueError):
    """A delta night cannot be assembled: a night between its snapshot and it was never loaded."""


def staged_from_of(as_of: date, kinds: Mapping[date, str]) -> date:
    """Return the first staged partition that makes up the state on ``as_of``, given each loaded night's kind.

    A snapshot night (or a night with no recorded load, e.g. staged tables written directly) stands alone:
    ``as_of`` itself. A delta night adds to the latest snapshot before it: every partition from that snapshot
    (or from the first load, when there is none) up to ``as_of``; a night missing in between raises
    StagedStateError, since its rows (payments, calls) would be silently absent.
    """
    if kinds.get(as_of) != "delta":
        return as_of
    earlier = [night for night in kinds if night < as_of]
    snapshots = [night for night in earlier if kinds[night] == "snapshot"]
    start = max(snapshots) if snapshots else min(earlier, default=as_of)
    missing = [start + timedelta(days=n) for n in range(1, (as_of - start).days)
               if start + timedelta(days=n) not in kinds]
    if missing:
        shown = ", ".join(night.isoformat() for night in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise StagedStateError(
            f"{as_of} is a delta night on top of the {'snapshot' if snapshots else 'first load'} of {start}, but "
            f"{len(missing)} night(s) in between were never loaded ({shown}): load them, or send a full snapshot")
    return start


class Session:
    """One open connection to the warehouse; created by :meth:`Warehouse.session`."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._con = connection

    def staged_from(self, as_of: date) -> date:
        """Return the first partition of the staged tables that makes up the state on ``as_of``.

        SQL models filter the staged tables with ``as_of between $staged_from and $as_of``; a statement that uses
        ``$staged_from`` gets it filled from ``landing_loads`` when the caller passes only ``$as_of``. Nights with
        staged repayments but no recorded load (written before ``landing_loads`` existed) count as snapshots.
        """
        return staged_from_of(as_of, self.staged_kinds(as_of))

    def staged_kinds(self, up_to: date) -> dict[date, str]:
        """Return the landing kind ("snapshot" or "delta") of every staged night up to and including ``up_to``."""
        try:
            rows = self._con.execute("select as_of, landing_kind from staged_nights where as_of <= ?",
                                     [up_to]).fetchall()
        except duckdb.CatalogException:  # a read-only warehouse written before landing_loads existed
            rows = []
        return {night: kind for night, kind in rows}

    def _bind(self, sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return the parameters ``sql`` uses, with ``$staged_from`` filled from ``$as_of`` when not given."""
        if params and "as_of" in params and "staged_from" not in params and re.search(r"\$staged_from\b", sql):
            params = {**params, "staged_from": self.staged_from(params["as_of"])}
        return _used_params(sql, params)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one or more statements (``$name`` parameters allowed in a single statement)."""
        used = self._bind(sql, params)
        if used:
            self._con.execute(sql, used)
        else:
            self._con.execute(sql)

    def run_model(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Run the statements in ``sql/<name>.sql``."""
        self.execute(sql_text(name), params)

    def frame(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the result of a query as a pandas frame."""
        used = self._bind(sql, params)
        return self._con.execute(sql, used).df() if used else self._con.sql(sql).df()

    def model_frame(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the result of the query in ``sql/<name>.sql`` as a frame."""
        return self.frame(sql_text(name), params)

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Return the first column of the first row of a query."""
        used = self._bind(sql, params)
        rows = (self._con.execute(sql, used) if used else self._con.execute(sql)).fetchall()
        return rows[0][0] if rows else None

    def _describe(self, query: str, params: Mapping[str, Any]) -> list[str]:
        return list(self.frame(f"describe {query}", params)["column_name"])

    def table_names(self) -> set[str]:
        """Return the names of the tables and views in the warehouse."""
        return {row[0] for row in self._con.execute("select table_name from information_schema.tables").fetchall()}

    def table_columns(self, table: str) -> list[str]:
        """Return the column names of a table or view, in order."""
        rows = self._con.execute(
            "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
            [_identifier(table)],
        ).fetchall()
        return [row[0] for row in rows]

    def insert_frame(self, table: str, rows: pd.DataFrame, ignore_existing_keys: bool = False) -> int:
        """Append a frame to a table by column name (``insert or ignore`` when asked); return rows offered."""
        table = _identifier(table)
        if rows.empty:
            return 0
        self._con.register("_appending", rows)
        try:
            verb = "insert or ignore" if ignore_existing_keys else "insert"
            columns = ", ".join(rows.columns)
            self._con.execute(f"{verb} into {table} ({columns}) select {columns} from _appending")
        finally:
            self._con.unregister("_appending")
        return len(rows)

    def replace_partition(
        self,
        table: str,
        as_of: date,
        rows: pd.DataFrame | str,
        params: Mapping[str, Any] | None = None,
        *,
        where: str = "",
        validate: Callable[[pd.DataFrame], None] | None = None,
        validate_in_place: Callable[[Session, str, dict[str, Any]], None] | None = None,
    ) -> int:
        """Replace the ``as_of`` partition of ``table`` with ``rows`` (a frame or a select statement).

        ``where`` narrows the partition further (e.g. ``source_file = 'calls.jsonl'``). Columns are matched by
        name; missing ones become null. When ``validate`` is given it receives the partition as written and may
        raise, which rolls the whole replacement back. ``validate_in_place`` does the same without the frame: it
        gets this session, the partition as a parenthesised select and its parameters, to check it in SQL.
        Returns the number of rows written.
        """
        table = _identifier(table)
        scope = f"as_of = $as_of{(' and ' + where) if where else ''}"
        bound = {**(params or {}), "as_of": as_of}
        if isinstance(rows, pd.DataFrame):
            self._con.register("_incoming", rows.drop(columns=["as_of"], errors="ignore"))
            inner = "_incoming"
        else:
            inner = f"({rows})"
        inner_columns = self._describe(f"select * from {inner}", bound)
        drop_as_of = " exclude (as_of)" if "as_of" in inner_columns else ""
        source = f"(select $as_of::date as as_of, *{drop_as_of} from {inner})"
        source_columns = set(self._describe(f"select * from {source}", bound))
        columns = self.table_columns(table)
        if not columns:
            self._con.execute(f"create table {table} as select * from {source} limit 0",
                              self._bind(source, bound))
            columns = self.table_columns(table)
        select_list = ", ".join(c if c in source_columns else f"null as {c}" for c in columns)
        insert = f"insert into {table} ({', '.join(columns)}) select {select_list} from {source}"
        self._con.execute("begin transaction")
        try:
            self._con.execute(f"delete from {table} where {scope}", _used_params(f"{scope}", bound))
            self._con.execute(insert, self._bind(insert, bound))
            written = self._con.execute(
                f"select count(*) from {table} where {scope}", _used_params(scope, bound)
            ).fetchall()[0]
            if validate is not None:
                validate(self.frame(f"select * from {table} where {scope}", bound))
            if validate_in_place is not None:
                validate_in_place(self, f"(select * from {table} where {scope})", bound)
            self._con.execute("commit")
        except BaseException:
            self._con.execute("rollback")
            raise
        finally:
            if isinstance(rows, pd.DataFrame):
                self._con.unregister("_incoming")
        count = int(written[0]) if written else 0
        log.info("wrote %d rows to %s for %s", count, table, as_of)
        return count


class Warehouse:
    """A DuckDB warehouse file; open a :class:`Session` for each unit of work.

    ``Warehouse.memory_limit`` (DuckDB syntax, e.g. "3GB"; None: DuckDB's default of 80% of RAM) caps DuckDB's
    memory in every session this process opens; past it DuckDB spills to ``<warehouse>.tmp/``. A stage sets it
    from the ``warehouse.duckdb_memory_limit`` setting before it starts (``pipelines.run_log.recorded_stage``).
    """

    memory_limit: ClassVar[str | None] = None

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[Session]:
        """Open the file (creating it and its schema if needed), yield a session, checkpoint and close."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as error:
            raise RuntimeError(
                f"cannot open warehouse {self.path}: {error}. DuckDB allows one writing process per file; "
                "close other connections to it (analysts should use a copy or the published snapshot)."
            ) from error
        try:
            con.execute("set enable_progress_bar = false")
            if self.memory_limit:
                con.execute(f"set memory_limit = '{checked_memory_limit(self.memory_limit)}'")
            session = Session(con)
            if not read_only:
                session.run_model("warehouse/schema")
            yield session
            if not read_only:
                con.execute("checkpoint")
        finally:
            con.close()


# --- published snapshots for analysts (issue 6) -------------------------------------------------------------------


def binding_error(session: Session, sql: str) -> str | None:
    """Return why the select ``sql`` does not bind on this warehouse (missing table or column), else None."""
    try:
        session._con.execute(f"describe select * from ({sql})").fetchall()
    except (duckdb.CatalogException, duckdb.BinderException) as error:
        return str(error).strip().splitlines()[0]
    return None


def write_snapshot(source: Path | str, target: Path | str, finish: Callable[[Session], None] | None = None) -> None:
    """Write a consistent copy of the warehouse ``source`` to ``target``, never touching an existing ``target``.

    DuckDB lets one process write a file and a reader blocks a writer, so readers are never opened on a file that
    is being written: the source is opened (which locks out every other process), checkpointed (its WAL folded
    into the file) and copied byte for byte while the lock is held; the copy (``finish`` may add views to it) is
    checkpointed and closed, then ``os.replace``-d over ``target``. Connections open on the old ``target`` keep
    the old snapshot. A file copy runs at disk speed; ``COPY FROM DATABASE`` re-encoded every table (about 7x
    slower at 200k customers).
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"warehouse {source} not found: nothing to publish")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    leftovers = [temporary, temporary.with_name(temporary.name + ".wal")]
    for path in leftovers:
        path.unlink(missing_ok=True)
    try:
        locked = duckdb.connect(str(source))
        try:
            locked.execute("checkpoint")
            shutil.copyfile(source, temporary)
            wal = source.with_name(source.name + ".wal")
            if wal.is_file() and wal.stat().st_size:  # nothing should be left after the checkpoint; kept if so
                shutil.copyfile(wal, leftovers[1])
        finally:
            locked.close()
        con = duckdb.connect(str(temporary))
        try:
            con.execute("set enable_progress_bar = false")
            if finish is not None:
                finish(Session(con))
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(temporary, target)
    finally:
        for path in leftovers:
            path.unlink(missing_ok=True)
    log.info("wrote snapshot %s of %s", target, source)


def read_only_query(path: Path | str, sql: str) -> pd.DataFrame:
    """Return the result of one query on a warehouse file opened read-only; a bad query raises ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"warehouse {path} not found")
    with Warehouse(path).session(read_only=True) as session:
        try:
            return session.frame(sql)
        except duckdb.Error as error:
            raise ValueError(f"query failed on {path}: {str(error).strip()}") from error


def write_new_lines(previous: Path | str, current: Path | str, target: Path | str, header: bool) -> int:
    """Write the lines of ``current`` that ``previous`` does not have (as a multiset), in ``current``'s order.

    The file-level difference of two landing extracts (``pipelines.delta``): a line that occurs twice in
    ``current`` and once in ``previous`` is written once. With ``header`` the first line of ``current`` is
    always written and the first line of ``previous`` never counts. Lines are compared byte for byte, in DuckDB,
    so a 1 GB extract never sits in Python. Returns the number of lines written (header excluded).
    """
    previous, current, target = Path(previous), Path(current), Path(target)
    lines = ("read_csv({path}, columns = {{'line': 'varchar'}}, header = false, delim = '\\x1f', quote = '', "
             "escape = '', comment = '', skip = 0, strict_mode = false, auto_detect = false, "
             "null_padding = false, new_line = '\\n')")
    numbered = "select line, row_number() over () as line_no from {source}"
    occurrences = ("select line, line_no, row_number() over (partition by line order by line_no) as occurrence "
                   "from ({numbered}) where line_no > {skip}")
    first = 1 if header else 0
    cur = occurrences.format(numbered=numbered.format(source=lines.format(path="$current")), skip=first)
    prev = occurrences.format(numbered=numbered.format(source=lines.format(path="$previous")), skip=first)
    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        con.execute("set preserve_insertion_order = true")
        con.execute(f"create temp table current_lines as {cur}", {"current": str(current)})
        con.execute(f"create temp table previous_lines as {prev}", {"previous": str(previous)})
        new = con.execute(
            "select line from current_lines anti join previous_lines using (line, occurrence) order by line_no"
        ).fetchall()
        head = con.execute(
            f"select line from {lines.format(path='$current')} limit 1", {"current": str(current)}
        ).fetchall() if header else []
    finally:
        con.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as out:
        for (line,) in head + new:
            out.write((line or "") + "\n")
    return len(new)
