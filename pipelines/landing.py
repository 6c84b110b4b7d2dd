"""The landing folder: find the files, check their encoding and columns, and check call and customer rows.

The input contract lives in ``data_contracts/landing.yaml`` (file names, required columns, row rules).
Rows that break a rule are never dropped: they come back as quarantine rows (rule, detail, PII-redacted raw
record). Repayments are checked in SQL (``sql/staging/repayments_checked.sql``, duplicates in
``sql/staging/repayment_duplicates.sql``); calls and customers are small and are checked here, in Python.
Nothing in this module touches the warehouse.

Glossary: PII = personally identifying information; BOM = byte-order mark; IANA = the tz database.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import math
import shutil
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from insights.text import redact_pii

log = logging.getLogger(__name__)

LANDING_CONTRACT = Path(__file__).resolve().parent.parent / "data_contracts" / "landing.yaml"
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "gb18030")
ENCODING_OPTION = "--encoding option / landing.encoding setting"

REPAYMENT_RULES = (
    "missing_key", "bad_date", "bad_amount", "negative_amount", "payment_incomplete", "paid_too_early",
    "duplicate_row",
)
CALL_RULES = (
    "invalid_json", "missing_key", "bad_timestamp", "bad_direction", "bad_duration", "unknown_speaker",
    "empty_transcript", "duplicate_call_id",
)
CUSTOMER_RULES = ("missing_key", "bad_timezone", "duplicate_row")

QUARANTINE_COLUMNS = ["source_file", "source_row", "rule", "detail", "raw_record"]
CALL_COLUMNS = [
    "source_row", "call_id", "customer_id", "started_at", "direction", "duration_s", "turn_count",
    "customer_turn_count",
]
TURN_COLUMNS = ["call_id", "turn_no", "speaker", "text"]
CUSTOMER_COLUMNS = ["source_row", "customer_id", "timezone", "language"]

_DIRECTIONS = ("outbound", "inbound")
_SPEAKERS = ("agent", "customer")
_CHUNK_BYTES = 1 << 20


class LandingError(ValueError):
    """The landing folder breaks the input contract as a whole (a file, an encoding, a column)."""


@dataclass(frozen=True)
class LandingFiles:
    """The files found in a landing folder; ``customers`` is optional."""

    repayments: Path
    calls: Path
    customers: Path | None


@dataclass(frozen=True)
class CheckedRows:
    """The outcome of checking one landing file: good rows, quarantined rows and how many rows were read."""

    source_file: str
    rows_read: int
    good: pd.DataFrame
    quarantine: pd.DataFrame
    extra: pd.DataFrame | None = None  # calls: the turns of the good calls


# --- the input contract ----------------------------------------------------------------------------


@cache
def landing_contract() -> dict[str, Any]:
    """Return ``data_contracts/landing.yaml`` as a mapping (read once per process)."""
    loaded = yaml.safe_load(LANDING_CONTRACT.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict) or "files" not in loaded:
        raise ValueError(f"{LANDING_CONTRACT} must hold a mapping with a 'files' section")
    return loaded


def required_columns(kind: str) -> tuple[str, ...]:
    """Return the columns a landing file of ``kind`` (repayments, calls, customers) must have, in order."""
    return tuple(landing_contract()["files"][kind]["columns"])


def contract_rules(kind: str) -> tuple[str, ...]:
    """Return the rule codes of ``kind`` as documented in the landing contract, in checking order."""
    return tuple(rule["code"] for rule in landing_contract()["files"][kind]["rules"])


# --- files -----------------------------------------------------------------------------------------


def landing_files(landing_dir: Path) -> LandingFiles:
    """Return the files of ``landing_dir``; raise LandingError when a required one is missing or ambiguous."""
    if not landing_dir.is_dir():
        raise LandingError(f"landing folder not found: {landing_dir}")
    names = landing_contract()["files"]
    candidates = [landing_dir / name for name in names["repayments"]["names"]]
    repayments = [path for path in candidates if path.is_file()]
    if not repayments:
        raise LandingError(
            f"required file missing in {landing_dir}: {' or '.join(names['repayments']['names'])}"
        )
    if len(repayments) > 1:
        raise LandingError(
            f"both {repayments[0].name} and {repayments[1].name} are in {landing_dir}: keep exactly one"
        )
    calls = landing_dir / names["calls"]["names"][0]
    if not calls.is_file():
        raise LandingError(f"required file missing in {landing_dir}: {calls.name}")
    customers = landing_dir / names["customers"]["names"][0]
    return LandingFiles(repayments[0], calls, customers if customers.is_file() else None)


def column_mapping(header: Sequence[str], kind: str, file_name: str) -> dict[str, str]:
    """Map each required column of ``kind`` to its name in ``header`` (matched trimmed, case-insensitively).

    Raises LandingError naming the file and every missing column; extra columns are logged and ignored.
    """
    by_key = {name.strip().lower(): name for name in header}
    required = required_columns(kind)
    missing = [column for column in required if column not in by_key]
    if missing:
        raise LandingError(
            f"{file_name} is missing required column(s): {', '.join(missing)} (found: {', '.join(header)})"
        )
    extra = [name for key, name in by_key.items() if key not in required]
    if extra:
        log.info("%s: ignoring extra column(s) %s", file_name, ", ".join(extra))
    return {column: by_key[column] for column in required}


# --- encodings -------------------------------------------------------------------------------------


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """Return the offset of the first byte of ``path`` not decodable in ``encoding`` (streamed), or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                carried = len(error.object) - len(chunk)  # bytes held back from the previous chunk
                return offset - carried + error.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            return offset - len(error.object) + error.start
    return None


def _starts_with_bom(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8


def csv_encoding(path: Path, setting: str = "auto") -> str:
    """Return the encoding to read the CSV ``path`` with: ``setting``, or for ``auto`` the detected one.

    The whole file is stream-decoded once; a byte that does not decode raises LandingError with its offset.
    """
    if setting not in ENCODINGS:
        raise LandingError(
            f"unknown encoding {setting!r} for {path.name}: the {ENCODING_OPTION} must be one of "
            f"{', '.join(ENCODINGS)}"
        )
    has_bom = _starts_with_bom(path)
    if setting == "auto" or (setting == "utf-8" and has_bom):
        candidates = ["utf-8-sig"] if has_bom else ["utf-8", "gb18030"]
    else:
        candidates = [setting]
    failures = []
    for encoding in candidates:
        bad_byte = _first_bad_byte(path, encoding)
        if bad_byte is None:
            return encoding
        failures.append(f"as {encoding} at byte offset {bad_byte}")
    raise LandingError(
        f"{path.name} cannot be decoded {' nor '.join(failures)}; set the {ENCODING_OPTION} "
        f"(one of {', '.join(ENCODINGS)}) to the file's encoding or fix the file"
    )


def utf8_copy(path: Path, encoding: str, directory: Path) -> Path:
    """Write ``path`` re-encoded from ``encoding`` to UTF-8 in ``directory`` (streamed); return the copy."""
    target = directory / f"{path.stem}.utf8{path.suffix}"
    with path.open("r", encoding=encoding, newline="") as source, target.open(
        "w", encoding="utf-8", newline=""
    ) as sink:
        shutil.copyfileobj(source, sink, _CHUNK_BYTES)
    return target


def csv_header(path: Path, encoding: str) -> list[str]:
    """Return the header row of the CSV ``path``; raise LandingError when the file is empty."""
    with path.open("r", encoding=encoding, newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise LandingError(f"{path.name} is empty: a header row is required")
    return header


# --- shared row helpers ----------------------------------------------------------------------------


def redacted_record(record: Any) -> str:
    """Return a raw record as JSON text with PII redacted in every string value (text is redacted as is)."""
    if isinstance(record, str):
        return redact_pii(record)
    return json.dumps(_redacted_value(record), ensure_ascii=False)


@lru_cache(maxsize=1 << 16)
def _redacted_field(value: str) -> str:
    # quarantined records repeat their dates, amounts and ids: redact each distinct field once
    return redact_pii(value)


def _redacted_value(value: Any) -> Any:
    if isinstance(value, str):
        return _redacted_field(value)
    if isinstance(value, Mapping):
        return {key: _redacted_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted_value(item) for item in value]
    return value


def _quarantine_row(
    source_file: str, source_row: int, rule: str, detail: str, raw_record: str
) -> dict[str, Any]:
    return {
        "source_file": source_file,
        "source_row": source_row,
        "rule": rule,
        "detail": redact_pii(detail),
        "raw_record": raw_record,
    }


def quarantine_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Return quarantine rows as a typed frame (columns of the quarantine table, without as_of)."""
    frame = pd.DataFrame(list(rows), columns=QUARANTINE_COLUMNS)
    return frame.astype({"source_file": "string", "source_row": "int64", "rule": "string", "detail": "string",
                         "raw_record": "string"})


def _text(value: Any) -> str | None:
    """Return a key value as trimmed text; None when missing, empty or not a scalar."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


# --- calls -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    call: dict[str, Any]
    turns: list[dict[str, Any]]


@dataclass(frozen=True)
class _Rejected:
    rule: str
    detail: str


def _started_at(value: Any) -> datetime | _Rejected:
    """Return the call start in UTC, or why it is not a usable timestamp."""
    if not isinstance(value, str) or not value.strip():
        return _Rejected("bad_timestamp", f"started_at={value!r} is missing")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return _Rejected("bad_timestamp", f"started_at={value!r} is not ISO-8601")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return _Rejected("bad_timestamp", f"started_at={value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _duration(value: Any) -> float | None | _Rejected:
    """Return the call duration in seconds (None when absent), or why it is unusable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        return _Rejected("bad_duration", f"duration_s={value!r} is not a finite number >= 0")
    return seconds


def _turn_text(turn: Mapping[str, Any]) -> str:
    text = turn.get("text")
    return "" if text is None else str(text)


def _turns_rejection(turns: Any) -> _Rejected | None:
    """Return the first turn-level rule the ``turns`` value breaks, or None."""
    if turns is None or turns == []:
        return _Rejected("empty_transcript", "no turns")
    if not isinstance(turns, list):
        return _Rejected("empty_transcript", f"turns is a JSON {type(turns).__name__}, not a list")
    for turn_no, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            return _Rejected("unknown_speaker", f"turn {turn_no} is not an object")
        if turn.get("speaker") not in _SPEAKERS:
            return _Rejected("unknown_speaker", f"turn {turn_no} speaker={turn.get('speaker')!r}")
    if not any(turn["speaker"] == "customer" and _turn_text(turn).strip() for turn in turns):
        return _Rejected("empty_transcript", "no customer turn with text")
    return None


def _checked_call(source_row: int, record: Any) -> _Call | _Rejected:
    """Return a parsed JSON line as a call with redacted turns, or the first rule it breaks."""
    if not isinstance(record, dict):
        return _Rejected("invalid_json", f"a JSON {type(record).__name__}, not an object")
    call_id, customer_id = _text(record.get("call_id")), _text(record.get("customer_id"))
    if call_id is None or customer_id is None:
        keys = {"call_id": call_id, "customer_id": customer_id}
        missing = [name for name, value in keys.items() if value is None]
        return _Rejected("missing_key", f"missing {', '.join(missing)}")
    started_at = _started_at(record.get("started_at"))
    if isinstance(started_at, _Rejected):
        return started_at
    direction = record.get("direction")
    if not isinstance(direction, str) or direction.strip().lower() not in _DIRECTIONS:
        return _Rejected("bad_direction", f"direction={direction!r}")
    duration = _duration(record.get("duration_s"))
    if isinstance(duration, _Rejected):
        return duration
    rejected = _turns_rejection(record.get("turns"))
    if rejected is not None:
        return rejected
    turns = [
        {"call_id": call_id, "turn_no": no, "speaker": turn["speaker"], "text": redact_pii(_turn_text(turn))}
        for no, turn in enumerate(record["turns"], start=1)
    ]
    call = {
        "source_row": source_row,
        "call_id": call_id,
        "customer_id": customer_id,
        "started_at": started_at,
        "direction": direction.strip().lower(),
        "duration_s": duration,
        "turn_count": len(turns),
        "customer_turn_count": sum(turn["speaker"] == "customer" for turn in turns),
    }
    return _Call(call, turns)


def _parsed_line(raw: bytes) -> tuple[Any, _Rejected | None]:
    """Return the JSON value of a line (or its text) and its invalid_json rejection if any."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        replaced = raw.decode("utf-8", errors="replace")
        return replaced, _Rejected("invalid_json", f"not UTF-8 at byte {error.start} of the line")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return text, _Rejected("invalid_json", f"{error.msg} at column {error.colno}")


def checked_calls(lines: Iterable[bytes], source_file: str = "calls.jsonl",
                  staged_ids: Mapping[str, str] | None = None) -> CheckedRows:
    """Return the calls (``good``), redacted turns (``extra``) and quarantined lines of JSONL byte lines.

    Lines are numbered from 1; blank lines are skipped and not counted in ``rows_read``. Turn texts are
    redacted before they leave this function; a call id already loaded from an earlier line, or on an earlier
    night of a delta night's state (``staged_ids``: call_id -> night, as text), is a duplicate.
    """
    staged_ids = staged_ids or {}
    calls: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    loaded_ids: dict[str, int] = {}
    rows_read = blank = 0
    for line_no, raw_line in enumerate(lines, start=1):
        raw = raw_line.removeprefix(codecs.BOM_UTF8) if line_no == 1 else raw_line
        if not raw.strip():
            blank += 1
            continue
        rows_read += 1
        record, rejected = _parsed_line(raw.strip())
        checked = rejected or _checked_call(line_no, record)
        if isinstance(checked, _Call) and checked.call["call_id"] in loaded_ids:
            call_id = checked.call["call_id"]
            detail = f"call_id {call_id!r} already loaded from line {loaded_ids[call_id]}"
            checked = _Rejected("duplicate_call_id", detail)
        elif isinstance(checked, _Call) and checked.call["call_id"] in staged_ids:
            call_id = checked.call["call_id"]
            checked = _Rejected("duplicate_call_id", f"call_id {call_id!r} already loaded on {staged_ids[call_id]}")
        if isinstance(checked, _Rejected):
            raw_record = redacted_record(record)
            row = _quarantine_row(source_file, line_no, checked.rule, checked.detail, raw_record)
            quarantined.append(row)
            continue
        loaded_ids[checked.call["call_id"]] = line_no
        calls.append(checked.call)
        turns.extend(checked.turns)
    if blank:
        log.info("%s: skipped %d blank line(s) (not records, not counted)", source_file, blank)
    return CheckedRows(
        source_file, rows_read, _calls_frame(calls), quarantine_frame(quarantined), _turns_frame(turns)
    )


def _calls_frame(calls: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(calls, columns=CALL_COLUMNS)
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame.astype({"source_row": "int64", "call_id": "string", "customer_id": "string",
                         "direction": "string", "duration_s": "Float64", "turn_count": "int32",
                         "customer_turn_count": "int32"})


def _turns_frame(turns: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(turns, columns=TURN_COLUMNS)
    return frame.astype({"call_id": "string", "turn_no": "int32", "speaker": "string", "text": "string"})


def read_calls(path: Path, staged_ids: Mapping[str, str] | None = None) -> CheckedRows:
    """Return the checked calls of the JSONL file ``path`` (read line by line, as UTF-8); see checked_calls."""
    with path.open("rb") as handle:
        return checked_calls(handle, path.name, staged_ids)


# --- customers -------------------------------------------------------------------------------------


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_time_zone(name: str) -> bool:
    """Return True when ``name`` is an IANA time zone known to zoneinfo."""
    return name in _time_zones()


def language_code(value: str | None) -> str | None:
    """Return the lowercase language subtag of a language tag ('zh-CN' -> 'zh'), or None when empty."""
    if value is None or not value.strip():
        return None
    return value.strip().replace("_", "-").split("-")[0].lower()


def checked_customers(
    rows: Iterable[Mapping[str, str | None]], source_file: str = "customers.csv"
) -> CheckedRows:
    """Return the good customers and quarantined rows of customer records (dicts keyed by contract column).

    Rows are numbered from 1 in the order given; a customer_id loaded from an earlier row is a duplicate.
    """
    good: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    loaded_ids: dict[str, int] = {}
    rows_read = 0
    for source_row, row in enumerate(rows, start=1):
        rows_read += 1
        customer_id = _text(row.get("customer_id"))
        zone = _text(row.get("timezone"))
        rule: tuple[str, str] | None = None
        if customer_id is None:
            rule = ("missing_key", "missing customer_id")
        elif zone is not None and not is_time_zone(zone):
            rule = ("bad_timezone", f"timezone={zone!r} is not an IANA time zone")
        elif customer_id in loaded_ids:
            first = loaded_ids[customer_id]
            rule = ("duplicate_row", f"customer_id {customer_id!r} already loaded from row {first}")
        if rule is not None:
            quarantined.append(_quarantine_row(source_file, source_row, *rule, redacted_record(dict(row))))
            continue
        assert customer_id is not None
        loaded_ids[customer_id] = source_row
        good.append({"source_row": source_row, "customer_id": customer_id, "timezone": zone,
                     "language": language_code(row.get("language"))})
    frame = pd.DataFrame(good, columns=CUSTOMER_COLUMNS).astype(
        {"source_row": "int64", "customer_id": "string", "timezone": "string", "language": "string"}
    )
    return CheckedRows(source_file, rows_read, frame, quarantine_frame(quarantined))


def _csv_records(path: Path, encoding: str) -> Iterator[dict[str, str | None]]:
    """Yield the data rows of a CSV file keyed by contract column; skip blank lines, reject ragged rows."""
    with path.open("r", encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise LandingError(f"{path.name} is empty: a header row is required")
        mapping = column_mapping(header, "customers", path.name)
        positions = {column: header.index(name) for column, name in mapping.items()}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise LandingError(
                    f"{path.name} line {reader.line_num}: {len(row)} fields, the header has {len(header)}"
                )
            yield {column: row[position] for column, position in positions.items()}


def read_customers(path: Path, encoding: str = "auto") -> CheckedRows:
    """Return the checked customers of the CSV file ``path`` (encoding per the landing setting)."""
    chosen = csv_encoding(path, encoding)
    return checked_customers(_csv_records(path, chosen), path.name)
