-- The memory item a detector's candidate became (an analyst's note cites candidates by id): the newest that
-- names it among its related ids, the detector's own item before a note's.
select id
from memory
where list_contains(related_ids, $candidate_id)
order by source like 'detector:%' desc, recorded_at desc
limit 1
