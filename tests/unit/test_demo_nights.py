"""The later nights of the demo: the same customers a day or two on, with cures, new calls and attempts."""

import filecmp
import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from pipelines.demo import DEFAULT_AS_OF, write_demo_data, write_demo_night

CUSTOMERS = 200


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    out = tmp_path_factory.mktemp("nights")
    first = write_demo_data(out, customers=CUSTOMERS, seed=5)
    return out, [first] + [write_demo_night(out, CUSTOMERS, 5, DEFAULT_AS_OF, night) for night in (2, 3)]


def repayments(files) -> pd.DataFrame:
    frame = pd.read_csv(files.landing_dir / "repayments.csv", dtype=str, keep_default_na=False)
    bad = pd.read_csv(files.expected_quarantine_csv)
    rows = set(bad.loc[bad["source_file"] == "repayments.csv", "source_row"])
    return frame[[n not in rows for n in range(1, len(frame) + 1)]]


def valid_calls(files) -> dict[str, dict]:
    bad = pd.read_csv(files.expected_quarantine_csv)
    rows = set(bad.loc[bad["source_file"] == "calls.jsonl", "source_row"])
    lines = (files.landing_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    calls = [json.loads(line) for number, line in enumerate(lines, start=1) if number not in rows]
    return {call["call_id"]: call for call in calls}


def overdue_customers(frame: pd.DataFrame, as_of: date) -> set[str]:
    frame = frame.assign(paid=pd.to_numeric(frame["amount_paid"]).fillna(0), due=pd.to_numeric(frame["amount_due"]))
    known = frame[(frame["paid_date"] == "") | (frame["paid_date"] <= as_of.isoformat())]
    totals = known.groupby(["customer_id", "loan_id", "installment_no", "due_date"], as_index=False).agg(
        paid=("paid", "sum"), due=("due", "first"))
    late = totals[(totals["due_date"] < as_of.isoformat()) & (totals["paid"] < totals["due"] - 0.01)]
    return set(late["customer_id"])


def test_later_nights_are_dated_one_day_apart_with_the_same_customers(nights):
    out, files = nights
    assert [f.as_of for f in files] == [DEFAULT_AS_OF + timedelta(days=n) for n in range(3)]
    assert files[1].landing_dir == out / "nights" / "2026-07-01" / "landing"
    for later in files[1:]:
        assert filecmp.cmp(files[0].landing_dir / "customers.csv", later.landing_dir / "customers.csv", shallow=False)
        assert later.truth_csv == files[0].truth_csv
    with pytest.raises(ValueError):
        write_demo_night(out, CUSTOMERS, 5, DEFAULT_AS_OF, 1)


def test_later_nights_add_payments_and_cures_but_nothing_after_their_date(nights):
    _, files = nights
    first, last = repayments(files[0]), repayments(files[2])
    assert (last["paid_date"][last["paid_date"] != ""] <= files[2].as_of.isoformat()).all()
    late_paid = last[(last["paid_date"] > DEFAULT_AS_OF.isoformat())]
    assert len(late_paid) > len(first[first["paid_date"] > DEFAULT_AS_OF.isoformat()]) == 0
    cured = overdue_customers(first, DEFAULT_AS_OF) - overdue_customers(last, files[2].as_of)
    assert len(cured) >= 5
    assert set(first["loan_id"]) == set(last["loan_id"])


def test_later_nights_keep_every_earlier_call_and_add_new_ones_before_their_date(nights):
    _, files = nights
    calls = [valid_calls(f) for f in files]
    assert set(calls[0]) <= set(calls[1]) <= set(calls[2]) and len(calls[2]) > len(calls[1]) > len(calls[0])
    for call_id in set(calls[2]) - set(calls[0]):
        started = datetime.fromisoformat(calls[2][call_id]["started_at"]).date()
        assert DEFAULT_AS_OF <= started < files[2].as_of
        assert calls[1].get(call_id, calls[2][call_id]) == calls[2][call_id]


def test_unanswered_attempts_are_dated_up_to_the_night_and_repeat_across_nights(nights):
    _, files = nights
    attempts = [pd.read_csv(f.landing_dir / "contact_attempts.csv") for f in files]
    for frame, files_of_night in zip(attempts, files, strict=True):
        days = frame["attempted_at"].map(lambda text: datetime.fromisoformat(text).date())
        assert days.max() <= files_of_night.as_of and len(frame) > 0
        assert set(frame["outcome"]) <= {"no_answer", "busy", "voicemail", "rejected"}
    shared = set(map(tuple, attempts[1].to_numpy())) & set(map(tuple, attempts[2].to_numpy()))
    assert len(shared) >= 0.8 * len(attempts[1])
    again = write_demo_night(files[0].truth_csv.parent / "again", CUSTOMERS, 5, DEFAULT_AS_OF, 2)
    assert filecmp.cmp(again.landing_dir / "contact_attempts.csv", files[1].landing_dir / "contact_attempts.csv",
                       shallow=False)
