-- Sleep time: each cycle since $since, its seconds, and the tokens of its model calls (reflect and anything
-- else done at night).
with night_calls as (
    select
        cycle_id,
        count(*) as calls,
        sum(coalesce(prompt_tokens, 0)) as prompt_tokens,
        sum(coalesce(completion_tokens, 0)) as completion_tokens,
        sum(latency_seconds) as model_seconds
    from llm_calls
    where cycle_id is not null
    group by cycle_id
)

select
    c.cycle_id,
    strftime(c.started_at, '%Y-%m-%dT%H:%M:%S') as started_at,
    c.status,
    c.seconds,
    coalesce(n.calls, 0) as calls,
    coalesce(n.prompt_tokens, 0) as prompt_tokens,
    coalesce(n.completion_tokens, 0) as completion_tokens,
    coalesce(n.model_seconds, 0) as model_seconds
from cycles as c
left join night_calls as n using (cycle_id)
where c.started_at >= $since and c.finished_at is not null
order by c.started_at
