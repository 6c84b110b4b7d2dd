-- grain: one row per scheduled installment (loan_id, installment_no) in the stg_repayments partition of $as_of,
-- future installments included (is_due = false).
-- parameters: $as_of (date).
-- payments dated after $as_of are ignored, so replaying a landing file for an earlier date gives that date's answer.
-- a payment is a row with paid_on <= $as_of and amount_paid > 0.
-- fully paid: cumulative payments reached amount_due minus a tolerance of 1% of amount_due (at least 0.01), which
-- absorbs rounding and small fee differences; an installment with nothing to pay is paid in full on its due date.
with repayments as (
    select * from stg_repayments
    where as_of = $as_of
),

installments as (
    -- the schedule: every row of an installment repeats its due date and amount; min/max guard against
    -- rows that disagree (the data contract reports those).
    select
        loan_id,
        installment_no,
        min(customer_id) as customer_id,
        min(due_on) as due_on,
        max(amount_due) as amount_due,
        max(amount_due) - greatest(0.01, 0.01 * max(amount_due)) as amount_to_clear
    from repayments
    group by loan_id, installment_no
),

payments_known_on_as_of as (
    select
        loan_id,
        installment_no,
        paid_on,
        amount_paid
    from repayments
    where paid_on <= $as_of
      and amount_paid > 0
),

payments_with_running_total as (
    -- range frame: payments on the same day count together, so the running total is "paid by the end of paid_on"
    select
        payments_known_on_as_of.*,
        installments.amount_to_clear,
        sum(payments_known_on_as_of.amount_paid) over (
            partition by payments_known_on_as_of.loan_id, payments_known_on_as_of.installment_no
            order by payments_known_on_as_of.paid_on
            range between unbounded preceding and current row
        ) as paid_to_date
    from payments_known_on_as_of
    inner join installments using (loan_id, installment_no)
),

payments_per_installment as (
    select
        loan_id,
        installment_no,
        sum(amount_paid) as amount_paid,
        count(*) as payment_count,
        min(paid_on) as first_paid_on,
        max(paid_on) as last_paid_on,
        min(paid_on) filter (where paid_to_date >= amount_to_clear) as cleared_on,
        count(*) filter (where paid_to_date < amount_to_clear) as payments_short_of_full
    from payments_with_running_total
    group by loan_id, installment_no
),

installments_with_payments as (
    select
        installments.customer_id,
        installments.loan_id,
        installments.installment_no,
        installments.due_on,
        installments.amount_due,
        installments.amount_to_clear,
        coalesce(payments_per_installment.amount_paid, 0) as amount_paid,
        coalesce(payments_per_installment.payment_count, 0) as payment_count,
        coalesce(payments_per_installment.payments_short_of_full, 0) as payments_short_of_full,
        payments_per_installment.first_paid_on,
        payments_per_installment.last_paid_on,
        case
            when installments.amount_to_clear <= 0
                then least(installments.due_on, coalesce(payments_per_installment.cleared_on, installments.due_on))
            else payments_per_installment.cleared_on
        end as cleared_on,
        installments.installment_no
            = min(installments.installment_no) over (partition by installments.loan_id) as is_first_installment
    from installments
    left join payments_per_installment using (loan_id, installment_no)
),

installments_cleared as (
    select
        * exclude (cleared_on),
        case when cleared_on <= $as_of then cleared_on end as paid_in_full_on
    from installments_with_payments
),

installments_timed as (
    select
        *,
        due_on <= $as_of as is_due,
        paid_in_full_on is not null as is_fully_paid,
        date_diff('day', due_on, paid_in_full_on) as days_late
    from installments_cleared
),

final as (
    select
        customer_id,
        loan_id,
        installment_no,
        is_first_installment,
        due_on,
        amount_due,
        amount_paid,
        payment_count,
        first_paid_on,
        last_paid_on,
        is_due,
        is_fully_paid,
        paid_in_full_on,
        days_late,
        coalesce(days_late <= 0, false) as is_paid_on_time,
        coalesce(days_late > 0, false) as is_paid_late,
        coalesce(days_late between 1 and 3, false) as is_paid_1_3_days_late,
        is_fully_paid and payments_short_of_full > 0 as is_paid_in_parts,
        is_due and amount_paid > 0 and not is_fully_paid as is_partial,
        due_on < $as_of and not is_fully_paid as is_overdue,
        case
            when due_on < $as_of and not is_fully_paid then date_diff('day', due_on, $as_of::date)
        end as days_overdue,
        case when is_fully_paid then 0 else greatest(amount_due - amount_paid, 0) end as amount_outstanding
    from installments_timed
)

select * from final
