-- Demo events from batches that passed the quality gate, typed for the metrics.
with source as (
    select * from raw_events
),

loaded_batches as (
    select file from batches
    where source = 'events' and status = 'loaded'
),

renamed as (
    select
        event_id,
        event_time,
        cast(event_time as date) as event_date,
        event_type,
        session_id,
        country,
        channel,
        device,
        category,
        amount,
        status
    from source
    semi join loaded_batches on source._batch = loaded_batches.file
)

select * from renamed
