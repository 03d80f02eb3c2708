-- Memory items by id, with the fields a search hit carries: the items a computed answer rests on, shown to the
-- model even when the search did not find them.
select
    id, kind, title, body, status, severity, score, metric, dimension, member,
    strftime(period_start, '%Y-%m-%d') as period
from memory
where list_contains($ids, id)
order by list_position($ids, id)
