-- Every landed file reverie has ingested; a changed file (size or mtime) is ingested again.
create table if not exists batches (
    source        varchar not null,
    file          varchar not null,
    size_bytes    bigint not null,
    modified_at   timestamp not null,
    rows          bigint not null,
    first_event   timestamp,
    last_event    timestamp,
    status        varchar not null,   -- loaded | quarantined (failed the quality gate) | rejected (could not be loaded)
    reason        varchar,
    cycle_id      varchar not null,
    loaded_at     timestamp not null,
    primary key (source, file)
);
