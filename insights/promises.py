"""Promises to pay (PTP, see DOMAIN.md) in the customer's own words, Chinese and English, resolved to dates.

A promise is a clause with a *time expression* and a *pay cue* and no *refusal* (明天也还不了 / "i can't pay
till next month" are not promises). Time expressions resolve against the call's local date:

| said | resolves to |
|---|---|
| 今天 今晚 马上 现在就 挂了电话就 / today tonight right now | the call date |
| 明天 后天 大后天 / tomorrow, the day after tomorrow | +1, +2, +3 days |
| 过两天 过几天 这几天 N天内 / in a couple of days, in a few days, in N days | +2, +3, +N days |
| 周五 这周五 下周五 / friday, this friday, next friday | this week's (the next one if past), or next week's |
| 15号 15日 十五号 下个月15号 / on the 15th | that day this month (next month if past) |
| 月底 下个月底 / end of the month | the month's last day |
| 月初 下个月初 / beginning of next month | the 5th of next month |
| 发工资后 下个月发了钱 / after payday, when i get paid | the next payday (`payday_day_of_month`; `basis` says so) |
| 下周 下个星期 / next week | next week's Sunday |
| 下个月 / next month | next month's payday |

Amounts: digits or Chinese numerals with 元/块/千/万, "$200", "200 dollars/bucks"; "先还一点/一部分", "part
of it" mark a partial promise with no amount. Whether a promise was kept is decided later, in SQL
(`sql/insight/promise_outcomes.sql`), from the repayments.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

PROMISE_COLUMNS = ["promise_id", "call_id", "customer_id", "turn_no", "call_on", "promised_on", "amount",
                   "is_partial", "basis", "phrase", "language"]

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_CN_NUMBER = "[零〇一二两三四五六七八九十百千万]+"
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEKDAYS_EN = {name: i for i, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}
_EN_COUNTS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "couple": 2,
              "few": 3, "a couple": 2, "a couple of": 2, "a few": 3}

_CLAUSE_SPLIT = re.compile(r"[，。！？；,.!?;]+|\s{2,}")
_ZH_PAY = re.compile(r"(?<![没不])还(?![没不是有在得算要挺行好])|(?<!周)转(?=$|过|给|账|款|钱|了)|转账|转过去|转给"
                     r"|打过去|打款|付款|付清|处理|交上|凑齐|结清")
_ZH_REFUSAL = re.compile(r"还不[了上起清]|不还|不会还|不想还|没钱还|没法还|没办法还|还不出|不能还|拿不出|不可能")
_EN_PAY = re.compile(r"\b(pay|paying|send|sending|transfer|settle|clear|take care of|make (?:a|the) payment|"
                     r"do it|handle it|put (?:it|some|the money) in|get (?:it|you) (?:the money|paid)|catch up)\b")
_EN_REFUSAL = re.compile(r"\b(can'?t|cannot|won'?t|will not|not going to|no way|don'?t have|not paying|"
                         r"refuse|never)\b")
_ZH_PARTIAL = re.compile(r"先还一点|先还一部分|还一部分|还一点|先还点|部分")
_EN_PARTIAL = re.compile(r"\b(part of it|some of it|a little|a bit|small amount|partial|something)\b")


@dataclass(frozen=True)
class Promise:
    """One promise found in a clause: the date it names, an amount if said, and how the date was resolved."""

    promised_on: date
    amount: float | None
    is_partial: bool
    basis: str  # relative | weekday | day_of_month | month_end | month_start | payday | next_week | same_day
    phrase: str


def chinese_number(text: str) -> int | None:
    """Return the value of a Chinese numeral (十五, 两千五, 三万) or digits; None when not a number."""
    if text.isdigit():
        return int(text)
    if not text or any(ch not in _CN_DIGITS and ch not in _CN_UNITS for ch in text):
        return None
    total, section, digit, last_unit = 0, 0, None, 0
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
            last_unit = 0 if ch in "零〇" else last_unit
        elif ch == "万":
            total += (section + (digit or 0)) * 10000
            section, digit, last_unit = 0, None, 10000
        else:
            section += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit, last_unit = None, _CN_UNITS[ch]
    # spoken shorthand: 两千五 = 2500, 一万二 = 12000 (a trailing digit right after a unit counts one unit lower)
    tail = (digit or 0) * (last_unit // 10 if last_unit >= 100 and text[-1] in _CN_DIGITS else 1)
    return total + section + tail


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def _day_in_month(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _next_day_of_month(call_on: date, day: int) -> date:
    """Return the date with day-of-month `day` on or after the call date (clamped to the month's length)."""
    this_month = _day_in_month(call_on.year, call_on.month, day)
    if this_month >= call_on:
        return this_month
    year, month = _add_months(call_on, 1)
    return _day_in_month(year, month, day)


def _weekday_on_or_after(call_on: date, weekday: int, next_week: bool) -> date:
    """Return this week's `weekday` (the next one when already past), or next week's when `next_week`."""
    monday = call_on - timedelta(days=call_on.weekday())
    if next_week:
        return monday + timedelta(days=7 + weekday)
    candidate = monday + timedelta(days=weekday)
    return candidate if candidate >= call_on else candidate + timedelta(days=7)


def _zh_date(clause: str, call_on: date, payday: int) -> tuple[date, str, str] | None:
    """Return the first Chinese time expression of a clause: (date, basis, matched text), or None."""
    patterns: list[tuple[str, object]] = [
        (r"大后天", lambda m: (call_on + timedelta(days=3), "relative")),
        (r"后天", lambda m: (call_on + timedelta(days=2), "relative")),
        (r"明天|明儿|明早|明晚", lambda m: (call_on + timedelta(days=1), "relative")),
        (rf"(\d+|{_CN_NUMBER})天(?:之内|以内|内|后|之后)", lambda m: _relative_days(m.group(1), call_on)),
        (r"过两天|这两天", lambda m: (call_on + timedelta(days=2), "relative")),
        (r"过几天|这几天|过些天", lambda m: (call_on + timedelta(days=3), "relative")),
        (r"(下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末])",
         lambda m: (_weekday_on_or_after(call_on, _WEEKDAYS_ZH[m.group(2)], bool(m.group(1))
                                         and m.group(1).startswith("下")), "weekday")),
        (r"下个?(?:周|星期|礼拜)", lambda m: (_weekday_on_or_after(call_on, 6, True), "next_week")),
        (rf"(下个?月)?(\d{{1,2}}|{_CN_NUMBER})[号日]", lambda m: _zh_day_of_month(m, call_on)),
        (r"(下个?月)?月?底", lambda m: (_month_end(*_add_months(call_on, 1 if m.group(1) else 0)), "month_end")),
        (r"(下个?月)?月初", lambda m: (_day_in_month(*_add_months(call_on, 1), 5), "month_start")),
        (r"发工资|发了?工资|工资(?:发|到账|下来)|发了钱|发钱|开工资|拿到工资|结了工资",
         lambda m: (_payday_after(call_on, payday, _zh_months_ahead(clause)), "payday")),
        (r"下{1,2}个?月", lambda m: (_payday_after(call_on, payday, _zh_months_ahead(clause)), "payday")),
        (r"今天|今晚|今儿|马上|立刻|现在就|等下|等一下|一会|待会|下班|挂了电话|这就|晚上",
         lambda m: (call_on, "same_day")),
    ]
    return _first_match(clause, patterns)


def _en_date(clause: str, call_on: date, payday: int) -> tuple[date, str, str] | None:
    """Return the first English time expression of a clause: (date, basis, matched text), or None."""
    weekdays = "|".join(_WEEKDAYS_EN)
    patterns: list[tuple[str, object]] = [
        (r"\bday after tomorrow\b", lambda m: (call_on + timedelta(days=2), "relative")),
        (r"\btomorrow\b", lambda m: (call_on + timedelta(days=1), "relative")),
        (r"\bin (\d+|a couple of|a couple|a few|couple|few|one|two|three|four|five|six|seven) days?\b",
         lambda m: _relative_days(m.group(1), call_on)),
        (rf"\b(next|this|on|by|until|till|coming)?\s*({weekdays})\b",
         lambda m: (_weekday_on_or_after(call_on, _WEEKDAYS_EN[m.group(2)], m.group(1) == "next"), "weekday")),
        (r"\b(?:on|by|before|the)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b", lambda m: _en_day_of_month(m, call_on)),
        (r"\bend of (?:the |this )?(next )?month\b",
         lambda m: (_month_end(*_add_months(call_on, 1 if m.group(1) else 0)), "month_end")),
        (r"\b(?:beginning|start) of (?:next|the next) month\b",
         lambda m: (_day_in_month(*_add_months(call_on, 1), 5), "month_start")),
        (r"\b(payday|pay day|get paid|paycheck|pay check|my check comes|salary comes|wages come)\b",
         lambda m: (_payday_after(call_on, payday, "next month" in clause), "payday")),
        (r"\bnext week\b", lambda m: (_weekday_on_or_after(call_on, 6, True), "next_week")),
        (r"\bnext month\b", lambda m: (_payday_after(call_on, payday, True), "payday")),
        (r"\b(today|tonight|right now|right away|this afternoon|this evening|now|asap|as soon as we hang up)\b",
         lambda m: (call_on, "same_day")),
    ]
    return _first_match(clause, patterns)


def _first_match(clause: str, patterns: list[tuple[str, object]]) -> tuple[date, str, str] | None:
    for pattern, resolve in patterns:
        match = re.search(pattern, clause)
        if match:
            resolved = resolve(match)  # type: ignore[operator]
            if resolved is not None:
                return resolved[0], resolved[1], match.group(0).strip()
    return None


def _relative_days(count: str, call_on: date) -> tuple[date, str] | None:
    days = _EN_COUNTS.get(count.strip()) if not count.isdigit() else int(count)
    if days is None:
        days = chinese_number(count)
    if days is None or not 0 <= days <= 62:
        return None
    return call_on + timedelta(days=days), "relative"


def _zh_day_of_month(match: re.Match[str], call_on: date) -> tuple[date, str] | None:
    day = chinese_number(match.group(2))
    if day is None or not 1 <= day <= 31:
        return None
    if match.group(1):
        return _day_in_month(*_add_months(call_on, 1), day), "day_of_month"
    return _next_day_of_month(call_on, day), "day_of_month"


def _en_day_of_month(match: re.Match[str], call_on: date) -> tuple[date, str] | None:
    day = int(match.group(1))
    return (_next_day_of_month(call_on, day), "day_of_month") if 1 <= day <= 31 else None


def _zh_months_ahead(clause: str) -> int:
    return 2 if re.search(r"下下个?月", clause) else 1 if re.search(r"下个?月", clause) else 0


def _payday_after(call_on: date, payday: int, months_ahead: int | bool) -> date:
    if months_ahead:
        return _day_in_month(*_add_months(call_on, int(months_ahead)), payday)
    return _next_day_of_month(call_on, payday)


def _zh_amount(clause: str) -> float | None:
    match = re.search(rf"(\d+(?:\.\d+)?|{_CN_NUMBER})\s*(万|千)?\s*(?:块钱|块|元|多块)", clause) or \
        re.search(r"(?:还|转|打|付)\s*(\d+(?:\.\d+)?|[一二两三四五六七八九十]+[百千万][零一二两三四五六七八九十百千]*)"
                  r"\s*(万|千)?", clause)
    if not match:
        return None
    raw = match.group(1)
    value = float(raw) if re.fullmatch(r"\d+(?:\.\d+)?", raw) else chinese_number(raw)
    if value is None or value <= 0:
        return None
    return float(value) * {"万": 10000, "千": 1000}.get(match.group(2) or "", 1)


def _en_amount(clause: str) -> float | None:
    match = re.search(r"\$\s?(\d[\d,]*(?:\.\d+)?)", clause) or \
        re.search(r"\b(\d[\d,]*(?:\.\d+)?)\s*(?:dollars|bucks|usd|pounds|yuan|rmb)\b", clause)
    if not match:
        return None
    value = float(match.group(1).replace(",", ""))
    return value if value > 0 else None


def promises_in_text(text: str, call_on: date, payday_day_of_month: int = 15) -> list[Promise]:
    """Every promise to pay in one utterance, resolved against the call's local date (see the module table)."""
    found: list[Promise] = []
    lowered = " ".join(str(text).lower().split())
    for clause in _clauses(lowered):
        is_chinese = bool(re.search(r"[\u4e00-\u9fff]", clause))
        pay, refusal = (_ZH_PAY, _ZH_REFUSAL) if is_chinese else (_EN_PAY, _EN_REFUSAL)
        if not pay.search(clause) or refusal.search(clause):
            continue
        resolved = (_zh_date if is_chinese else _en_date)(clause, call_on, payday_day_of_month)
        if resolved is None:
            continue
        promised_on, basis, _ = resolved
        amount_in = _zh_amount if is_chinese else _en_amount
        amount = amount_in(clause)
        if amount is None:
            amount = amount_in(lowered)
        partial = bool((_ZH_PARTIAL if is_chinese else _EN_PARTIAL).search(clause))
        found.append(Promise(promised_on, amount, partial and amount is None, basis, clause))
    return found


def _clauses(text: str) -> list[str]:
    """Clauses of ASR text: punctuation splits; Chinese runs separated by one space are separate clauses."""
    parts = [part.strip() for part in _CLAUSE_SPLIT.split(text) if part.strip()]
    clauses: list[str] = []
    for part in parts:
        if re.search(r"[\u4e00-\u9fff]", part):
            clauses.extend(piece for piece in part.split(" ") if piece)
        else:
            clauses.append(part)
    return _joined_time_and_cue(clauses)


def _joined_time_and_cue(clauses: list[str]) -> list[str]:
    """Join a clause that only names a time to the next one (明天 / 我一定还 said as two chunks)."""
    joined: list[str] = []
    for clause in clauses:
        if joined and len(joined[-1]) <= 6 and not _ZH_PAY.search(joined[-1]) and re.search(
                r"[\u4e00-\u9fff]", clause):
            joined[-1] = joined[-1] + clause
        else:
            joined.append(clause)
    return joined


def call_promises(utterances: pd.DataFrame, payday_day_of_month: int = 15) -> pd.DataFrame:
    """Promises in customer utterances: one row per promise (columns PROMISE_COLUMNS).

    `utterances` needs call_id, customer_id, turn_no, text and call_on (the call's local date). A promise
    dated before the call (a misread) is dropped. `promise_id` is `<call_id>:<turn_no>:<n>`, stable on reruns.
    """
    missing = [c for c in ("call_id", "customer_id", "turn_no", "text", "call_on") if c not in utterances.columns]
    if missing:
        raise ValueError(f"utterances lack columns {missing}")
    rows = []
    ordered = utterances.sort_values(["call_id", "turn_no"], kind="stable")
    for row in ordered.itertuples(index=False):
        call_on = pd.Timestamp(row.call_on).date()
        promises = [p for p in promises_in_text(str(row.text), call_on, payday_day_of_month)
                    if p.promised_on >= call_on]
        for number, promise in enumerate(promises, start=1):
            rows.append((f"{row.call_id}:{row.turn_no}:{number}", row.call_id, row.customer_id, int(row.turn_no),
                         call_on, promise.promised_on, promise.amount, promise.is_partial, promise.basis,
                         promise.phrase[:120], "zh" if re.search(r"[\u4e00-\u9fff]", promise.phrase) else "en"))
    frame = pd.DataFrame(rows, columns=PROMISE_COLUMNS)
    return frame.astype({"turn_no": "int64", "amount": "float64", "is_partial": "bool"})
