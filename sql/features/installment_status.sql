-- grain: one row per scheduled installment (loan_id, installment_no) in the staged repayments of $as_of (its
-- partition for a snapshot night; the latest snapshot plus the deltas since for a delta night), future
-- installments included (is_due = false).
-- parameters: $as_of (date), $staged_from (date; Session fills it from landing_loads).
-- payments dated after $as_of are ignored, so replaying a landing file for an earlier date gives that date's
-- answer. a payment is a row with paid_on <= $as_of and amount_paid > 0.
-- fully paid: cumulative payments reached amount_due minus a tolerance of 1% of amount_due (at least 0.01),
-- which absorbs rounding and small fee differences; an installment with nothing to pay is paid in full on its
-- due date.
with repayments as (
    select * from stg_repayments
    where as_of between $staged_from and $as_of
),

repayments_known_on_as_of as (
    -- a payment dated after $as_of is not known yet: its row only tells that the installment exists
    select
        loan_id,
        installment_no,
        customer_id,
        due_on,
        amount_due,
        case when paid_on <= $as_of and amount_paid > 0 then paid_on end as paid_on,
        case when paid_on <= $as_of and amount_paid > 0 then amount_paid end as amount_paid
    from repayments
),

installment_totals as (
    -- the rows of an installment should agree on due_on and amount_due (the staging contract checks it);
    -- if they do not, the earliest due date and the largest amount are used.
    select
        loan_id,
        installment_no,
        min(customer_id) as customer_id,
        min(due_on) as due_on,
        max(amount_due) as amount_due,
        max(amount_due) - greatest(0.01, 0.01 * max(amount_due)) as amount_to_clear,
        coalesce(sum(amount_paid), 0) as amount_paid,
        count(paid_on) as payment_count,
        min(paid_on) as first_paid_on,
        max(paid_on) as last_paid_on
    from repayments_known_on_as_of
    group by loan_id, installment_no
),

installments_paid_on_several_days as (
    -- only these need a running total; the others are cleared, or not, on their single payment day
    select
        loan_id,
        installment_no,
        amount_to_clear
    from installment_totals
    where first_paid_on < last_paid_on
),

several_days_running_total as (
    -- range frame: payments on the same day count together, so paid_to_date is "paid by the end of paid_on"
    select
        payments.loan_id,
        payments.installment_no,
        payments.paid_on,
        installments_paid_on_several_days.amount_to_clear,
        sum(payments.amount_paid) over (
            partition by payments.loan_id, payments.installment_no
            order by payments.paid_on
            range between unbounded preceding and current row
        ) as paid_to_date
    from repayments_known_on_as_of as payments
    inner join installments_paid_on_several_days using (loan_id, installment_no)
    where payments.paid_on is not null
),

several_days_cleared as (
    select
        loan_id,
        installment_no,
        min(paid_on) filter (where paid_to_date >= amount_to_clear) as cleared_on,
        count(*) filter (where paid_to_date < amount_to_clear) as payments_short_of_full
    from several_days_running_total
    group by loan_id, installment_no
),

loans as (
    select
        loan_id,
        min(installment_no) as first_installment_no
    from installment_totals
    group by loan_id
),

installments_cleared as (
    select
        installment_totals.* exclude (amount_to_clear),
        installment_totals.installment_no = loans.first_installment_no as is_first_installment,
        coalesce(several_days_cleared.payments_short_of_full, 0) as payments_short_of_full,
        case
            when installment_totals.amount_to_clear <= 0
                then least(
                    installment_totals.due_on,
                    coalesce(installment_totals.first_paid_on, installment_totals.due_on)
                )
            when installment_totals.first_paid_on = installment_totals.last_paid_on
                then case
                    when installment_totals.amount_paid >= installment_totals.amount_to_clear
                        then installment_totals.first_paid_on
                end
            else several_days_cleared.cleared_on
        end as cleared_on
    from installment_totals
    inner join loans using (loan_id)
    left join several_days_cleared using (loan_id, installment_no)
),

installments_paid_in_full as (
    -- an installment with nothing to pay is cleared on its due date, which may still be ahead of $as_of
    select
        * exclude (cleared_on),
        case when cleared_on <= $as_of then cleared_on end as paid_in_full_on
    from installments_cleared
),

installments_timed as (
    select
        *,
        due_on <= $as_of as is_due,
        paid_in_full_on is not null as is_fully_paid,
        date_diff('day', due_on, paid_in_full_on) as days_late
    from installments_paid_in_full
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
