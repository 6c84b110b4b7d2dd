from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipelines.contact_rules import (
    ContactHistory,
    attempts_left,
    contact_rules_from_mapping,
    is_do_not_call,
    load_contact_rules,
    look_back_days,
    next_allowed_contact,
    portfolio_for,
    visible_history,
)

RULES = load_contact_rules()
CHINA = RULES.rule_sets["china"]
US = RULES.rule_sets["us_reg_f"]
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(zone, *parts) -> datetime:
    return datetime(*parts, tzinfo=zone)


def test_the_packaged_rules_load_and_customers_map_to_portfolios():
    assert RULES.version and set(RULES.rule_sets) == {"china", "us_reg_f"}
    assert portfolio_for("America/Chicago", RULES).rule_set == "us_reg_f"
    assert portfolio_for("Asia/Shanghai", RULES).rule_set == "china"
    assert portfolio_for("Europe/London", RULES).rule_set == "china"
    default = portfolio_for(None, RULES)
    assert default.is_default and default.default_timezone == "Asia/Shanghai"
    assert CHINA.window_text == "08:00-22:00" and US.window_text == "08:00-21:00"


@pytest.mark.parametrize(("clock", "expected"), [
    ((7, 59), (8, 0)),            # before the window: its start
    ((8, 0), (8, 0)),             # the start is allowed
    ((21, 59, 59), (21, 59, 59)),  # the last second
    ((22, 0), None),              # the end is not: next morning
])
def test_china_window_boundaries_in_shanghai(clock, expected):
    start = local(SHANGHAI, 2026, 7, 1, *clock)
    got = next_allowed_contact(start, "Asia/Shanghai", CHINA, channel="sms")
    wanted = local(SHANGHAI, 2026, 7, 1, *expected) if expected else local(SHANGHAI, 2026, 7, 2, 8, 0)
    assert got.at_utc == wanted.astimezone(UTC)
    assert got.at_local.utcoffset() == timedelta(hours=8)


def test_us_window_ends_at_nine_pm_local():
    assert next_allowed_contact(local(NEW_YORK, 2026, 7, 1, 20, 59), "America/New_York", US, channel="sms"
                                ).at_local.hour == 20
    late = next_allowed_contact(local(NEW_YORK, 2026, 7, 1, 21, 0), "America/New_York", US, channel="sms")
    assert late.at_local == local(NEW_YORK, 2026, 7, 2, 8, 0) and late.reason == "window"


def test_the_same_utc_instant_is_allowed_in_one_zone_and_not_in_another():
    instant = datetime(2026, 7, 1, 13, 0, tzinfo=UTC)  # 21:00 in Shanghai, 09:00 in New York
    assert next_allowed_contact(instant, "America/New_York", US).at_utc == instant
    assert next_allowed_contact(instant, "Asia/Shanghai", CHINA).at_utc == instant
    tokyo_late = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # 22:30 in Tokyo
    assert next_allowed_contact(tokyo_late, "Asia/Tokyo", CHINA).at_local == local(
        ZoneInfo("Asia/Tokyo"), 2026, 7, 2, 8, 0)


def test_spring_forward_day_starts_the_window_at_eight_local_which_is_twelve_utc():
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT
    got = next_allowed_contact(local(NEW_YORK, 2026, 3, 8, 0, 30), "America/New_York", US)
    assert got.at_utc == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert got.at_local.hour == 8 and got.at_local.utcoffset() == timedelta(hours=-4)
    day_before = next_allowed_contact(local(NEW_YORK, 2026, 3, 7, 0, 30), "America/New_York", US)
    assert day_before.at_utc == datetime(2026, 3, 7, 13, 0, tzinfo=UTC)


def test_fall_back_day_starts_the_window_at_eight_local_which_is_thirteen_utc():
    # 2026-11-01: New York falls back from 02:00 EDT to 01:00 EST; the window end moves in UTC too
    got = next_allowed_contact(local(NEW_YORK, 2026, 11, 1, 1, 30), "America/New_York", US)
    assert got.at_utc == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    evening = next_allowed_contact(datetime(2026, 11, 2, 1, 30, tzinfo=UTC), "America/New_York", US,
                                   channel="sms")  # 20:30 EST on 1 November: still inside
    assert evening.at_utc == datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    too_late = next_allowed_contact(datetime(2026, 11, 2, 2, 0, tzinfo=UTC), "America/New_York", US,
                                    channel="sms")  # 21:00 EST
    assert too_late.at_utc == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)


def test_reg_f_no_call_within_seven_days_of_a_conversation_counting_local_days_across_dst():
    talked = local(NEW_YORK, 2026, 3, 5, 10, 0)  # EST; day 1 of the 7 quiet days
    history = ContactHistory(call_attempts=(talked.astimezone(UTC),), conversations=(talked.astimezone(UTC),))
    got = next_allowed_contact(local(NEW_YORK, 2026, 3, 6, 0, 0), "America/New_York", US, history)
    assert got.at_local == local(NEW_YORK, 2026, 3, 12, 8, 0)  # EDT by then
    assert got.at_utc == datetime(2026, 3, 12, 12, 0, tzinfo=UTC) and got.reason == "conversation_quiet_days"
    # SMS is not a call: only the window applies
    assert next_allowed_contact(local(NEW_YORK, 2026, 3, 6, 9, 0), "America/New_York", US, history,
                                channel="sms").at_local == local(NEW_YORK, 2026, 3, 6, 9, 0)
    # the China rule set has no quiet period
    assert next_allowed_contact(local(SHANGHAI, 2026, 3, 6, 9, 0), "Asia/Shanghai", CHINA, history
                                ).at_local == local(SHANGHAI, 2026, 3, 6, 9, 0)


def test_reg_f_seven_attempts_in_seven_days_blocks_until_the_oldest_leaves_the_window():
    attempts = tuple(local(NEW_YORK, 2026, 6, day, 10, 0).astimezone(UTC) for day in (1, 2, 3, 4, 5, 6, 6))
    history = ContactHistory(call_attempts=attempts, unanswered_attempts=attempts)
    assert attempts_left(date(2026, 6, 6), US, history, NEW_YORK) == 0
    got = next_allowed_contact(local(NEW_YORK, 2026, 6, 7, 8, 0), "America/New_York", US, history)
    # 1-7 June holds 7 attempts; 2-8 June holds 6 (the 1 June one drops out)
    assert got.at_local == local(NEW_YORK, 2026, 6, 8, 8, 0) and got.reason == "attempts_in_7_days"
    assert got.attempts_left == 1
    six = ContactHistory(call_attempts=attempts[:6])
    assert next_allowed_contact(local(NEW_YORK, 2026, 6, 7, 8, 0), "America/New_York", US, six
                                ).attempts_left == 1


def test_china_six_unanswered_attempts_a_day_closes_that_day_only():
    tries = tuple(local(SHANGHAI, 2026, 7, 1, hour, 0).astimezone(UTC) for hour in (8, 9, 10, 11, 12, 13))
    history = ContactHistory(call_attempts=tries, unanswered_attempts=tries)
    got = next_allowed_contact(local(SHANGHAI, 2026, 7, 1, 14, 0), "Asia/Shanghai", CHINA, history)
    assert got.at_local == local(SHANGHAI, 2026, 7, 2, 8, 0) and got.reason == "unanswered_attempts_today"
    assert got.attempts_left == 6
    five = ContactHistory(unanswered_attempts=tries[:5])
    same_day = next_allowed_contact(local(SHANGHAI, 2026, 7, 1, 14, 0), "Asia/Shanghai", CHINA, five)
    assert same_day.at_local == local(SHANGHAI, 2026, 7, 1, 14, 0) and same_day.attempts_left == 1
    # the local day decides: 23:30 UTC on 30 June is 07:30 on 1 July in Shanghai
    early = ContactHistory(unanswered_attempts=(datetime(2026, 6, 30, 23, 30, tzinfo=UTC),) * 6)
    assert next_allowed_contact(local(SHANGHAI, 2026, 7, 1, 9, 0), "Asia/Shanghai", CHINA, early
                                ).at_local.date() == date(2026, 7, 2)


def test_do_not_call_phrases_match_either_language_case_insensitively():
    phrases = RULES.do_not_call_phrases
    assert is_do_not_call(["ok", "Stop  calling me please"], phrases)
    assert is_do_not_call(["我没钱 别再打了"], phrases)
    assert not is_do_not_call(["please call me tomorrow", "我下周还"], phrases)


def test_bad_rule_files_are_refused_with_the_reason():
    base = {"version": "1", "rule_sets": {"x": {"window": {"start": "08:00", "end": "21:00"}}},
            "portfolios": [{"name": "p", "rule_set": "x", "default_timezone": "UTC", "default": True}]}
    assert contact_rules_from_mapping(base).portfolios[0].name == "p"
    with pytest.raises(ValueError, match="unknown rule set"):
        contact_rules_from_mapping({**base, "portfolios": [{**base["portfolios"][0], "rule_set": "nope"}]})
    with pytest.raises(ValueError, match="before its end"):
        contact_rules_from_mapping({**base, "rule_sets": {"x": {"window": {"start": "22:00", "end": "08:00"}}}})
    with pytest.raises(ValueError, match="exactly one portfolio"):
        contact_rules_from_mapping({**base, "portfolios": [{**base["portfolios"][0], "default": False}]})
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed_contact(datetime(2026, 7, 1, 9, 0), "UTC", US)


def _random_history(seed: int, zone: ZoneInfo, around: datetime) -> ContactHistory:
    import random

    chooser = random.Random(seed)

    def instants(count: int) -> tuple[datetime, ...]:
        return tuple(sorted((around + timedelta(hours=chooser.randint(-14 * 24, 2 * 24),
                                                minutes=chooser.choice((0, 5, 30)))).astimezone(UTC)
                            for _ in range(count)))

    tries = instants(chooser.randint(0, 12))
    return ContactHistory(call_attempts=tries + instants(chooser.randint(0, 3)),
                          unanswered_attempts=tries, conversations=instants(chooser.randint(0, 2)))


@pytest.mark.parametrize(("zone_name", "rule_set", "start"), [
    ("America/New_York", US, (2026, 3, 8, 0, 0)),  # spring forward
    ("America/New_York", US, (2026, 11, 1, 0, 0)),  # fall back
    ("America/Los_Angeles", US, (2026, 7, 2, 0, 0)),
    ("Asia/Shanghai", CHINA, (2026, 7, 2, 0, 0)),
])
def test_histories_with_the_same_visible_days_get_the_same_next_call(zone_name, rule_set, start):
    zone = ZoneInfo(zone_name)
    not_before = local(zone, *start)
    by_key: dict = {}
    for seed in range(300):
        history = _random_history(seed, zone, not_before)
        key = visible_history(history, not_before, zone, rule_set)
        got = next_allowed_contact(not_before, zone_name, rule_set, history)
        # only what the limits can see matters: the history cut to its visible days gives the same answer
        first = not_before.astimezone(zone).date()
        back = look_back_days(rule_set)
        cut = ContactHistory(**{kind: tuple(i for i in getattr(history, kind) if back[kind] is not None
                                            and i.astimezone(zone).date() >= first - timedelta(days=back[kind]))
                                for kind in back})
        assert next_allowed_contact(not_before, zone_name, rule_set, cut) == got
        assert by_key.setdefault(key, got) == got
    assert len(by_key) > 5  # the random histories do reach different outcomes


def test_visible_history_keeps_the_days_each_limit_looks_at():
    start = local(NEW_YORK, 2026, 7, 2, 0, 0)
    days = [local(NEW_YORK, 2026, 6, day, 12, 0).astimezone(UTC) for day in (24, 25, 26, 30)]
    history = ContactHistory(call_attempts=tuple(days), unanswered_attempts=tuple(days), conversations=tuple(days))
    attempts, unanswered, talked = visible_history(history, start, NEW_YORK, US)
    assert attempts == (date(2026, 6, 26), date(2026, 6, 30))  # 7-day window from 2 July: 26 June on
    assert unanswered == ()  # Reg F has no daily unanswered limit
    assert talked == (date(2026, 6, 26), date(2026, 6, 30))
    assert visible_history(history, start, SHANGHAI, CHINA) == ((), (), ())  # China: only the day itself
