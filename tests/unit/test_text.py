import pandas as pd
import pytest

from insights.text import (
    cleaned_utterance,
    contains_pii,
    content_hash,
    customer_text,
    customer_utterances,
    redact_pii,
    text_language,
)

# --- redact_pii ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的电话是13812345678你打这个", "我的电话是[PHONE]你打这个"),
        ("手机 138 1234 5678，谢谢", "手机 [PHONE]，谢谢"),
        ("打这个138-1234-5678吧", "打这个[PHONE]吧"),
        ("+86 138 1234 5678", "[PHONE]"),
        ("号码+8613912345678", "号码[PHONE]"),
        ("号码(+86)15912345678", "号码[PHONE]"),
        ("１３８１２３４５６７８是我的号码", "[PHONE]是我的号码"),
        ("座机是010-12345678", "座机是[PHONE]"),
        ("Call me at (212) 555-0147 tomorrow", "Call me at [PHONE] tomorrow"),
        ("my number is 212-555-0147.", "my number is [PHONE]."),
        ("or 212.555.0147", "or [PHONE]"),
        ("reach me on +1 212 555 0147 please", "reach me on [PHONE] please"),
    ],
)
def test_redact_pii_replaces_phone_numbers(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我身份证号是110101199003071234对吧", "我身份证号是[ID]对吧"),
        ("身份证11010119900307123X", "身份证[ID]"),
        ("id 11010119900307123x ok", "id [ID] ok"),
        ("My ID number is 110101 19900307 1234.", "My ID number is [ID]."),
    ],
)
def test_redact_pii_replaces_prc_id_numbers(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("卡号6222021234567890123你查一下", "卡号[CARD]你查一下"),
        ("我的卡是6222 0212 3456 7890", "我的卡是[CARD]"),
        ("card 6222-0212-3456-7890-123 was frozen", "card [CARD] was frozen"),
        ("the card ending 4111111111111111 declined", "the card ending [CARD] declined"),
    ],
)
def test_redact_pii_replaces_bank_cards(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("邮箱是zhang.wei@163.com你发过来", "邮箱是[EMAIL]你发过来"),
        ("发到13812345678@qq.com", "发到[EMAIL]"),
        ("email me at john.doe+loans@example.co.uk.", "email me at [EMAIL]."),
    ],
)
def test_redact_pii_replaces_emails(text: str, expected: str) -> None:
    assert redact_pii(text) == expected


def test_redact_pii_id_wins_over_phone_and_card() -> None:
    # An ID contains 11-digit runs that look like mobiles, and 18 digits is a card length.
    assert redact_pii("110101199003071234") == "[ID]"
    assert redact_pii("13812345678 和 110101199003071234") == "[PHONE] 和 [ID]"


@pytest.mark.parametrize(
    "text",
    [
        "我这个月欠了3000元，2026-06-15之前还",
        "我15号发工资，到时候还1500",
        "月薪8000，欠款12000元，2026年6月15日到期",
        "I owe $450 and can pay in 3 months",
        "I will pay 1,500.00 on 06/15/2026 at 10:30",
        "订单号20260615 金额2599.00",
        "我已经逾期45天了，还差 600 块",
    ],
)
def test_redact_pii_leaves_amounts_and_dates(text: str) -> None:
    assert redact_pii(text) == text
    assert not contains_pii(text)


@pytest.mark.parametrize(
    "text",
    [
        "我的电话是13812345678，身份证110101199003071234，卡6222021234567890123，邮箱a@b.cn",
        "Call (212) 555-0147 or mail jane@example.com, card 4111 1111 1111 1111",
    ],
)
def test_redact_pii_is_idempotent_and_leaves_no_pii(text: str) -> None:
    once = redact_pii(text)
    assert redact_pii(once) == once
    assert contains_pii(text)
    assert not contains_pii(once)


# --- cleaned_utterance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("嗯，那个，我这个月就是说没钱还了啊", "我这个月没钱还了"),
        ("呃 我 下周 还", "我 下周 还"),
        ("对对对，我知道了", "对，我知道了"),
        ("这个这个月我失业了", "这个月我失业了"),
        ("额，我的额度还有多少", "我的额度还有多少"),
        ("Um, I lost my job, you know.", "I lost my job."),
        ("Like, I forgot the due date", "I forgot the due date"),
        ("I was, like, uh, broke", "I was, broke"),
        ("I mean, I will pay on Friday", "I will pay on Friday"),
        ("[noise] 我  [笑声] 下周还  <unk>", "我 下周还"),
        ("  I   can   pay   ", "I can pay"),
    ],
)
def test_cleaned_utterance_removes_fillers(text: str, expected: str) -> None:
    assert cleaned_utterance(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I would like to pay next week",
        "I like the new plan",
        "you know what, I'm not paying",
        "do you know my number",
        "what I mean is I can't pay",
        "I mean it",
        "I was in the ER last week",
        "你的金额不对",
        "额度还有多少",
        "那个钱我下周还",
        "我要那个。",
        "你们行行好，宽限几天吧",
        "我会好好还款的",
        "我的电话是[PHONE]",
        "uh-huh, that's right",
    ],
)
def test_cleaned_utterance_keeps_content_words(text: str) -> None:
    assert cleaned_utterance(text) == text


# --- customer_utterances / customer_text ---------------------------------------------------------


def _turns() -> pd.DataFrame:
    rows = [
        ("c2", "u2", 2, "customer", "Um, I lost my job last month and can't pay"),
        ("c1", "u1", 3, "customer", "嗯，我失业了，这个月没钱还"),
        ("c1", "u1", 1, "agent", "您好，这里是某某消费金融，请问是张先生吗？"),
        ("c1", "u1", 2, "customer", "喂，你好，是我"),
        ("c1", "u1", 4, "agent", "我们可以帮您申请延期还款"),
        ("c1", "u1", 5, "customer", "好的"),
        ("c1", "u1", 6, "customer", "那能不能延期三个月"),
        ("c2", "u2", 1, "customer", "Hello? Yes, speaking."),
        ("c2", "u2", 3, "agent", "I understand, we can set up a payment plan for you"),
        ("c2", "u2", 4, "customer", "ok"),
        ("c3", "u3", 1, "agent", "Hello, is this Mr Smith?"),
        ("c3", "u3", 2, "customer", "who is this"),
        ("c3", "u3", 3, "customer", "嗯嗯"),
    ]
    return pd.DataFrame(rows, columns=["call_id", "customer_id", "turn_no", "speaker", "text"])


def test_customer_utterances_keeps_only_meaningful_customer_turns_in_order() -> None:
    result = customer_utterances(_turns())
    assert list(result.columns) == ["call_id", "customer_id", "turn_no", "text"]
    assert list(zip(result["call_id"], result["turn_no"], strict=True)) == [("c1", 3), ("c1", 6), ("c2", 2)]
    assert list(result["text"]) == [
        "我失业了，这个月没钱还",
        "那能不能延期三个月",
        "I lost my job last month and can't pay",
    ]
    assert isinstance(result.index, pd.RangeIndex)
    assert list(result.index) == [0, 1, 2]


def test_customer_utterances_never_passes_agent_turns() -> None:
    turns = _turns()
    turns["speaker"] = "agent"
    assert customer_utterances(turns).empty


def test_customer_utterances_does_not_mutate_input() -> None:
    turns = _turns()
    before = turns.copy(deep=True)
    customer_utterances(turns)
    customer_text(turns)
    pd.testing.assert_frame_equal(turns, before)


def test_customer_utterances_min_chars_ignores_spaces_in_chinese() -> None:
    turns = pd.DataFrame(
        {
            "call_id": ["c1", "c1", "c1"],
            "customer_id": ["u1"] * 3,
            "turn_no": [1, 2, 3],
            "speaker": ["customer"] * 3,
            "text": ["没 钱 还", "我 失 业 了", None],
        }
    )
    assert list(customer_utterances(turns)["text"]) == ["我 失 业 了"]
    assert list(customer_utterances(turns, min_chars=3)["text"]) == ["没 钱 还", "我 失 业 了"]


def test_customer_utterances_cleans_each_distinct_text_once_with_the_same_result(monkeypatch) -> None:
    import insights.text as text_module

    repeated = ["嗯，我失业了，这个月没钱还", "好的", "um, I lost my job", None, "嗯，我失业了，这个月没钱还", "好的"]
    turns = pd.DataFrame(
        {
            "call_id": [f"c{n % 3}" for n in range(12)],
            "customer_id": [f"u{n % 3}" for n in range(12)],
            "turn_no": list(range(12)),
            "speaker": ["customer", " Customer "] * 6,
            "text": repeated * 2,
        }
    )
    # the reference: every turn on its own
    alone = pd.concat([customer_utterances(turns.iloc[[n]]) for n in range(len(turns))])
    expected = alone.sort_values(["call_id", "turn_no"]).reset_index(drop=True)
    cleaned: list[str] = []
    original = text_module.cleaned_utterance
    monkeypatch.setattr(text_module, "cleaned_utterance", lambda text: cleaned.append(text) or original(text))

    result = customer_utterances(turns)

    pd.testing.assert_frame_equal(result, expected)
    assert len(result) == 6 and sorted(cleaned) == sorted({text for text in repeated if text})


def test_customer_utterances_requires_columns() -> None:
    with pytest.raises(ValueError, match="speaker"):
        customer_utterances(pd.DataFrame({"call_id": [], "text": []}))


def test_customer_text_joins_kept_utterances_per_call() -> None:
    result = customer_text(_turns())
    assert list(result.columns) == ["call_id", "customer_id", "text"]
    assert list(result["call_id"]) == ["c1", "c2"]  # c3 has nothing meaningful
    assert result.loc[0, "text"] == "我失业了，这个月没钱还 那能不能延期三个月"
    assert result.loc[1, "customer_id"] == "u2"
    assert list(result.index) == [0, 1]


def test_customer_text_of_no_customer_turns_is_empty_with_columns() -> None:
    result = customer_text(_turns().iloc[0:0])
    assert result.empty
    assert list(result.columns) == ["call_id", "customer_id", "text"]


# --- content_hash / text_language ----------------------------------------------------------------


def test_content_hash_depends_on_text_and_model() -> None:
    import hashlib

    key = content_hash("我失业了", "use_onnx:x")
    assert key == hashlib.sha256("use_onnx:x\x1f我失业了".encode()).hexdigest()
    assert key != content_hash("我失业了", "use_onnx:y")
    assert key != content_hash("我失业了 ", "use_onnx:x")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我失业了没钱还", "zh"),
        ("OK我知道了", "zh"),
        ("我的APP打不开", "zh"),
        ("打[PHONE]", "zh"),
        ("I lost my job and can't pay", "en"),
        ("I paid via 支付宝 yesterday", "en"),
        ("", "en"),
    ],
)
def test_text_language(text: str, language: str) -> None:
    assert text_language(text) == language
