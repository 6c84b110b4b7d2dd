"""The demo-data generator: determinism, the landing contract, archetype behaviour, planted bad rows."""

from __future__ import annotations

import filecmp
import json
import re
from datetime import date, datetime

import pandas as pd
import pytest

from pipelines import demo
from pipelines.demo import DEFAULT_AS_OF, DemoFiles, write_demo_data

CUSTOMERS = 120
AS_OF = DEFAULT_AS_OF
KEYS = ("loan_id", "customer_id", "installment_no", "due_date", "amount_due")
AMOUNT = re.compile(r"-?\d+\.\d{2}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
PII = {
    "cn_mobile": re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    "cn_id": re.compile(r"(?<!\d)\d{17}[\dX](?!\d)"),
    "card": re.compile(r"(?<!\d)(?:\d{4} ){3,4}\d{1,4}(?!\d)|(?<!\d)\d{16,19}(?!\d)"),
    "email": re.compile(r"[\w.]+@[\w.]+\.\w+"),
    "us_phone": re.compile(r"\(\d{3}\) \d{3}-\d{4}|\d{3}-\d{3}-\d{4}|\+1 \d{3} \d{3} \d{4}"),
}
SCRIPT = {
    "zh": re.compile(r"您好这里是XX消费金融贷后服务中心 您尾号(\d{4})的借款已逾期(\d+)天 "
                     r"应还金额(\d+\.\d{2})元 请问您什么时候方便处理"),
    "en": re.compile(r"Hello this is the customer care team of XX Consumer Finance your installment of "
                     r"(\d+\.\d{2}) is (\d+) days overdue when can you make the payment"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> DemoFiles:
    return write_demo_data(tmp_path_factory.mktemp("demo"), customers=CUSTOMERS, seed=3)


@pytest.fixture(scope="module")
def landing(files):
    read = {"dtype": str, "keep_default_na": False}
    repayments = pd.read_csv(files.landing_dir / "repayments.csv", **read)
    lines = (files.landing_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    customers = pd.read_csv(files.landing_dir / "customers.csv", **read)
    truth = pd.read_csv(files.truth_csv, **read)
    quarantine = pd.read_csv(files.expected_quarantine_csv, keep_default_na=False)
    return repayments, lines, customers, truth, quarantine


def bad_rows(quarantine: pd.DataFrame, source_file: str) -> dict[int, str]:
    part = quarantine[quarantine["source_file"] == source_file]
    return dict(zip(part["source_row"].astype(int), part["rule"], strict=True))


def is_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def repayment_violations(rows: pd.DataFrame) -> list[set[str]]:
    """Re-implement every repayments rule independently of the generator."""
    seen: set[tuple] = set()
    found = []
    for row in rows.itertuples(index=False):
        record = row._asdict()
        rules = set()
        if any(record[key] == "" for key in KEYS):
            rules.add("missing_key")
        if any(record[key] != "" and not is_date(record[key]) for key in ("due_date", "paid_date")):
            rules.add("bad_date")
        for key in ("amount_due", "amount_paid"):
            if record[key] == "":
                continue
            if not AMOUNT.fullmatch(record[key]):
                rules.add("bad_amount")
            elif float(record[key]) < 0:
                rules.add("negative_amount")
        if (record["paid_date"] == "") != (record["amount_paid"] == ""):
            rules.add("payment_incomplete")
        if is_date(record["due_date"]) and is_date(record["paid_date"]):
            if (date.fromisoformat(record["due_date"]) - date.fromisoformat(record["paid_date"])).days > 365:
                rules.add("paid_too_early")
        if record["paid_date"] != "" and tuple(row) in seen:
            rules.add("duplicate_row")
        seen.add(tuple(row))
        found.append(rules)
    return found


def call_violations(lines: list[str]) -> list[set[str]]:
    """Re-implement every calls rule independently of the generator."""
    seen: set[str] = set()
    found = []
    for line in lines:
        try:
            call = json.loads(line)
        except ValueError:
            found.append({"invalid_json"})
            continue
        rules = set()
        if not call.get("call_id") or not call.get("customer_id"):
            rules.add("missing_key")
        stamp = call.get("started_at", "")
        try:
            valid_stamp = bool(TIMESTAMP.fullmatch(stamp)) and bool(datetime.fromisoformat(stamp).tzinfo)
        except ValueError:
            valid_stamp = False
        if not valid_stamp:
            rules.add("bad_timestamp")
        turns = call.get("turns") or []
        if any(turn.get("speaker") not in ("agent", "customer") for turn in turns):
            rules.add("unknown_speaker")
        if not any(turn.get("speaker") == "customer" and turn.get("text", "").strip() for turn in turns):
            rules.add("empty_transcript")
        if call.get("call_id") in seen:
            rules.add("duplicate_call_id")
        if call.get("call_id"):
            seen.add(call["call_id"])
        found.append(rules)
    return found


def valid_repayments(landing) -> pd.DataFrame:
    repayments, _, _, _, quarantine = landing
    bad = bad_rows(quarantine, "repayments.csv")
    keep = [row not in bad for row in range(1, len(repayments) + 1)]
    valid = repayments[keep].copy()
    for column in ("due_date", "paid_date"):
        valid[column] = pd.to_datetime(valid[column], format="%Y-%m-%d")
    valid["installment_no"] = valid["installment_no"].astype(int)
    valid["amount_due"] = valid["amount_due"].astype(float)
    valid["amount_paid"] = pd.to_numeric(valid["amount_paid"])
    return valid


def valid_calls(landing) -> list[dict]:
    _, lines, _, _, quarantine = landing
    bad = bad_rows(quarantine, "calls.jsonl")
    return [json.loads(line) for number, line in enumerate(lines, start=1) if number not in bad]


def installments(valid: pd.DataFrame) -> pd.DataFrame:
    """One row per installment: paid total, first and last payment date."""
    grouped = valid.groupby(["customer_id", "loan_id", "installment_no"], as_index=False).agg(
        due_date=("due_date", "first"), amount_due=("amount_due", "first"), paid=("amount_paid", "sum"),
        last_paid=("paid_date", "max"))
    grouped["fully_paid"] = grouped["paid"] >= grouped["amount_due"] - 0.005
    grouped["late_days"] = (grouped["last_paid"] - grouped["due_date"]).dt.days
    return grouped


def customers_of(truth: pd.DataFrame, archetype: str) -> set[str]:
    return set(truth.loc[truth["archetype"] == archetype, "customer_id"])


def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path):
    first = write_demo_data(tmp_path / "a", customers=60, seed=5)
    second = write_demo_data(tmp_path / "b", customers=60, seed=5)
    other = write_demo_data(tmp_path / "c", customers=60, seed=6)
    names = ["landing/repayments.csv", "landing/calls.jsonl", "landing/customers.csv", "truth.csv",
             "expected_quarantine.csv"]
    for name in names:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    assert not filecmp.cmp(tmp_path / "a" / names[0], tmp_path / "c" / names[0], shallow=False)
    assert not filecmp.cmp(tmp_path / "a" / names[1], tmp_path / "c" / names[1], shallow=False)
    assert first.landing_dir == tmp_path / "a" / "landing" and first.as_of == DEFAULT_AS_OF
    assert second.truth_csv == tmp_path / "b" / "truth.csv" and other.as_of == DEFAULT_AS_OF


def test_files_have_exactly_the_contract_columns_and_truth_stays_out_of_landing(files, landing):
    repayments, lines, customers, truth, quarantine = landing
    assert tuple(repayments.columns) == demo.REPAYMENT_COLUMNS
    assert tuple(customers.columns) == ("customer_id", "timezone", "language")
    assert tuple(truth.columns) == ("customer_id", "archetype", "segment", "sub_reason")
    assert tuple(quarantine.columns) == ("source_file", "source_row", "rule")
    landing_files = sorted(path.name for path in files.landing_dir.iterdir())
    assert landing_files == ["calls.jsonl", "contact_attempts.csv", "customers.csv", "repayments.csv"]
    assert list(customers["customer_id"]) == [f"C{i:06d}" for i in range(1, CUSTOMERS + 1)]
    assert list(truth["customer_id"]) == list(customers["customer_id"])
    assert set(customers["language"]) == {"zh", "en"}
    assert customers.loc[customers["language"] == "zh", "timezone"].value_counts().index[0] == "Asia/Shanghai"
    for call in valid_calls(landing):
        assert list(call) == ["call_id", "customer_id", "started_at", "direction", "duration_s", "turns"]
        assert re.fullmatch(r"CALL-\d{6}", call["call_id"]) and call["direction"] in ("outbound", "inbound")
        assert isinstance(call["duration_s"], int) and call["duration_s"] > 0
        assert call["customer_id"] in set(customers["customer_id"])
    assert lines
    valid = valid_repayments(landing)
    assert valid["loan_id"].str.fullmatch(r"L\d{7}").all()


def test_every_expected_quarantine_row_fails_exactly_its_rule_and_no_other_row_fails(landing):
    repayments, lines, _, _, quarantine = landing
    expected = bad_rows(quarantine, "repayments.csv")
    for number, rules in enumerate(repayment_violations(repayments), start=1):
        wanted = {expected[number]} if number in expected else set()
        assert rules == wanted, (number, repayments.iloc[number - 1])
    expected_calls = bad_rows(quarantine, "calls.jsonl")
    for number, rules in enumerate(call_violations(lines), start=1):
        wanted = {expected_calls[number]} if number in expected_calls else set()
        assert rules == wanted, (number, lines[number - 1])
    assert set(quarantine["rule"]) == set(demo.REPAYMENT_RULES) | set(demo.CALL_RULES)
    assert len(expected) <= max(7, 0.01 * len(repayments))


def test_fifty_customers_still_get_every_kind_of_bad_row(tmp_path):
    files = write_demo_data(tmp_path, customers=50, seed=7)
    quarantine = pd.read_csv(files.expected_quarantine_csv)
    assert set(bad_rows(quarantine, "repayments.csv").values()) == set(demo.REPAYMENT_RULES)
    assert set(bad_rows(quarantine, "calls.jsonl").values()) == set(demo.CALL_RULES)


def test_the_extract_has_no_payment_after_as_of_but_has_future_installments(landing):
    valid = valid_repayments(landing)
    as_of = pd.Timestamp(AS_OF)
    assert (valid["paid_date"].dropna() <= as_of).all()
    future = valid[valid["due_date"] > as_of]
    assert len(future) > 0 and future["paid_date"].isna().any()
    unpaid = valid[valid["paid_date"].isna()]
    assert unpaid["amount_paid"].isna().all()
    assert not valid.duplicated(["loan_id", "installment_no", "paid_date"]).any()


def test_archetype_shares_follow_the_plan(landing):
    _, _, _, truth, _ = landing
    shares = truth["archetype"].value_counts(normalize=True)
    for archetype, share in demo.ARCHETYPE_SHARES.items():
        assert abs(shares[archetype] - share) <= 0.02, archetype
    segment_of = dict(zip(truth["archetype"], truth["segment"], strict=False))
    assert segment_of == demo.SEGMENT_OF_ARCHETYPE
    for _, row in truth.iterrows():
        if row["archetype"] == "on_time":
            assert row["sub_reason"] == ""
        elif row["archetype"] != "mixed":
            assert demo.SEGMENT_OF_REASON[row["sub_reason"]] == row["segment"]


def test_on_time_customers_are_never_late(landing):
    _, _, _, truth, _ = landing
    table = installments(valid_repayments(landing))
    on_time = table["customer_id"].isin(customers_of(truth, "on_time"))
    due = table[on_time & (table["due_date"] <= pd.Timestamp(AS_OF))]
    assert len(due) > 0
    assert due["fully_paid"].all() and (due["late_days"] <= 0).all() and (due["late_days"] >= -5).all()


def test_hardship_customers_break_a_long_clean_record(landing):
    _, _, _, truth, _ = landing
    table = installments(valid_repayments(landing))
    as_of = pd.Timestamp(AS_OF)
    for customer in customers_of(truth, "hardship"):
        mine = table[(table["customer_id"] == customer) & (table["due_date"] <= as_of)]
        current = mine[mine["loan_id"] == mine["loan_id"].max()].sort_values("installment_no")
        unpaid = current[~current["fully_paid"]]
        assert 1 <= len(unpaid) <= 3, customer
        assert list(unpaid["installment_no"]) == list(current["installment_no"].iloc[-len(unpaid):])
        clean = current[current["fully_paid"] & (current["late_days"] <= 0)]
        assert len(clean) >= 6 and len(clean) == len(current) - len(unpaid)
        assert 5 <= (as_of - unpaid["due_date"].min()).days <= 90


def test_intent_customers_are_mostly_first_payment_defaults(landing):
    _, _, _, truth, _ = landing
    table = installments(valid_repayments(landing))
    as_of = pd.Timestamp(AS_OF)
    intent = customers_of(truth, "intent_to_default")
    first_unpaid = table[(table["installment_no"] == 1) & ~table["fully_paid"] & (table["paid"] == 0)
                         & (table["due_date"] <= as_of) & table["customer_id"].isin(intent)]
    assert len(first_unpaid) >= 0.5 * len(intent)
    for customer in intent:
        mine = table[(table["customer_id"] == customer) & (table["due_date"] <= as_of)]
        unpaid = mine[~mine["fully_paid"]]
        assert len(mine[mine["fully_paid"]]) <= 2 and len(unpaid) >= 1
        dpd = (as_of - unpaid["due_date"].min()).days
        assert 5 <= dpd <= 120 if customer in set(first_unpaid["customer_id"]) else 30 <= dpd <= 120


def test_forgetful_customers_pay_one_to_three_days_late(landing):
    _, _, _, truth, _ = landing
    table = installments(valid_repayments(landing))
    as_of = pd.Timestamp(AS_OF)
    calls = valid_calls(landing)
    called_on = {}
    for call in calls:
        started = datetime.fromisoformat(call["started_at"]).date()
        called_on.setdefault(call["customer_id"], []).append(started)
    current_at_as_of = 0
    for customer in customers_of(truth, "forgetful"):
        mine = table[(table["customer_id"] == customer) & (table["due_date"] <= as_of)]
        mine = mine.sort_values("installment_no")
        history, latest = mine.iloc[:-1], mine.iloc[-1]
        assert history["fully_paid"].all() and history["late_days"].between(-5, 3).all()
        late_share = (history["late_days"] >= 1).mean()
        assert 0.3 <= late_share <= 0.7, customer
        if latest["fully_paid"]:
            current_at_as_of += 1
            assert 1 <= latest["late_days"] <= 4
            recent = [day for day in called_on[customer] if (AS_OF - day).days <= 14]
            assert recent and min(recent) <= latest["last_paid"].date()
        else:
            assert latest["paid"] == 0 and 1 <= (as_of - latest["due_date"]).days <= 10
    assert current_at_as_of <= 0.4 * len(customers_of(truth, "forgetful"))


def test_calls_reach_overdue_customers_in_the_last_fortnight(landing):
    _, _, customers, truth, _ = landing
    calls = valid_calls(landing)
    called = {call["customer_id"] for call in calls}
    assert not called & customers_of(truth, "on_time")
    overdue = set(truth.loc[truth["archetype"] != "on_time", "customer_id"])
    recent = {call["customer_id"] for call in calls
              if (AS_OF - datetime.fromisoformat(call["started_at"]).date()).days <= 14}
    assert 0.5 <= len(recent) / len(overdue) <= 0.9
    for call in calls:
        started = datetime.fromisoformat(call["started_at"])
        assert 1 <= (AS_OF - started.date()).days <= 60
        assert 9 <= started.hour <= 20
    mixed_with_calls = truth[(truth["archetype"] == "mixed") & truth["customer_id"].isin(called)]
    assert (mixed_with_calls["sub_reason"] != "").all()
    silent_mixed = (truth["archetype"] == "mixed") & ~truth["customer_id"].isin(called)
    assert (truth.loc[silent_mixed, "sub_reason"] == "").all()


def test_the_agent_script_is_the_same_template_in_every_call(landing):
    _, _, customers, _, _ = landing
    valid = valid_repayments(landing)
    language = dict(zip(customers["customer_id"], customers["language"], strict=True))
    loans = valid.groupby("customer_id")["loan_id"].agg(set).to_dict()
    calls = valid_calls(landing)
    assert calls
    for call in calls:
        agent = [turn["text"] for turn in call["turns"] if turn["speaker"] == "agent"]
        scripted = [SCRIPT[language[call["customer_id"]]].fullmatch(text) for text in agent]
        assert sum(match is not None for match in scripted) == 1, call
        match = next(match for match in scripted if match)
        if language[call["customer_id"]] == "zh":
            tail, days, amount = match.group(1), int(match.group(2)), float(match.group(3))
            assert any(loan.endswith(tail) for loan in loans[call["customer_id"]])
        else:
            amount, days = float(match.group(1)), int(match.group(2))
        assert amount > 0 and 1 <= days <= 150


def test_customer_speech_is_varied_bilingual_and_sometimes_carries_pii(landing):
    calls = valid_calls(landing)
    customer_text = [turn["text"] for call in calls for turn in call["turns"]
                     if turn["speaker"] == "customer"]
    assert all(not re.search(r"[，。？！,.?!]", re.sub(r"\S+@\S+", "", text)) for text in customer_text)
    chinese = [t for t in customer_text if re.search(r"[\u4e00-\u9fff]", t)]
    english = [t for t in customer_text if re.fullmatch(r"[a-z0-9' ()+@._-]+", t)]
    assert chinese and english
    substantive = [t for t in customer_text if len(t.replace(" ", "")) >= 10 and len(t.split()) >= 3
                   or len(t.split()) >= 5]
    assert len(set(substantive)) >= 0.7 * len(substantive)
    with_pii = [call for call in calls if any(
        pattern.search(turn["text"]) for turn in call["turns"] if turn["speaker"] == "customer"
        for pattern in PII.values())]
    assert 0.05 <= len(with_pii) / len(calls) <= 0.4
    lengths = [len(call["turns"]) for call in calls]
    assert min(lengths) <= 3 and max(lengths) >= 6


def test_phrase_banks_hold_at_least_eight_phrasings_per_sub_reason_and_language():
    for segment, reasons in demo.SUB_REASONS.items():
        for reason in reasons:
            for language in ("zh", "en"):
                phrasings = demo._CORE[reason][language]
                assert len(set(phrasings)) >= 8, (segment, reason, language)


def test_a_different_as_of_moves_the_whole_story(tmp_path):
    as_of = date(2025, 3, 31)
    files = write_demo_data(tmp_path, customers=40, seed=1, as_of=as_of)
    repayments = pd.read_csv(files.landing_dir / "repayments.csv", dtype=str, keep_default_na=False)
    quarantine = pd.read_csv(files.expected_quarantine_csv)
    bad = set(quarantine.loc[quarantine["source_file"] == "repayments.csv", "source_row"])
    paid = [d for n, d in enumerate(repayments["paid_date"], start=1) if n not in bad and d]
    assert files.as_of == as_of and max(paid) <= as_of.isoformat()
