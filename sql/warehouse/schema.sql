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

create table if not exists embedding_cache (
    content_hash varchar not null,
    model_id varchar not null,
    vector float[] not null,
    primary key (content_hash, model_id)
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
