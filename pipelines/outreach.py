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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from pipelines.contact_rules import (
    ContactHistory,
    ContactRules,
    is_do_not_call,
    next_allowed_contact,
    portfolio_for,
)
from pipelines.contracts import partition_validator
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


def checked_attempts(rows: Iterable[Mapping[str, str | None]], source_file: str = ATTEMPTS_FILE) -> CheckedRows:
    """Return the good unanswered attempts and the quarantined rows of attempt records (1-based rows)."""
    good: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    seen: dict[tuple[str, datetime], int] = {}
    rows_read = 0
    for source_row, row in enumerate(rows, start=1):
        rows_read += 1
        customer_id = (row.get("customer_id") or "").strip()
        attempted_at = _attempt_time(row.get("attempted_at"))
        outcome = (row.get("outcome") or "").strip().lower()
        rule: tuple[str, str] | None = None
        if not customer_id:
            rule = ("missing_key", "missing customer_id")
        elif attempted_at is None:
            rule = ("bad_timestamp", f"attempted_at={row.get('attempted_at')!r} is not ISO-8601 with a UTC offset")
        elif outcome not in ATTEMPT_OUTCOMES:
            rule = ("bad_outcome", f"outcome={row.get('outcome')!r} not in {', '.join(ATTEMPT_OUTCOMES)}")
        elif (customer_id, attempted_at) in seen:
            rule = ("duplicate_row", f"same customer and time as row {seen[(customer_id, attempted_at)]}")
        if rule is not None:
            quarantined.append({"source_file": source_file, "source_row": source_row, "rule": rule[0],
                                "detail": rule[1], "raw_record": redacted_record(dict(row))})
            continue
        assert attempted_at is not None
        seen[(customer_id, attempted_at)] = source_row
        good.append({"source_row": source_row, "customer_id": customer_id, "attempted_at": attempted_at,
                     "outcome": outcome})
    frame = pd.DataFrame(good, columns=["source_row", "customer_id", "attempted_at", "outcome"])
    frame["attempted_at"] = pd.to_datetime(frame["attempted_at"], utc=True)
    return CheckedRows(source_file, rows_read, frame.astype({"source_row": "int64"}), quarantine_frame(quarantined))


def read_attempts(path: Path, encoding: str = "auto") -> CheckedRows:
    """Return the checked rows of ``contact_attempts.csv``; LandingError when a column is missing."""
    chosen = csv_encoding(path, encoding)
    with path.open("r", encoding=chosen, newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [column for column in ATTEMPT_COLUMNS if column not in header]
        if missing:
            raise LandingError(f"{path.name} is missing required column(s): {', '.join(missing)}")
        records = [{key.strip().lower(): value for key, value in row.items() if key}
                   for row in reader if any((value or "").strip() for value in row.values() if isinstance(value, str))]
    return checked_attempts(records, path.name)


# --- contact history ------------------------------------------------------------------------------------


def contact_histories(calls: pd.DataFrame, attempts: pd.DataFrame, before: datetime) -> dict[str, ContactHistory]:
    """Return each customer's contact history before ``before``.

    calls (``stg_calls``): every call with a customer turn is a conversation; outbound calls are attempts.
    attempts (``stg_contact_attempts``): unanswered call attempts, which are attempts too.
    """
    histories: dict[str, dict[str, list[datetime]]] = {}

    def add(customer_id: str, kind: str, instant: Any) -> None:
        moment = pd.Timestamp(instant).to_pydatetime()
        if moment < before:
            histories.setdefault(customer_id, {"call": [], "unanswered": [], "talk": []})[kind].append(moment)

    for row in calls.itertuples(index=False):
        if str(row.direction) == "outbound":
            add(str(row.customer_id), "call", row.started_at)
        if int(row.customer_turn_count) > 0:
            add(str(row.customer_id), "talk", row.started_at)
    for row in attempts.itertuples(index=False):
        add(str(row.customer_id), "call", row.attempted_at)
        add(str(row.customer_id), "unanswered", row.attempted_at)
    return {customer: ContactHistory(tuple(sorted(kinds["call"])), tuple(sorted(kinds["unanswered"])),
                                     tuple(sorted(kinds["talk"])))
            for customer, kinds in histories.items()}


def do_not_call_customers(turns: pd.DataFrame, phrases: Iterable[str]) -> set[str]:
    """Return the customers who asked, in a customer turn of any call, not to be called again."""
    chosen = tuple(phrases)
    spoken = turns[turns["speaker"] == "customer"]
    return {str(customer) for customer, texts in spoken.groupby("customer_id")["text"]
            if is_do_not_call(list(texts), chosen)}


# --- routing and timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutreachInputs:
    """What the outreach plan needs besides the actions."""

    as_of: date
    rules: ContactRules
    treatment_channels: Mapping[str, str]
    timezones: Mapping[str, str]
    histories: Mapping[str, ContactHistory]
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


def _outreach_row(action: Mapping[str, Any], inputs: OutreachInputs) -> dict[str, Any]:
    customer_id = str(action["customer_id"])
    own_zone = inputs.timezones.get(customer_id) or None
    portfolio = portfolio_for(own_zone, inputs.rules)
    zone = own_zone or portfolio.default_timezone
    rule_set = inputs.rules.rule_sets[portfolio.rule_set]
    sub_reason, reasons = str(action.get("sub_reason") or ""), str(action.get("reasons") or "")
    is_disputed = sub_reason == "disputes_debt" or "call_disputes_debt" in reasons.split(";")
    is_complaint = sub_reason == "complaint_threat" or "call_complaint_threat" in reasons.split(";")
    is_dnc = customer_id in inputs.do_not_call
    route = route_of(is_disputed, is_complaint, is_dnc)
    treatments = [t for t in str(action.get("treatments") or "").split(";") if t]
    by_channel = routed_treatments(treatments, route, inputs.treatment_channels)
    start = earliest_contact(inputs.as_of, zone)
    history = inputs.histories.get(customer_id, ContactHistory())
    call = next_allowed_contact(start, zone, rule_set, history, channel="call")
    message = next_allowed_contact(start, zone, rule_set, history, channel="sms")
    reminders = reminder_dates(inputs.next_due_on.get(customer_id), inputs.as_of, inputs.reminder_days_before_due) \
        if "reminder_before_due" in by_channel["sms"] else ""
    return {
        "customer_id": customer_id, "portfolio": portfolio.name, "rule_set": rule_set.name, "timezone": zone,
        "is_do_not_call": is_dnc, "is_disputed": is_disputed, "is_complaint": is_complaint, "route": route,
        "call_treatments": ";".join(by_channel["call"]), "sms_treatments": ";".join(by_channel["sms"]),
        "app_push_treatments": ";".join(by_channel["app_push"]), "review_treatments": ";".join(by_channel["review"]),
        "next_call_at_utc": call.at_utc, "next_call_at_local": call.at_local.isoformat(),
        "call_block_reason": call.reason, "call_attempts_left": call.attempts_left,
        "next_message_at_utc": message.at_utc, "next_message_at_local": message.at_local.isoformat(),
        "contact_window": rule_set.window_text, "third_party_rule": rule_set.third_party,
        "reminder_dates": reminders,
    }


def outreach_plan(actions: pd.DataFrame, inputs: OutreachInputs) -> pd.DataFrame:
    """Return one outreach row per action row (columns :data:`OUTREACH_COLUMNS`)."""
    rows = [_outreach_row(action, inputs) for action in actions.to_dict(orient="records")]
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


def _store_attempts(session: Any, as_of: date, checked: CheckedRows | None) -> None:
    """Replace the date's stg_contact_attempts partition and this file's quarantine and reconciliation rows."""
    from pipelines.contracts import ContractError, contract_failures_sql, load_contract

    where = f"source_file = '{ATTEMPTS_FILE}'"
    good = checked.good if checked else pd.DataFrame(columns=["source_row", "customer_id", "attempted_at", "outcome"])
    contract = load_contract(Path(__file__).resolve().parent.parent / "data_contracts" / "contact_attempts.yaml")

    def check(session: Any, partition: str, params: dict[str, Any]) -> None:  # in DuckDB: no GE import, no frame
        failures = contract_failures_sql(session.frame, partition, contract, params)
        if not failures.empty:
            raise ContractError(contract, failures)

    session.replace_partition("quarantine", as_of, checked.quarantine if checked else quarantine_frame([]),
                              where=where)
    reconciliation = pd.DataFrame([{"source_file": ATTEMPTS_FILE, "rows_read": checked.rows_read,
                                    "rows_loaded": len(checked.good), "rows_quarantined": len(checked.quarantine)}]
                                  ) if checked else pd.DataFrame(columns=["source_file", "rows_read", "rows_loaded",
                                                                          "rows_quarantined"])
    session.replace_partition("load_reconciliation", as_of, reconciliation, where=where)
    session.replace_partition("stg_contact_attempts", as_of, good, validate_in_place=check)


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
    params = {"as_of": as_of}
    with Warehouse(warehouse).session() as session:
        _store_attempts(session, as_of, attempts)
        customers = _customers_for_actions(session, as_of)
        calls = session.frame("select customer_id, started_at, direction, customer_turn_count from stg_calls "
                              "where as_of = $as_of", params)
        turns = session.frame("select c.customer_id, t.speaker, t.text from stg_call_turns t join stg_calls c "
                              "on c.as_of = t.as_of and c.call_id = t.call_id where t.as_of = $as_of", params)
        stored_attempts = session.frame("select customer_id, attempted_at from stg_contact_attempts "
                                        "where as_of = $as_of", params)
        zones = session.frame("select customer_id, timezone from stg_customers where as_of = $as_of "
                              "and timezone is not null and timezone <> ''", params)
        due = session.frame("select customer_id, min(due_on) as next_due_on from installment_status "
                            "where as_of = $as_of and due_on > $as_of and not is_fully_paid group by customer_id",
                            params)
        actions = care_actions(customers, policy)
        reminder = policy.treatments.get("reminder_before_due")
        inputs = OutreachInputs(
            as_of=as_of, rules=rules,
            treatment_channels={code: t.channel for code, t in policy.treatments.items()},
            timezones=dict(zip(zones["customer_id"], zones["timezone"], strict=True)),
            histories=contact_histories(calls, stored_attempts, earliest_contact(as_of, "UTC") + timedelta(days=1)),
            do_not_call=frozenset(do_not_call_customers(turns, rules.do_not_call_phrases)),
            next_due_on={str(c): pd.Timestamp(d).date() for c, d in zip(due["customer_id"], due["next_due_on"],
                                                                         strict=True)},
            reminder_days_before_due=tuple(int(d) for d in (reminder.params.get("days_before_due", (3, 1))
                                                           if reminder else ())),
        )
        reasons = customers[["customer_id", "reasons"]]
        outreach = outreach_plan(actions.merge(reasons, on="customer_id", how="left"), inputs)
        model_id = str(customers["model_id"].iloc[0]) if len(customers) else ""
        rows = actions.merge(outreach, on="customer_id", how="left").assign(
            policy_version=policy.version, contact_rules_version=rules.version, model_id=model_id)
        session.replace_partition("care_actions", as_of, rows, validate=partition_validator("care_actions"))
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
