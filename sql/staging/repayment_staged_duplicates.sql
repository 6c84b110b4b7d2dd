-- repayment_staged_duplicates: on a delta night, the good rows of repayments_checked (not already duplicates
-- within the file) that repeat a row staged on an earlier night of the same state, i.e. the partitions
-- $staged_from up to the night before $as_of: a delta only adds rows, so a repeated row would count a payment
-- twice. they get the 'duplicate_row' rule like a repeat within the file.
-- grain: one row per duplicate row (source_row is unique); staged_on is the earliest night that staged it.
-- parameters: $staged_from (date), $as_of (date). reads the temp table repayments_checked (rowid + 1 is the
-- source_row) and stg_repayments.

with

delta_rows as (

    select
        rowid + 1 as source_row,
        loan_id,
        customer_id,
        installment_no,
        due_on,
        amount_due,
        paid_on,
        amount_paid
    from repayments_checked
    where row_rule is null and not is_duplicate

),

staged_rows as (

    select
        as_of,
        loan_id,
        customer_id,
        installment_no,
        due_on,
        amount_due,
        paid_on,
        amount_paid
    from stg_repayments
    where as_of >= $staged_from and as_of < $as_of

),

final as (

    select
        delta_rows.source_row,
        min(staged_rows.as_of) as staged_on
    from delta_rows
    inner join staged_rows
        on delta_rows.loan_id = staged_rows.loan_id
        and delta_rows.installment_no = staged_rows.installment_no
        and delta_rows.customer_id = staged_rows.customer_id
        and delta_rows.due_on = staged_rows.due_on
        and delta_rows.amount_due = staged_rows.amount_due
        and delta_rows.paid_on is not distinct from staged_rows.paid_on
        and delta_rows.amount_paid is not distinct from staged_rows.amount_paid
    group by delta_rows.source_row

)

select * from final
