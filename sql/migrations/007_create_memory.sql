-- The insight store. Bi-temporal: valid_* is when it holds in the data, recorded_at/closed_at when reverie knew it.
create table if not exists memory (
    id              varchar primary key,
    fingerprint     varchar not null,      -- kind | metric | slice | period: one subject, one active row
    kind            varchar not null,
    title           varchar not null,
    body            varchar,
    metric          varchar,
    dimension       varchar,
    member          varchar,
    period_start    date,
    severity        varchar not null,      -- info | warning | critical
    score           double,
    status          varchar not null,      -- active | superseded | retracted | expired
    valid_from      date,
    valid_to        date,
    recorded_at     timestamp not null,
    closed_at       timestamp,
    first_seen      timestamp not null,
    last_confirmed  timestamp not null,
    supersedes      varchar,
    superseded_by   varchar,
    related_ids     varchar[],
    evidence        json,                  -- queries, the values they returned, data watermark
    source          varchar not null,      -- detector name or model name
    cycle_id        varchar not null,
    flow_run_id     varchar,
    feedback        varchar
);
