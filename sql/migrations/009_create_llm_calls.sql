-- Ledger of every LLM call: how sleep-time cost and query-time savings are measured.
create table if not exists llm_calls (
    cycle_id           varchar,
    purpose            varchar not null,   -- reflect | ask
    model              varchar not null,
    prompt_tokens      integer,
    completion_tokens  integer,
    latency_seconds    double not null,
    outcome            varchar not null,   -- ok | error: <reason>
    called_at          timestamp not null
);
