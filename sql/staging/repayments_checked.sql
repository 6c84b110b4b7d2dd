-- repayments_checked: the landing repayments file with typed columns and its first failing row rule.
-- grain: one row per data row of the landing file (source_row = 1-based data row, header excluded).
-- reads the temp table landing_repayments (the seven contract columns as varchar, in file order) that
-- pipelines.loading builds from repayments.csv / repayments.parquet. rule is null for a good row; the rules
-- and their order are documented in data_contracts/landing.yaml.

with

landing as (

    select
        rowid + 1 as source_row,
        nullif(trim(loan_id), '') as loan_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(installment_no), '') as installment_no_text,
        nullif(trim(due_date), '') as due_date_text,
        nullif(trim(amount_due), '') as amount_due_text,
        nullif(trim(paid_date), '') as paid_date_text,
        nullif(trim(amount_paid), '') as amount_paid_text
    from landing_repayments

),

typed as (

    select
        *,
        case
            when regexp_full_match(installment_no_text, '\+?[0-9]{1,9}')
                then cast(installment_no_text as integer)
        end as installment_no,
        cast(try_strptime(due_date_text, ['%Y-%m-%d', '%Y/%m/%d']) as date) as due_on,
        cast(try_strptime(paid_date_text, ['%Y-%m-%d', '%Y/%m/%d']) as date) as paid_on,
        case
            when isfinite(try_cast(amount_due_text as double)) then try_cast(amount_due_text as double)
        end as amount_due,
        case
            when isfinite(try_cast(amount_paid_text as double)) then try_cast(amount_paid_text as double)
        end as amount_paid
    from landing

),

row_rules_applied as (

    select
        *,
        case
            when loan_id is null or customer_id is null or installment_no_text is null
                or due_date_text is null or amount_due_text is null
                then 'missing_key'
            when due_on is null or (paid_date_text is not null and paid_on is null)
                then 'bad_date'
            when installment_no is null or installment_no < 1 or amount_due is null
                or (amount_paid_text is not null and amount_paid is null)
                then 'bad_amount'
            when amount_due < 0 or amount_paid < 0
                then 'negative_amount'
            when (paid_on is null) <> (amount_paid is null)
                then 'payment_incomplete'
            when date_diff('day', paid_on, due_on) > 365
                then 'paid_too_early'
        end as row_rule
    from typed

),

duplicates_found as (

    select
        *,
        min(source_row) over (
            partition by
                row_rule, loan_id, customer_id, installment_no, due_on, amount_due, paid_on, amount_paid
        ) as first_source_row
    from row_rules_applied

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
        amount_paid,
        case
            when row_rule is not null then row_rule
            when first_source_row < source_row then 'duplicate_row'
        end as rule,
        case
            when row_rule = 'missing_key' then 'missing ' || concat_ws(', ',
                case when loan_id is null then 'loan_id' end,
                case when customer_id is null then 'customer_id' end,
                case when installment_no_text is null then 'installment_no' end,
                case when due_date_text is null then 'due_date' end,
                case when amount_due_text is null then 'amount_due' end)
            when row_rule = 'bad_date' then concat_ws('; ',
                case when due_on is null then format('due_date=''{}''', due_date_text) end,
                case when paid_date_text is not null and paid_on is null
                    then format('paid_date=''{}''', paid_date_text) end) || ' is not a valid date'
            when row_rule = 'bad_amount' then concat_ws('; ',
                case when installment_no is null or installment_no < 1
                    then format('installment_no=''{}'' is not a positive whole number', installment_no_text) end,
                case when amount_due is null
                    then format('amount_due=''{}'' is not a number', amount_due_text) end,
                case when amount_paid_text is not null and amount_paid is null
                    then format('amount_paid=''{}'' is not a number', amount_paid_text) end)
            when row_rule = 'negative_amount' then concat_ws('; ',
                case when amount_due < 0 then format('amount_due=''{}''', amount_due_text) end,
                case when amount_paid < 0 then format('amount_paid=''{}''', amount_paid_text) end)
            when row_rule = 'payment_incomplete' then
                case
                    when paid_on is not null then format('paid_date=''{}'' without amount_paid', paid_date_text)
                    else format('amount_paid=''{}'' without paid_date', amount_paid_text)
                end
            when row_rule = 'paid_too_early' then format(
                'paid_date=''{}'' is {} days before due_date=''{}''',
                paid_date_text, date_diff('day', paid_on, due_on), due_date_text)
            when first_source_row < source_row then format('duplicate of source_row {}', first_source_row)
        end as detail
    from duplicates_found

)

select * from final
