-- Every change to one memory item, oldest first.
select
    change,
    field,
    old_value,
    new_value,
    strftime(changed_at, '%Y-%m-%dT%H:%M:%S') as changed_at,
    cycle_id
from memory_history
where memory_id = $memory_id
order by changed_at, rowid
