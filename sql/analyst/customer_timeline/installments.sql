-- customer_timeline part: every installment falling due, as known on the latest night.
-- grain: one row per (customer, loan, installment). columns: customer_id, event_on, event_at, event_type,
-- reference, detail, amount
with installments as (
    select * from installment_status
    where as_of = (select max(as_of) from installment_status)
),

final as (
    select
        customer_id,
        due_on as event_on,
        null::timestamptz as event_at,
        'installment_due' as event_type,
        loan_id || '#' || installment_no as reference,
        case
            when is_fully_paid and days_late <= 0 then 'paid on time'
            when is_fully_paid then 'paid ' || days_late || ' days late'
            when is_overdue then 'overdue ' || days_overdue || ' days'
            when is_partial then 'partly paid'
            else 'not due yet'
        end as detail,
        amount_due as amount
    from installments
)

select * from final
