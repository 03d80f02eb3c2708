-- The insights each of $ids superseded, directly or through others: a new value of a subject already alerted is
-- an update of that alert, also when the subject's period moved (a changepoint placed days later).
with recursive chain(id, ancestor) as (
    select id, supersedes from memory
    where list_contains($ids, id) and supersedes is not null
    union all
    select chain.id, memory.supersedes
    from chain
    join memory on memory.id = chain.ancestor
    where memory.supersedes is not null
)

select id, list(ancestor) as ancestors
from chain
group by id
