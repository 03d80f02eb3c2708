-- Active memory items whose period covers one day, most severe first: what "what happened on that day" reads.
select id, kind, title
from memory
where status = 'active'
    and kind <> 'prepared_answer'
    and $day between coalesce(valid_from, period_start) and coalesce(valid_to, period_start)
order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, score desc nulls last
limit 5
