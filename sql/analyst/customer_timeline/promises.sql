-- customer_timeline part: every promise to pay the customer made on a call (issue 3's promises table), as last
-- extracted (a call is re-read every night of its look-back window: the latest extraction per promise_id).
-- grain: one row per promise. columns: customer_id, event_on, event_at, event_type, reference, detail, amount
with promise_rows as (
    select * from promises
    qualify row_number() over (partition by promise_id order by as_of desc) = 1
),

final as (
    select
        customer_id,
        promised_on as event_on,
        null::timestamptz as event_at,
        'promise' as event_type,
        call_id as reference,
        'promised on ' || call_on || (case when is_partial then ' (part)' else '' end) || ': ' || phrase as detail,
        amount
    from promise_rows
)

select * from final
