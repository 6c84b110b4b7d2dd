"""Seeded-DuckDB tests of the stage-2 behaviour models: one hand-built customer per behaviour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from pipelines.behaviour import BehaviourReport, build_behaviour
from pipelines.warehouse import Warehouse

AS_OF = date(2024, 6, 30)
EARLIER_AS_OF = date(2024, 5, 31)
HOME_CREDIT = Path("/work/shared/data/home_credit")


def _months_after(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    return date(start.year + month_index // 12, month_index % 12 + 1, start.day)


def _installment(customer: str, loan: str, no: int, due_on: date, amount: float,
                 *payments: tuple[date, float]) -> list[dict]:
    base = {"loan_id": loan, "customer_id": customer, "installment_no": no}
    base |= {"due_on": due_on, "amount_due": amount}
    if not payments:
        return [{**base, "paid_on": None, "amount_paid": None}]
    return [{**base, "paid_on": paid_on, "amount_paid": paid} for paid_on, paid in payments]


def _monthly(customer: str, loan: str, first_due_on: date, amount: float,
             days_late: list[int | None]) -> list[dict]:
    """One installment a month; ``None`` in ``days_late`` leaves that installment unpaid."""
    rows: list[dict] = []
    for offset, late in enumerate(days_late):
        due_on = _months_after(first_due_on, offset)
        payments = [] if late is None else [(due_on + timedelta(days=late), amount)]
        rows += _installment(customer, loan, offset + 1, due_on, amount, *payments)
    return rows


def _one_overdue(customer: str, days_past_due: int, as_of: date = AS_OF) -> list[dict]:
    return _installment(customer, f"{customer}-loan", 1, as_of - timedelta(days=days_past_due), 100.0)


def _paid_up(customer: str) -> list[dict]:
    return _installment(customer, f"{customer}-loan", 1, date(2024, 6, 1), 100.0, (date(2024, 6, 1), 100.0))


def _repayments_on_as_of() -> pd.DataFrame:
    rows = (
        # always on time (one paid 2 days early), plus a future installment
        _monthly("on_time", "L1", date(2024, 1, 10), 100.0, [0, 0, -2, 0, 0, 0, None])
        # habitually 1-3 days late: 5 of 8 paid 1-3 days late, one 5 days late, two on time
        + _monthly("habitual_late", "L2", date(2023, 11, 5), 200.0, [2, 1, 0, 3, 2, 5, 1, 0])
        # a late one, 12 on time (2023-05-15 .. 2024-04-15), then two missed, then a future one
        + _monthly("clean_then_break", "L3", date(2023, 2, 15), 300.0, [0, 0, 10] + [0] * 12 + [None] * 3)
        # first-payment default: nothing ever paid
        + _monthly("first_payment_default", "L4", date(2024, 5, 20), 500.0, [None, None, None])
        # paid in two parts reaching the amount 3 days late; then 99.5 of 100 (inside the 1% tolerance)
        + _installment("partial_full", "L5", 1, date(2024, 5, 10), 100.0,
                       (date(2024, 5, 8), 60.0), (date(2024, 5, 13), 40.0))
        + _installment("partial_full", "L5", 2, date(2024, 6, 10), 100.0, (date(2024, 6, 10), 99.5))
        # still short: 150 of 300, and 98.9 of 100 (outside the tolerance)
        + _installment("partial_short", "L6", 1, date(2024, 6, 1), 300.0,
                       (date(2024, 6, 3), 100.0), (date(2024, 6, 20), 50.0))
        + _installment("partial_short", "L6", 2, date(2024, 6, 25), 100.0, (date(2024, 6, 25), 98.9))
        # two loans interleaved by due date (5th and 20th of each month)
        + _monthly("two_loans", "L7A", date(2024, 1, 5), 50.0, [0, 0, 0, 0, None, 0])
        + _monthly("two_loans", "L7B", date(2024, 1, 20), 50.0, [0, 5, 2, 0, 0, 0])
        # the second installment is paid after the as-of date: unknown on AS_OF
        + _monthly("paid_after_as_of", "L8", date(2024, 5, 15), 100.0, [0, 17])
        # the second installment falls due on the as-of date itself
        + _monthly("due_on_as_of", "L9", date(2024, 5, 30), 100.0, [0, None])
        + [row for days in (1, 30, 31, 60, 61, 90, 91) for row in _one_overdue(f"dpd_{days}", days)]
        + _paid_up("called_14_days_ago")
        + _paid_up("called_15_days_ago")
        + _paid_up("called_late_evening_local")
        + _paid_up("called_after_as_of")
    )
    return pd.DataFrame(rows).assign(source_row=lambda frame: range(1, len(frame) + 1))


def _calls_on_as_of() -> pd.DataFrame:
    minus_three = timezone(timedelta(hours=-3))
    calls = [
        ("called_14_days_ago", datetime(2024, 6, 16, 9, 0, tzinfo=UTC)),
        ("called_15_days_ago", datetime(2024, 6, 15, 9, 0, tzinfo=UTC)),
        # 23:30 on the 15th at UTC-3 is 02:30 on the 16th in UTC: inside the window
        ("called_late_evening_local", datetime(2024, 6, 15, 23, 30, tzinfo=minus_three)),
        ("called_after_as_of", datetime(2024, 7, 1, 9, 0, tzinfo=UTC)),
        ("call_only", datetime(2024, 6, 29, 10, 0, tzinfo=UTC)),
        ("call_only", datetime(2024, 6, 20, 10, 0, tzinfo=UTC)),
        ("clean_then_break", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
    ]
    return _calls_frame(calls)


def _calls_frame(calls: list[tuple[str, datetime]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_row": range(1, len(calls) + 1),
            "call_id": [f"call-{n}" for n in range(len(calls))],
            "customer_id": [customer for customer, _ in calls],
            "started_at": pd.to_datetime([started for _, started in calls], utc=True),
            "direction": "outbound",
            "duration_s": 60.0,
            "turn_count": 4,
            "customer_turn_count": 2,
        }
    )


def _seed(path: Path) -> Warehouse:
    warehouse = Warehouse(path)
    earlier = pd.DataFrame(
        _one_overdue("ghost", 45, EARLIER_AS_OF)
        + _monthly("on_time", "L1", date(2024, 1, 10), 999.0, [None] * 7)
    ).assign(source_row=lambda frame: range(1, len(frame) + 1))
    with warehouse.session() as session:
        session.replace_partition("stg_repayments", AS_OF, _repayments_on_as_of())
        session.replace_partition("stg_calls", AS_OF, _calls_on_as_of())
        session.replace_partition("stg_repayments", EARLIER_AS_OF, earlier)
        session.replace_partition(
            "stg_calls", EARLIER_AS_OF, _calls_frame([("ghost_caller", datetime(2024, 6, 29, tzinfo=UTC))])
        )
    return warehouse


def _table(warehouse: Warehouse, table: str, as_of: date, key: list[str]) -> pd.DataFrame:
    with warehouse.session(read_only=True) as session:
        frame = session.frame(f"select * from {table} where as_of = $as_of", {"as_of": as_of})
    return frame.sort_values(key).set_index(key)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, BehaviourReport]:
    warehouse = _seed(tmp_path_factory.mktemp("behaviour") / "warehouse.duckdb")
    return warehouse, build_behaviour(warehouse, AS_OF, in_scope_call_days=14)


@pytest.fixture(scope="module")
def behaviour(built: tuple[Warehouse, BehaviourReport]) -> pd.DataFrame:
    return _table(built[0], "customer_behaviour", AS_OF, ["customer_id"])


@pytest.fixture(scope="module")
def installments(built: tuple[Warehouse, BehaviourReport]) -> pd.DataFrame:
    return _table(built[0], "installment_status", AS_OF, ["loan_id", "installment_no"])


@pytest.fixture(scope="module")
def in_scope(built: tuple[Warehouse, BehaviourReport]) -> pd.DataFrame:
    return _table(built[0], "in_scope_customers", AS_OF, ["customer_id"])


def _assert_customer(behaviour: pd.DataFrame, customer: str, **expected: object) -> None:
    row = behaviour.loc[customer]
    actual = {name: row[name] for name in expected}
    for name, value in expected.items():
        if value is None:
            assert pd.isna(actual[name]), f"{customer}.{name}: {actual}"
        elif isinstance(value, float):
            assert actual[name] == pytest.approx(value), f"{customer}.{name}: {actual}"
        else:
            assert actual[name] == value, f"{customer}.{name}: {actual}"


def test_report_counts(built: tuple[Warehouse, BehaviourReport], behaviour: pd.DataFrame) -> None:
    report = built[1]
    assert report.as_of == AS_OF
    assert report.customers == len(behaviour) == 20
    assert report.overdue == int(behaviour["is_overdue"].sum()) == 12
    assert report.in_scope == 15


def test_always_on_time(behaviour: pd.DataFrame) -> None:
    _assert_customer(
        behaviour, "on_time",
        days_past_due=0, dpd_bucket="current", is_overdue=False, installments_due=6, installments_paid=6,
        installments_paid_late=0, installments_overdue=0, share_paid_1_3_days_late=0.0,
        partial_payment_count=0,
        longest_on_time_streak=6, on_time_streak_before_break=0, clean_history_months=0,
        is_first_payment_default=False, amount_overdue=0.0, amount_outstanding=100.0,
        first_due_on=pd.Timestamp("2024-01-10"), last_payment_on=pd.Timestamp("2024-06-10"), loan_count=1,
    )


def test_habitual_1_3_days_late(behaviour: pd.DataFrame) -> None:
    _assert_customer(
        behaviour, "habitual_late",
        days_past_due=0, is_overdue=False, installments_due=8, installments_paid=8,
        installments_paid_on_time=2,
        installments_paid_late=6, installments_paid_1_3_days_late=5, share_paid_1_3_days_late=0.625,
        longest_on_time_streak=1, on_time_streak_before_break=0,
    )


def test_long_clean_record_then_two_missed(behaviour: pd.DataFrame) -> None:
    _assert_customer(
        behaviour, "clean_then_break",
        days_past_due=46, dpd_bucket="M2", is_overdue=True, oldest_overdue_due_on=pd.Timestamp("2024-05-15"),
        installments_due=17, installments_paid=15, installments_paid_late=1, installments_overdue=2,
        share_paid_1_3_days_late=0.0, longest_on_time_streak=12, on_time_streak_before_break=12,
        clean_history_months=12, is_first_payment_default=False, amount_overdue=600.0,
        last_payment_on=pd.Timestamp("2024-04-15"),
    )


def test_first_payment_default(behaviour: pd.DataFrame) -> None:
    _assert_customer(
        behaviour, "first_payment_default",
        days_past_due=41, dpd_bucket="M2", is_first_payment_default=True, first_payment_default_loan_count=1,
        installments_due=2, installments_paid=0, installments_overdue=2, amount_overdue=1000.0,
        share_paid_1_3_days_late=None, last_payment_on=None, longest_on_time_streak=0,
        on_time_streak_before_break=0, clean_history_months=0,
    )


def test_paid_in_two_parts_reaching_full(installments: pd.DataFrame, behaviour: pd.DataFrame) -> None:
    first = installments.loc[("L5", 1)]
    assert first["paid_in_full_on"] == pd.Timestamp("2024-05-13")
    assert first["days_late"] == 3
    assert first["payment_count"] == 2
    assert first["amount_paid"] == pytest.approx(100.0)
    assert bool(first["is_paid_in_parts"]) and bool(first["is_paid_1_3_days_late"])
    assert not first["is_partial"] and not first["is_paid_on_time"]
    within_tolerance = installments.loc[("L5", 2)]
    assert bool(within_tolerance["is_fully_paid"]) and bool(within_tolerance["is_paid_on_time"])
    assert within_tolerance["amount_outstanding"] == 0.0
    _assert_customer(
        behaviour, "partial_full",
        is_overdue=False, installments_paid=2, share_paid_1_3_days_late=0.5, paid_in_parts_count=1,
        partial_installment_count=0, partial_payment_count=1, longest_on_time_streak=1,
    )


def test_partial_still_short(installments: pd.DataFrame, behaviour: pd.DataFrame) -> None:
    short = installments.loc[("L6", 1)]
    assert bool(short["is_partial"]) and bool(short["is_overdue"]) and not short["is_fully_paid"]
    assert short["amount_paid"] == pytest.approx(150.0)
    assert short["amount_outstanding"] == pytest.approx(150.0)
    assert pd.isna(short["paid_in_full_on"]) and pd.isna(short["days_late"])
    outside_tolerance = installments.loc[("L6", 2)]
    assert bool(outside_tolerance["is_partial"]) and bool(outside_tolerance["is_overdue"])
    _assert_customer(
        behaviour, "partial_short",
        days_past_due=29, dpd_bucket="M1", installments_overdue=2, amount_overdue=151.1,
        partial_installment_count=2, paid_in_parts_count=0, partial_payment_count=2,
        is_first_payment_default=False, last_payment_on=pd.Timestamp("2024-06-25"),
    )


def test_two_loans_interleaved_by_due_date(behaviour: pd.DataFrame) -> None:
    # A1 B1 A2 | B2 late | A3 | B3 late | A4 B4 | A5 missed (then B5 A6 B6 on time, after the break)
    _assert_customer(
        behaviour, "two_loans",
        loan_count=2, days_past_due=56, dpd_bucket="M2", installments_due=12, installments_paid=11,
        installments_paid_late=2, installments_overdue=1, share_paid_1_3_days_late=1 / 11,
        longest_on_time_streak=3, on_time_streak_before_break=2, clean_history_months=1, amount_overdue=50.0,
        first_due_on=pd.Timestamp("2024-01-05"), last_payment_on=pd.Timestamp("2024-06-20"),
    )


def test_payments_after_as_of_are_ignored(installments: pd.DataFrame, behaviour: pd.DataFrame) -> None:
    later = installments.loc[("L8", 2)]
    assert later["amount_paid"] == 0.0 and later["payment_count"] == 0 and bool(later["is_overdue"])
    _assert_customer(
        behaviour, "paid_after_as_of",
        days_past_due=15, dpd_bucket="M1", installments_overdue=1, amount_overdue=100.0,
        last_payment_on=pd.Timestamp("2024-05-15"), on_time_streak_before_break=1, clean_history_months=1,
    )


def test_installment_due_on_as_of_is_not_yet_overdue(
    installments: pd.DataFrame, behaviour: pd.DataFrame
) -> None:
    today = installments.loc[("L9", 2)]
    assert bool(today["is_due"]) and not today["is_overdue"] and not today["is_partial"]
    assert today["amount_outstanding"] == 100.0
    assert not installments.loc[("L1", 7)]["is_due"]
    _assert_customer(
        behaviour, "due_on_as_of",
        days_past_due=0, dpd_bucket="current", is_overdue=False, installments_due=2, installments_paid=1,
        installments_overdue=0, longest_on_time_streak=1, amount_overdue=0.0,
    )


@pytest.mark.parametrize(
    ("days", "bucket"), [(1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"), (90, "M3"), (91, "M3+")]
)
def test_dpd_bucket_boundaries(behaviour: pd.DataFrame, days: int, bucket: str) -> None:
    _assert_customer(behaviour, f"dpd_{days}", days_past_due=days, dpd_bucket=bucket, is_overdue=True)


def test_in_scope_rule(in_scope: pd.DataFrame, behaviour: pd.DataFrame) -> None:
    overdue = set(behaviour.index[behaviour["is_overdue"]])
    called = {"called_14_days_ago", "called_late_evening_local", "call_only"}
    assert set(in_scope.index) == overdue | called
    assert not in_scope.loc[list(called), "is_overdue"].any()
    assert in_scope.loc[list(called), "is_recently_called"].all()
    only = in_scope.loc["call_only"]
    assert only["recent_call_count"] == 2 and not only["has_repayments"]
    assert only["last_call_at"] == pd.Timestamp("2024-06-29 10:00", tz="UTC")
    old_call = in_scope.loc["clean_then_break"]
    assert bool(old_call["is_overdue"]) and not old_call["is_recently_called"]
    assert old_call["recent_call_count"] == 0
    assert old_call["last_call_at"] == pd.Timestamp("2024-05-01 10:00", tz="UTC")
    assert old_call["days_past_due"] == 46


def test_in_scope_window_follows_the_parameter(tmp_path: Path) -> None:
    warehouse = _seed(tmp_path / "warehouse.duckdb")
    report = build_behaviour(warehouse, AS_OF, in_scope_call_days=15)
    in_scope = _table(warehouse, "in_scope_customers", AS_OF, ["customer_id"])
    assert "called_15_days_ago" in in_scope.index
    assert report.in_scope == 16


def test_other_partition_is_not_mixed_in(tmp_path: Path) -> None:
    warehouse = _seed(tmp_path / "warehouse.duckdb")
    build_behaviour(warehouse, AS_OF)
    before = _table(warehouse, "customer_behaviour", AS_OF, ["customer_id"])
    earlier_report = build_behaviour(warehouse, EARLIER_AS_OF)
    assert "ghost" not in before.index
    assert before.loc["on_time", "installments_paid"] == 6
    pd.testing.assert_frame_equal(_table(warehouse, "customer_behaviour", AS_OF, ["customer_id"]), before)
    earlier = _table(warehouse, "customer_behaviour", EARLIER_AS_OF, ["customer_id"])
    assert list(earlier.index) == ["ghost", "on_time"]
    assert earlier.loc["ghost", "days_past_due"] == 45
    # ghost and on_time are overdue there; ghost_caller's call is dated after 2024-05-31
    assert earlier_report.in_scope == 2


def test_replayed_landing_file_for_a_later_date(tmp_path: Path) -> None:
    warehouse = _seed(tmp_path / "warehouse.duckdb")
    later = date(2024, 7, 5)
    with warehouse.session() as session:
        session.replace_partition("stg_repayments", later, _repayments_on_as_of())
    build_behaviour(warehouse, later)
    row = _table(warehouse, "customer_behaviour", later, ["customer_id"]).loc["paid_after_as_of"]
    assert not row["is_overdue"] and row["installments_paid_late"] == 1
    assert row["last_payment_on"] == pd.Timestamp("2024-07-02")


def test_rerun_changes_nothing(tmp_path: Path) -> None:
    warehouse = _seed(tmp_path / "warehouse.duckdb")
    first = build_behaviour(warehouse, AS_OF)
    tables = {
        "installment_status": ["loan_id", "installment_no"],
        "customer_behaviour": ["customer_id"],
        "in_scope_customers": ["customer_id"],
    }
    before = {table: _table(warehouse, table, AS_OF, key) for table, key in tables.items()}
    second = build_behaviour(warehouse, AS_OF)
    assert second == first
    for table, key in tables.items():
        pd.testing.assert_frame_equal(_table(warehouse, table, AS_OF, key), before[table])
    with warehouse.session(read_only=True) as session:
        assert session.scalar("select count(*) from customer_behaviour") == first.customers


def _june(day: int) -> date:
    return date(2024, 6, day)


def test_installment_edge_cases(tmp_path: Path) -> None:
    rows = (
        # nothing to pay: cleared on its due date once that has come
        _installment("edge", "Z", 1, _june(1), 0.0)
        + _installment("edge", "Z", 2, date(2024, 7, 1), 0.0)
        # two payments on the same day reach the amount together: not paid in parts
        + _installment("edge", "S", 1, _june(10), 100.0, (_june(12), 50.0), (_june(12), 50.0))
        # the first payment already covers it; a later extra payment changes nothing
        + _installment("edge", "O", 1, _june(10), 100.0, (_june(5), 120.0), (_june(8), 10.0))
        # a zero payment is not a payment
        + _installment("edge", "N", 1, _june(10), 100.0, (_june(10), 0.0))
        # rows disagreeing on the schedule: the earliest due date and the largest amount are used
        + [
            {"loan_id": "D", "customer_id": "edge", "installment_no": 1, "due_on": _june(10),
             "amount_due": 100.0, "paid_on": _june(10), "amount_paid": 60.0},
            {"loan_id": "D", "customer_id": "edge", "installment_no": 1, "due_on": _june(12),
             "amount_due": 120.0, "paid_on": _june(11), "amount_paid": 60.0},
        ]
    )
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.session() as session:
        session.replace_partition(
            "stg_repayments", AS_OF, pd.DataFrame(rows).assign(source_row=lambda f: range(1, len(f) + 1))
        )
    build_behaviour(warehouse, AS_OF)
    status = _table(warehouse, "installment_status", AS_OF, ["loan_id", "installment_no"])
    zero_due, zero_future = status.loc[("Z", 1)], status.loc[("Z", 2)]
    assert bool(zero_due["is_fully_paid"]) and bool(zero_due["is_paid_on_time"])
    assert zero_due["paid_in_full_on"] == pd.Timestamp("2024-06-01")
    assert not zero_future["is_due"] and not zero_future["is_fully_paid"]
    assert zero_future["amount_outstanding"] == 0.0
    same_day = status.loc[("S", 1)]
    assert same_day["paid_in_full_on"] == pd.Timestamp("2024-06-12") and same_day["days_late"] == 2
    assert same_day["payment_count"] == 2 and not same_day["is_paid_in_parts"]
    overpaid = status.loc[("O", 1)]
    assert overpaid["paid_in_full_on"] == pd.Timestamp("2024-06-05") and overpaid["days_late"] == -5
    assert overpaid["amount_paid"] == 130.0 and overpaid["amount_outstanding"] == 0.0
    assert not overpaid["is_paid_in_parts"]
    zero_payment = status.loc[("N", 1)]
    assert zero_payment["payment_count"] == 0 and bool(zero_payment["is_overdue"])
    assert not zero_payment["is_partial"] and pd.isna(zero_payment["last_paid_on"])
    disagreeing = status.loc[("D", 1)]
    assert disagreeing["due_on"] == pd.Timestamp("2024-06-10") and disagreeing["amount_due"] == 120.0
    assert disagreeing["paid_in_full_on"] == pd.Timestamp("2024-06-11")
    assert bool(disagreeing["is_paid_in_parts"])
    customer = _table(warehouse, "customer_behaviour", AS_OF, ["customer_id"]).loc["edge"]
    assert customer["loan_count"] == 5 and customer["installments_due"] == 5
    assert customer["installments_overdue"] == 1 and customer["days_past_due"] == 20


@pytest.mark.parametrize(("days", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_rejects_bad_call_window(tmp_path: Path, days: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        build_behaviour(Warehouse(tmp_path / "warehouse.duckdb"), AS_OF, in_scope_call_days=days)  # type: ignore[arg-type]


def _home_credit_repayments(base_on: date) -> pd.DataFrame:
    raw = pd.read_csv(HOME_CREDIT / "installments_payments.csv")
    base = pd.Timestamp(base_on)
    paid_on = base + pd.to_timedelta(raw["DAYS_ENTRY_PAYMENT"], unit="D")
    return pd.DataFrame(
        {
            "source_row": range(1, len(raw) + 1),
            "loan_id": raw["SK_ID_PREV"].astype(str),
            "customer_id": raw["SK_ID_CURR"].astype(str),
            "installment_no": raw["NUM_INSTALMENT_NUMBER"].astype(int),
            "due_on": (base + pd.to_timedelta(raw["DAYS_INSTALMENT"], unit="D")).dt.date,
            "amount_due": raw["AMT_INSTALMENT"].astype(float),
            "paid_on": paid_on.dt.date.where(paid_on.notna(), None),
            "amount_paid": raw["AMT_PAYMENT"].astype(float),
        }
    )


def _expected_days_past_due(repayments: pd.DataFrame, as_of: date) -> pd.Series:
    """An independent pandas reading of DPD: as_of minus the oldest due date not paid within tolerance."""
    known = repayments["paid_on"].notna() & (repayments["paid_on"] <= as_of) & (repayments["amount_paid"] > 0)
    paid = repayments["amount_paid"].where(known, 0.0)
    per_installment = repayments.assign(paid=paid).groupby(["loan_id", "installment_no"]).agg(
        customer_id=("customer_id", "min"), due_on=("due_on", "min"),
        amount_due=("amount_due", "max"), paid=("paid", "sum"),
    )
    tolerance = (0.01 * per_installment["amount_due"]).clip(lower=0.01)
    overdue = per_installment[
        (per_installment["due_on"] < as_of)
        & (per_installment["paid"] < per_installment["amount_due"] - tolerance)
    ]
    oldest = overdue.groupby("customer_id")["due_on"].min()
    days = oldest.map(lambda due_on: (as_of - due_on).days)
    return days.reindex(repayments["customer_id"].unique(), fill_value=0).astype(int).sort_index()


@pytest.mark.parametrize("days_before_base", [0, 400])
def test_home_credit_sample_sanity(tmp_path: Path, days_before_base: int) -> None:
    if not (HOME_CREDIT / "installments_payments.csv").is_file():
        pytest.skip(f"{HOME_CREDIT} is absent")
    base_on = date(2024, 6, 30)
    as_of = base_on - timedelta(days=days_before_base)
    repayments = _home_credit_repayments(base_on)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.session() as session:
        session.replace_partition("stg_repayments", as_of, repayments)
    report = build_behaviour(warehouse, as_of)
    frame = _table(warehouse, "customer_behaviour", as_of, ["customer_id"])

    assert report.customers == len(frame) == repayments["customer_id"].nunique()
    assert report.in_scope == report.overdue == int(frame["is_overdue"].sum()) > 0
    assert (frame["days_past_due"] >= 0).all()
    assert ((frame["days_past_due"] > 0) == frame["is_overdue"]).all()
    assert (frame["installments_paid"] <= frame["installments_due"]).all()
    assert (frame["installments_paid"] + frame["installments_overdue"] <= frame["installments_due"]).all()
    paid_late_or_on_time = frame["installments_paid_late"] + frame["installments_paid_on_time"]
    assert (paid_late_or_on_time == frame["installments_paid"]).all()
    share = frame["share_paid_1_3_days_late"]
    assert share.dropna().between(0, 1).all()
    assert (share.isna() == (frame["installments_paid"] == 0)).all()
    assert (frame["on_time_streak_before_break"] <= frame["longest_on_time_streak"]).all()
    assert (frame["longest_on_time_streak"] <= frame["installments_paid_on_time"]).all()
    assert ((frame["clean_history_months"] == 0) == (frame["on_time_streak_before_break"] == 0)).all()
    assert (frame.loc[~frame["is_overdue"], "on_time_streak_before_break"] == 0).all()
    assert (frame["amount_overdue"] >= 0).all()
    assert ((frame["amount_overdue"] > 0) == frame["is_overdue"]).all()
    assert frame["dpd_bucket"].isin(["current", "M1", "M2", "M3", "M3+"]).all()
    assert ((frame["dpd_bucket"] == "current") == ~frame["is_overdue"]).all()
    assert (frame.loc[frame["is_first_payment_default"], "is_overdue"]).all()
    assert (frame["last_payment_on"].dropna() <= pd.Timestamp(as_of)).all()
    pd.testing.assert_series_equal(
        frame["days_past_due"].astype(int), _expected_days_past_due(repayments, as_of), check_names=False
    )
