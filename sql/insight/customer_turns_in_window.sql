-- grain: one row per turn of a call started within the call-insight lookback window, up to and including as_of.
-- the text is already redacted; the insight stage keeps only the customer's turns, so text is null on turns whose
-- speaker cannot be the customer (no 'customer' in it, any case): fewer strings to hand to python.
-- the calls are the staged calls of $as_of: the partitions $staged_from..$as_of (one for a snapshot night), the
-- latest staged version of each call_id with its own turns.
with calls as (
    select as_of as staged_on, call_id, customer_id, started_at
    from stg_calls
    where as_of between $staged_from and $as_of
    qualify row_number() over (partition by call_id order by as_of desc) = 1
),

turns as (
    select as_of as staged_on, call_id, turn_no, speaker, text
    from stg_call_turns
    where as_of between $staged_from and $as_of
),

calls_in_window as (
    select *
    from calls
    where cast(started_at as date) > $as_of - cast($lookback_days as integer)
      and cast(started_at as date) <= $as_of
),

final as (
    select
        turns.call_id,
        calls_in_window.customer_id,
        calls_in_window.started_at,
        turns.turn_no,
        turns.speaker,
        case when lower(turns.speaker) like '%customer%' then turns.text end as text
    from turns
    inner join calls_in_window using (staged_on, call_id)
    order by turns.call_id, turns.turn_no
)

select * from final
