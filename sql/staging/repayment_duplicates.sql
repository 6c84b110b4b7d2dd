-- repayment_duplicates: the good rows of repayments_checked that repeat an earlier good row (all seven typed
-- contract columns equal), with the source_row of the first such row; they get the 'duplicate_row' rule
-- (pipelines.loading sets their is_duplicate).
-- grain: one row per duplicate row (source_row is unique). reads the temp table repayments_checked, whose
-- rowid + 1 is the source_row.
-- A window over every row partitioned by seven columns was the slowest step of the load: equal rows hash
-- equal (key_hash, computed with the rule), so only the few rows whose hash occurs more than once are compared.

with

-- not materialized: each use scans the table again, cheaper than copying its good rows once
good_rows as not materialized (

    select
        rowid + 1 as source_row,
        loan_id,
        customer_id,
        installment_no,
        due_on,
        amount_due,
        paid_on,
        amount_paid,
        key_hash
    from repayments_checked
    where row_rule is null

),

repeated_hashes as (

    select key_hash
    from good_rows
    group by key_hash
    having count(*) > 1

),

first_rows as (

    select
        source_row,
        min(source_row) over (
            partition by loan_id, customer_id, installment_no, due_on, amount_due, paid_on, amount_paid
        ) as first_source_row
    from good_rows
    semi join repeated_hashes using (key_hash)

),

final as (

    select
        source_row,
        first_source_row,
        null::date as staged_on  -- set by pipelines.loading for repeats of rows staged on earlier delta nights
    from first_rows
    where first_source_row < source_row

)

select * from final
