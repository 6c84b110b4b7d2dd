-- installments: per-installment totals of one as_of partition of stg_repayments, for the stg_installments
-- contract (one due date and one amount due per installment, one customer per loan, paid vs due).
-- grain: one row per (loan_id, installment_no) in the as_of partition. parameters: $as_of.
-- count(distinct) over millions of installments is the slow part, and almost every installment has one due
-- date and one amount: those get their exact count from min/max; only the others are counted distinct.

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
        max(due_on) as last_due_on,
        min(amount_due) as least_amount_due,
        max(amount_due) as amount_due,
        count(amount_paid) as payment_count,
        coalesce(sum(amount_paid), 0) as total_paid
    from repayments
    group by loan_id, installment_no

),

varying_installments as (

    select loan_id, installment_no
    from installment_totals
    where due_on <> last_due_on or least_amount_due <> amount_due

),

varying_counts as (

    select
        loan_id,
        installment_no,
        count(distinct due_on) as due_dates_per_installment,
        count(distinct amount_due) as amounts_due_per_installment
    from repayments
    semi join varying_installments using (loan_id, installment_no)
    group by loan_id, installment_no

),

final as (

    select
        installment_totals.loan_id,
        installment_totals.installment_no,
        installment_totals.customer_id,
        installment_totals.due_on,
        installment_totals.amount_due,
        coalesce(
            varying_counts.due_dates_per_installment,
            case when installment_totals.due_on is null then 0 else 1 end
        ) as due_dates_per_installment,
        coalesce(
            varying_counts.amounts_due_per_installment,
            case when installment_totals.amount_due is null then 0 else 1 end
        ) as amounts_due_per_installment,
        installment_totals.payment_count,
        installment_totals.total_paid,
        customers_per_loan.customers_per_loan
    from installment_totals
    inner join customers_per_loan using (loan_id)
    left join varying_counts using (loan_id, installment_no)

)

select * from final
