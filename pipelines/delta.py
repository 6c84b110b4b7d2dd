"""Delta landing folders: only what is new since the previous night's extract.

A lender that can only produce full extracts can still run incremental nights: :func:`write_delta_landing`
turns two consecutive snapshot folders into the delta folder of the later night (the lines of each landing file
the earlier extract does not have, plus a ``_DELTA`` marker), which ``postloan run`` loads as a delta night
(``landing.kind``). ``postloan delta`` is the command line.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.airflow_tasks import READY_MARKER
from pipelines.warehouse import write_new_lines

log = logging.getLogger(__name__)

DELTA_MARKER = "_DELTA"
# landing file -> whether its first line is a header
LANDING_FILES = {"repayments.csv": True, "calls.jsonl": False, "customers.csv": True, "contact_attempts.csv": True}


@dataclass(frozen=True)
class DeltaFile:
    """One landing file of a delta folder: lines in the current extract and lines written (headers excluded)."""

    name: str
    current_lines: int
    new_lines: int


def _data_lines(path: Path, header: bool) -> int:
    with path.open("rb") as handle:
        return max(0, sum(1 for _ in handle) - (1 if header else 0))


def write_delta_landing(previous: Path, current: Path, out: Path) -> list[DeltaFile]:
    """Write ``out``: each landing file of ``current`` reduced to the lines ``previous`` does not have.

    A file missing from ``previous`` is copied whole; a file missing from ``current`` is skipped. Lines compare
    byte for byte, so a repayment row that changed in place (a corrected amount) shows up as a new row: the delta
    contract assumes repayment rows are events that are only ever appended. ``out`` gets a ``_DELTA`` marker,
    and ``_READY`` when ``current`` has one. Files are UTF-8 (re-encode GB18030 extracts first).
    """
    previous, current, out = Path(previous), Path(current), Path(out)
    if not current.is_dir():
        raise FileNotFoundError(f"current landing folder {current} not found")
    if not previous.is_dir():
        raise FileNotFoundError(f"previous landing folder {previous} not found")
    if out.resolve() in (previous.resolve(), current.resolve()):
        raise ValueError("the delta folder must differ from both landing folders")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, header in LANDING_FILES.items():
        source = current / name
        if not source.is_file():
            continue
        target = out / name
        if (previous / name).is_file():
            new = write_new_lines(previous / name, source, target, header)
        else:
            shutil.copyfile(source, target)
            new = _data_lines(source, header)
        written.append(DeltaFile(name, _data_lines(source, header), new))
        log.info("%s: %d of %d lines are new", name, new, written[-1].current_lines)
    (out / DELTA_MARKER).write_text(f"delta of {current} over {previous}\n", encoding="utf-8")
    if (current / READY_MARKER).is_file():
        (out / READY_MARKER).touch()
    return written
