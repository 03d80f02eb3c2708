-- Active detector insights about periods from $since on, with the evidence to check again.
select id, evidence
from memory
where status = 'active'
    and source like 'detector:%'
    and period_start >= $since
