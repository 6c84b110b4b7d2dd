-- repayments_quarantine: the landing repayments rows that broke a row rule, with the row as read.
-- grain: one row per quarantined data row of the landing file (source_row is unique).
-- raw_record is JSON text of the contract columns as read; PII is redacted afterwards, in Python.

with

checked as (

    select * from repayments_checked

),

landing as (

    select rowid + 1 as source_row, * from landing_repayments

),

quarantined as (

    select source_row, rule, detail
    from checked
    where rule is not null

),

final as (

    select
        quarantined.source_row,
        quarantined.rule,
        quarantined.detail,
        to_json(struct_pack(
            loan_id := landing.loan_id,
            customer_id := landing.customer_id,
            installment_no := landing.installment_no,
            due_date := landing.due_date,
            amount_due := landing.amount_due,
            paid_date := landing.paid_date,
            amount_paid := landing.amount_paid
        )) as raw_record
    from quarantined
    inner join landing using (source_row)

)

select * from final
order by source_row
