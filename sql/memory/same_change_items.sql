-- Active items of one detector, metric and slice whose days lie within $tolerance days of a new finding's: maybe the
-- same change found again (the caller checks grain and direction).
select id, evidence, title, fingerprint, last_confirmed
from memory
where status = 'active'
    and kind = $kind
    and metric = $metric
    and dimension = $dimension
    and member = $member
    and source = $source
    and valid_from <= $valid_to + to_days($tolerance)
    and valid_to >= $valid_from - to_days($tolerance)
order by valid_from
