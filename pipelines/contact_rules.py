"""Contact rules: when a collection contact may happen, per portfolio rule set (China, US Regulation F).

The rule sets and portfolios live in ``config/contact_rules.yaml``. Everything here is pure: a customer's contact
history (UTC instants) and an instant before which nobody acts on tonight's export go in; the next allowed
contact instant comes out. Day-based limits count the customer's *local* calendar dates (zoneinfo), so they stay
right across daylight-saving changes.

Glossary: Reg F = US Regulation F (12 CFR part 1006); a conversation = a call in which the customer spoke; an
attempt = a call placed to the customer, answered or not (``calls.jsonl`` outbound calls + unanswered attempts).
Our data has one phone number and one debt per customer: "per number" and "per debt" limits count per customer.
"""

from __future__ import annotations

import fnmatch
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

CONTACT_RULES_PATH = Path(__file__).resolve().parent.parent / "config" / "contact_rules.yaml"
CHANNELS = ("call", "sms", "app_push")
_MAX_STEPS = 400


@dataclass(frozen=True)
class RuleSet:
    """One legal regime: the local contact window and the call-frequency limits."""

    name: str
    window_start: time
    window_end: time
    max_unanswered_attempts_per_day: int | None = None
    max_call_attempts: int | None = None
    max_call_attempts_days: int | None = None
    quiet_days_after_conversation: int | None = None
    third_party: str = "no_disclosure"

    @property
    def window_text(self) -> str:
        """Return the window as ``HH:MM-HH:MM`` (local time)."""
        return f"{self.window_start:%H:%M}-{self.window_end:%H:%M}"


@dataclass(frozen=True)
class Portfolio:
    """A group of customers under one rule set, with the time zone assumed when a customer has none."""

    name: str
    rule_set: str
    default_timezone: str
    timezones: tuple[str, ...]
    is_default: bool = False


@dataclass(frozen=True)
class ContactRules:
    """The whole contact-rules file."""

    version: str
    rule_sets: Mapping[str, RuleSet]
    portfolios: tuple[Portfolio, ...]
    do_not_call_phrases: tuple[str, ...]


@dataclass(frozen=True)
class ContactHistory:
    """A customer's contacts before tonight's export, as UTC instants."""

    call_attempts: tuple[datetime, ...] = ()
    unanswered_attempts: tuple[datetime, ...] = ()
    conversations: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class NextContact:
    """When a channel may next be used, and why not earlier."""

    at_utc: datetime
    at_local: datetime
    reason: str  # window | conversation_quiet_days | attempts_in_7_days | unanswered_attempts_today | none
    attempts_left: int | None = None  # call attempts still allowed on that local day (None: no count limit)
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _clock(text: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(text))
    except ValueError as error:
        raise ValueError(f"{where}: {text!r} is not a HH:MM time") from error


def _positive(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {value!r} must be a whole number >= 1")
    return value


def _rule_set(name: str, body: Mapping[str, Any]) -> RuleSet:
    window = body.get("window") or {}
    start, end = _clock(window.get("start"), f"{name}.window.start"), _clock(window.get("end"), f"{name}.window.end")
    if not start < end:
        raise ValueError(f"rule set {name}: the window start {start} must be before its end {end}")
    attempts = body.get("max_call_attempts") or {}
    return RuleSet(
        name=name, window_start=start, window_end=end,
        max_unanswered_attempts_per_day=_positive(body.get("max_unanswered_attempts_per_day"), name),
        max_call_attempts=_positive(attempts.get("attempts"), f"{name}.max_call_attempts"),
        max_call_attempts_days=_positive(attempts.get("days"), f"{name}.max_call_attempts"),
        quiet_days_after_conversation=_positive(body.get("quiet_days_after_conversation"), name),
        third_party=str(body.get("third_party", "no_disclosure")),
    )


def contact_rules_from_mapping(raw: Mapping[str, Any], where: str = "contact rules") -> ContactRules:
    """Return validated contact rules from a parsed YAML mapping; raise ValueError naming the problem."""
    if not isinstance(raw, Mapping) or not raw.get("version") or not raw.get("rule_sets"):
        raise ValueError(f"{where} needs 'version', 'rule_sets' and 'portfolios'")
    rule_sets = {str(name): _rule_set(str(name), body) for name, body in raw["rule_sets"].items()}
    portfolios = []
    for body in raw.get("portfolios") or []:
        name = str(body.get("name", ""))
        if body.get("rule_set") not in rule_sets:
            raise ValueError(f"{where}: portfolio {name!r} names unknown rule set {body.get('rule_set')!r}")
        zone = str(body.get("default_timezone", ""))
        if zone not in zoneinfo.available_timezones():
            raise ValueError(f"{where}: portfolio {name!r} has unknown default_timezone {zone!r}")
        portfolios.append(Portfolio(name, str(body["rule_set"]), zone, tuple(body.get("timezones") or ()),
                                    bool(body.get("default", False))))
    if sum(p.is_default for p in portfolios) != 1:
        raise ValueError(f"{where}: exactly one portfolio must be marked 'default: true'")
    phrases = tuple(str(p).lower() for group in (raw.get("do_not_call_phrases") or {}).values() for p in group)
    return ContactRules(str(raw["version"]), rule_sets, tuple(portfolios), phrases)


@cache
def _load(path: str) -> ContactRules:
    return contact_rules_from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")), path)


def load_contact_rules(path: Path | str | None = None) -> ContactRules:
    """Return the contact rules of ``path`` (default: the packaged ``config/contact_rules.yaml``)."""
    chosen = Path(path) if path else CONTACT_RULES_PATH
    if not chosen.is_file():
        raise FileNotFoundError(f"contact rules file not found: {chosen}")
    return _load(str(chosen))


def portfolio_for(timezone: str | None, rules: ContactRules) -> Portfolio:
    """Return the first portfolio whose patterns match ``timezone``; the default one when it is empty."""
    default = next(p for p in rules.portfolios if p.is_default)
    if not timezone:
        return default
    for portfolio in rules.portfolios:
        if any(fnmatch.fnmatchcase(timezone, pattern) for pattern in portfolio.timezones):
            return portfolio
    return default


def _local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """Return the UTC instant of a local wall-clock time (a time skipped by DST moves forward by the gap)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _into_window(instant: datetime, rule_set: RuleSet, zone: ZoneInfo) -> datetime:
    day = _local_day(instant, zone)
    start = _local_instant(day, rule_set.window_start, zone)
    if instant < start:
        return start
    if instant >= _local_instant(day, rule_set.window_end, zone):
        return _local_instant(day + timedelta(days=1), rule_set.window_start, zone)
    return instant


def _days(instants: Iterable[datetime], zone: ZoneInfo) -> list[date]:
    return [_local_day(i, zone) for i in instants]


def attempts_left(day: date, rule_set: RuleSet, history: ContactHistory, zone: ZoneInfo) -> int | None:
    """Return how many call attempts the rule set still allows on local ``day`` (None: no count limit)."""
    left: list[int] = []
    if rule_set.max_unanswered_attempts_per_day:
        today = sum(d == day for d in _days(history.unanswered_attempts, zone))
        left.append(rule_set.max_unanswered_attempts_per_day - today)
    if rule_set.max_call_attempts and rule_set.max_call_attempts_days:
        first = day - timedelta(days=rule_set.max_call_attempts_days - 1)
        recent = sum(first <= d <= day for d in _days(history.call_attempts, zone))
        left.append(rule_set.max_call_attempts - recent)
    return max(0, min(left)) if left else None


def _call_block(instant: datetime, rule_set: RuleSet, history: ContactHistory, zone: ZoneInfo
                ) -> tuple[date, str] | None:
    """Return (first local day the call limits allow, the limit) when they forbid a call at ``instant``."""
    day = _local_day(instant, zone)
    quiet = rule_set.quiet_days_after_conversation
    if quiet:
        talked = [d for d in _days(history.conversations, zone) if d <= day]
        if talked and day <= max(talked) + timedelta(days=quiet - 1):
            return max(talked) + timedelta(days=quiet), "conversation_quiet_days"
    if rule_set.max_call_attempts and rule_set.max_call_attempts_days:
        later = day
        while attempts_left(later, rule_set, history, zone) == 0:
            later += timedelta(days=1)
        if later != day:
            return later, "attempts_in_7_days"
    if rule_set.max_unanswered_attempts_per_day and attempts_left(day, rule_set, history, zone) == 0:
        return day + timedelta(days=1), "unanswered_attempts_today"
    return None


def next_allowed_contact(
    not_before: datetime, timezone: str, rule_set: RuleSet, history: ContactHistory = ContactHistory(),
    channel: str = "call",
) -> NextContact:
    """Return the first instant at or after ``not_before`` when ``channel`` may be used for this customer.

    Every channel keeps to the local window; calls also keep to the attempt and conversation limits.
    """
    if not_before.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    zone = ZoneInfo(timezone)
    instant = not_before.astimezone(UTC)
    reasons: list[str] = []
    for _ in range(_MAX_STEPS):
        moved = _into_window(instant, rule_set, zone)
        if moved != instant:
            reasons.append("window")
        block = _call_block(moved, rule_set, history, zone) if channel == "call" else None
        if block is not None:
            reasons.append(block[1])
            moved = _local_instant(block[0], time(0, 0), zone)
        if moved == instant:
            day = _local_day(instant, zone)
            left = attempts_left(day, rule_set, history, zone) if channel == "call" else None
            main = next((r for r in reversed(reasons) if r != "window"), reasons[-1] if reasons else "none")
            return NextContact(instant, instant.astimezone(zone), main, left, tuple(dict.fromkeys(reasons)))
        instant = moved
    raise ValueError(f"no allowed contact time found after {not_before} in {timezone} for {rule_set.name}")


def look_back_days(rule_set: RuleSet) -> dict[str, int | None]:
    """Return per kind of contact how many local days before the first searched day the call limits look back.

    Keys are the :class:`ContactHistory` fields; None: the rule set has no limit on that kind. A search that
    starts on local day D looks at days from D on, so the 7-day attempt count sees days from D - (days - 1),
    the daily unanswered count days from D, and the quiet period a conversation from D - (quiet days - 1).
    """
    attempts_days = rule_set.max_call_attempts_days if rule_set.max_call_attempts else None
    quiet = rule_set.quiet_days_after_conversation
    return {"call_attempts": attempts_days - 1 if attempts_days else None,
            "unanswered_attempts": 0 if rule_set.max_unanswered_attempts_per_day else None,
            "conversations": quiet - 1 if quiet else None}


def visible_history(history: ContactHistory, not_before: datetime, zone: ZoneInfo, rule_set: RuleSet
                    ) -> tuple[tuple[date, ...], tuple[date, ...], tuple[date, ...]]:
    """Return the local days of ``history`` that the call limits can see from ``not_before`` on, sorted.

    (call attempt days, unanswered attempt days, conversation days), repeats kept, each from
    :func:`look_back_days` before the local day of ``not_before``. Histories with the same visible days get the
    same :func:`next_allowed_contact` from ``not_before`` in ``zone`` under ``rule_set``: a batch computes it once.
    """
    first = _local_day(not_before, zone)
    look_back = look_back_days(rule_set)

    def seen(kind: str) -> tuple[date, ...]:
        instants: tuple[datetime, ...] = getattr(history, kind)
        days = look_back[kind]
        if days is None or not instants:
            return ()
        return tuple(sorted(d for d in _days(instants, zone) if d >= first - timedelta(days=days)))

    return seen("call_attempts"), seen("unanswered_attempts"), seen("conversations")


def is_do_not_call(texts: Sequence[str], phrases: Sequence[str]) -> bool:
    """Return True when any customer text asks not to be called (case-insensitive phrase match)."""
    lowered = [" ".join(str(t).lower().split()) for t in texts]
    return any(phrase in text for text in lowered for phrase in phrases)
