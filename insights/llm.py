"""Optional LLM call insight: a short summary of what the customer is going through plus structured fields.

Off by default (`insight.llm.backend: none`). When on, the nightly stage stores the readings in their own table
(`call_llm_insights`) beside the embedding result, never replacing it; a call where the two disagree on the
intent is flagged (`llm_disagrees` in `call_insights`) and the customer goes to needs_review.

A *reader* is any object with `model_id: str` and `read(call_text, call_on) -> CallReading`. Two are built in:

- `OpenAICompatibleReader`: POST `{base_url}/chat/completions` (the OpenAI chat-completions protocol, spoken by
  vLLM, llama.cpp's `llama-server`, Ollama and others); stdlib HTTP, JSON mode, temperature 0.
- `TransformersReader`: a local `transformers` causal-LM directory (never a hub id: nothing downloads), chat
  template + greedy decoding; the model is loaded once per reader.

Both send the same prompt (`prompt_messages`) and parse the answer with `parsed_reading`, which keeps only codes
the taxonomy knows.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

logger = logging.getLogger(__name__)

SENTIMENTS = ("negative", "neutral", "positive")
CALL_INTENTS = ("hardship", "forgetful", "intent_to_default")
READING_COLUMNS = ["call_id", "customer_id", "model_id", "summary", "reason", "sub_reason", "promised_on",
                   "sentiment", "error"]
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class CallReading:
    """What an LLM read in one call; `reason` is an intent code or 'unclear'."""

    summary: str
    reason: str
    sub_reason: str
    promised_on: date | None
    sentiment: str


class CallReader(Protocol):
    """Anything that reads a redacted call transcript (the customer's turns) and returns a CallReading."""

    model_id: str

    def read(self, call_text: str, call_on: date) -> CallReading:
        """Return the reading of one call held on `call_on` (the customer's local date)."""
        ...


def prompt_messages(call_text: str, call_on: date, sub_reasons: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Return the chat messages asking for a JSON reading of one call, listing the allowed codes."""
    codes = "\n".join(f"- {intent}: {', '.join(subs)}" for intent, subs in sub_reasons.items())
    system = (
        "You read collection-call transcripts of a consumer-finance lender (Chinese or English; personal data is "
        "already replaced by placeholders such as [PHONE]). Only the customer's words are given. Answer with one "
        "JSON object and nothing else, with keys: summary (one sentence in English, at most 30 words, what the "
        "customer is going through), reason (one of: hardship, forgetful, intent_to_default, unclear), "
        "sub_reason (one code of that reason, or empty), promised_on (YYYY-MM-DD if the customer promises to pay "
        "by a date, else null), sentiment (negative, neutral or positive).\nReasons and their sub-reasons:\n"
        f"{codes}"
    )
    user = f"Call date: {call_on.isoformat()}\nCustomer said:\n{call_text}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parsed_reading(content: str, sub_reasons: Mapping[str, Sequence[str]]) -> CallReading:
    """Return the reading in a model's answer; unknown codes become 'unclear'/'' and bad dates None.

    Raises ValueError when the answer holds no JSON object.
    """
    match = _JSON_OBJECT.search(content or "")
    if not match:
        raise ValueError(f"the model's answer holds no JSON object: {content[:200]!r}")
    try:
        raw = json.loads(match.group(0))
    except json.JSONDecodeError as error:
        raise ValueError(f"the model's answer is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise ValueError("the model's answer is not a JSON object")
    reason = str(raw.get("reason") or "").strip().lower()
    reason = reason if reason in sub_reasons else "unclear"
    sub_reason = str(raw.get("sub_reason") or "").strip().lower()
    sub_reason = sub_reason if reason != "unclear" and sub_reason in sub_reasons.get(reason, ()) else ""
    sentiment = str(raw.get("sentiment") or "").strip().lower()
    promised = raw.get("promised_on")
    try:
        promised_on = date.fromisoformat(str(promised)) if promised else None
    except ValueError:
        promised_on = None
    return CallReading(summary=" ".join(str(raw.get("summary") or "").split())[:300], reason=reason,
                       sub_reason=sub_reason, promised_on=promised_on,
                       sentiment=sentiment if sentiment in SENTIMENTS else "neutral")


class OpenAICompatibleReader:
    """Reads calls through an OpenAI-compatible `/chat/completions` endpoint (vLLM, llama-server, Ollama)."""

    def __init__(self, base_url: str, model: str, sub_reasons: Mapping[str, Sequence[str]],
                 api_key_env: str | None = None, timeout_s: float = 60.0, json_mode: bool = True,
                 max_tokens: int = 300) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"openai-compatible:{model}"
        self.sub_reasons = {k: tuple(v) for k, v in sub_reasons.items()}
        self.api_key = os.environ.get(api_key_env) if api_key_env else None
        self.timeout_s = timeout_s
        self.json_mode = json_mode
        self.max_tokens = max_tokens

    def read(self, call_text: str, call_on: date) -> CallReading:
        """Return the reading of one call (one HTTP request)."""
        body: dict[str, Any] = {"model": self.model,
                                "messages": prompt_messages(call_text, call_on, self.sub_reasons),
                                "temperature": 0, "max_tokens": self.max_tokens, "stream": False}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - configured URL
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise RuntimeError(f"LLM endpoint {self.base_url} answered {error.code}: {detail}") from error
        except (urllib.error.URLError, TimeoutError) as error:
            raise RuntimeError(f"LLM endpoint {self.base_url} unreachable: {error}") from error
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as error:
            raise ValueError(f"LLM endpoint {self.base_url} sent no choices[0].message.content") from error
        return parsed_reading(str(content), self.sub_reasons)


class TransformersReader:
    """Reads calls with a local transformers causal-LM directory (chat template, greedy decoding)."""

    def __init__(self, model_path: str | Path, sub_reasons: Mapping[str, Sequence[str]],
                 max_new_tokens: int = 200) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"LLM model directory not found: {path} (a local path is required; hub ids "
                                    "are refused because nothing may download at run time)")
        self.path = path
        self.model_id = f"transformers:{path.name}"
        self.sub_reasons = {k: tuple(v) for k, v in sub_reasons.items()}
        self.max_new_tokens = max_new_tokens
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self._model = AutoModelForCausalLM.from_pretrained(str(self.path), local_files_only=True)
            self._model.eval()

    def read(self, call_text: str, call_on: date) -> CallReading:
        """Return the reading of one call (greedy generation)."""
        import torch

        self._load()
        messages = prompt_messages(call_text, call_on, self.sub_reasons)
        inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True)
        with torch.no_grad():
            output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        answer = self._tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return parsed_reading(answer, self.sub_reasons)


def reader_from_config(config: Mapping[str, Any] | None, sub_reasons: Mapping[str, Sequence[str]]) -> CallReader | None:
    """Return the configured reader, or None when the LLM stage is off (`backend: none`, the default)."""
    config = dict(config or {})
    backend = str(config.get("backend") or "none")
    if backend == "none":
        return None
    if backend == "openai_compatible":
        if not config.get("base_url") or not config.get("model"):
            raise ValueError("insight.llm: backend openai_compatible needs base_url and model")
        return OpenAICompatibleReader(str(config["base_url"]), str(config["model"]), sub_reasons,
                                      api_key_env=config.get("api_key_env"),
                                      timeout_s=float(config.get("timeout_s", 60)),
                                      json_mode=bool(config.get("json_mode", True)))
    if backend == "transformers":
        if not config.get("model_path"):
            raise ValueError("insight.llm: backend transformers needs model_path (a local directory)")
        return TransformersReader(str(config["model_path"]), sub_reasons)
    raise ValueError(f"insight.llm: unknown backend {backend!r} (none | openai_compatible | transformers)")


def call_readings(calls: pd.DataFrame, reader: CallReader, max_calls: int | None = None) -> pd.DataFrame:
    """Read every call (call_id, customer_id, call_on, text): one row per call, errors kept in `error`.

    A failed call (endpoint down, unparseable answer) gets reason 'unclear' and its error, so one bad answer
    never stops the night and is never mistaken for agreement.
    """
    rows = []
    chosen = calls.sort_values("call_id", kind="stable")
    if max_calls is not None:
        chosen = chosen.head(max_calls)
    for call in chosen.itertuples(index=False):
        try:
            reading = reader.read(str(call.text), pd.Timestamp(call.call_on).date())
            rows.append((call.call_id, call.customer_id, reader.model_id, reading.summary, reading.reason,
                         reading.sub_reason, reading.promised_on, reading.sentiment, ""))
        except (RuntimeError, ValueError) as error:
            logger.warning("LLM reading of call %s failed: %s", call.call_id, error)
            rows.append((call.call_id, call.customer_id, reader.model_id, "", "unclear", "", None, "", str(error)))
    return pd.DataFrame(rows, columns=READING_COLUMNS)


def disagreements(calls: pd.DataFrame, readings: pd.DataFrame) -> pd.Series:
    """Per call of `calls` (same order): True when both sides state an intent and the intents differ."""
    reason = calls["call_id"].map(readings.set_index("call_id")["reason"]) if len(readings) else \
        pd.Series("", index=calls.index)
    stated = calls["intent"].isin(CALL_INTENTS) & reason.isin(CALL_INTENTS)
    return (stated & (calls["intent"] != reason)).fillna(False).astype(bool)
