-- What the snapshot holds: the cycle that wrote it, when, how far the data reaches, the newest complete day.
select
    $cycle_id as cycle_id,
    $written_at as written_at,
    (select max(watermark) from source_state) as watermark,
    (select max(cast(period_start as date)) from metric_values where grain = 'day' and complete) as latest_day
