"""Unit tests of insights.promises: Chinese and English promises to pay, resolved against the call date."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from insights.promises import PROMISE_COLUMNS, call_promises, chinese_number, promises_in_text

WEDNESDAY = date(2026, 6, 24)


@pytest.mark.parametrize(("text", "promised_on", "basis"), [
    ("嗯 那个 我明天一定还", date(2026, 6, 25), "relative"),
    ("后天我把钱转给你", date(2026, 6, 26), "relative"),
    ("下周五发工资后还你", date(2026, 7, 3), "weekday"),
    ("这周五之前还上", date(2026, 6, 26), "weekday"),
    ("15号之前还上", date(2026, 7, 15), "day_of_month"),
    ("二十八号我去还", date(2026, 6, 28), "day_of_month"),
    ("月底之前一定还上", date(2026, 6, 30), "month_end"),
    ("等发工资后我就还", date(2026, 7, 15), "payday"),
    ("下下个月发了钱我先还", date(2026, 8, 15), "payday"),
    ("好的好的 我等下就处理", WEDNESDAY, "same_day"),
    ("过几天凑齐了就还", date(2026, 6, 27), "relative"),
    ("i'll pay next friday", date(2026, 7, 3), "weekday"),
    ("i can pay on the 15th", date(2026, 7, 15), "day_of_month"),
    ("i'll pay after payday", date(2026, 7, 15), "payday"),
    ("i will pay you tomorrow", date(2026, 6, 25), "relative"),
    ("i'll pay by the end of the month", date(2026, 6, 30), "month_end"),
    ("let me pay it tonight", WEDNESDAY, "same_day"),
    ("i can pay in a couple of days", date(2026, 6, 26), "relative"),
])
def test_promises_resolve_against_the_call_date(text, promised_on, basis):
    found = promises_in_text(text, WEDNESDAY, payday_day_of_month=15)
    assert [(p.promised_on, p.basis) for p in found] == [(promised_on, basis)]


@pytest.mark.parametrize("text", [
    "我明天也还不了", "我还没找到工作", "下个月也没钱还", "i can't pay till next month", "i won't pay tomorrow",
    "我以为早扣了", "the 15th was my birthday", "我下周一在医院",
])
def test_refusals_and_plain_dates_are_not_promises(text):
    assert promises_in_text(text, WEDNESDAY) == []


def test_amounts_and_partial_promises():
    assert promises_in_text("我下周三还两千", WEDNESDAY)[0].amount == 2000
    assert promises_in_text("我先还五百块 明天转给你", WEDNESDAY)[0].amount == 500
    assert promises_in_text("i'll send $200 tomorrow", WEDNESDAY)[0].amount == 200
    partial = promises_in_text("下个月发了钱我先还一点", WEDNESDAY)[0]
    assert partial.is_partial and partial.amount is None and partial.promised_on == date(2026, 7, 15)


def test_payday_day_is_configurable_and_month_ends_clamp():
    assert promises_in_text("发工资后还", WEDNESDAY, payday_day_of_month=10)[0].promised_on == date(2026, 7, 10)
    assert promises_in_text("31号还", date(2026, 2, 3))[0].promised_on == date(2026, 2, 28)


def test_chinese_numbers():
    spoken = ("十五", "二十八", "两千五", "一万二", "三万", "两千零五", "15", "百", "abc")
    assert [chinese_number(t) for t in spoken] == [15, 28, 2500, 12000, 30000, 2005, 15, 100, None]


def test_call_promises_frame_has_stable_ids_and_drops_past_dates():
    utterances = pd.DataFrame({
        "call_id": ["A", "A", "B"], "customer_id": ["c1", "c1", "c2"], "turn_no": [3, 1, 2],
        "text": ["我明天一定还", "你好", "i'll pay next friday"],
        "call_on": [WEDNESDAY, WEDNESDAY, date(2026, 6, 29)],
    })
    found = call_promises(utterances)
    assert list(found.columns) == PROMISE_COLUMNS
    assert found["promise_id"].tolist() == ["A:3:1", "B:2:1"]
    assert found["promised_on"].tolist() == [date(2026, 6, 25), date(2026, 7, 10)]
    assert found["language"].tolist() == ["zh", "en"]
    pd.testing.assert_frame_equal(found, call_promises(utterances.iloc[::-1]))
    with pytest.raises(ValueError, match="call_on"):
        call_promises(utterances.drop(columns="call_on"))
