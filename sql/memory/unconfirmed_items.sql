-- Active insights (data quality aside) nobody confirmed since $before.
select id
from memory
where status = 'active'
    and kind <> 'data_quality'
    and last_confirmed < $before
