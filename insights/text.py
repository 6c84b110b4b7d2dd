"""Text preparation for collection-call transcripts: PII redaction, ASR clean-up, customer utterances.

Everything here is pure and cheap (regular expressions and pandas); no model is imported.

Glossary: ASR = automatic speech recognition (the transcripts come from it); PII = personally
identifying information; CJK = Chinese/Japanese/Korean ideographs (here: Han characters).
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

__all__ = [
    "contains_pii",
    "content_hash",
    "cleaned_utterance",
    "customer_text",
    "customer_utterances",
    "redact_pii",
    "text_language",
]

# --- PII -----------------------------------------------------------------------------------------

# Full-width forms (typed with Chinese IMEs, some ASR output) mapped one-to-one onto ASCII, so that
# match positions in the mapped text are positions in the original text.
_FULL_WIDTH_TO_ASCII = str.maketrans(
    "０１２３４５６７８９＋－（）＠．＿ＸｘＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｙｚ\u3000",
    "0123456789+-()@._XxABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwyz ",
)

_NO_DIGIT_BEFORE = r"(?<![0-9])"
_NO_DIGIT_AFTER = r"(?![0-9])"

# Alternatives are tried in this order at each position: email, ID, card, then phones. Every
# number pattern is anchored on digit-run boundaries (ASCII digits only, so digits glued to
# Chinese characters are still found) and so can never match inside a longer number.
_PII_PATTERNS: dict[str, str] = {
    "EMAIL": r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    # PRC resident ID: 6-digit region, birth date 18xx-20xx, 3-digit sequence, check digit/X;
    # also written in 6-8-4 groups.
    "ID": (
        _NO_DIGIT_BEFORE
        + r"[1-9][0-9]{5}[ -]?(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
        r"[ -]?[0-9]{3}[0-9Xx]" + _NO_DIGIT_AFTER
    ),
    # Bank card: 16-19 digits, contiguous, in groups of four (last group 1-4), or 6 + 13.
    "CARD": (
        _NO_DIGIT_BEFORE
        + r"(?:[0-9]{16,19}|[0-9]{4}(?P<card_sep>[ -])[0-9]{4}(?P=card_sep)[0-9]{4}(?P=card_sep)[0-9]{4}"
        r"(?:(?P=card_sep)[0-9]{1,3})?|[0-9]{6}[ -][0-9]{13})" + _NO_DIGIT_AFTER
    ),
    # Mainland mobile: optional +86 / 0086 / (+86), then 1[3-9] and 9 digits, single spaces or dashes allowed.
    "CN_PHONE": (
        r"(?:(?:\(\+?86\)|(?<![0-9])\+86|(?<![0-9])0086)[ -]?|(?<![0-9]))"
        r"1[3-9](?:[ -]?[0-9]){9}" + _NO_DIGIT_AFTER
    ),
    # North American: (212) 555-0147, 212-555-0147, 212.555.0147, +1 212 555 0147, 1-800-555-0199.
    "US_PHONE": (
        r"(?:(?<![0-9])\+?1[ .-]?)?(?:\([0-9]{3}\)[ .-]?|(?<![0-9])[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}"
        + _NO_DIGIT_AFTER
        + r"|(?<![0-9])\+1[0-9]{10}"
        + _NO_DIGIT_AFTER
    ),
    # Mainland landline with area code: 010-12345678, 0755-1234567.
    "LANDLINE": _NO_DIGIT_BEFORE + r"0[1-9][0-9]{1,2}-[0-9]{7,8}" + _NO_DIGIT_AFTER,
}
_PLACEHOLDERS = {
    "EMAIL": "[EMAIL]",
    "ID": "[ID]",
    "CARD": "[CARD]",
    "CN_PHONE": "[PHONE]",
    "US_PHONE": "[PHONE]",
    "LANDLINE": "[PHONE]",
}
_MAY_HOLD_PII = re.compile(r"[\d@＠]")
_PII = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PII_PATTERNS.items()))


def _pii_matches(text: str) -> list[re.Match[str]]:
    """Return non-overlapping PII matches, found on the ASCII-folded `text` (positions unchanged)."""
    if not _MAY_HOLD_PII.search(text):  # every pattern needs a digit or an @: most turns have neither
        return []
    return list(_PII.finditer(text.translate(_FULL_WIDTH_TO_ASCII)))


def redact_pii(text: str) -> str:
    """Return `text` with phone, ID, bank-card and email PII replaced by [PHONE]/[ID]/[CARD]/[EMAIL].

    Amounts and dates (3000元, 2026-06-15, 15号, $450) are left alone; redacting twice equals once.
    """
    pieces: list[str] = []
    position = 0
    for match in _pii_matches(text):
        kind = next(name for name in _PLACEHOLDERS if match.group(name) is not None)
        pieces.append(text[position : match.start()])
        pieces.append(_PLACEHOLDERS[kind])
        position = match.end()
    pieces.append(text[position:])
    return "".join(pieces)


def contains_pii(text: str) -> bool:
    """Return True if `text` still holds something `redact_pii` would replace."""
    return _PII.search(text.translate(_FULL_WIDTH_TO_ASCII)) is not None


# --- ASR clean-up --------------------------------------------------------------------------------

_PUNCT = ",，、.。!！?？;；:：…~～"
# ASR noise tags; redaction placeholders such as [PHONE] are deliberately not in the list.
_NOISE_TAG = re.compile(
    r"[\[<(（【](?:noise|laughter|laugh|music|unk|inaudible|silence|sil|breath|cough|crosstalk|"
    r"笑|笑声|噪音|杂音|静音|音乐|咳嗽|听不清)[\]>)）】]",
    re.IGNORECASE,
)
# Runs of an acknowledgement character (对对, 是是是, 好好好) collapse to one; pairs other than 对对
# are words (好好还款, 行行好) and stay.
_REPEATED_ACK = re.compile(r"(对)\1+|([是行好喂])\2{2,}")
# Stuttered demonstratives (这个这个, 那个那个那个) collapse to one.
_REPEATED_DEMONSTRATIVE = re.compile(r"(这个|那个)(?:\s*\1)+")
# Hesitation sounds with no lexical use: always removed.
_ZH_SOUND_FILLER = re.compile(r"[嗯呃啊哦噢]+")
# 额 is also a morpheme (额度, 金额, 余额, 额外): removed only when it stands alone.
_ZH_E_FILLER = re.compile(rf"(?:^|(?<=[\s{_PUNCT}]))额+(?![度外头定满数])")
# 那个 / 就是说 as hesitation: 那个 only as a clause of its own (那个，我想问一下), never 那个钱 or 我要那个。
_ZH_WORD_FILLER = re.compile(rf"(?:^|(?<=[\s{_PUNCT}]))那个(?=[\s{_PUNCT}])|(?<!也)就是说")
# Case-sensitive on purpose: "ER" (emergency room) is a word, "er"/"Er" is a hesitation.
_EN_SOUND_FILLER = re.compile(r"(?<![\w'-])(?:[Uu]m+|[Uu]h+|[Uu]hm|[Ee]r+m*|[Hh]m+|[Mm]m+|[Ee]hm+)(?![\w'-])")
# 'like' / 'you know' / 'I mean' only when set off as a parenthetical: "Like, I ..." or ", like, ";
# "I would like to", "you know my number" and "I mean it" are kept.
_EN_PARENTHETICAL = re.compile(
    r"(?:^|(?<=[,，]))\s*(?:like|you know|i mean)\s*(?:[,，]|(?=[.!?。！？]|$))",
    re.IGNORECASE,
)
_SPACE_BEFORE_PUNCT = re.compile(rf"\s+([{_PUNCT}])")
_REPEATED_PUNCT = re.compile(rf"([{_PUNCT}])(?:\s*[{_PUNCT}])+")
_LEADING_PUNCT = re.compile(rf"^[\s{_PUNCT}]+")
_WHITESPACE = re.compile(r"\s+")


def _tidy_punctuation(text: str) -> str:
    """Collapse whitespace and the punctuation left behind by removed fillers."""
    text = _WHITESPACE.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _REPEATED_PUNCT.sub(lambda match: _strongest_punct(match.group(0)), text)
    return _LEADING_PUNCT.sub("", text).strip()


def _strongest_punct(run: str) -> str:
    """Return the one mark to keep from a run like '，。': the last sentence end, else the first mark."""
    marks = [char for char in run if not char.isspace()]
    enders = [char for char in marks if char in ".。!！?？…"]
    return enders[-1] if enders else marks[0]


def cleaned_utterance(text: str) -> str:
    """Return `text` without ASR noise tags and hesitation fillers (嗯, 那个, um, "like,"), spaces collapsed.

    Conservative: only sounds and set-off fillers go, never content words (额度, "I would like to").
    """
    cleaned = _NOISE_TAG.sub(" ", text)
    # the substring tests only skip patterns that cannot match (most turns have no 这个/那个, 额 or 就是说)
    if "这个" in cleaned or "那个" in cleaned:
        cleaned = _REPEATED_DEMONSTRATIVE.sub(r"\1", cleaned)
    cleaned = _REPEATED_ACK.sub(lambda match: match.group(1) or match.group(2), cleaned)
    cleaned = _ZH_SOUND_FILLER.sub("", cleaned)
    if "额" in cleaned:
        cleaned = _ZH_E_FILLER.sub("", cleaned)
    if "那个" in cleaned or "就是说" in cleaned:
        cleaned = _ZH_WORD_FILLER.sub("", cleaned)
    cleaned = _EN_SOUND_FILLER.sub("", cleaned)
    cleaned = _tidy_punctuation(cleaned)
    # Parentheticals are recognised by their commas, so look for them after the tidy-up (", um, like, ").
    cleaned = _EN_PARENTHETICAL.sub(",", cleaned)
    return _tidy_punctuation(cleaned)


# --- customer utterances -------------------------------------------------------------------------

_TURN_COLUMNS = ["call_id", "customer_id", "turn_no", "speaker", "text"]
# Whole utterances that are only greeting / identity confirmation / acknowledgement.
_GREETING_TOKENS = [
    "喂",
    "您好",
    "你好",
    "是我",
    "我是",
    "我就是",
    "好的",
    "是的",
    "对的",
    "哪位",
    "请问哪位",
    "你是谁",
    "你哪位",
    "谁啊",
    "在的",
    "hello",
    "hi",
    "hey",
    "yes",
    "yeah",
    "yep",
    "speaking",
    "this is he",
    "this is she",
    "this is me",
    "who is this",
    "who's this",
    "who is calling",
    "who's calling",
    "ok",
    "okay",
]
_GREETING = re.compile(
    r"(?:\s*(?:" + "|".join(sorted(map(re.escape, _GREETING_TOKENS), key=len, reverse=True)) + r")\s*)+"
)
_NOT_WORD = re.compile(r"[^\w\s']+")


def _is_greeting(text: str) -> bool:
    """Return True when `text` is only greetings/acknowledgements (喂，你好，是我 / hello, yes, speaking)."""
    words = _NOT_WORD.sub(" ", text.lower()).strip()
    return words == "" or _GREETING.fullmatch(words) is not None


def _content_length(text: str) -> int:
    """Return the length that counts towards `min_chars`: spaces are ignored in Chinese text."""
    return len(_WHITESPACE.sub("", text)) if text_language(text) == "zh" else len(text)


def customer_utterances(turns: pd.DataFrame, min_chars: int = 4) -> pd.DataFrame:
    """Return the customer's cleaned, meaningful turns: columns call_id, customer_id, turn_no, text.

    Agent turns, greetings/acknowledgements and utterances shorter than `min_chars` are dropped;
    rows are sorted by call_id, turn_no.
    """
    missing = [column for column in _TURN_COLUMNS if column not in turns.columns]
    if missing:
        raise ValueError(f"turns is missing columns {missing}; expected {_TURN_COLUMNS}")
    speaker = turns["speaker"].astype("string").str.strip().str.lower()
    customer = turns.loc[speaker.eq("customer").fillna(False).to_numpy(dtype=bool), _TURN_COLUMNS[:3]].copy()
    texts = turns.loc[customer.index, "text"].tolist()
    # Transcripts repeat turns word for word, so each distinct text is cleaned and judged once.
    cleaned: dict[str, str] = {}
    for text in texts:
        if isinstance(text, str) and text not in cleaned:
            cleaned[text] = cleaned_utterance(text)
    customer_texts = [cleaned[text] if isinstance(text, str) else "" for text in texts]
    customer["text"] = customer_texts
    meaningful = {text: not _is_greeting(text) and _content_length(text) >= min_chars
                  for text in {*cleaned.values(), ""}}
    kept = customer.loc[[meaningful[text] for text in customer_texts]]
    return kept.sort_values(["call_id", "turn_no"], kind="stable").reset_index(drop=True)


def customer_text(turns: pd.DataFrame, min_chars: int = 4) -> pd.DataFrame:
    """Return one row per call with kept customer utterances: call_id, customer_id, text (space-joined)."""
    utterances = customer_utterances(turns, min_chars=min_chars)
    calls = utterances.groupby(["call_id", "customer_id"], sort=True, as_index=False).agg(
        text=("text", " ".join)
    )
    return calls[["call_id", "customer_id", "text"]].reset_index(drop=True)


# --- keys and language ---------------------------------------------------------------------------

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_PLACEHOLDER = re.compile(r"\[(?:PHONE|ID|CARD|EMAIL)\]")


def content_hash(text: str, model_id: str) -> str:
    """Return the embedding-cache key of `text` under `model_id`: sha256 hex of model_id + '\\x1f' + text."""
    return hashlib.sha256(f"{model_id}\x1f{text}".encode()).hexdigest()


def text_language(text: str) -> str:
    """Return 'zh' when Han characters dominate `text` (each weighs two Latin letters), else 'en'.

    Redaction placeholders are ignored; text with neither script is 'en'.
    """
    letters = _PLACEHOLDER.sub("", text)
    return "zh" if 2 * _HAN.subn("", letters)[1] > _LATIN_LETTER.subn("", letters)[1] else "en"
