-- Pairs of active items this cycle added or confirmed that tell one story: changes over overlapping days in the
-- same slice, or carried by the same member (purchases and revenue up, almost all from latam); and a batch held
-- back with a drop in the days it holds (the data missing from a total is not a fall in business).
with touched as (
    select
        id,
        kind,
        source,
        dimension,
        member,
        valid_from,
        valid_to,
        if((evidence ->> '$.drivers.lead.share_of_change')::double >= 0.5,
           (evidence ->> '$.drivers.lead.dimension') || '=' || (evidence ->> '$.drivers.lead.member'), null) as carried_by,
        (evidence ->> '$.observed')::double < (evidence ->> '$.expected')::double as dropped
    from memory
    where status = 'active'
        and (cycle_id = $cycle_id
             or id in (select memory_id from memory_history where cycle_id = $cycle_id and change = 'confirm'))
),

changes as (
    select *, dimension || '=' || member as slice
    from touched
    where source like 'detector:%' and valid_from is not null
        and kind not in (select name from detectors where not describes_change)  -- a share or a goal is no change
),

held_back as (
    select touched.id, batches.first_event::date as valid_from, batches.last_event::date as valid_to
    from touched
    join batches on batches.file = touched.member and batches.status = 'quarantined'
    where touched.kind = 'data_quality' and touched.dimension = 'batch' and batches.first_event is not null
)

select one.id as one, other.id as other
from changes one
join changes other
    on one.id < other.id
    and one.valid_from <= other.valid_to
    and other.valid_from <= one.valid_to
    and (one.slice = other.slice or one.carried_by = other.slice or other.carried_by = one.slice
         or one.carried_by = other.carried_by)

union all

select held_back.id as one, changes.id as other
from held_back
join changes
    on changes.dropped
    and changes.valid_from <= held_back.valid_to
    and held_back.valid_from <= changes.valid_to
