-- grain: one row per action night (as_of), segment, rule, experiment group and later night (followed_on):
-- how the customers treated that night fared by then. rates are over the customers overdue on the action night.
-- promise_kept_rate: kept / promises that fell due after the action night and were judged by followed_on (null:
-- none fell due). created as a view over action_outcomes.
with outcomes as (
    select * from action_outcomes
),

final as (
    select
        as_of,
        segment,
        rule_id,
        experiment_group,
        followed_on,
        days_after,
        count(*) as customers,
        count(*) filter (where was_overdue) as overdue_at_start,
        count(*) filter (where is_cured) as cured,
        round(count(*) filter (where is_cured) / nullif(count(*) filter (where was_overdue), 0), 4) as cure_rate,
        count(*) filter (where is_rolled) as rolled,
        round(count(*) filter (where is_rolled) / nullif(count(*) filter (where was_overdue), 0), 4) as roll_rate,
        sum(promises_due) as promises_due,
        round(sum(promises_kept) / nullif(sum(promises_due), 0), 4) as promise_kept_rate,
        round(sum(amount_recovered), 2) as amount_recovered
    from outcomes
    group by all
)

select * from final
