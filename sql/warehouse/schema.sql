-- the typed tables of the warehouse; feature and insight tables are created from their models on first write.
-- every table is partitioned by as_of (the business date a nightly run handles).

create table if not exists stg_repayments (
    as_of date not null,
    source_row bigint not null,           -- 1-based data row in the landing file
    loan_id varchar not null,
    customer_id varchar not null,
    installment_no integer not null,
    due_on date not null,
    amount_due double not null,
    paid_on date,                         -- null: nothing paid on this installment yet
    amount_paid double
);

create table if not exists stg_calls (
    as_of date not null,
    source_row bigint not null,           -- 1-based line in calls.jsonl
    call_id varchar not null,
    customer_id varchar not null,
    started_at timestamptz not null,
    direction varchar not null,
    duration_s double,
    turn_count integer not null,
    customer_turn_count integer not null
);

create table if not exists stg_call_turns (
    as_of date not null,
    call_id varchar not null,
    turn_no integer not null,
    speaker varchar not null,
    text varchar not null                 -- PII already redacted
);

create table if not exists stg_customers (
    as_of date not null,
    source_row bigint not null,
    customer_id varchar not null,
    timezone varchar,
    language varchar
);

create table if not exists quarantine (
    as_of date not null,
    source_file varchar not null,
    source_row bigint not null,
    rule varchar not null,
    detail varchar,
    raw_record varchar                    -- the row as read, PII redacted
);

create table if not exists load_reconciliation (
    as_of date not null,
    source_file varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null
);

-- what each loaded partition of the staged tables holds: 'snapshot' (the full extract as of that date) or 'delta'
-- (only the rows new since the previous night; the state on a delta night is the latest snapshot before it plus
-- every delta after it, up to and including that night: see Session.staged_from)
create table if not exists landing_loads (
    as_of date not null,
    landing_kind varchar not null,        -- snapshot | delta
    landing_dir varchar not null,
    loaded_at timestamptz not null
);

-- per staged night, its landing kind and the first staged partition of its state: the night itself for a
-- snapshot; for a delta, the latest snapshot before it, else the first staged night. nights with staged
-- repayments but no landing_loads row (loaded before it existed) count as snapshots. Session.staged_from
-- computes the same in Python and refuses a delta night with a night missing in between.
create or replace view staged_nights as
with nights as (
    select as_of, landing_kind from landing_loads
    union all
    select distinct as_of, 'snapshot' as landing_kind from stg_repayments
    where as_of not in (select as_of from landing_loads)
)

select
    nights.as_of,
    nights.landing_kind,
    case
        when nights.landing_kind = 'delta' then coalesce(
            (select max(snapshots.as_of) from nights as snapshots
             where snapshots.landing_kind = 'snapshot' and snapshots.as_of < nights.as_of),
            (select min(firsts.as_of) from nights as firsts))
        else nights.as_of
    end as staged_from
from nights;

create table if not exists embedding_cache (
    content_hash varchar not null,
    model_id varchar not null,
    vector float[] not null,
    primary key (content_hash, model_id)
);

-- the c-TF-IDF terms of each distinct utterance text (insights.themes.text_terms), computed once per text and
-- terms_version (the stop-word lists and the jieba version): later nights and the report reuse them
create table if not exists text_terms_cache (
    text_key varchar not null,            -- sha256 hex of the text
    terms_version varchar not null,
    terms varchar[] not null,
    primary key (text_key, terms_version)
);

create table if not exists care_segments (
    as_of date not null,
    customer_id varchar not null,
    segment varchar not null,             -- hardship | forgetful | intent_to_default | needs_review
    confidence double not null,
    action varchar not null,
    reasons varchar not null,             -- ';'-separated reason codes, behaviour first
    evidence varchar not null,            -- a short redacted quote or the behaviour fact used
    sub_reason varchar,
    days_past_due integer,
    amount_overdue double,
    is_overdue boolean,
    call_count integer,
    call_intent varchar,
    behaviour_signal varchar,
    policy_version varchar,
    model_id varchar
);

create or replace view care_segments_latest as
select * from care_segments
where as_of = (select max(as_of) from care_segments);

-- run_log (issue 5): one row per stage attempt of a nightly run, plus an 'alert' row when a task fails for good.
-- grain: run_id x stage x try_number x status. append-only on purpose: it is the history of attempts.
create table if not exists run_log (
    run_id varchar not null,              -- Airflow run id, or cli-<utc timestamp> for `postloan run`
    as_of date not null,
    stage varchar not null,               -- load | behaviour | embed | embed_shard[3] | ... | wait_for_landing
    status varchar not null,              -- success | failed | alert
    started_at timestamptz not null,
    ended_at timestamptz not null,
    seconds double,
    try_number integer,
    rows_in bigint,
    rows_out bigint,
    rows_quarantined bigint,
    model_id varchar,
    taxonomy_version varchar,
    policy_version varchar,
    settings_version varchar,
    code_version varchar,
    worker varchar,                       -- $POSTLOAN_WORKER_NAME or host name, / process id
    error varchar                         -- the exception, or the alert text
);

-- call insight (issue 3): promises to pay and the fitted theme centroids. created here because the behaviour
-- stage and the next night read them before the call-insight stage has written anything.
-- promises: grain promise_id x as_of (the night that extracted it; a call is re-read on every night of its
-- look-back window, so read the latest extraction per promise_id).
create table if not exists promises (
    as_of date not null,
    promise_id varchar not null,          -- <call_id>:<turn_no>:<n>
    call_id varchar not null,
    customer_id varchar not null,
    turn_no integer not null,
    call_on date not null,                -- the call's local date
    promised_on date not null,
    amount double,                        -- null: no amount said (the overdue amount is expected)
    is_partial boolean not null,          -- "先还一点" / "part of it": any payment keeps it
    basis varchar not null,               -- how the date was resolved: relative | weekday | day_of_month | payday ...
    phrase varchar not null,              -- the clause, redacted
    language varchar not null
);

-- theme_centroids: grain theme_id x as_of, where as_of is the night of the fit; the fit in force on a night is
-- the latest one with as_of on or before it. centroids live in the embedding space of model_id.
create table if not exists theme_centroids (
    as_of date not null,
    theme_id integer not null,
    centroid float[] not null,
    core_similarity double not null,
    size integer not null,                -- calls assigned to the theme on the fit night (outliers rescued)
    share double not null,                -- ... as a share of the fit night's calls
    first_seen_on date not null,
    matched_from integer,                 -- the previous fit's theme this one continues (null: new theme)
    is_new boolean not null,              -- new at this fit: flagged for review
    model_id varchar not null
);

-- issue 4: care actions, contact rules and outreach (pipelines/outreach.py, insights/actions.py) --------------
create table if not exists stg_contact_attempts (
    as_of date not null,
    source_row bigint not null,           -- 1-based data row in contact_attempts.csv (optional landing file)
    customer_id varchar not null,
    attempted_at timestamptz not null,    -- an unanswered call attempt
    outcome varchar not null              -- no_answer | busy | voicemail | rejected | failed
);

create table if not exists care_actions (
    as_of date not null,
    customer_id varchar not null,
    segment varchar not null,
    sub_reason varchar,
    rule_id varchar not null,             -- the policy rule that fired
    rule_why varchar not null,            -- why it fired
    experiment_group varchar not null,    -- treatment | control
    planned_treatments varchar not null,  -- ';'-separated: what the rule gives
    treatments varchar not null,          -- ';'-separated: what is offered after eligibility, control and caps
    dropped_treatments varchar,           -- ' | '-separated 'code: reason'
    cost double,                          -- estimated cost drawn on a nightly cap (e.g. waived interest)
    expected_benefit double,
    cost_rank integer,                    -- rank by expected benefit among customers competing for a cap
    cap_status varchar,                   -- offered | excluded_by_cap | '' (no costed treatment)
    portfolio varchar,
    rule_set varchar,                     -- china | us_reg_f
    timezone varchar,
    is_do_not_call boolean,
    is_disputed boolean,
    is_complaint boolean,
    route varchar,                        -- standard | no_calls | dispute_hold | compliance_hold
    call_treatments varchar,
    sms_treatments varchar,
    app_push_treatments varchar,
    review_treatments varchar,
    next_call_at_utc timestamptz,
    next_call_at_local varchar,           -- ISO-8601 with the customer's UTC offset
    call_block_reason varchar,            -- none | window | conversation_quiet_days | attempts_in_7_days | ...
    call_attempts_left integer,
    next_message_at_utc timestamptz,
    next_message_at_local varchar,
    contact_window varchar,
    third_party_rule varchar,
    reminder_dates varchar,
    policy_version varchar,
    contact_rules_version varchar,
    model_id varchar
);

-- call_theme_runs: grain as_of (one row per night): the theme fit in force and the night's figures.
create table if not exists call_theme_runs (
    as_of date not null,
    fitted_on date,                       -- the fit in force (null: no themes yet)
    refit_reason varchar not null,        -- '' (assigned only) | first_fit | schedule | drift | model_changed | ..._failed
    drift double,                         -- Jensen-Shannon distance of tonight's shares from the fit's (null: no fit)
    calls integer not null,
    themes integer not null,
    new_themes integer not null,
    retired_themes integer not null,
    outlier_share_before double not null, -- calls outside every theme's core (HDBSCAN-style noise)
    outlier_share_after double not null,  -- calls left in the review queue after nearest-theme rescue
    clusterer_noise_share double,         -- HDBSCAN's own noise share on a refit night
    model_id varchar
);

-- call_theme_drift: grain theme_id x as_of (theme -1 = the review queue): share per theme per night.
create table if not exists call_theme_drift (
    as_of date not null,
    theme_id integer not null,
    calls integer not null,
    share double not null,
    share_at_fit double not null,
    share_change double not null,
    fitted_on date,
    model_id varchar
);
