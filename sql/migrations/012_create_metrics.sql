-- The metric catalogue as of the last refresh: what each metric means and which direction is good.
create table if not exists metrics (
    name           varchar primary key,
    description    varchar,
    measure        varchar not null,     -- the aggregation, or ratio
    favourability  varchar not null,     -- up | down | neutral
    grains         varchar[] not null,
    dimensions     varchar[] not null,
    goal           json,
    definition     varchar not null,     -- the YAML file it is declared in
    fingerprint    varchar not null      -- changes when the declaration changes: then it is rebuilt in full
);
