-- grain: one row per customer and night on which their care segment changed: entering scope (from_segment
-- null), moving between segments (e.g. forgetful -> hardship), or leaving scope (to_segment 'out_of_scope': not
-- segmented on the next night, e.g. cured). built from the care_segments history; created as a view.
with segments as (
    select as_of, customer_id, segment, sub_reason, confidence from care_segments
),

nights as (
    select
        as_of,
        lag(as_of) over (order by as_of) as previous_night,
        lead(as_of) over (order by as_of) as next_as_of
    from (select distinct as_of from care_segments)
),

ordered as (
    select
        segments.*,
        lag(segment) over by_customer as previous_segment,
        lag(sub_reason) over by_customer as previous_sub_reason,
        lag(as_of) over by_customer as previous_as_of,
        lead(as_of) over by_customer as customer_next_as_of,
        nights.previous_night
    from segments
    inner join nights using (as_of)
    window by_customer as (partition by customer_id order by as_of)
),

moves as (
    select
        customer_id,
        as_of as changed_on,
        previous_as_of,
        case
            when previous_as_of is null then null
            when previous_as_of < previous_night then 'out_of_scope'
            else previous_segment
        end as from_segment,
        segment as to_segment,
        previous_sub_reason as from_sub_reason,
        sub_reason as to_sub_reason,
        confidence
    from ordered
    where previous_as_of is null
       or previous_as_of < previous_night
       or previous_segment is distinct from segment
),

exits as (
    select
        ordered.customer_id,
        nights.next_as_of as changed_on,
        ordered.as_of as previous_as_of,
        ordered.segment as from_segment,
        'out_of_scope' as to_segment,
        ordered.sub_reason as from_sub_reason,
        cast(null as varchar) as to_sub_reason,
        cast(null as double) as confidence
    from ordered
    inner join nights on nights.as_of = ordered.as_of
    where nights.next_as_of is not null
      and (ordered.customer_next_as_of is null or ordered.customer_next_as_of > nights.next_as_of)
),

final as (
    select * from moves
    union all
    select * from exits
)

select * from final
