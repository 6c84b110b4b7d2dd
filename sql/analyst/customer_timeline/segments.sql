-- customer_timeline part: the care segment each night gave the customer, with the action and the reasons.
-- grain: one row per (customer, as_of). columns: customer_id, event_on, event_at, event_type, reference, detail,
-- amount
with segments as (
    select * from care_segments
),

final as (
    select
        customer_id,
        as_of as event_on,
        null::timestamptz as event_at,
        'segment' as event_type,
        as_of::varchar as reference,
        segment || ' (' || round(confidence, 2) || '): ' || action || ' [' || reasons || ']' as detail,
        amount_overdue as amount
    from segments
)

select * from final
