-- analyst.theme_overview: what customers talk about, night by night: the call clusters (themes) with their size,
-- intent, top terms and an example quote. A call's cluster_id is its final theme (HDBSCAN outliers near enough
-- to a theme are rescued into it); calls left in the review queue (cluster_id -1) are grouped by their own
-- intent as theme_id -1, "unclustered: <intent>", so every call of the window is counted once.
-- grain: one row per (as_of, theme_name).
-- columns: as_of, theme_id (-1: unclustered), theme_name, intent, sub_reason, calls, customers,
--          share_of_calls, mean_intent_score, top_terms, example_quote
with calls as (
    select * from call_insights
),

clusters as (
    select as_of, cluster_id, name, intent, sub_reason, top_terms from call_clusters
),

themed_calls as (
    select
        calls.as_of,
        calls.call_id,
        calls.customer_id,
        calls.intent_score,
        calls.evidence,
        case when clusters.cluster_id is null then -1 else calls.cluster_id end as theme_id,
        coalesce(clusters.name, 'unclustered: ' || calls.intent) as theme_name,
        coalesce(clusters.intent, calls.intent) as intent,
        coalesce(clusters.sub_reason, calls.sub_reason) as sub_reason,
        clusters.top_terms
    from calls
    left join clusters
        on calls.as_of = clusters.as_of and calls.cluster_id = clusters.cluster_id
),

final as (
    select
        as_of,
        min(theme_id) as theme_id,
        theme_name,
        mode(intent) as intent,
        mode(nullif(sub_reason, '')) as sub_reason,
        count(*) as calls,
        count(distinct customer_id) as customers,
        round(count(*) / sum(count(*)) over (partition by as_of), 4) as share_of_calls,
        round(avg(intent_score), 3) as mean_intent_score,
        any_value(top_terms) as top_terms,
        arg_max(nullif(evidence, ''), intent_score) as example_quote
    from themed_calls
    group by as_of, theme_name
)

select * from final
