"""Outreach: contact history, do-not-call and dispute routing, and the next allowed contact per channel.

Pure functions turn tonight's care actions plus the contact history into one outreach row per customer; the
only I/O here is reading the optional landing file ``contact_attempts.csv`` (unanswered call attempts), checked
row by row like the other landing files: bad rows become quarantine rows, never dropped silently.

Nobody acts on tonight's export before the next local day starts, so the earliest contact considered is
00:00 on the day after the as-of date in the customer's own time zone; the contact rules move it from there.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pipelines.contact_rules import (
    ContactHistory,
    ContactRules,
    NextContact,
    Portfolio,
    RuleSet,
    is_do_not_call,
    look_back_days,
    next_allowed_contact,
    portfolio_for,
)
from pipelines.contracts import derived_contract_engine, partition_checks
from pipelines.landing import CheckedRows, LandingError, csv_encoding, quarantine_frame, redacted_record

log = logging.getLogger(__name__)

ATTEMPTS_FILE = "contact_attempts.csv"
ATTEMPT_COLUMNS = ("customer_id", "attempted_at", "outcome")
ATTEMPT_OUTCOMES = ("no_answer", "busy", "voicemail", "rejected", "failed")
ATTEMPT_RULES = ("missing_key", "bad_timestamp", "bad_outcome", "duplicate_row")
CHANNEL_LISTS = {"call": "call_list", "sms": "sms_list", "app_push": "app_push", "review": "review_queue"}
ROUTES = ("standard", "no_calls", "dispute_hold", "compliance_hold")
OUTREACH_COLUMNS = [
    "customer_id", "portfolio", "rule_set", "timezone", "is_do_not_call", "is_disputed", "is_complaint", "route",
    "call_treatments", "sms_treatments", "app_push_treatments", "review_treatments", "next_call_at_utc",
    "next_call_at_local", "call_block_reason", "call_attempts_left", "next_message_at_utc", "next_message_at_local",
    "contact_window", "third_party_rule", "reminder_dates",
]


# --- the optional contact_attempts.csv ------------------------------------------------------------------


def _attempt_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _checked_attempt_columns(customer_ids: Sequence[str | None], attempted_ats: Sequence[str | None],
                             outcomes: Sequence[str | None], record: Callable[[int], dict[str, Any]],
                             source_file: str) -> CheckedRows:
    """Return the checked rows of attempt records given column by column; ``record(i)`` is the i-th record.

    The first rule a row breaks wins (missing_key, bad_timestamp, bad_outcome, duplicate_row); a duplicate
    names the first good row with the same customer and instant.
    """
    ids = [(value or "").strip() for value in customer_ids]
    parsed: dict[str | None, datetime | None] = {}
    for text in attempted_ats:
        if text not in parsed:
            parsed[text] = _attempt_time(text)
    times = [parsed[text] for text in attempted_ats]
    kinds = [(value or "").strip().lower() for value in outcomes]
    rules = np.select(
        [np.array([not value for value in ids], dtype=bool), np.array([t is None for t in times], dtype=bool),
         ~np.isin(np.array(kinds, dtype=object), list(ATTEMPT_OUTCOMES))],
        ["missing_key", "bad_timestamp", "bad_outcome"], "").astype(object)
    seen: dict[tuple[str, datetime | None], int] = {}  # (customer, instant) -> its first good row
    repeats: dict[int, int] = {}
    for at in np.flatnonzero(rules == "").tolist():
        first = seen.setdefault((ids[at], times[at]), at + 1)
        if first != at + 1:
            repeats[at] = first
    rules[list(repeats)] = "duplicate_row"
    quarantined: list[dict[str, Any]] = []
    for at in np.flatnonzero(rules != "").tolist():
        raw = record(at)
        rule = str(rules[at])
        if rule == "missing_key":
            detail = "missing customer_id"
        elif rule == "bad_timestamp":
            detail = f"attempted_at={raw.get('attempted_at')!r} is not ISO-8601 with a UTC offset"
        elif rule == "bad_outcome":
            detail = f"outcome={raw.get('outcome')!r} not in {', '.join(ATTEMPT_OUTCOMES)}"
        else:
            detail = f"same customer and time as row {repeats[at]}"
        quarantined.append({"source_file": source_file, "source_row": at + 1, "rule": rule, "detail": detail,
                            "raw_record": redacted_record(raw)})
    good = np.flatnonzero(rules == "").tolist()
    frame = pd.DataFrame({"source_row": [at + 1 for at in good], "customer_id": [ids[at] for at in good],
                          "attempted_at": [times[at] for at in good], "outcome": [kinds[at] for at in good]}
                         if good else [], columns=["source_row", "customer_id", "attempted_at", "outcome"])
    frame["attempted_at"] = pd.to_datetime(frame["attempted_at"], utc=True)
    return CheckedRows(source_file, len(ids), frame.astype({"source_row": "int64"}), quarantine_frame(quarantined))


def checked_attempts(rows: Iterable[Mapping[str, str | None]], source_file: str = ATTEMPTS_FILE) -> CheckedRows:
    """Return the good unanswered attempts and the quarantined rows of attempt records (1-based rows)."""
    records = list(rows)
    return _checked_attempt_columns([row.get("customer_id") for row in records],
                                    [row.get("attempted_at") for row in records],
                                    [row.get("outcome") for row in records],
                                    lambda at: dict(records[at]), source_file)


def _record(fieldnames: Sequence[str], row: list[str]) -> dict[str, Any]:
    """Return one CSV row as csv.DictReader gives it, keys trimmed and lower-cased (extra fields dropped)."""
    raw: dict[str | None, Any] = dict(zip(fieldnames, row, strict=False))  # ragged rows: as csv.DictReader
    if len(row) > len(fieldnames):
        raw[None] = row[len(fieldnames):]
    for key in fieldnames[len(row):]:
        raw[key] = None
    return {key.strip().lower(): value for key, value in raw.items() if key}


def _is_blank(record: Mapping[str, Any]) -> bool:
    return not any((value or "").strip() for value in record.values() if isinstance(value, str))


def read_attempts(path: Path, encoding: str = "auto") -> CheckedRows:
    """Return the checked rows of ``contact_attempts.csv``; LandingError when a column is missing."""
    chosen = csv_encoding(path, encoding)
    with path.open("r", encoding=chosen, newline="") as handle:
        reader = csv.reader(handle)
        fieldnames = next(reader, [])
        header = [name.strip().lower() for name in fieldnames]
        missing = [column for column in ATTEMPT_COLUMNS if column not in header]
        if missing:
            raise LandingError(f"{path.name} is missing required column(s): {', '.join(missing)}")
        rows = [row for row in reader if row]  # csv.DictReader skips empty lines too
    # the usual file: distinct, non-empty column names and one field per column in every row; then a row is
    # blank when its fields joined are, and a column is one field of every row. Otherwise (ragged rows,
    # repeated names) every row goes through the csv.DictReader-shaped record.
    width = len(fieldnames)
    if all(fieldnames) and all(header) and len(set(header)) == width and all(len(row) == width for row in rows):
        kept = [row for row in rows if "".join(row).strip()]

        def column(name: str) -> list[str | None]:
            at = header.index(name)
            return [row[at] for row in kept]
    else:
        kept = [row for row in rows if not _is_blank(_record(fieldnames, row))]

        def column(name: str) -> list[str | None]:
            return [_record(fieldnames, row).get(name) for row in kept]

    return _checked_attempt_columns(column("customer_id"), column("attempted_at"), column("outcome"),
                                    lambda at: _record(fieldnames, kept[at]), path.name)


# --- contact history ------------------------------------------------------------------------------------


CONTACT_EVENT_COLUMNS = ["customer_id", "kind", "at"]
CONTACT_KINDS = ("call_attempts", "conversations", "unanswered_attempts")  # the ContactHistory fields


def contact_events(calls: pd.DataFrame, attempts: pd.DataFrame, before: datetime) -> pd.DataFrame:
    """Return the contacts before ``before``, one row each: customer_id, kind, at (UTC), in no particular order.

    kind is the :class:`ContactHistory` field the contact counts in. calls (``stg_calls``): every call with a
    customer turn is a conversation; outbound calls are call attempts. attempts (``stg_contact_attempts``):
    unanswered call attempts, which are call attempts too.
    """
    outbound = calls[calls["direction"].astype(str) == "outbound"]
    talked = calls[calls["customer_turn_count"].astype("int64") > 0]
    parts = [(outbound, "started_at", "call_attempts"), (talked, "started_at", "conversations"),
             (attempts, "attempted_at", "call_attempts"), (attempts, "attempted_at", "unanswered_attempts")]
    events = pd.DataFrame({
        "customer_id": pd.concat([frame["customer_id"] for frame, _, _ in parts], ignore_index=True).astype(str),
        "kind": pd.Categorical.from_codes(
            np.repeat([CONTACT_KINDS.index(kind) for _, _, kind in parts], [len(frame) for frame, _, _ in parts]),
            categories=CONTACT_KINDS),
        "at": pd.to_datetime(pd.concat([frame[column] for frame, column, _ in parts], ignore_index=True), utc=True),
    })
    return events[events["at"] < pd.Timestamp(before)].reset_index(drop=True)


def histories_of(events: pd.DataFrame) -> dict[str, ContactHistory]:
    """Return each customer's contact history from contact events (:func:`contact_events`)."""
    ordered = events.sort_values(CONTACT_EVENT_COLUMNS, kind="stable")
    customers = ordered["customer_id"].to_numpy(dtype=object)
    kinds = ordered["kind"].to_numpy(dtype=object)
    moments = list(pd.DatetimeIndex(ordered["at"]).to_pydatetime())
    starts = np.flatnonzero((customers[1:] != customers[:-1]) | (kinds[1:] != kinds[:-1])) + 1
    edges = [0, *starts.tolist(), len(moments)] if moments else []
    grouped: dict[str, dict[str, tuple[datetime, ...]]] = {}
    for first, after in zip(edges[:-1], edges[1:], strict=True):
        grouped.setdefault(customers[first], {})[kinds[first]] = tuple(moments[first:after])
    return {customer: ContactHistory(**by_kind) for customer, by_kind in grouped.items()}


def contact_histories(calls: pd.DataFrame, attempts: pd.DataFrame, before: datetime) -> dict[str, ContactHistory]:
    """Return each customer's contact history before ``before`` (see :func:`contact_events`)."""
    return histories_of(contact_events(calls, attempts, before))


def do_not_call_customers(turns: pd.DataFrame, phrases: Iterable[str]) -> set[str]:
    """Return the customers who asked, in a customer turn of any call, not to be called again."""
    chosen = tuple(phrases)
    spoken = turns[turns["speaker"] == "customer"]
    asking = [text for text in spoken["text"].drop_duplicates().tolist() if is_do_not_call([text], chosen)]
    return {str(customer) for customer in spoken.loc[spoken["text"].isin(asking), "customer_id"].dropna().unique()}


# --- routing and timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutreachInputs:
    """What the outreach plan needs besides the actions."""

    as_of: date
    rules: ContactRules
    treatment_channels: Mapping[str, str]
    timezones: Mapping[str, str]
    contacts: pd.DataFrame  # contact events before tonight's export (:func:`contact_events`)
    do_not_call: frozenset[str]
    next_due_on: Mapping[str, date]
    reminder_days_before_due: tuple[int, ...] = (3, 1)


def route_of(is_disputed: bool, is_complaint: bool, is_dnc: bool) -> str:
    """Return where a customer's outreach goes: disputes and complaints pause collection contact."""
    if is_disputed:
        return "dispute_hold"
    if is_complaint:
        return "compliance_hold"
    return "no_calls" if is_dnc else "standard"


def routed_treatments(treatments: list[str], route: str, channels: Mapping[str, str]) -> dict[str, list[str]]:
    """Return the treatments per channel after routing.

    dispute_hold / compliance_hold: nothing reaches the customer until a person has reviewed the case (the review
    treatment is added when missing); no_calls: call treatments become written contact (SMS).
    """
    by_channel: dict[str, list[str]] = {"call": [], "sms": [], "app_push": [], "review": []}
    for code in treatments:
        channel = channels[code]
        if route in ("dispute_hold", "compliance_hold") and channel != "review":
            continue
        if route == "no_calls" and channel == "call":
            channel = "sms"
        by_channel[channel].append(code)
    needed = {"dispute_hold": "dispute_review", "compliance_hold": "compliance_review"}.get(route)
    if needed and needed not in by_channel["review"]:
        by_channel["review"].append(needed)
    return by_channel


def earliest_contact(as_of: date, timezone: str) -> datetime:
    """Return 00:00 local on the day after ``as_of``: nobody acts on tonight's export earlier."""
    return datetime.combine(as_of + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def reminder_dates(next_due: date | None, as_of: date, days_before: Iterable[int]) -> str:
    """Return the ';'-joined reminder dates before the next due date that are still after ``as_of``."""
    if next_due is None:
        return ""
    days = sorted({next_due - timedelta(days=int(d)) for d in days_before})
    return ";".join(day.isoformat() for day in days if day > as_of)


def _column(actions: pd.DataFrame, name: str) -> list[Any]:
    """Return a column's values as Python objects (None for every row when the column is missing)."""
    return actions[name].tolist() if name in actions.columns else [None] * len(actions)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timing(found: NextContact) -> tuple[datetime, str, str, int | None]:
    return found.at_utc, found.at_local.isoformat(), found.reason, found.attempts_left


def _local_days(zones: np.ndarray, micros: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Return the local day (proleptic ordinal) of each UTC instant (microseconds) in its zone (index into names).

    zoneinfo converts each distinct (zone, instant) once, exactly as the contact rules do one by one.
    """
    days = np.zeros(len(micros), dtype=np.int64)
    for code, name in enumerate(names):
        chosen = zones == code
        if not chosen.any():
            continue
        distinct, back = np.unique(micros[chosen], return_inverse=True)
        zone = ZoneInfo(name)
        days[chosen] = np.array([(_EPOCH + timedelta(microseconds=int(value))).astimezone(zone).date().toordinal()
                                 for value in distinct.tolist()], dtype=np.int64)[back]
    return days


def _next_calls(customer_ids: list[str], zones: list[str], rule_sets: list[RuleSet], inputs: OutreachInputs
                ) -> list[tuple[datetime, str, str, int | None]]:
    """Return per row the next allowed call (UTC instant, local ISO text, reason, attempts left).

    Computed once per distinct (zone, rule set, contact days the call limits can see): every customer of a zone
    starts from the same instant and the limits see only these days (:func:`visible_history`, done here for all
    customers at once on integer codes).
    """
    starts = {zone: earliest_contact(inputs.as_of, zone) for zone in dict.fromkeys(zones)}
    zone_names = list(starts)
    by_name = {rule_set.name: rule_set for rule_set in rule_sets}
    set_names = list(by_name)
    zone_codes = {name: code for code, name in enumerate(zone_names)}
    set_codes = {name: code for code, name in enumerate(set_names)}
    first_rows: dict[str, int] = {}
    for row, customer_id in enumerate(customer_ids):
        first_rows.setdefault(customer_id, row)
    ids = pd.Index(list(first_rows))
    first_row = np.array(list(first_rows.values()), dtype=np.int64)
    zone_of = np.array([zone_codes[zone] for zone in zones], dtype=np.int64)  # per row
    set_of = np.array([set_codes[rule_set.name] for rule_set in rule_sets], dtype=np.int64)
    contacts = inputs.contacts
    customer = ids.get_indexer(contacts["customer_id"])
    planned = customer >= 0
    customer = customer[planned]
    kind = np.asarray(pd.Categorical(contacts["kind"], categories=CONTACT_KINDS).codes, dtype=np.int64)[planned]
    if (kind < 0).any():
        raise ValueError(f"contact kinds must be one of {', '.join(CONTACT_KINDS)}")
    micros = pd.DatetimeIndex(contacts["at"]).as_unit("us").asi8[planned]
    order = np.lexsort((micros, kind, customer))
    customer, kind, micros = customer[order], kind[order], micros[order]
    event_zone, event_set = zone_of[first_row][customer], set_of[first_row][customer]
    day = _local_days(event_zone, micros, zone_names)
    first_day = np.array([starts[name].astimezone(ZoneInfo(name)).date().toordinal() for name in zone_names])
    look_back = np.array([[-1 if (days := look_back_days(by_name[name])[k]) is None else days
                           for k in CONTACT_KINDS] for name in set_names], dtype=np.int64)
    reach = look_back[event_set, kind]
    visible = np.flatnonzero((reach >= 0) & (day >= first_day[event_zone] - reach))
    seen: dict[int, list[tuple[int, int]]] = {}
    for at in visible[np.lexsort((day[visible], kind[visible], customer[visible]))].tolist():
        seen.setdefault(int(customer[at]), []).append((int(kind[at]), int(day[at])))
    edges = [0, *(np.flatnonzero(customer[1:] != customer[:-1]) + 1).tolist(), len(customer)]
    spans = {int(customer[first]): (first, after) for first, after in zip(edges[:-1], edges[1:], strict=True)
             if after > first}

    def history(code: int) -> ContactHistory:
        first, after = spans[code]
        moments: dict[str, list[datetime]] = {name: [] for name in CONTACT_KINDS}
        for at in range(first, after):
            moments[CONTACT_KINDS[kind[at]]].append(_EPOCH + timedelta(microseconds=int(micros[at])))
        return ContactHistory(**{name: tuple(sorted(values)) for name, values in moments.items()})

    cases: dict[tuple[str, str, tuple[tuple[int, int], ...]], tuple[datetime, str, str, int | None]] = {}
    found = []
    for code, zone, rule_set in zip(ids.get_indexer(customer_ids).tolist(), zones, rule_sets, strict=True):
        key = tuple(seen.get(code, ()))
        case = (zone, rule_set.name, key)
        if case not in cases:
            chosen = history(code) if key else ContactHistory()
            cases[case] = _timing(next_allowed_contact(starts[zone], zone, rule_set, chosen, channel="call"))
        found.append(cases[case])
    return found


def outreach_plan(actions: pd.DataFrame, inputs: OutreachInputs) -> pd.DataFrame:
    """Return one outreach row per action row (columns :data:`OUTREACH_COLUMNS`)."""
    portfolios: dict[str | None, Portfolio] = {}
    routed: dict[tuple[str, str], dict[str, list[str]]] = {}
    reminders: dict[date | None, str] = {}
    messages: dict[tuple[str, str], tuple[datetime, str, str, int | None]] = {}
    rows: dict[str, list[Any]] = {name: [] for name in OUTREACH_COLUMNS}
    zones: list[str] = []
    rule_sets: list[RuleSet] = []
    windows = {name: rule_set.window_text for name, rule_set in inputs.rules.rule_sets.items()}
    for raw_id, raw_sub_reason, raw_reasons, raw_treatments in zip(
            actions["customer_id"].tolist(), _column(actions, "sub_reason"), _column(actions, "reasons"),
            _column(actions, "treatments"), strict=True):
        customer_id = str(raw_id)
        own_zone = inputs.timezones.get(customer_id) or None
        if own_zone not in portfolios:
            portfolios[own_zone] = portfolio_for(own_zone, inputs.rules)
        portfolio = portfolios[own_zone]
        zone = own_zone or portfolio.default_timezone
        rule_set = inputs.rules.rule_sets[portfolio.rule_set]
        sub_reason, reasons = str(raw_sub_reason or ""), str(raw_reasons or "").split(";")
        is_disputed = sub_reason == "disputes_debt" or "call_disputes_debt" in reasons
        is_complaint = sub_reason == "complaint_threat" or "call_complaint_threat" in reasons
        is_dnc = customer_id in inputs.do_not_call
        route = route_of(is_disputed, is_complaint, is_dnc)
        plan = str(raw_treatments or "")
        if (plan, route) not in routed:
            routed[(plan, route)] = routed_treatments([t for t in plan.split(";") if t], route,
                                                      inputs.treatment_channels)
        by_channel = routed[(plan, route)]
        if (zone, rule_set.name) not in messages:
            messages[(zone, rule_set.name)] = _timing(next_allowed_contact(
                earliest_contact(inputs.as_of, zone), zone, rule_set, channel="sms"))
        message = messages[(zone, rule_set.name)]
        reminder = ""
        if "reminder_before_due" in by_channel["sms"]:
            due = inputs.next_due_on.get(customer_id)
            if due not in reminders:
                reminders[due] = reminder_dates(due, inputs.as_of, inputs.reminder_days_before_due)
            reminder = reminders[due]
        zones.append(zone)
        rule_sets.append(rule_set)
        for name, value in (
            ("customer_id", customer_id), ("portfolio", portfolio.name), ("rule_set", rule_set.name),
            ("timezone", zone), ("is_do_not_call", is_dnc), ("is_disputed", is_disputed),
            ("is_complaint", is_complaint), ("route", route), ("call_treatments", ";".join(by_channel["call"])),
            ("sms_treatments", ";".join(by_channel["sms"])), ("app_push_treatments", ";".join(by_channel["app_push"])),
            ("review_treatments", ";".join(by_channel["review"])), ("next_message_at_utc", message[0]),
            ("next_message_at_local", message[1]), ("contact_window", windows[rule_set.name]),
            ("third_party_rule", rule_set.third_party), ("reminder_dates", reminder),
        ):
            rows[name].append(value)
    calls = _next_calls(rows["customer_id"], zones, rule_sets, inputs)
    for at, name in enumerate(("next_call_at_utc", "next_call_at_local", "call_block_reason", "call_attempts_left")):
        rows[name] = [call[at] for call in calls]
    frame = pd.DataFrame(rows, columns=OUTREACH_COLUMNS)
    for column in ("next_call_at_utc", "next_message_at_utc"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype({"call_attempts_left": "Int64"})


# --- the actions stage (I/O at the edge) ----------------------------------------------------------------

OUTCOME_VIEWS = ("segment_change_log", "action_outcomes", "treatment_outcomes", "treatment_vs_control",
                 "contact_rule_outcomes")


@dataclass(frozen=True)
class ActionReport:
    """What the actions stage wrote: counts per segment, group, channel, route and contact-rule outcome."""

    customers: int
    policy_version: str
    contact_rules_version: str
    by_segment: pd.DataFrame  # segment, experiment_group, customers, call, sms, app_push, review
    by_route: pd.DataFrame  # rule_set, route, call_block_reason, customers
    cap: pd.DataFrame  # cap, limit, offered, spent, excluded
    rules_matching_nobody: list[str]
    policy_problems: list[str]
    attempts_loaded: int
    attempts_quarantined: int


def _attempts_for(landing: Path, encoding: str) -> CheckedRows | None:
    path = Path(landing) / ATTEMPTS_FILE
    return read_attempts(path, encoding) if path.is_file() else None


def without_staged_attempts(checked: CheckedRows, staged: pd.DataFrame) -> CheckedRows:
    """Move the good attempts that repeat an attempt staged on an earlier night (a delta night) to quarantine.

    ``staged`` has customer_id, attempted_at and staged_on (the earliest night that staged it). A repeated attempt
    would count twice toward the contact limits; it gets the rule ``duplicate_row``, like a repeat within the file.
    """
    if checked.good.empty or staged.empty:
        return checked
    keys = staged.assign(attempted_at=pd.to_datetime(staged["attempted_at"], utc=True))
    matched = checked.good.merge(keys[["customer_id", "attempted_at", "staged_on"]], how="left",
                                 on=["customer_id", "attempted_at"])
    repeated = matched["staged_on"].notna().to_numpy()
    if not repeated.any():
        return checked
    rows = matched[repeated]
    moved = quarantine_frame(
        {"source_file": checked.source_file, "source_row": int(row.source_row), "rule": "duplicate_row",
         "detail": f"same customer and time as an attempt staged on {pd.Timestamp(row.staged_on).date()}",
         "raw_record": redacted_record({"customer_id": row.customer_id, "attempted_at": row.attempted_at.isoformat(),
                                        "outcome": row.outcome})}
        for row in rows.itertuples(index=False))
    quarantine = pd.concat([checked.quarantine, moved], ignore_index=True).sort_values("source_row", kind="stable")
    return CheckedRows(checked.source_file, checked.rows_read, checked.good[~repeated].reset_index(drop=True),
                       quarantine.reset_index(drop=True))


def _store_attempts(session: Any, as_of: date, checked: CheckedRows | None) -> None:
    """Replace the date's stg_contact_attempts partition and this file's quarantine and reconciliation rows.

    On a delta night an attempt already staged on an earlier night of its state is a duplicate.
    """
    staged_from = session.staged_from(as_of)
    if checked is not None and staged_from < as_of:
        checked = without_staged_attempts(checked, session.frame(
            "select customer_id, attempted_at, min(as_of) as staged_on from stg_contact_attempts "
            "where as_of >= $staged_from and as_of < $as_of group by customer_id, attempted_at",
            {"staged_from": staged_from, "as_of": as_of}))
    where = f"source_file = '{ATTEMPTS_FILE}'"
    good = checked.good if checked else pd.DataFrame(columns=["source_row", "customer_id", "attempted_at", "outcome"])
    # the attempts contract always runs in SQL: a landing file read here, its table small, no GE import needed
    check = partition_checks("contact_attempts", "duckdb")["validate_in_place"]

    session.replace_partition("quarantine", as_of, checked.quarantine if checked else quarantine_frame([]),
                              where=where)
    reconciliation = pd.DataFrame([{"source_file": ATTEMPTS_FILE, "rows_read": checked.rows_read,
                                    "rows_loaded": len(checked.good), "rows_quarantined": len(checked.quarantine)}]
                                  ) if checked else pd.DataFrame(columns=["source_file", "rows_read", "rows_loaded",
                                                                          "rows_quarantined"])
    session.replace_partition("load_reconciliation", as_of, reconciliation, where=where)
    session.replace_partition("stg_contact_attempts", as_of, good, validate_in_place=check)


def _next_due_on(due: pd.DataFrame) -> dict[str, date]:
    """Return each customer's next due date from a (customer_id, next_due_on) frame."""
    days = pd.to_datetime(due["next_due_on"]).dt.date.tolist() if len(due) else []
    return {str(c): d for c, d in zip(due["customer_id"].tolist(), days, strict=True)}


def _customers_for_actions(session: Any, as_of: date) -> pd.DataFrame:
    return session.frame(
        "select s.*, coalesce(b.clean_history_months, 0) as clean_history_months from care_segments s "
        "left join customer_behaviour b on b.as_of = s.as_of and b.customer_id = s.customer_id "
        "where s.as_of = $as_of order by s.customer_id", {"as_of": as_of})


def _create_views(session: Any) -> None:
    from pipelines.warehouse import sql_text

    for view in OUTCOME_VIEWS:
        session.execute(f"create or replace view {view} as\n{sql_text('marts/' + view)}")


def _summaries(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    channels = {"call": "call_treatments", "sms": "sms_treatments", "app_push": "app_push_treatments",
                "review": "review_treatments"}
    flagged = rows.assign(**{name: rows[column].fillna("") != "" for name, column in channels.items()})
    by_segment = flagged.groupby(["segment", "experiment_group"], as_index=False).agg(
        customers=("customer_id", "size"), **{name: (name, "sum") for name in channels})
    by_route = rows.groupby(["rule_set", "route", "call_block_reason"], as_index=False).agg(
        customers=("customer_id", "size"))
    return by_segment, by_route


def build_care_actions(warehouse: Path, landing: Path, as_of: date, settings: Mapping[str, Any]) -> ActionReport:
    """Decide tonight's care actions and outreach, write ``care_actions`` and (re)create the outcome views."""
    from insights.actions import care_actions, load_action_policy, rules_fired, taxonomy_sub_reasons
    from insights.intents import load_taxonomy
    from pipelines.contact_rules import load_contact_rules
    from pipelines.warehouse import Warehouse

    taxonomy_path = settings["insight"].get("taxonomy")
    known = taxonomy_sub_reasons(load_taxonomy(taxonomy_path).sub_reasons)
    policy = load_action_policy(settings["segment"].get("policy"), known)
    contact = settings.get("contact") or {}
    rules = load_contact_rules(contact.get("rules"))
    attempts = _attempts_for(landing, str(contact.get("attempts_encoding", "auto")))
    # the care_actions contract goes through the engine of the derived tables' contracts (contracts.derived_engine)
    checks = partition_checks("care_actions", derived_contract_engine(settings))  # a bad engine fails before work
    params = {"as_of": as_of}
    with Warehouse(warehouse).session() as session:
        _store_attempts(session, as_of, attempts)
        customers = _customers_for_actions(session, as_of)
        # the night's staged state: partitions $staged_from..$as_of (just $as_of for a snapshot night), the latest
        # version of each call and the latest known timezone of each customer
        staged_calls = ("(select * from stg_calls where as_of between $staged_from and $as_of "
                        "qualify row_number() over (partition by call_id order by as_of desc) = 1)")
        calls = session.frame("select customer_id, started_at, direction, customer_turn_count from "
                              f"{staged_calls}", params)
        turns = session.frame(f"select c.customer_id, t.speaker, t.text from stg_call_turns t join {staged_calls} c "
                              "on c.as_of = t.as_of and c.call_id = t.call_id", params)
        stored_attempts = session.frame("select customer_id, attempted_at from stg_contact_attempts "
                                        "where as_of between $staged_from and $as_of", params)
        zones = session.model_frame("staging/customer_timezones", params)
        due = session.frame("select customer_id, min(due_on) as next_due_on from installment_status "
                            "where as_of = $as_of and due_on > $as_of and not is_fully_paid group by customer_id",
                            params)
        actions = care_actions(customers, policy)
        reminder = policy.treatments.get("reminder_before_due")
        inputs = OutreachInputs(
            as_of=as_of, rules=rules,
            treatment_channels={code: t.channel for code, t in policy.treatments.items()},
            timezones=dict(zip(zones["customer_id"].tolist(), zones["timezone"].tolist(), strict=True)),
            contacts=contact_events(calls, stored_attempts, earliest_contact(as_of, "UTC") + timedelta(days=1)),
            do_not_call=frozenset(do_not_call_customers(turns, rules.do_not_call_phrases)),
            next_due_on=_next_due_on(due),
            reminder_days_before_due=tuple(int(d) for d in (reminder.params.get("days_before_due", (3, 1))
                                                           if reminder else ())),
        )
        reasons = customers[["customer_id", "reasons"]]
        outreach = outreach_plan(actions.merge(reasons, on="customer_id", how="left"), inputs)
        model_id = str(customers["model_id"].iloc[0]) if len(customers) else ""
        rows = actions.merge(outreach, on="customer_id", how="left").assign(
            policy_version=policy.version, contact_rules_version=rules.version, model_id=model_id)
        session.replace_partition("care_actions", as_of, rows, **checks)
        _create_views(session)
    by_segment, by_route = _summaries(rows)
    cap = pd.DataFrame([{
        "cap": name, "limit": limit,
        "offered": int((rows["cap_status"] == "offered").sum()),
        "spent": round(float(rows.loc[rows["cap_status"] == "offered", "cost"].sum()), 2),
        "excluded": int((rows["cap_status"] == "excluded_by_cap").sum()),
    } for name, limit in policy.cost_caps.items()])
    fired = rules_fired(rows, policy)
    report = ActionReport(
        customers=len(rows), policy_version=policy.version, contact_rules_version=rules.version,
        by_segment=by_segment, by_route=by_route, cap=cap,
        rules_matching_nobody=list(fired.loc[fired["customers"] == 0, "rule_id"]),
        policy_problems=[str(p) for p in policy.problems],
        attempts_loaded=len(attempts.good) if attempts else 0,
        attempts_quarantined=len(attempts.quarantine) if attempts else 0,
    )
    log.info("care actions for %s: %d customers; rules matching nobody tonight: %s", as_of, report.customers,
             ", ".join(report.rules_matching_nobody) or "none")
    return report
