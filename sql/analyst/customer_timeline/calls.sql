-- customer_timeline part: every collection call, with the intent call insight gave it on its latest night.
-- grain: one row per call. columns: customer_id, event_on, event_at, event_type, reference, detail, amount
with calls as (
    select * from stg_calls
    qualify row_number() over (partition by call_id order by as_of desc) = 1
),

insights as (
    select call_id, intent, sub_reason, evidence from call_insights
    qualify row_number() over (partition by call_id order by as_of desc) = 1
),

final as (
    select
        calls.customer_id,
        calls.started_at::date as event_on,
        calls.started_at as event_at,
        'call' as event_type,
        calls.call_id as reference,
        concat_ws(' | ', calls.direction || ' ' || round(calls.duration_s) || ' s',
                  insights.intent || coalesce('/' || nullif(insights.sub_reason, ''), ''),
                  nullif(insights.evidence, '')) as detail,
        null::double as amount
    from calls
    left join insights using (call_id)
)

select * from final
