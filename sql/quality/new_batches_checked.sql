-- Per source, this cycle's new batches (loaded, or held back by the gate) and how many of them no check looked at,
-- with why: the brief says "unchecked" for those, never "passed".
with new_batches as (
    select source, file
    from batches
    where cycle_id = $cycle_id and status in ('loaded', 'quarantined')
),

unchecked as (
    select source, batch as file, message as why
    from quality_results
    where cycle_id = $cycle_id and severity = 'unchecked'
)

select
    new_batches.source,
    count(*) as batches,
    count(unchecked.file) as unchecked,
    any_value(unchecked.why) as why
from new_batches
left join unchecked on unchecked.source = new_batches.source and unchecked.file = new_batches.file
group by new_batches.source
order by new_batches.source
