-- repayments_checked: the landing repayments file with typed columns and the first row rule each row breaks.
-- grain: one row per data row of the landing file, in file order: pipelines.loading materialises this model
-- into a temp table whose rowid + 1 is the source_row (the 1-based data row, header excluded), so the model
-- keeps the file order (no window, no join). It reads the temp view landing_repayments (the seven contract
-- columns as varchar, in file order) over repayments.csv / repayments.parquet, and keeps those texts (the
-- *_text columns) for the quarantine's detail and raw_record. row_rule is null for a row that breaks no row
-- rule; is_duplicate is set afterwards, for the rows sql/staging/repayment_duplicates.sql finds (their rule is
-- 'duplicate_row'; an update of a boolean is cheap, of a text column it rewrote every row group). The rules
-- and their order are documented in data_contracts/landing.yaml.

with

landing as (

    select
        loan_id as loan_id_text,
        customer_id as customer_id_text,
        installment_no as installment_no_text,
        due_date as due_date_text,
        amount_due as amount_due_text,
        paid_date as paid_date_text,
        amount_paid as amount_paid_text,
        nullif(trim(loan_id), '') as loan_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(installment_no), '') as installment_no_trimmed,
        nullif(trim(due_date), '') as due_date_trimmed,
        nullif(trim(amount_due), '') as amount_due_trimmed,
        nullif(trim(paid_date), '') as paid_date_trimmed,
        nullif(trim(amount_paid), '') as amount_paid_trimmed
    from landing_repayments

),

typed as (

    select
        *,
        case
            when regexp_full_match(installment_no_trimmed, '\+?[0-9]{1,9}')
                then cast(installment_no_trimmed as integer)
        end as installment_no,
        cast(try_strptime(due_date_trimmed, ['%Y-%m-%d', '%Y/%m/%d']) as date) as due_on,
        cast(try_strptime(paid_date_trimmed, ['%Y-%m-%d', '%Y/%m/%d']) as date) as paid_on,
        case
            when isfinite(try_cast(amount_due_trimmed as double)) then try_cast(amount_due_trimmed as double)
        end as amount_due,
        case
            when isfinite(try_cast(amount_paid_trimmed as double)) then try_cast(amount_paid_trimmed as double)
        end as amount_paid
    from landing

),

final as (

    select
        loan_id_text,
        customer_id_text,
        installment_no_text,
        due_date_text,
        amount_due_text,
        paid_date_text,
        amount_paid_text,
        loan_id,
        customer_id,
        installment_no,
        due_on,
        amount_due,
        paid_on,
        amount_paid,
        case
            when loan_id is null or customer_id is null or installment_no_trimmed is null
                or due_date_trimmed is null or amount_due_trimmed is null
                then 'missing_key'
            when due_on is null or (paid_date_trimmed is not null and paid_on is null)
                then 'bad_date'
            when installment_no is null or installment_no < 1 or amount_due is null
                or (amount_paid_trimmed is not null and amount_paid is null)
                then 'bad_amount'
            when amount_due < 0 or amount_paid < 0
                then 'negative_amount'
            when (paid_on is null) <> (amount_paid is null)
                then 'payment_incomplete'
            when date_diff('day', paid_on, due_on) > 365
                then 'paid_too_early'
        end as row_rule,
        false as is_duplicate,
        -- equal keys hash equal (+ 0.0 folds -0.0 into 0.0): repayment_duplicates compares only rows that
        -- share a hash, so it never re-reads the seven columns of every row
        hash(loan_id, customer_id, installment_no, due_on, amount_due + 0.0, paid_on, amount_paid + 0.0)
            as key_hash
    from typed

)

select * from final
