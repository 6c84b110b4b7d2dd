-- grain: one row per action night (as_of), segment and later night (followed_on): the treatment group against
-- the held-out control group (champion / challenger). uplift = treatment rate minus control rate.
-- created as a view over action_outcomes.
with outcomes as (
    select * from action_outcomes
),

by_group as (
    select
        as_of,
        segment,
        followed_on,
        days_after,
        experiment_group,
        count(*) as customers,
        count(*) filter (where is_cured) / nullif(count(*) filter (where was_overdue), 0) as cure_rate,
        count(*) filter (where is_rolled) / nullif(count(*) filter (where was_overdue), 0) as roll_rate,
        sum(promises_kept) / nullif(sum(promises_due), 0) as promise_kept_rate,
        sum(amount_recovered) / count(*) as recovered_per_customer
    from outcomes
    group by all
),

final as (
    select
        treatment.as_of,
        treatment.segment,
        treatment.followed_on,
        treatment.days_after,
        treatment.customers as treatment_customers,
        coalesce(control.customers, 0) as control_customers,
        round(treatment.cure_rate, 4) as treatment_cure_rate,
        round(control.cure_rate, 4) as control_cure_rate,
        round(treatment.cure_rate - control.cure_rate, 4) as cure_rate_uplift,
        round(treatment.roll_rate, 4) as treatment_roll_rate,
        round(control.roll_rate, 4) as control_roll_rate,
        round(treatment.promise_kept_rate, 4) as treatment_promise_kept_rate,
        round(control.promise_kept_rate, 4) as control_promise_kept_rate,
        round(treatment.recovered_per_customer, 2) as treatment_recovered_per_customer,
        round(control.recovered_per_customer, 2) as control_recovered_per_customer
    from by_group as treatment
    left join by_group as control
        on control.as_of = treatment.as_of
        and control.segment = treatment.segment
        and control.followed_on = treatment.followed_on
        and control.experiment_group = 'control'
    where treatment.experiment_group = 'treatment'
)

select * from final
