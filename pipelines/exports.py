"""Segment exports for the collections team: CSV + Parquet + a manifest, each written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from insights.text import contains_pii

log = logging.getLogger(__name__)

EXPORT_COLUMNS = [
    "as_of", "customer_id", "segment", "confidence", "action", "reasons", "evidence", "sub_reason",
    "days_past_due", "amount_overdue",
]


@dataclass(frozen=True)
class ExportReport:
    """What one export wrote."""

    folder: Path
    rows: int
    files: dict[str, str]  # file name -> sha256


def export_frame(segments: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Return the export columns, sorted by customer; refuses rows whose evidence still holds PII."""
    frame = segments.assign(as_of=as_of.isoformat())[EXPORT_COLUMNS].sort_values("customer_id").reset_index(
        drop=True)
    leaking = frame["evidence"].fillna("").map(contains_pii)
    if leaking.any():
        raise ValueError(f"{int(leaking.sum())} export rows carry PII in their evidence; refusing to export")
    return frame


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(target: Path, write: Any) -> str:
    """Write through a temporary name in the same folder, fsync, rename; return the file's sha256."""
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        checksum = _sha256(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return checksum


def write_exports(
    frame: pd.DataFrame, exports_dir: Path, as_of: date, name: str, formats: list[str], meta: Mapping[str, Any]
) -> ExportReport:
    """Write ``<exports>/<as_of>/<name>.csv|.parquet`` and ``<name>.manifest.json`` (last), replacing old ones."""
    folder = Path(exports_dir) / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if "csv" in formats:
        files[f"{name}.csv"] = _write_atomically(
            folder / f"{name}.csv", lambda p: frame.to_csv(p, index=False, encoding="utf-8", lineterminator="\n"))
    if "parquet" in formats:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        files[f"{name}.parquet"] = _write_atomically(folder / f"{name}.parquet", lambda p: pq.write_table(table, p))
    manifest = {
        "as_of": as_of.isoformat(),
        "name": name,
        "rows": len(frame),
        "columns": list(frame.columns),
        "files": {file: {"sha256": digest} for file, digest in files.items()},
        **meta,
    }
    _write_atomically(folder / f"{name}.manifest.json",
                      lambda p: p.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8"))
    log.info("exported %d rows to %s (%s)", len(frame), folder, ", ".join(files))
    return ExportReport(folder=folder, rows=len(frame), files=files)
