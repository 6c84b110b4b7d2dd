-- repayments_quarantine: the landing repayments rows that broke a row rule, why, and the row as read.
-- grain: one row per quarantined data row of the landing file (source_row is unique).
-- reads the temp tables repayments_checked (rowid + 1 is the source_row; is_duplicate set) and
-- repayment_duplicates. raw_record is JSON text of the contract columns as read; PII is redacted afterwards,
-- in Python.

with

checked as (

    select
        rowid + 1 as source_row,
        coalesce(row_rule, case when is_duplicate then 'duplicate_row' end) as rule,
        *,
        nullif(trim(installment_no_text), '') as installment_no_trimmed,
        nullif(trim(due_date_text), '') as due_date_trimmed,
        nullif(trim(amount_due_text), '') as amount_due_trimmed,
        nullif(trim(paid_date_text), '') as paid_date_trimmed,
        nullif(trim(amount_paid_text), '') as amount_paid_trimmed
    from repayments_checked
    where row_rule is not null or is_duplicate

),

duplicates as (

    select * from repayment_duplicates

),

final as (

    select
        checked.source_row,
        checked.rule,
        case
            when rule = 'missing_key' then 'missing ' || concat_ws(', ',
                case when loan_id is null then 'loan_id' end,
                case when customer_id is null then 'customer_id' end,
                case when installment_no_trimmed is null then 'installment_no' end,
                case when due_date_trimmed is null then 'due_date' end,
                case when amount_due_trimmed is null then 'amount_due' end)
            when rule = 'bad_date' then concat_ws('; ',
                case when due_on is null then format('due_date=''{}''', due_date_trimmed) end,
                case when paid_date_trimmed is not null and paid_on is null
                    then format('paid_date=''{}''', paid_date_trimmed) end) || ' is not a valid date'
            when rule = 'bad_amount' then concat_ws('; ',
                case when installment_no is null or installment_no < 1
                    then format('installment_no=''{}'' is not a positive whole number', installment_no_trimmed)
                end,
                case when amount_due is null
                    then format('amount_due=''{}'' is not a number', amount_due_trimmed) end,
                case when amount_paid_trimmed is not null and amount_paid is null
                    then format('amount_paid=''{}'' is not a number', amount_paid_trimmed) end)
            when rule = 'negative_amount' then concat_ws('; ',
                case when amount_due < 0 then format('amount_due=''{}''', amount_due_trimmed) end,
                case when amount_paid < 0 then format('amount_paid=''{}''', amount_paid_trimmed) end)
            when rule = 'payment_incomplete' then
                case
                    when paid_on is not null
                        then format('paid_date=''{}'' without amount_paid', paid_date_trimmed)
                    else format('amount_paid=''{}'' without paid_date', amount_paid_trimmed)
                end
            when rule = 'paid_too_early' then format(
                'paid_date=''{}'' is {} days before due_date=''{}''',
                paid_date_trimmed, date_diff('day', paid_on, due_on), due_date_trimmed)
            when rule = 'duplicate_row' and duplicates.staged_on is not null
                then format('duplicate of a row staged on {}', duplicates.staged_on)
            when rule = 'duplicate_row' then format('duplicate of source_row {}', duplicates.first_source_row)
        end as detail,
        to_json(struct_pack(
            loan_id := checked.loan_id_text,
            customer_id := checked.customer_id_text,
            installment_no := checked.installment_no_text,
            due_date := checked.due_date_text,
            amount_due := checked.amount_due_text,
            paid_date := checked.paid_date_text,
            amount_paid := checked.amount_paid_text
        )) as raw_record
    from checked
    left join duplicates using (source_row)

)

select * from final
order by source_row
