"""The one module that talks to DuckDB.

Every other module passes frames, arrays, table names and dates; this module owns the connection, the SQL files
under ``sql/`` and partition replacement. A partition is the set of rows of a table with one ``as_of`` date:
writing it always deletes that date first, inside one transaction, so a rerun of the same date changes nothing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

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


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def _used_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keep only the ``$name`` parameters the statement uses (DuckDB rejects unused ones)."""
    if not params:
        return {}
    return {key: value for key, value in params.items() if re.search(rf"\${key}\b", sql)}


class Session:
    """One open connection to the warehouse; created by :meth:`Warehouse.session`."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._con = connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one or more statements (``$name`` parameters allowed in a single statement)."""
        used = _used_params(sql, params)
        if used:
            self._con.execute(sql, used)
        else:
            self._con.execute(sql)

    def run_model(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Run the statements in ``sql/<name>.sql``."""
        self.execute(sql_text(name), params)

    def frame(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the result of a query as a pandas frame."""
        used = _used_params(sql, params)
        return self._con.execute(sql, used).df() if used else self._con.sql(sql).df()

    def model_frame(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Return the result of the query in ``sql/<name>.sql`` as a frame."""
        return self.frame(sql_text(name), params)

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Return the first column of the first row of a query."""
        used = _used_params(sql, params)
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
                              _used_params(source, bound))
            columns = self.table_columns(table)
        select_list = ", ".join(c if c in source_columns else f"null as {c}" for c in columns)
        insert = f"insert into {table} ({', '.join(columns)}) select {select_list} from {source}"
        self._con.execute("begin transaction")
        try:
            self._con.execute(f"delete from {table} where {scope}", _used_params(f"{scope}", bound))
            self._con.execute(insert, _used_params(insert, bound))
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
    """A DuckDB warehouse file; open a :class:`Session` for each unit of work."""

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
    is being written: the copy goes to a new file (``finish`` may add views to it), is checkpointed and closed,
    then ``os.replace``-d over ``target``. Connections open on the old ``target`` keep the old snapshot.
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
        con = duckdb.connect(str(temporary))
        try:
            con.execute("set enable_progress_bar = false")
            database = con.execute("select current_database()").fetchall()[0][0]
            quoted_source = str(source).replace("'", "''")
            con.execute(f"attach '{quoted_source}' as snapshot_source (read_only)")
            con.execute(f'copy from database snapshot_source to "{database}"')
            con.execute("detach snapshot_source")
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
