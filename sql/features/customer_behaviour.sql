-- grain: one row per customer with any row in the stg_repayments partition of $as_of.
-- reads: the installment_status and promise_outcomes partitions of $as_of (written just before by
-- pipelines.behaviour); promises count those made on calls analysed on earlier nights.
-- parameters: $as_of (date).
-- dpd = days past due: $as_of minus the oldest due date still not fully paid (DOMAIN.md); buckets M1 1-30,
-- M2 31-60, M3 61-90, M3+ over 90.
-- streaks order a customer's installments by due date across all loans (ties: loan_id, installment_no) and
-- look only at settled history: fully paid installments due before the oldest overdue one (all fully paid due
-- installments when the customer is not overdue).
with installments as (
    select * from installment_status
    where as_of = $as_of
),

customer_installments as (
    select
        customer_id,
        count(distinct loan_id) as loan_count,
        min(due_on) as first_due_on,
        max(last_paid_on) as last_payment_on,
        min(due_on) filter (where is_overdue) as oldest_overdue_due_on,
        count(*) filter (where is_due) as installments_due,
        count(*) filter (where is_due and is_fully_paid) as installments_paid,
        count(*) filter (where is_due and is_paid_on_time) as installments_paid_on_time,
        count(*) filter (where is_due and is_paid_late) as installments_paid_late,
        count(*) filter (where is_due and is_paid_1_3_days_late) as installments_paid_1_3_days_late,
        count(*) filter (where is_overdue) as installments_overdue,
        count(*) filter (where is_partial) as partial_installment_count,
        count(*) filter (where is_due and is_paid_in_parts) as paid_in_parts_count,
        count(*) filter (
            where is_first_installment and is_overdue and amount_paid = 0
        ) as first_payment_default_loan_count,
        coalesce(sum(amount_outstanding) filter (where is_overdue), 0) as amount_overdue,
        sum(amount_outstanding) as amount_outstanding
    from installments
    group by customer_id
),

settled_history as (
    -- the installments the streaks are measured on; from the oldest overdue one on is the delinquency
    select
        installments.customer_id,
        installments.loan_id,
        installments.installment_no,
        installments.due_on,
        installments.is_paid_on_time
    from installments
    inner join customer_installments using (customer_id)
    where installments.is_due
      and installments.is_fully_paid
      and (
          customer_installments.oldest_overdue_due_on is null
          or installments.due_on < customer_installments.oldest_overdue_due_on
      )
),

settled_history_runs as (
    -- gaps and islands: every installment not paid on time starts a new run; the on-time installments that
    -- follow it share its run_no
    select
        *,
        sum(case when is_paid_on_time then 0 else 1 end) over (
            partition by customer_id
            order by due_on, loan_id, installment_no
            rows between unbounded preceding and current row
        ) as run_no
    from settled_history
),

on_time_runs as (
    select
        customer_id,
        run_no,
        count(*) filter (where is_paid_on_time) as run_length,
        min(due_on) filter (where is_paid_on_time) as run_first_due_on,
        max(due_on) filter (where is_paid_on_time) as run_last_due_on
    from settled_history_runs
    group by customer_id, run_no
),

on_time_runs_ranked as (
    select
        *,
        run_no = max(run_no) over (partition by customer_id) as is_last_run
    from on_time_runs
),

customer_streaks as (
    select
        customer_id,
        max(run_length) as longest_on_time_streak,
        max(run_length) filter (where is_last_run) as last_run_length,
        max(run_first_due_on) filter (where is_last_run) as last_run_first_due_on,
        max(run_last_due_on) filter (where is_last_run) as last_run_last_due_on
    from on_time_runs_ranked
    group by customer_id
),

customer_promises as (
    select
        customer_id,
        count(*) as promises_made,
        count(*) filter (where status = 'kept') as promises_kept,
        count(*) filter (where status = 'partly_kept') as promises_partly_kept,
        count(*) filter (where status = 'broken') as promises_broken,
        count(*) filter (where status = 'pending') as promises_pending
    from promise_outcomes
    where as_of = $as_of
    group by customer_id
),

customer_features as (
    select
        customer_installments.*,
        customer_installments.oldest_overdue_due_on is not null as is_overdue,
        coalesce(
            date_diff('day', customer_installments.oldest_overdue_due_on, $as_of::date), 0
        ) as days_past_due,
        coalesce(customer_streaks.longest_on_time_streak, 0) as longest_on_time_streak,
        case
            when customer_installments.oldest_overdue_due_on is not null
                then coalesce(customer_streaks.last_run_length, 0)
            else 0
        end as on_time_streak_before_break,
        customer_streaks.last_run_first_due_on,
        customer_streaks.last_run_last_due_on,
        coalesce(customer_promises.promises_made, 0) as promises_made,
        coalesce(customer_promises.promises_kept, 0) as promises_kept,
        coalesce(customer_promises.promises_partly_kept, 0) as promises_partly_kept,
        coalesce(customer_promises.promises_broken, 0) as promises_broken,
        coalesce(customer_promises.promises_pending, 0) as promises_pending
    from customer_installments
    left join customer_streaks using (customer_id)
    left join customer_promises using (customer_id)
),

final as (
    select
        customer_id,
        days_past_due,
        case
            when days_past_due = 0 then 'current'
            when days_past_due <= 30 then 'M1'
            when days_past_due <= 60 then 'M2'
            when days_past_due <= 90 then 'M3'
            else 'M3+'
        end as dpd_bucket,
        is_overdue,
        oldest_overdue_due_on,
        installments_due,
        installments_paid,
        installments_paid_on_time,
        installments_paid_late,
        installments_paid_1_3_days_late,
        installments_overdue,
        case
            when installments_paid > 0 then installments_paid_1_3_days_late / installments_paid
        end as share_paid_1_3_days_late,
        partial_installment_count,
        paid_in_parts_count,
        partial_installment_count + paid_in_parts_count as partial_payment_count,
        longest_on_time_streak,
        on_time_streak_before_break,
        case
            when on_time_streak_before_break > 0
                then (year(last_run_last_due_on) * 12 + month(last_run_last_due_on))
                    - (year(last_run_first_due_on) * 12 + month(last_run_first_due_on)) + 1
            else 0
        end as clean_history_months,
        first_payment_default_loan_count > 0 as is_first_payment_default,
        first_payment_default_loan_count,
        amount_overdue,
        amount_outstanding,
        first_due_on,
        last_payment_on,
        loan_count,
        promises_made,
        promises_kept,
        promises_partly_kept,
        promises_broken,
        promises_pending
    from customer_features
)

select * from final
