-- grain: one row per care action (as_of, customer_id) and later night followed_on (> as_of) on which the
-- customer still has repayment data. follows each action over later nights: cure (back to 0 days past due),
-- roll (a worse delinquency bucket: current, M1 1-30, M2 31-60, M3 61-90, M3+), amount recovered (payments
-- dated after the action night up to followed_on), promises to pay falling due after the action night and judged
-- by followed_on (promise_outcomes of issue 3: kept | partly_kept | broken; pending ones are not counted).
-- created as a view.
with actions as (
    select as_of, customer_id, segment, sub_reason, rule_id, experiment_group, treatments from care_actions
),

behaviour as (
    select
        as_of,
        customer_id,
        days_past_due,
        case
            when days_past_due <= 0 then 0
            when days_past_due <= 30 then 1
            when days_past_due <= 60 then 2
            when days_past_due <= 90 then 3
            else 4
        end as bucket_no
    from customer_behaviour
),

payments as (
    -- as_of here is the night whose staged state holds the payment: a snapshot repeats every payment, a delta
    -- night's state spans its partitions from staged_from (see the staged_nights view)
    select
        nights.as_of,
        repayments.customer_id,
        repayments.paid_on,
        repayments.amount_paid
    from stg_repayments as repayments
    inner join (
        select
            staged.as_of,
            coalesce(staged_nights.staged_from, staged.as_of) as staged_from
        from (select distinct as_of from stg_repayments) as staged
        left join staged_nights using (as_of)
    ) as nights
        on repayments.as_of between nights.staged_from and nights.as_of
    where repayments.paid_on is not null and repayments.amount_paid > 0
),

promises as (
    select as_of, customer_id, due_by, status
    from promise_outcomes
    where status <> 'pending'
),

at_start as (
    select
        actions.*,
        coalesce(behaviour.days_past_due, 0) as days_past_due_at_start,
        coalesce(behaviour.bucket_no, 0) as bucket_no_at_start
    from actions
    left join behaviour using (as_of, customer_id)
),

followed as (
    select
        at_start.*,
        later.as_of as followed_on,
        later.days_past_due as days_past_due_then,
        later.bucket_no as bucket_no_then
    from at_start
    inner join behaviour as later
        on later.customer_id = at_start.customer_id and later.as_of > at_start.as_of
),

recovered as (
    select
        followed.as_of,
        followed.customer_id,
        followed.followed_on,
        coalesce(sum(payments.amount_paid), 0) as amount_recovered
    from followed
    left join payments
        on payments.as_of = followed.followed_on
        and payments.customer_id = followed.customer_id
        and payments.paid_on > followed.as_of
        and payments.paid_on <= followed.followed_on
    group by all
),

promises_judged as (
    select
        followed.as_of,
        followed.customer_id,
        followed.followed_on,
        count(promises.customer_id) as promises_due,
        count(promises.customer_id) filter (where promises.status = 'kept') as promises_kept
    from followed
    left join promises
        on promises.as_of = followed.followed_on
        and promises.customer_id = followed.customer_id
        and promises.due_by > followed.as_of
        and promises.due_by <= followed.followed_on
    group by all
),

final as (
    select
        followed.as_of,
        followed.customer_id,
        followed.segment,
        followed.sub_reason,
        followed.rule_id,
        followed.experiment_group,
        followed.treatments,
        followed.followed_on,
        date_diff('day', followed.as_of, followed.followed_on) as days_after,
        followed.days_past_due_at_start,
        followed.days_past_due_then,
        followed.days_past_due_at_start > 0 as was_overdue,
        followed.days_past_due_at_start > 0 and followed.days_past_due_then = 0 as is_cured,
        followed.days_past_due_at_start > 0 and followed.bucket_no_then > followed.bucket_no_at_start as is_rolled,
        recovered.amount_recovered,
        promises_judged.promises_due,
        promises_judged.promises_kept
    from followed
    inner join recovered using (as_of, customer_id, followed_on)
    inner join promises_judged using (as_of, customer_id, followed_on)
)

select * from final
