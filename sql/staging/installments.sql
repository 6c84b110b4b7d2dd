-- installments: per-installment totals of one as_of partition of stg_repayments, for the stg_installments
-- contract (one due date and one amount due per installment, one customer per loan, paid vs due).
-- grain: one row per (loan_id, installment_no) in the as_of partition. parameters: $as_of.

with

repayments as (

    select * from stg_repayments
    where as_of = $as_of

),

customers_per_loan as (

    select
        loan_id,
        count(distinct customer_id) as customers_per_loan
    from repayments
    group by loan_id

),

installment_totals as (

    select
        loan_id,
        installment_no,
        min(customer_id) as customer_id,
        min(due_on) as due_on,
        max(amount_due) as amount_due,
        count(distinct due_on) as due_dates_per_installment,
        count(distinct amount_due) as amounts_due_per_installment,
        count(amount_paid) as payment_count,
        coalesce(sum(amount_paid), 0) as total_paid
    from repayments
    group by loan_id, installment_no

),

final as (

    select
        installment_totals.*,
        customers_per_loan.customers_per_loan
    from installment_totals
    inner join customers_per_loan using (loan_id)

)

select * from final
