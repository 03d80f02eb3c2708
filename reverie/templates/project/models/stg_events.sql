-- The demo shop's events, one row per session, signup or order, named for the metrics.
with source as (
    select * from events
),

renamed as (
    select
        event_id,
        event_time,
        event_type,
        session_id,
        country,
        channel,
        device,
        category,
        amount,
        status
    from source
)

select * from renamed
