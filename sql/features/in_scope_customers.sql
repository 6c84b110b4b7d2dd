-- grain: one row per customer in scope on $as_of: overdue on $as_of, or called within the last
-- $in_scope_call_days days up to and including $as_of (a call on $as_of - $in_scope_call_days counts; one a
-- day earlier does not). called customers with no repayment rows are in scope too.
-- reads: the customer_behaviour partition of $as_of (written just before by pipelines.behaviour) and the
-- staged calls of $as_of (the partitions $staged_from..$as_of, latest row per call_id).
-- parameters: $as_of (date), $in_scope_call_days (integer >= 0).
-- a call's date is the UTC date of started_at; calls started after $as_of are ignored.
with behaviour as (
    select
        customer_id,
        is_overdue,
        days_past_due
    from customer_behaviour
    where as_of = $as_of
),

calls as (
    select
        customer_id,
        call_id,
        started_at,
        cast(timezone('UTC', started_at) as date) as started_on
    from stg_calls
    where as_of between $staged_from and $as_of
    qualify row_number() over (partition by call_id order by as_of desc) = 1
),

customer_calls as (
    select
        customer_id,
        max(started_at) as last_call_at,
        count(distinct call_id) filter (
            where started_on >= $as_of - cast($in_scope_call_days as integer)
        ) as recent_call_count
    from calls
    where started_on <= $as_of
    group by customer_id
),

customers as (
    select
        coalesce(behaviour.customer_id, customer_calls.customer_id) as customer_id,
        coalesce(behaviour.is_overdue, false) as is_overdue,
        coalesce(customer_calls.recent_call_count, 0) > 0 as is_recently_called,
        customer_calls.last_call_at,
        coalesce(customer_calls.recent_call_count, 0) as recent_call_count,
        coalesce(behaviour.days_past_due, 0) as days_past_due,
        behaviour.customer_id is not null as has_repayments
    from behaviour
    full outer join customer_calls on behaviour.customer_id = customer_calls.customer_id
),

final as (
    select *
    from customers
    where is_overdue or is_recently_called
)

select * from final
