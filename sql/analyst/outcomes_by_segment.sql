-- analyst.outcomes_by_segment: what happened next to the customers of each segment and treatment. Each night's
-- customers are followed to their next later night in customer_behaviour. treatment: what care_actions offered
-- that night (issue 4; experiment_group treatment | control), or, on nights without care actions, the action the
-- segment recommended (experiment_group null).
-- grain: one row per (as_of, segment, treatment, experiment_group); customers with no later night count in
-- customers but not in followed_customers; rates are null when nobody could be followed.
-- columns: as_of, segment, treatment, experiment_group, customers, overdue_customers, followed_customers,
--          next_as_of, cured, rolled_forward, cure_rate (cured / overdue and followed), roll_rate (moved to a later
--          dpd bucket / followed), amount_overdue, amount_recovered (decrease of the overdue amount by the next
--          night, never negative)
with segment_rows as (
    select as_of, customer_id, segment, action from care_segments
),

actions as (
    select as_of, customer_id, experiment_group, treatments from care_actions
),

segments as (
    select
        segment_rows.as_of,
        segment_rows.customer_id,
        segment_rows.segment,
        case when actions.customer_id is null then segment_rows.action else actions.treatments end as treatment,
        actions.experiment_group
    from segment_rows
    left join actions using (as_of, customer_id)
),

behaviour as (
    select as_of, customer_id, days_past_due, dpd_bucket, is_overdue, amount_overdue from customer_behaviour
),

bucket_rank as (
    select * from (values ('current', 0), ('M1', 1), ('M2', 2), ('M3', 3), ('M3+', 4)) as ranks(dpd_bucket, rank)
),

followed as (
    select
        segments.*,
        now.is_overdue,
        now.amount_overdue,
        coalesce(now_rank.rank, 0) as bucket_now,
        next.as_of as next_as_of,
        next.is_overdue as is_overdue_next,
        next.amount_overdue as amount_overdue_next,
        coalesce(next_rank.rank, 0) as bucket_next
    from segments
    left join behaviour as now using (as_of, customer_id)
    left join bucket_rank as now_rank on now.dpd_bucket = now_rank.dpd_bucket
    asof left join behaviour as next
        on segments.customer_id = next.customer_id and next.as_of > segments.as_of
    left join bucket_rank as next_rank on next.dpd_bucket = next_rank.dpd_bucket
),

final as (
    select
        as_of,
        segment,
        treatment,
        experiment_group,
        count(*) as customers,
        count(*) filter (where is_overdue) as overdue_customers,
        count(next_as_of) as followed_customers,
        min(next_as_of) as next_as_of,
        count(*) filter (where is_overdue and next_as_of is not null and not is_overdue_next) as cured,
        count(*) filter (where next_as_of is not null and bucket_next > bucket_now) as rolled_forward,
        round(count(*) filter (where is_overdue and next_as_of is not null and not is_overdue_next)
              / nullif(count(*) filter (where is_overdue and next_as_of is not null), 0), 4) as cure_rate,
        round(count(*) filter (where next_as_of is not null and bucket_next > bucket_now)
              / nullif(count(next_as_of), 0), 4) as roll_rate,
        round(sum(amount_overdue), 2) as amount_overdue,
        round(sum(greatest(amount_overdue - amount_overdue_next, 0)) filter (where next_as_of is not null), 2)
            as amount_recovered
    from followed
    group by all
)

select * from final
