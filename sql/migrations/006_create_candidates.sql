-- Deterministic insights of one cycle, one row per underlying change, ranked by score.
create table if not exists candidates (
    candidate_id  varchar primary key,
    cycle_id      varchar not null,
    detector      varchar not null,   -- the detector of the headline finding
    kind          varchar not null,   -- the insight type: unusual_change, period_over_period, trend_change, ...
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
