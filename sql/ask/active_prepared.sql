-- The prepared answers still active: the next night's replace them.
select id
from memory
where status = 'active' and kind = 'prepared_answer'
