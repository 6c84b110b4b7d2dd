-- analyst.behaviour_by_segment: the distribution of each repayment-behaviour feature within each care segment.
-- grain: one row per (as_of, segment, feature).
-- columns: as_of, segment, feature, customers, mean, min, p10, p25, median, p75, p90, max
with segments as (
    select as_of, customer_id, segment from care_segments
),

behaviour as (
    select
        as_of,
        customer_id,
        days_past_due::double as days_past_due,
        amount_overdue::double as amount_overdue,
        installments_due::double as installments_due,
        installments_paid_late::double as installments_paid_late,
        share_paid_1_3_days_late::double as share_paid_1_3_days_late,
        partial_payment_count::double as partial_payment_count,
        on_time_streak_before_break::double as on_time_streak_before_break,
        clean_history_months::double as clean_history_months,
        is_first_payment_default::int::double as is_first_payment_default,
        loan_count::double as loan_count
    from customer_behaviour
),

long_form as (
    unpivot (select segments.segment, behaviour.* from segments join behaviour using (as_of, customer_id))
    on columns(* exclude (as_of, customer_id, segment))
    into name feature value value
),

final as (
    select
        as_of,
        segment,
        feature,
        count(value) as customers,
        round(avg(value), 3) as mean,
        min(value) as min,
        round(quantile_cont(value, 0.1), 3) as p10,
        round(quantile_cont(value, 0.25), 3) as p25,
        round(quantile_cont(value, 0.5), 3) as median,
        round(quantile_cont(value, 0.75), 3) as p75,
        round(quantile_cont(value, 0.9), 3) as p90,
        max(value) as max
    from long_form
    group by all
)

select * from final
