"""Landing folder checks: files, encodings, columns, and the call / customer row rules (no warehouse)."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from insights.text import contains_pii
from pipelines.landing import (
    CALL_RULES,
    CUSTOMER_RULES,
    REPAYMENT_RULES,
    LandingError,
    checked_calls,
    checked_customers,
    column_mapping,
    contract_rules,
    csv_encoding,
    csv_header,
    landing_files,
    language_code,
    read_calls,
    read_customers,
    required_columns,
    utf8_copy,
)
from pipelines.warehouse import sql_text

HEADER = "loan_id,customer_id,installment_no,due_date,amount_due,paid_date,amount_paid\n"
PHONE = "13812345678"


def good_call(**changes) -> dict:
    call = {
        "call_id": "K1",
        "customer_id": "C1",
        "started_at": "2026-06-05T10:15:00+08:00",
        "direction": "outbound",
        "duration_s": 95,
        "turns": [
            {"speaker": "agent", "text": "您好，这里是贷后服务中心"},
            {"speaker": "customer", "text": f"我下周发工资就还，有事打我电话{PHONE}"},
        ],
    }
    call.update(changes)
    return call


def jsonl(*records) -> list[bytes]:
    return [(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)).encode("utf-8") + b"\n"
            for r in records]


def touch_landing(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(HEADER if name.endswith(".csv") else "", encoding="utf-8")
    return folder


# --- the contract file stays in step with the code -------------------------------------------------


def test_documented_rules_are_the_rules_the_code_emits():
    assert contract_rules("repayments") == REPAYMENT_RULES
    assert contract_rules("calls") == CALL_RULES
    assert contract_rules("customers") == CUSTOMER_RULES
    checked_sql = sql_text("staging/repayments_checked") + sql_text("staging/repayments_quarantine")
    assert all(f"'{rule}'" in checked_sql for rule in REPAYMENT_RULES)
    assert required_columns("repayments") == tuple(HEADER.strip().split(","))
    assert required_columns("customers") == ("customer_id", "timezone", "language")


# --- files -----------------------------------------------------------------------------------------


def test_finds_the_files_and_the_optional_customers(tmp_path):
    files = landing_files(touch_landing(tmp_path, "repayments.csv", "calls.jsonl"))
    assert files.repayments.name == "repayments.csv" and files.calls.name == "calls.jsonl"
    assert files.customers is None
    files = landing_files(touch_landing(tmp_path, "customers.csv"))
    assert files.customers is not None and files.customers.name == "customers.csv"


@pytest.mark.parametrize(("present", "named"), [
    (["calls.jsonl"], "repayments.csv or repayments.parquet"),
    (["repayments.csv"], "calls.jsonl"),
])
def test_a_missing_required_file_is_named(tmp_path, present, named):
    with pytest.raises(LandingError, match=re.escape(named)):
        landing_files(touch_landing(tmp_path, *present))


def test_csv_and_parquet_together_are_refused(tmp_path):
    folder = touch_landing(tmp_path, "repayments.csv", "repayments.parquet", "calls.jsonl")
    with pytest.raises(LandingError, match="both repayments.csv and repayments.parquet"):
        landing_files(folder)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(LandingError, match="not found"):
        landing_files(tmp_path / "nowhere")


# --- columns ---------------------------------------------------------------------------------------


def test_a_missing_column_is_named_with_the_file():
    header = ["loan_id", "customer_id", "installment_no", "due_date", "paid_date"]
    missing = r"repayments\.csv is missing required column\(s\): amount_due, amount_paid"
    with pytest.raises(LandingError, match=missing):
        column_mapping(header, "repayments", "repayments.csv")


def test_columns_match_trimmed_and_case_insensitively_and_extras_are_ignored(caplog):
    header = [" Loan_ID", *required_columns("repayments")[1:], "note"]
    with caplog.at_level("INFO"):
        mapping = column_mapping(header, "repayments", "repayments.csv")
    assert mapping["loan_id"] == " Loan_ID" and "note" not in mapping.values()
    assert "ignoring extra column(s) note" in caplog.text


def test_customers_file_without_language_column_is_refused(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,timezone\nC1,Asia/Shanghai\n", encoding="utf-8")
    with pytest.raises(LandingError, match=r"customers\.csv is missing required column\(s\): language"):
        read_customers(path)


def test_an_empty_csv_is_refused(tmp_path):
    path = tmp_path / "repayments.csv"
    path.write_bytes(b"")
    with pytest.raises(LandingError, match="repayments.csv is empty"):
        csv_header(path, "utf-8")


# --- encodings -------------------------------------------------------------------------------------


def test_detects_utf8(tmp_path):
    path = tmp_path / "repayments.csv"
    path.write_text(HEADER + "L1,客户1,1,2026-06-05,100,,\n", encoding="utf-8")
    assert csv_encoding(path) == "utf-8"
    assert csv_header(path, "utf-8")[0] == "loan_id"


def test_detects_utf8_with_bom_and_strips_it_from_the_header(tmp_path):
    path = tmp_path / "repayments.csv"
    path.write_text(HEADER, encoding="utf-8-sig")
    assert csv_encoding(path) == "utf-8-sig"
    assert csv_encoding(path, "utf-8") == "utf-8-sig"  # a BOM under the utf-8 setting is tolerated
    assert csv_header(path, "utf-8-sig")[0] == "loan_id"


def test_detects_gb18030_and_transcodes_it_to_utf8(tmp_path):
    path = tmp_path / "repayments.csv"
    text = HEADER + "L1,张三的贷款客户,1,2026-06-05,100,,\n"
    path.write_bytes(text.encode("gb18030"))
    assert csv_encoding(path) == "gb18030"
    out = tmp_path / "out"
    out.mkdir()
    copy = utf8_copy(path, "gb18030", out)
    assert copy.read_text(encoding="utf-8") == text


def test_an_undecodable_file_names_the_file_offset_and_option(tmp_path):
    path = tmp_path / "repayments.csv"
    path.write_bytes(HEADER.encode() + b"L1,C1,1,2026-06-05,\xff\xff,,\n")
    offset = len(HEADER) + len("L1,C1,1,2026-06-05,")
    with pytest.raises(LandingError) as error:
        csv_encoding(path)
    message = str(error.value)
    assert "repayments.csv" in message and f"byte offset {offset}" in message
    assert "--encoding" in message and "landing.encoding" in message


def test_a_file_not_in_the_chosen_encoding_is_refused(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,timezone,language\nC1,Asia/Shanghai,中文\n".encode("gb18030"))
    with pytest.raises(LandingError, match=r"customers\.csv cannot be decoded as utf-8 at byte offset \d+"):
        csv_encoding(path, "utf-8")
    with pytest.raises(LandingError, match="unknown encoding 'latin-1'"):
        csv_encoding(path, "latin-1")


def test_the_offset_is_exact_across_read_chunks(tmp_path):
    # a 3-byte character straddles the 1 MiB chunk boundary, the bad byte follows it
    prefix = b"a" * ((1 << 20) - 1)
    path = tmp_path / "repayments.csv"
    path.write_bytes(prefix + "好".encode() + b"\xff")
    with pytest.raises(LandingError, match=f"as utf-8 at byte offset {len(prefix) + 3}"):
        csv_encoding(path, "utf-8")


# --- calls -----------------------------------------------------------------------------------------


def test_a_good_call_is_loaded_with_its_turns():
    checked = checked_calls(jsonl(good_call()))
    assert checked.rows_read == 1 and checked.quarantine.empty
    call = checked.good.iloc[0]
    assert (call["call_id"], call["direction"]) == ("K1", "outbound")
    assert (call["turn_count"], call["customer_turn_count"]) == (2, 1)
    assert call["started_at"] == pd.Timestamp("2026-06-05T02:15:00Z")
    assert list(checked.extra["turn_no"]) == [1, 2]
    assert list(checked.extra["speaker"]) == ["agent", "customer"]


@pytest.mark.parametrize(("line", "rule"), [
    ('{"call_id": "K1", "customer_id": ', "invalid_json"),
    ("[1, 2, 3]", "invalid_json"),
    (good_call(call_id=""), "missing_key"),
    ({k: v for k, v in good_call().items() if k != "customer_id"}, "missing_key"),
    (good_call(started_at="2026-06-05T10:15:00"), "bad_timestamp"),
    (good_call(started_at="yesterday afternoon"), "bad_timestamp"),
    (good_call(started_at="2026-06-05T25:61:00+08:00"), "bad_timestamp"),
    (good_call(direction="sideways"), "bad_direction"),
    (good_call(duration_s=-5), "bad_duration"),
    (good_call(duration_s="long"), "bad_duration"),
    (good_call(turns=[{"speaker": "supervisor", "text": "我是主管"},
                      {"speaker": "customer", "text": "好"}]),
     "unknown_speaker"),
    (good_call(turns=["hello"]), "unknown_speaker"),
    (good_call(turns=[]), "empty_transcript"),
    (good_call(turns=[{"speaker": "agent", "text": "hello?"}, {"speaker": "customer", "text": "  "}]),
     "empty_transcript"),
])
def test_each_call_rule_on_a_one_line_input(line, rule):
    checked = checked_calls(jsonl(line))
    assert checked.rows_read == 1 and checked.good.empty and checked.extra.empty
    assert list(checked.quarantine["rule"]) == [rule]
    assert list(checked.quarantine["source_row"]) == [1]
    assert checked.quarantine["detail"].iloc[0]


def test_the_first_failing_rule_wins():
    checked = checked_calls(jsonl(good_call(call_id="", started_at="bad", direction="x")))
    assert list(checked.quarantine["rule"]) == ["missing_key"]


def test_a_later_duplicate_call_id_is_quarantined_and_the_first_loaded():
    checked = checked_calls(jsonl(good_call(), good_call(direction="inbound")))
    assert list(checked.good["direction"]) == ["outbound"]
    assert list(checked.quarantine["rule"]) == ["duplicate_call_id"]
    assert "line 1" in checked.quarantine["detail"].iloc[0]


def test_a_bad_first_line_does_not_make_a_good_later_one_a_duplicate():
    checked = checked_calls(jsonl(good_call(direction="x"), good_call()))
    assert list(checked.quarantine["rule"]) == ["bad_direction"] and list(checked.good["source_row"]) == [2]


def test_blank_lines_are_skipped_not_counted_and_line_numbers_stay_physical():
    lines = jsonl(good_call()) + [b"\n", b"   \r\n"] + jsonl(good_call(call_id="K2", direction="upward"))
    checked = checked_calls(lines)
    assert checked.rows_read == 2
    assert list(checked.good["source_row"]) == [1] and list(checked.quarantine["source_row"]) == [4]


def test_a_line_that_is_not_utf8_is_quarantined_not_fatal():
    checked = checked_calls([b'{"call_id": "K\xff"}\n'] + jsonl(good_call()))
    assert list(checked.quarantine["rule"]) == ["invalid_json"] and len(checked.good) == 1


def test_pii_is_redacted_before_anything_is_stored():
    email = "zhang.san@example.com"
    checked = checked_calls(jsonl(
        good_call(),
        good_call(call_id="K2", direction="x",
                  turns=[{"speaker": "customer", "text": f"mail {email} or call {PHONE}"}]),
        f'{{"call_id": "K3", "text": "call me {PHONE}"',
    ))
    assert not any(contains_pii(text) for text in checked.extra["text"])
    assert "[PHONE]" in checked.extra["text"].iloc[1]
    stored = " ".join(checked.quarantine["raw_record"]) + " ".join(checked.quarantine["detail"])
    assert PHONE not in stored and email not in stored
    assert json.loads(checked.quarantine["raw_record"].iloc[0])["call_id"] == "K2"


def test_calls_file_is_read_line_by_line(tmp_path):
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(jsonl(good_call(), good_call(call_id="K2"))))
    checked = read_calls(path)
    assert checked.source_file == "calls.jsonl" and list(checked.good["call_id"]) == ["K1", "K2"]


# --- customers -------------------------------------------------------------------------------------


def test_customer_rules_in_order():
    rows = [
        {"customer_id": "C1", "timezone": "Asia/Shanghai", "language": "zh-CN"},
        {"customer_id": " ", "timezone": "Asia/Shanghai", "language": "zh"},
        {"customer_id": "C2", "timezone": "Mars/Olympus_Mons", "language": "en"},
        {"customer_id": "C1", "timezone": "Europe/London", "language": "en"},
        {"customer_id": "C3", "timezone": "", "language": ""},
    ]
    checked = checked_customers(rows)
    assert checked.rows_read == 5
    assert list(checked.quarantine["rule"]) == ["missing_key", "bad_timezone", "duplicate_row"]
    assert list(checked.quarantine["source_row"]) == [2, 3, 4]
    good = checked.good.set_index("customer_id")
    assert good.loc["C1", "language"] == "zh" and good.loc["C1", "timezone"] == "Asia/Shanghai"
    assert pd.isna(good.loc["C3", "timezone"]) and pd.isna(good.loc["C3", "language"])


def test_customers_csv_in_gb18030_with_blank_lines(tmp_path):
    path = tmp_path / "customers.csv"
    text = "customer_id,timezone,language\n客户1,Asia/Shanghai,zh\n\nC2,UTC,en\n"
    path.write_bytes(text.encode("gb18030"))
    checked = read_customers(path)
    assert list(checked.good["customer_id"]) == ["客户1", "C2"]
    assert list(checked.good["source_row"]) == [1, 2]


def test_a_ragged_customers_row_is_refused(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,timezone,language\nC1,UTC\n", encoding="utf-8")
    with pytest.raises(LandingError, match="customers.csv line 2"):
        read_customers(path)


@pytest.mark.parametrize(("tag", "code"), [
    ("zh-CN", "zh"), ("EN_us", "en"), ("zh", "zh"), ("  ", None), (None, None),
])
def test_language_code(tag, code):
    assert language_code(tag) == code
