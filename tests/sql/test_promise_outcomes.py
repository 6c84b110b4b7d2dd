"""Seeded DuckDB: promises to pay made on earlier nights, judged kept / partly kept / broken / pending."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from insights.segments import behaviour_signals
from pipelines.behaviour import build_behaviour
from pipelines.config import load_settings
from pipelines.warehouse import Warehouse

AS_OF = date(2024, 6, 30)
CALL_NIGHT = date(2024, 6, 10)
CALL_ON = date(2024, 6, 10)


def _repayment(customer: str, due_on: date, amount: float, paid_on: date | None = None,
               paid: float | None = None, no: int = 1) -> dict:
    return {"loan_id": f"{customer}-L", "customer_id": customer, "installment_no": no, "due_on": due_on,
            "amount_due": amount, "paid_on": paid_on, "amount_paid": paid}


def _promise(customer: str, promised_on: date, amount: float | None = None, partial: bool = False,
             number: int = 1, night: date = CALL_NIGHT) -> dict:
    return {"as_of": night, "promise_id": f"{customer}-call-{number}:1:1", "call_id": f"{customer}-call-{number}",
            "customer_id": customer, "turn_no": 1, "call_on": CALL_ON, "promised_on": promised_on,
            "amount": amount, "is_partial": partial, "basis": "relative", "phrase": "明天还", "language": "zh"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    due = date(2024, 6, 1)
    repayments = [
        _repayment("kept", due, 300.0, date(2024, 6, 12), 300.0),             # paid in full by the promised date
        _repayment("partly", due, 300.0, date(2024, 6, 11), 100.0),           # paid a third
        _repayment("broken", date(2024, 5, 1), 300.0, date(2024, 5, 1), 300.0),  # paid once, then
        _repayment("broken", due, 300.0, no=2),                                # nothing, twice promised
        _repayment("pending", due, 300.0),                                     # promised for July
        _repayment("amount", due, 300.0, date(2024, 6, 11), 120.0),           # promised 120, paid 120
        _repayment("late", due, 300.0, date(2024, 6, 20), 300.0),             # paid, but after promise + grace
        _repayment("before", due, 300.0, date(2024, 6, 5), 300.0),            # paid before the call: not toward it
    ]
    promises = [
        _promise("kept", date(2024, 6, 12)),
        _promise("partly", date(2024, 6, 11)),
        _promise("broken", date(2024, 6, 11)),
        _promise("broken", date(2024, 6, 15), number=2),
        _promise("pending", date(2024, 7, 5)),
        _promise("amount", date(2024, 6, 11), amount=120.0),
        _promise("late", date(2024, 6, 11)),
        _promise("before", date(2024, 6, 11), partial=True),
        # the same promise re-read on a later night counts once; one extracted tonight is not judged yet
        _promise("kept", date(2024, 6, 12), night=CALL_NIGHT + timedelta(days=1)),
        _promise("broken", date(2024, 6, 20), number=3, night=AS_OF),
    ]
    store = Warehouse(tmp_path_factory.mktemp("promises") / "w.duckdb")
    with store.session() as session:
        session.replace_partition("stg_repayments", AS_OF, pd.DataFrame(repayments).assign(source_row=1))
        frame = pd.DataFrame(promises)
        for night, rows in frame.groupby("as_of"):
            session.replace_partition("promises", night, rows)
    build_behaviour(store, AS_OF, in_scope_call_days=14, promise_grace_days=1)
    return store


def test_each_promise_is_judged_once(warehouse):
    with warehouse.session(read_only=True) as session:
        outcomes = session.frame("select customer_id, promise_id, status, amount_expected, amount_paid "
                                 "from promise_outcomes where as_of = $as_of order by promise_id", {"as_of": AS_OF})
    status = outcomes.groupby("customer_id")["status"].apply(list).to_dict()
    assert status == {"kept": ["kept"], "partly": ["partly_kept"], "broken": ["broken", "broken"],
                      "pending": ["pending"], "amount": ["kept"], "late": ["broken"],
                      "before": ["broken"]}
    expected = outcomes.set_index("customer_id")["amount_expected"]
    assert expected["partly"] == 300.0 and expected["amount"] == 120.0 and pd.isna(expected["before"])


def test_behaviour_features_count_promises(warehouse):
    with warehouse.session(read_only=True) as session:
        behaviour = session.frame("select * from customer_behaviour where as_of = $as_of", {"as_of": AS_OF})
    row = behaviour.set_index("customer_id")
    assert row.loc["broken", ["promises_made", "promises_broken"]].tolist() == [2, 2]
    assert row.loc["kept", ["promises_made", "promises_kept"]].tolist() == [1, 1]
    assert row.loc["partly", "promises_partly_kept"] == 1 and row.loc["pending", "promises_pending"] == 1


def test_broken_promises_point_to_intent_to_default(warehouse):
    with warehouse.session(read_only=True) as session:
        behaviour = session.frame("select * from customer_behaviour where as_of = $as_of", {"as_of": AS_OF})
    signals = behaviour_signals(behaviour, load_settings()["segment"]).set_index("customer_id")
    assert signals.loc["broken", "behaviour_segment"] == "intent_to_default"
    assert "broken_promises" in signals.loc["broken", "behaviour_reasons"]
    assert "promises to pay broken" in signals.loc["broken", "behaviour_fact"]
    assert "broken_promises" not in signals.loc["late", "behaviour_reasons"]  # one broken promise is not enough


def test_rerun_changes_nothing(warehouse):
    with warehouse.session(read_only=True) as session:
        before = session.frame("select * from promise_outcomes order by all")
    build_behaviour(warehouse, AS_OF, in_scope_call_days=14, promise_grace_days=1)
    with warehouse.session(read_only=True) as session:
        after = session.frame("select * from promise_outcomes order by all")
    pd.testing.assert_frame_equal(before, after)
