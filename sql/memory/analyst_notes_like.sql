-- Active analyst notes of one kind about one metric: the candidates for "the same thing said again".
select id, title, related_ids
from memory
where status = 'active'
    and kind = $kind
    and metric is not distinct from $metric
    and source not like 'detector:%'
    and source <> 'quality-gate'
