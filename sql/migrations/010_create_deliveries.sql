-- What was delivered where, and for which insights.
create table if not exists deliveries (
    cycle_id      varchar not null,
    channel       varchar not null,   -- a channel of [deliver] channels: brief_file, prefect_artifact, webhook, ...
    target        varchar not null,
    fingerprints  varchar[],
    delivered_at  timestamp not null
);
