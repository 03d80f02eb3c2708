-- The metric catalogue as of the last refresh: what each metric means and which direction is good.
create table if not exists metrics (
    name           varchar primary key,
    description    varchar,
    measure        varchar not null,     -- sum | ratio
    favourability  varchar not null,     -- up | down | neutral
    dimensions     varchar[] not null,
    definition     varchar not null      -- the SQL file it comes from
);
