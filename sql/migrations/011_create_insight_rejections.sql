-- Insights the analyst tried to write and the grounding check refused, with the reason.
create table if not exists insight_rejections (
    cycle_id      varchar not null,
    source        varchar not null,
    title         varchar,
    body          varchar,
    reason        varchar not null,
    rejected_at   timestamp not null
);
