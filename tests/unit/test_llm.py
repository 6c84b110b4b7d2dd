"""insights.llm: the OpenAI-compatible backend against a local server speaking /v1/chat/completions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest

from insights import llm

SUB_REASONS = {"hardship": ["job_loss", "illness_injury"], "forgetful": ["forgot_date"],
               "intent_to_default": ["refusal"]}
CALL_DAY = date(2026, 6, 24)


class _ChatCompletions(BaseHTTPRequestHandler):
    """Answers POST /v1/chat/completions like an OpenAI-compatible server; remembers the requests."""

    requests: list[dict[str, Any]] = []
    answer: str = ""
    status: int = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body,
                                    "authorization": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        if type(self).status != 200:
            self._send(type(self).status, {"error": {"message": "model overloaded"}})
            return
        self._send(200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": type(self).answer}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        })

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _ChatCompletions.requests, _ChatCompletions.status = [], 200
    _ChatCompletions.answer = json.dumps({"summary": "Lost his job in May, wants a deferral.", "reason": "hardship",
                                          "sub_reason": "job_loss", "promised_on": "2026-07-15",
                                          "sentiment": "negative"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_openai_compatible_reader_speaks_the_protocol(server, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "secret")
    reader = llm.reader_from_config({"backend": "openai_compatible", "base_url": server, "model": "qwen2.5-7b",
                                     "api_key_env": "TEST_LLM_KEY"}, SUB_REASONS)
    assert reader is not None
    reading = reader.read("我被公司裁员了 15号发了补偿就还", CALL_DAY)
    assert reading == llm.CallReading("Lost his job in May, wants a deferral.", "hardship", "job_loss",
                                      date(2026, 7, 15), "negative")
    sent = _ChatCompletions.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["authorization"] == "Bearer secret"
    assert sent["body"]["model"] == "qwen2.5-7b" and sent["body"]["temperature"] == 0
    assert sent["body"]["response_format"] == {"type": "json_object"}
    roles = [m["role"] for m in sent["body"]["messages"]]
    assert roles == ["system", "user"]
    assert "job_loss" in sent["body"]["messages"][0]["content"]
    assert "2026-06-24" in sent["body"]["messages"][1]["content"]


def test_server_errors_are_reported_per_call_and_do_not_stop_the_night(server):
    _ChatCompletions.status = 503
    reader = llm.OpenAICompatibleReader(server, "m", SUB_REASONS, timeout_s=5)
    with pytest.raises(RuntimeError, match="503"):
        reader.read("hello", CALL_DAY)
    calls = pd.DataFrame({"call_id": ["B", "A"], "customer_id": ["c2", "c1"], "call_on": [CALL_DAY, CALL_DAY],
                          "text": ["x", "y"]})
    readings = llm.call_readings(calls, reader)
    assert readings["call_id"].tolist() == ["A", "B"]
    assert (readings["reason"] == "unclear").all() and readings["error"].str.contains("503").all()


def test_unreachable_endpoint_is_a_runtime_error():
    reader = llm.OpenAICompatibleReader("http://127.0.0.1:9/v1", "m", SUB_REASONS, timeout_s=2)
    with pytest.raises(RuntimeError, match="unreachable"):
        reader.read("hello", CALL_DAY)


def test_parsed_reading_keeps_only_known_codes():
    reading = llm.parsed_reading('Sure! {"summary": "x", "reason": "Hardship", "sub_reason": "refusal", '
                                 '"promised_on": "soon", "sentiment": "angry"}', SUB_REASONS)
    assert (reading.reason, reading.sub_reason, reading.promised_on, reading.sentiment) == \
        ("hardship", "", None, "neutral")
    assert llm.parsed_reading('{"reason": "aliens"}', SUB_REASONS).reason == "unclear"
    with pytest.raises(ValueError, match="no JSON"):
        llm.parsed_reading("I cannot help with that", SUB_REASONS)


def test_reader_from_config():
    assert llm.reader_from_config(None, SUB_REASONS) is None
    assert llm.reader_from_config({"backend": "none"}, SUB_REASONS) is None
    with pytest.raises(ValueError, match="unknown backend"):
        llm.reader_from_config({"backend": "magic"}, SUB_REASONS)
    with pytest.raises(ValueError, match="base_url"):
        llm.reader_from_config({"backend": "openai_compatible"}, SUB_REASONS)
    with pytest.raises(FileNotFoundError, match="local path"):
        llm.reader_from_config({"backend": "transformers", "model_path": "/no/such/model"}, SUB_REASONS)


def test_disagreements_need_two_stated_intents():
    calls = pd.DataFrame({"call_id": ["a", "b", "c", "d"],
                          "intent": ["hardship", "hardship", "unclear", "forgetful"]})
    readings = pd.DataFrame({"call_id": ["a", "b", "c"], "reason": ["hardship", "intent_to_default", "hardship"]})
    assert llm.disagreements(calls, readings).tolist() == [False, True, False, False]


def test_the_stage_reads_whole_calls_and_types_the_promise_date(server):
    from insights.intents import load_taxonomy
    from pipelines.call_insight import _llm_disagrees, _llm_readings

    utterances = pd.DataFrame({"call_id": ["A", "A", "B"], "customer_id": ["c1", "c1", "c2"], "turn_no": [2, 1, 1],
                               "text": ["发工资就还", "我被裁员了", "i forgot"]})
    call_on = pd.Series([CALL_DAY, CALL_DAY], index=["A", "B"], dtype=object)
    assert _llm_readings(utterances, call_on, {"backend": "none"}, load_taxonomy()) is None
    readings = _llm_readings(utterances, call_on, {"backend": "openai_compatible", "base_url": server,
                                                   "model": "m", "max_calls": 1}, load_taxonomy())
    assert readings is not None and readings["call_id"].tolist() == ["A"]
    assert str(readings["promised_on"].dtype).startswith("datetime64")
    assert "我被裁员了\n发工资就还" in _ChatCompletions.requests[-1]["body"]["messages"][1]["content"]
    calls = pd.DataFrame({"call_id": ["A", "B"], "intent": ["forgetful", "forgetful"]})
    assert _llm_disagrees(calls, readings).tolist() == [True, False]
    assert _llm_disagrees(calls, None).tolist() == [False, False]
