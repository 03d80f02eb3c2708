-- Per source: how far ingestion has got.
create table if not exists source_state (
    source        varchar primary key,
    watermark     timestamp,          -- latest event time ingested
    last_file     varchar,
    status        varchar not null,   -- ok | failed
    error         varchar,
    updated_at    timestamp not null,
    cycle_id      varchar
);
