-- grain: one row per promise to pay extracted on a night before $as_of (latest extraction per promise_id),
-- judged against the staged repayments of $as_of (partitions $staged_from..$as_of).
-- parameters: $as_of (date), $grace_days (integer).
-- a promise is due by promised_on + $grace_days. expected amount: the amount said, else the amount overdue on
-- the call date (installments due before it, minus what was paid before it); a partial promise ("先还一点")
-- or one with nothing overdue expects any payment. payments count from the call date to the due date.
-- status: kept (expected amount paid, 1% tolerance, or any payment when any is expected) | pending (not kept,
-- due date still ahead of $as_of) | partly_kept (something paid by the due date) | broken (nothing paid).
with promises_made as (
    select * exclude (extraction_rank)
    from (
        select
            *,
            row_number() over (partition by promise_id order by as_of desc) as extraction_rank
        from promises
        where as_of < $as_of
          and call_on <= $as_of
    )
    where extraction_rank = 1
),

repayments as (
    select * from stg_repayments
    where as_of between $staged_from and $as_of
),

installments as (
    select
        customer_id,
        loan_id,
        installment_no,
        min(due_on) as due_on,
        max(amount_due) as amount_due
    from repayments
    group by customer_id, loan_id, installment_no
),

payments as (
    select customer_id, loan_id, installment_no, paid_on, amount_paid
    from repayments
    where paid_on is not null
      and paid_on <= $as_of
      and amount_paid > 0
),

overdue_on_call_date as (
    select
        promises_made.promise_id,
        sum(greatest(
            installments.amount_due - coalesce((
                select sum(payments.amount_paid)
                from payments
                where payments.loan_id = installments.loan_id
                  and payments.installment_no = installments.installment_no
                  and payments.paid_on < promises_made.call_on
            ), 0),
            0
        )) as amount_overdue_on_call_date
    from promises_made
    inner join installments
        on installments.customer_id = promises_made.customer_id
       and installments.due_on < promises_made.call_on
    group by promises_made.promise_id
),

paid_toward as (
    select
        promises_made.promise_id,
        sum(payments.amount_paid) as amount_paid
    from promises_made
    inner join payments
        on payments.customer_id = promises_made.customer_id
       and payments.paid_on >= promises_made.call_on
       and payments.paid_on <= promises_made.promised_on + cast($grace_days as integer)
    group by promises_made.promise_id
),

judged as (
    select
        promises_made.promise_id,
        promises_made.call_id,
        promises_made.customer_id,
        promises_made.call_on,
        promises_made.promised_on,
        promises_made.promised_on + cast($grace_days as integer) as due_by,
        promises_made.is_partial,
        promises_made.basis,
        case
            when promises_made.is_partial then null
            when promises_made.amount is not null then promises_made.amount
            when coalesce(overdue_on_call_date.amount_overdue_on_call_date, 0) > 0
                then overdue_on_call_date.amount_overdue_on_call_date
        end as amount_expected,
        coalesce(paid_toward.amount_paid, 0) as amount_paid
    from promises_made
    left join overdue_on_call_date using (promise_id)
    left join paid_toward using (promise_id)
),

final as (
    select
        *,
        case
            when amount_expected is null and amount_paid > 0 then 'kept'
            when amount_expected is not null
                and amount_paid >= amount_expected - greatest(0.01, 0.01 * amount_expected) then 'kept'
            when due_by > $as_of then 'pending'
            when amount_paid > 0 then 'partly_kept'
            else 'broken'
        end as status
    from judged
)

select * from final
