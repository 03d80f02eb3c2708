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
    sum(seconds) as seconds
from asks
where asked_at >= $since
group by path
order by case path when 'prepared' then 0 when 'memory' then 1 else 2 end
