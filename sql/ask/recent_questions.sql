-- The questions people asked since $since, the most asked first: the night prepares them again on the new day.
select question, count(*) as times
from asks
where asked_at >= $since
group by question
order by times desc, max(asked_at) desc
limit $limit
