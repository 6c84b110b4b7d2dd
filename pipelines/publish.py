"""The analysts' side of the warehouse: the ``analyst`` views and the published read-only snapshots.

DuckDB lets one process write a file, and an analyst's open connection would block the nightly run. So analysts
never open the nightly warehouse: at the end of a successful run the whole warehouse is copied to
``<published>/warehouse-<as-of>.duckdb`` (a new file, checkpointed and closed, then renamed into place), and the
stable name ``<published>/current.duckdb`` is switched to it with ``os.replace``. A connection open on the old
``current.duckdb`` keeps reading the old snapshot; a new connection sees the new one. The last ``keep`` snapshots
are kept.

The views in ``sql/analyst/`` are created in the schema ``analyst`` of the warehouse and of every snapshot
(``select * from analyst.segment_mix_by_night``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.warehouse import SQL_DIR, Session, Warehouse, binding_error, write_snapshot

log = logging.getLogger(__name__)

ANALYST_SCHEMA = "analyst"
ANALYST_DIR = SQL_DIR / "analyst"
TIMELINE = "customer_timeline"
CURRENT_NAME = "current.duckdb"
SNAPSHOT_PREFIX = "warehouse-"


@dataclass(frozen=True)
class ViewReport:
    """Which analyst views were created, and why the others were left out."""

    created: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # view or timeline part -> binding error


@dataclass(frozen=True)
class PublishReport:
    """What one publish did."""

    snapshot: Path
    current: Path
    views: list[str]
    skipped_views: dict[str, str]
    removed: list[str]  # snapshot file names pruned


def analyst_view_names() -> list[str]:
    """Return the analyst views, one per ``sql/analyst/<name>.sql`` plus the composed customer timeline."""
    return sorted([path.stem for path in ANALYST_DIR.glob("*.sql")] + [TIMELINE])


def analyst_view_sql(name: str) -> str:
    """Return the select statement of one analyst view (the timeline: every part, unioned by name)."""
    if name == TIMELINE:
        return timeline_sql(_timeline_parts())
    path = ANALYST_DIR / f"{name}.sql"
    if not path.is_file():
        raise ValueError(f"no analyst view {name!r}; known: {', '.join(analyst_view_names())}")
    return path.read_text(encoding="utf-8")


def timeline_sql(parts: Mapping[str, str]) -> str:
    """Return the ``union all by name`` of the timeline parts' selects (in name order)."""
    if not parts:
        raise ValueError("the customer timeline needs at least one part")
    return "\nunion all by name\n".join(f"select * from (\n{parts[name]}\n)" for name in sorted(parts))


def _timeline_parts() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted((ANALYST_DIR / TIMELINE).glob("*.sql"))}


def create_analyst_views(session: Session) -> ViewReport:
    """Create (or replace) every analyst view that binds on this warehouse; drop the ones that do not.

    A view or timeline part that reads a table or column this warehouse does not have (e.g. one a later feature
    adds) is left out and named in the log, so the views work on every warehouse, old or new.
    """
    session.execute(f"create schema if not exists {ANALYST_SCHEMA}")
    created: list[str] = []
    skipped: dict[str, str] = {}
    parts: dict[str, str] = {}
    for part, part_sql in _timeline_parts().items():
        part_error = binding_error(session, part_sql)
        if part_error:
            skipped[f"{TIMELINE}/{part}"] = part_error
        else:
            parts[part] = part_sql
    for name in analyst_view_names():
        sql: str | None = analyst_view_sql(name) if name != TIMELINE else timeline_sql(parts) if parts else None
        error = binding_error(session, sql) if sql is not None else "no timeline part binds"
        if error or sql is None:
            skipped[name] = error or "no timeline part binds"
            session.execute(f"drop view if exists {ANALYST_SCHEMA}.{name}")
            continue
        session.execute(f"create or replace view {ANALYST_SCHEMA}.{name} as\n{sql}")
        created.append(name)
    for name, error in skipped.items():
        # a timeline part reading an optional table is expected to be missing on older warehouses
        log.log(logging.INFO if "/" in name else logging.WARNING, "analyst view %s left out: %s", name, error)
    return ViewReport(created=created, skipped=skipped)


def published_dir(warehouse: Path, configured: str | Path | None) -> Path:
    """Return where snapshots are published: the configured folder, else ``published/`` next to the warehouse."""
    return Path(configured) if configured else Path(warehouse).resolve().parent / "published"


def snapshot_name(as_of: date) -> str:
    """Return the file name of the snapshot published for one as-of date."""
    return f"{SNAPSHOT_PREFIX}{as_of.isoformat()}.duckdb"


def stale_snapshots(newest_first: Sequence[str], keep: int) -> list[str]:
    """Return the snapshot names to remove so that the ``keep`` newest stay (at least one always stays)."""
    return list(newest_first[max(keep, 1):])


def _snapshots_newest_first(folder: Path) -> list[str]:
    files = [p for p in folder.glob(f"{SNAPSHOT_PREFIX}*.duckdb") if p.is_file()]
    return [p.name for p in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)]


def _switch(target: Path, source: Path) -> None:
    """Make ``target`` a second name of ``source`` (a hard link, else a copy), switched with one ``os.replace``."""
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def publish_warehouse(warehouse: Path, as_of: date, settings: Mapping[str, Any]) -> PublishReport:
    """Create the analyst views, publish the snapshot of ``as_of``, switch ``current.duckdb``, prune old ones."""
    options = settings.get("publish") or {}
    folder = published_dir(warehouse, options.get("dir"))
    with Warehouse(warehouse).session() as session:
        views = create_analyst_views(session)
    snapshot = folder / snapshot_name(as_of)

    def finish(snapshot_session: Session) -> None:
        create_analyst_views(snapshot_session)

    write_snapshot(warehouse, snapshot, finish)
    current = folder / CURRENT_NAME
    _switch(current, snapshot)
    removed = stale_snapshots(_snapshots_newest_first(folder), int(options.get("keep", 7)))
    for name in removed:
        (folder / name).unlink(missing_ok=True)
    log.info("published %s as %s (%d views, %d old snapshots removed)", snapshot, current, len(views.created),
             len(removed))
    return PublishReport(snapshot=snapshot, current=current, views=views.created, skipped_views=views.skipped,
                         removed=removed)


def published_current(settings: Mapping[str, Any], warehouse: Path | None = None) -> Path:
    """Return the published ``current.duckdb`` for a warehouse (default ``$POSTLOAN_WAREHOUSE``)."""
    configured = (settings.get("publish") or {}).get("dir")
    if configured:
        return Path(configured) / CURRENT_NAME
    source = warehouse or os.environ.get("POSTLOAN_WAREHOUSE")
    if not source:
        raise ValueError("no warehouse given: pass --warehouse FILE, or set POSTLOAN_WAREHOUSE (its "
                         "published/current.duckdb is read) or publish.dir in the settings")
    return published_dir(Path(source), None) / CURRENT_NAME
