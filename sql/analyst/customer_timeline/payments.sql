-- customer_timeline part: every payment received, as loaded on the latest night.
-- grain: one row per payment row of the landing file. columns: customer_id, event_on, event_at, event_type,
-- reference, detail, amount
with repayments as (
    select * from stg_repayments
    where as_of = (select max(as_of) from stg_repayments) and paid_on is not null
),

final as (
    select
        customer_id,
        paid_on as event_on,
        null::timestamptz as event_at,
        'payment' as event_type,
        loan_id || '#' || installment_no as reference,
        'paid ' || (paid_on - due_on) || ' days after due' as detail,
        amount_paid as amount
    from repayments
)

select * from final
