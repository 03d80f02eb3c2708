-- Active data_quality items about a batch held back in an earlier cycle that loaded this cycle (fixed or replaced).
select m.id
from memory as m
join batches as b
    on m.dimension = 'batch' and b.file = m.member
where m.kind = 'data_quality'
    and m.status = 'active'
    and m.cycle_id <> $cycle_id
    and b.cycle_id = $cycle_id
    and b.status = 'loaded'
