-- Metrics in long form; dimension 'overall' / member 'all' is the total per period.
-- One row per (metric, grain, period_start, dimension, member): the refresh deletes a period range and
-- inserts it again in one transaction. No primary key on purpose: DuckDB's index makes that bulk
-- insert ~50x slower (measured in bench/metrics_refresh.py).
create table if not exists metric_values (
    metric        varchar not null,
    grain         varchar not null,
    period_start  timestamp not null,  -- the start of the hour, day, week (Monday) or month
    dimension     varchar not null,
    member        varchar not null,
    value         double,
    numerator     double,   -- ratios only
    denominator   double,   -- ratios only
    complete      boolean not null,
    cycle_id      varchar not null
);
