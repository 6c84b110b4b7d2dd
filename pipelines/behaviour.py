"""Stage 2: repayment behaviour features for one as-of date.

Glossary (see DOMAIN.md): DPD = days past due, FPD = first-payment default.

Runs four SQL models in order and replaces their ``as_of`` partitions, so a rerun changes nothing:
``features/installment_status`` (one row per installment) -> ``insight/promise_outcomes`` (one row per promise
to pay extracted on an earlier night: kept / partly kept / broken / pending) -> ``features/customer_behaviour``
(one row per customer with repayments) -> ``features/in_scope_customers`` (overdue or recently called customers).
The column definitions are in ``sql/features/README.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from pipelines.warehouse import Warehouse, sql_text

log = logging.getLogger(__name__)

INSTALLMENT_STATUS = "installment_status"
CUSTOMER_BEHAVIOUR = "customer_behaviour"
IN_SCOPE_CUSTOMERS = "in_scope_customers"
PROMISE_OUTCOMES = "promise_outcomes"


@dataclass(frozen=True)
class BehaviourReport:
    """Row counts written for one as-of date."""

    as_of: date
    customers: int
    in_scope: int
    overdue: int


def _checked_call_days(in_scope_call_days: int) -> int:
    if isinstance(in_scope_call_days, bool) or not isinstance(in_scope_call_days, int):
        raise TypeError(f"in_scope_call_days must be an int, got {in_scope_call_days!r}")
    if in_scope_call_days < 0:
        raise ValueError(f"in_scope_call_days must be >= 0, got {in_scope_call_days}")
    return in_scope_call_days


def build_behaviour(
    warehouse: Warehouse, as_of: date, in_scope_call_days: int = 14, promise_grace_days: int = 1
) -> BehaviourReport:
    """Replace the as-of partitions of installment_status, promise_outcomes, customer_behaviour, in_scope_customers.

    A customer is in scope when overdue on ``as_of`` or called within the last ``in_scope_call_days`` days
    up to and including ``as_of``. A promise to pay is broken when nothing came by its date plus
    ``promise_grace_days``. Returns the row counts written.
    """
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise TypeError(f"as_of must be a date, got {as_of!r}")
    if isinstance(promise_grace_days, bool) or not isinstance(promise_grace_days, int) or promise_grace_days < 0:
        raise ValueError(f"promise_grace_days must be an int >= 0, got {promise_grace_days!r}")
    params = {"as_of": as_of, "in_scope_call_days": _checked_call_days(in_scope_call_days),
              "grace_days": promise_grace_days}
    with warehouse.session() as session:
        installments = session.replace_partition(
            INSTALLMENT_STATUS, as_of, sql_text("features/installment_status"), params
        )
        session.replace_partition(PROMISE_OUTCOMES, as_of, sql_text("insight/promise_outcomes"), params)
        customers = session.replace_partition(
            CUSTOMER_BEHAVIOUR, as_of, sql_text("features/customer_behaviour"), params
        )
        in_scope = session.replace_partition(
            IN_SCOPE_CUSTOMERS, as_of, sql_text("features/in_scope_customers"), params
        )
        overdue = int(
            session.scalar(
                f"select count(*) from {CUSTOMER_BEHAVIOUR} where as_of = $as_of and is_overdue", params
            )
        )
    report = BehaviourReport(as_of=as_of, customers=customers, in_scope=in_scope, overdue=overdue)
    log.info(
        "behaviour for %s: %d installments, %d customers, %d overdue, %d in scope (calls within %d days)",
        as_of, installments, customers, overdue, in_scope, in_scope_call_days,
    )
    return report
