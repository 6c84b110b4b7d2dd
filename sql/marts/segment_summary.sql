-- grain: one row per care segment on the as-of date: customers, share, mean confidence, with/without calls.
with segments as (
    select * from care_segments where as_of = $as_of
),

final as (
    select
        segment,
        count(*) as customers,
        round(count(*) / sum(count(*)) over (), 3) as share,
        round(avg(confidence), 3) as mean_confidence,
        count(*) filter (where call_count > 0) as customers_with_calls,
        count(*) filter (where call_count = 0) as customers_without_calls
    from segments
    group by segment
    order by customers desc, segment
)

select * from final
