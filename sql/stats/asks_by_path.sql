-- Query time: the asks since $since by the path that answered them, with their tokens and seconds.
select
    path,
    count(*) as asks,
    count(*) filter (where grounded) as grounded,
    avg(prompt_tokens + completion_tokens) as mean_tokens,
    sum(prompt_tokens + completion_tokens) as tokens,
    quantile_cont(seconds, 0.5) as p50_seconds,
    quantile_cont(seconds, 0.95) as p95_seconds,
    avg(seconds) as mean_seconds,
    sum(seconds) as seconds,
    -- what an answer that answered cost: a saving is claimed only against a cold ask that answered
    avg(prompt_tokens + completion_tokens) filter (where grounded) as answered_mean_tokens,
    avg(seconds) filter (where grounded) as answered_mean_seconds,
    coalesce(sum(prompt_tokens + completion_tokens) filter (where grounded), 0) as answered_tokens,
    coalesce(sum(seconds) filter (where grounded), 0) as answered_seconds
from asks
where asked_at >= $since
group by path
order by case path when 'prepared' then 0 when 'computed' then 1 when 'memory' then 2 when 'declined' then 3 else 4 end
