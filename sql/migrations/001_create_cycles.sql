-- One row per sleep cycle: when it ran, under which Prefect flow run, and how it ended.
create table if not exists cycles (
    cycle_id      varchar primary key,
    flow_run_id   varchar,
    started_at    timestamp not null,
    finished_at   timestamp,
    status        varchar not null default 'running',  -- running | completed | degraded | failed
    stages        json,
    seconds       double
);
