"""Exports for the collections team: care segments and one list per outreach channel, CSV + Parquet + manifest.

A night's folder ``<exports>/<as-of>/`` is built complete in a temporary folder next to it, ``_SUCCESS`` last,
then swapped in: a rerun replaces the whole folder. Columns and codes are documented in ``docs/exports.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    rows_by_export: dict[str, int] = field(default_factory=dict)


def export_frame(segments: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Return the export columns, sorted by customer; refuses rows whose evidence still holds PII."""
    frame = segments.assign(as_of=as_of.isoformat())[EXPORT_COLUMNS].sort_values("customer_id").reset_index(
        drop=True)
    leaking = _holds_pii(frame["evidence"])
    if leaking.any():
        raise ValueError(f"{int(leaking.sum())} export rows carry PII in their evidence; refusing to export")
    return frame


def _holds_pii(evidence: pd.Series) -> pd.Series:
    """Return per row whether its evidence still holds PII (each distinct text checked once)."""
    texts = evidence.fillna("")
    return texts.isin([text for text in texts.unique() if contains_pii(text)])


def _mapped(values: pd.Series, function: Any) -> pd.Series:
    """Return ``values.map(function)`` with ``function`` called once per distinct value."""
    distinct = values.drop_duplicates()
    return values.map(dict(zip(distinct.tolist(), distinct.map(function).tolist(), strict=True)))


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


# --- outreach exports: one list per channel, the whole folder swapped in at once --------------------------------

CHANNEL_EXPORTS = ("call_list", "sms_list", "app_push", "review_queue")
_COMMON = ["as_of", "customer_id", "segment", "segment_zh", "sub_reason", "rule_id", "experiment_group",
           "channel", "treatments", "treatments_zh", "days_past_due", "amount_overdue", "route", "is_do_not_call",
           "is_disputed", "is_complaint", "portfolio", "rule_set", "timezone", "contact_window",
           "next_contact_at_utc", "next_contact_at_local", "third_party_rule"]
EXPORT_LAYOUTS: dict[str, list[str]] = {
    "call_list": [*_COMMON, "call_attempts_left", "call_block_reason"],
    "sms_list": [*_COMMON, "reminder_dates"],
    "app_push": list(_COMMON),
    "review_queue": [*_COMMON, "review_reason", "confidence", "reasons", "evidence", "dropped_treatments"],
    "cap_excluded": ["as_of", "customer_id", "segment", "rule_id", "cost_rank", "expected_benefit",
                     "dropped_treatments"],
}
_CHANNEL_OF_EXPORT = {"call_list": "call", "sms_list": "sms", "app_push": "app_push", "review_queue": "review"}
_CHANNEL_COLUMN = {"call_list": "call_treatments", "sms_list": "sms_treatments", "app_push": "app_push_treatments",
                   "review_queue": "review_treatments"}


def _utc_text(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True)
    return stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").fillna("")


def _labels(codes: str, labels: Mapping[str, str]) -> str:
    return ";".join(labels.get(code, code) for code in str(codes or "").split(";") if code)


def channel_exports(actions: pd.DataFrame, segments: pd.DataFrame, as_of: date,
                    treatment_labels_zh: Mapping[str, str], segment_labels_zh: Mapping[str, str]
                    ) -> dict[str, pd.DataFrame]:
    """Return the outreach lists (call_list, sms_list, app_push, review_queue) and the cap exclusions.

    A customer is on a channel's list when at least one of their routed treatments uses that channel; the
    treatments column holds that channel's treatments only. Calls carry the next allowed call time, written
    channels the next allowed message time. Refuses evidence that still holds PII.
    """
    extra = segments[["customer_id", "confidence", "reasons", "evidence", "days_past_due", "amount_overdue"]]
    base = actions.merge(extra, on="customer_id", how="left").assign(
        as_of=as_of.isoformat(), segment_zh=lambda f: f["segment"].map(lambda s: segment_labels_zh.get(s, s)))
    # only the columns some export is built from: the per-channel row selections copy less
    used = {*(c for layout in EXPORT_LAYOUTS.values() for c in layout), *_CHANNEL_COLUMN.values(), "route",
            "next_call_at_utc", "next_call_at_local", "next_message_at_utc", "next_message_at_local"}
    slim = base[[c for c in base.columns if c in used]]
    frames: dict[str, pd.DataFrame] = {}
    for name, column in _CHANNEL_COLUMN.items():
        rows = slim[slim[column].fillna("") != ""].copy()
        rows["treatments"] = rows[column]
        rows["channel"] = _CHANNEL_OF_EXPORT[name]
        rows["treatments_zh"] = _mapped(rows[column], lambda codes: _labels(codes, treatment_labels_zh))
        timing = "call" if name in ("call_list", "review_queue") else "message"
        rows["next_contact_at_utc"] = _utc_text(rows[f"next_{timing}_at_utc"])
        rows["next_contact_at_local"] = rows[f"next_{timing}_at_local"]
        rows["review_reason"] = rows["route"].where(rows["route"].isin(["dispute_hold", "compliance_hold"]),
                                                    "policy")
        frames[name] = rows.reindex(columns=EXPORT_LAYOUTS[name]).sort_values("customer_id").reset_index(drop=True)
    excluded = base[base["cap_status"] == "excluded_by_cap"]
    frames["cap_excluded"] = excluded.reindex(columns=EXPORT_LAYOUTS["cap_excluded"]).sort_values(
        ["cost_rank", "customer_id"]).reset_index(drop=True)
    leaking = _holds_pii(frames["review_queue"]["evidence"])
    if leaking.any():
        raise ValueError(f"{int(leaking.sum())} review_queue rows carry PII in their evidence; refusing to export")
    return frames


def _write_table(frame: pd.DataFrame, folder: Path, name: str, formats: list[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    if "csv" in formats:
        files[f"{name}.csv"] = _write_atomically(
            folder / f"{name}.csv", lambda p: frame.to_csv(p, index=False, encoding="utf-8", lineterminator="\n"))
    if "parquet" in formats:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        files[f"{name}.parquet"] = _write_atomically(folder / f"{name}.parquet", lambda p: pq.write_table(table, p))
    return files


def _swap_in(staging: Path, folder: Path) -> None:
    """Put the complete ``staging`` folder in place of ``folder`` (the old one is removed after the swap)."""
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, retired)
    try:
        os.replace(staging, folder)
    except BaseException:
        if retired.exists() and not folder.exists():
            os.replace(retired, folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def write_export_folder(frames: Mapping[str, pd.DataFrame], exports_dir: Path, as_of: date, formats: list[str],
                        meta: Mapping[str, Any]) -> ExportReport:
    """Write the night's export folder ``<exports>/<as_of>/`` whole; return what was written.

    Every frame becomes ``<name>.csv|.parquet``, then ``manifest.json`` and ``_SUCCESS`` (last) are written, all
    in a temporary folder that is then swapped in. ``manifest.json`` lists per export its rows, columns and each
    file's sha256, plus ``meta`` (policy, model and contact-rules versions). ``care_segments`` also gets its own
    ``care_segments.manifest.json``.
    """
    root = Path(exports_dir)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / as_of.isoformat()
    staging = root / f".{as_of.isoformat()}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        all_files: dict[str, str] = {}
        exports: dict[str, Any] = {}
        for name, frame in frames.items():
            files = _write_table(frame, staging, name, formats)
            all_files.update(files)
            exports[name] = {"rows": len(frame), "columns": list(frame.columns),
                             "files": {file: {"sha256": digest} for file, digest in files.items()}}
        manifest = {"as_of": as_of.isoformat(), "exports": exports, **meta}
        if "care_segments" in exports:
            legacy = {"as_of": as_of.isoformat(), "name": "care_segments", **exports["care_segments"], **meta}
            _write_atomically(staging / "care_segments.manifest.json", lambda p: p.write_text(
                json.dumps(legacy, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"))
        _write_atomically(staging / "manifest.json", lambda p: p.write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"))
        _write_atomically(staging / "_SUCCESS", lambda p: p.write_text("", encoding="utf-8"))
        _swap_in(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rows = {name: len(frame) for name, frame in frames.items()}
    log.info("exported %s to %s", ", ".join(f"{name} {count}" for name, count in rows.items()), folder)
    return ExportReport(folder=folder, rows=sum(rows.values()), files=all_files, rows_by_export=rows)
