-- One row per check per validated batch (batch '(source)': a result about the whole source,
-- source 'metrics': a sanity check of a metric's values).
create table if not exists quality_results (
    cycle_id          varchar not null,
    suite             varchar not null,
    source            varchar not null,
    batch             varchar not null,
    expectation       varchar not null,
    column_name       varchar,
    severity          varchar not null,   -- error quarantines the batch | warning only reports
    success           boolean not null,
    element_count     bigint,
    unexpected_count  bigint,
    sample            json,
    checked_at        timestamp not null,
    message           varchar             -- why it failed, in words
);
