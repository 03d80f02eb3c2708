-- Deterministic insights of one cycle, ranked by score.
create table if not exists candidates (
    candidate_id  varchar primary key,
    cycle_id      varchar not null,
    detector      varchar not null,
    kind          varchar not null,
    metric        varchar not null,
    grain         varchar not null,
    dimension     varchar not null,
    member        varchar not null,
    period_start  date not null,
    observed      double,
    expected      double,
    magnitude     double,     -- relative change against expected
    direction     varchar,    -- up | down
    favourable    varchar,    -- good | bad | neutral
    score         double not null,
    rank          integer not null,
    evidence_sql  varchar not null
);
