-- stg_repayments: the good rows of the checked landing repayments, typed (as_of is added on write).
-- grain: one row per payment against an installment, or per installment with nothing paid yet;
-- source_row (the 1-based data row in the landing file) is unique. reads the temp table repayments_checked
-- (rowid + 1 is the source_row; is_duplicate already set), in file order.

with

checked as (

    select rowid + 1 as source_row, * from repayments_checked

),

final as (

    select
        source_row,
        loan_id,
        customer_id,
        installment_no,
        due_on,
        amount_due,
        paid_on,
        amount_paid
    from checked
    where row_rule is null and not is_duplicate

)

select * from final
