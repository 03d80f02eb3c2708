-- Active data_quality items about a metric, from an earlier cycle, whose values were computed this
-- cycle with no failing check: it computes again, or its values are sane again.
select m.id
from memory as m
where m.kind = 'data_quality'
    and m.status = 'active'
    and m.dimension = 'metric'
    and m.cycle_id <> $cycle_id
    and exists (
        select 1 from metric_values as v
        where v.metric = m.metric and v.cycle_id = $cycle_id
    )
    and not exists (
        select 1 from quality_results as q
        where q.source = 'metrics' and q.batch = m.metric and q.cycle_id = $cycle_id and not q.success
    )
