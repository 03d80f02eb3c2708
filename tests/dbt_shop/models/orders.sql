with source as (
    select * from {{ ref('raw_orders') }}
),

renamed as (
    select order_id, customer_id, ordered_at, status, region, amount, amount > 100 as is_large
    from source
)

select * from renamed
