-- Insights the analyst wrote in one cycle and the grounding check accepted; consolidation moves them into memory.
create table if not exists agent_insights (
    insight_id     varchar primary key,
    cycle_id       varchar not null,
    kind           varchar not null,
    title          varchar not null,
    body           varchar,
    severity       varchar not null,
    metric         varchar,
    dimension      varchar,
    member         varchar,
    period_start   date,
    candidate_ids  varchar[] not null,
    evidence       json not null,       -- the candidates' evidence queries and the values the numbers matched
    source         varchar not null,    -- model name
    written_at     timestamp not null
);
