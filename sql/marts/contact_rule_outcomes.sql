-- grain: one row per action night (as_of), portfolio, rule set, route and the reason the next call cannot be
-- earlier (none | window | conversation_quiet_days | attempts_in_7_days | unanswered_attempts_today): what the
-- contact rules did to tonight's outreach. created as a view over care_actions.
with actions as (
    select * from care_actions
),

final as (
    select
        as_of,
        portfolio,
        rule_set,
        route,
        call_block_reason,
        count(*) as customers,
        count(*) filter (where call_treatments <> '') as on_call_list,
        count(*) filter (where is_do_not_call) as do_not_call,
        count(*) filter (where is_disputed) as disputed,
        count(*) filter (where is_complaint) as complaint,
        min(next_call_at_utc) as first_call_at_utc,
        max(next_call_at_utc) as last_call_at_utc
    from actions
    group by all
    order by as_of, portfolio, route, call_block_reason
)

select * from final
