-- customer_timeline part: every payment received, as staged on the latest night (its snapshot, or the latest
-- snapshot plus the deltas since).
-- grain: one row per payment row of the landing file. columns: customer_id, event_on, event_at, event_type,
-- reference, detail, amount
with latest_night as (
    select
        latest.as_of,
        coalesce(staged_nights.staged_from, latest.as_of) as staged_from
    from (select max(as_of) as as_of from stg_repayments) as latest
    left join staged_nights using (as_of)
),

repayments as (
    select stg_repayments.*
    from stg_repayments
    inner join latest_night
        on stg_repayments.as_of between latest_night.staged_from and latest_night.as_of
    where stg_repayments.paid_on is not null
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
