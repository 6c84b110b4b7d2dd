-- customer_timezones: each customer's timezone as staged on $as_of: the latest non-empty one over the staged
-- partitions $staged_from..$as_of (just $as_of on a snapshot night; a delta's customer row replaces an earlier
-- one, but a blank timezone does not erase a known one). customers without one are absent (callers default).
-- grain: one row per customer_id. parameters: $as_of (date), $staged_from (date; Session fills it).

with

customers_with_timezone as (

    select customer_id, timezone, as_of
    from stg_customers
    where as_of between $staged_from and $as_of
      and timezone is not null
      and timezone <> ''

),

final as (

    select
        customer_id,
        arg_max(timezone, as_of) as timezone
    from customers_with_timezone
    group by customer_id
    order by customer_id

)

select * from final
