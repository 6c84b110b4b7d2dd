-- analyst.segment_mix_by_night: how many customers each care segment holds, night by night, and the change.
-- grain: one row per (as_of, segment); a segment empty on a night shows 0 customers.
-- columns: as_of, segment, customers, share_of_night, previous_as_of, previous_customers,
--          change_vs_previous_night (null on the first night)
with segments as (
    select as_of, customer_id, segment from care_segments
),

nights as (
    select distinct as_of from segments
),

segment_names as (
    select distinct segment from segments
),

night_segment as (
    select nights.as_of, segment_names.segment from nights cross join segment_names
),

counted as (
    select
        night_segment.as_of,
        night_segment.segment,
        count(segments.customer_id) as customers
    from night_segment
    left join segments using (as_of, segment)
    group by all
),

final as (
    select
        as_of,
        segment,
        customers,
        round(customers / nullif(sum(customers) over (partition by as_of), 0), 4) as share_of_night,
        lag(as_of) over by_segment as previous_as_of,
        lag(customers) over by_segment as previous_customers,
        customers - lag(customers) over by_segment as change_vs_previous_night
    from counted
    window by_segment as (partition by segment order by as_of)
)

select * from final
