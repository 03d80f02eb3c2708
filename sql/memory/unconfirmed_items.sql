-- Active insights nobody confirmed since $before (data quality is closed when fixed, prepared answers by the
-- next night's).
select id
from memory
where status = 'active'
    and kind not in ('data_quality', 'prepared_answer')
    and last_confirmed < $before
