-- Missing periods are zeros: a member (or the whole business) of an additive metric with data in the periods just
-- before and no row in a complete period had nothing that period — no purchases on a platform during an outage, no
-- cancelled flights at a quiet airport. With a metric's `filter:` such a period has no row at all, so without this
-- the detectors would never see the drop. Averages and ratios of nothing have no value and stay missing.
-- "Just before" is $window periods (a week of days, four weeks, three months): a member gone for longer is not
-- counted as zero for ever. A period that data held back by the quality gate falls in is not filled: its rows are
-- missing, not zero. Filled for the metrics of one refresh, from $since to the last complete period.
insert into metric_values by name
with seen as (  -- real values only: a period filled in as zero is not data
    select metric, dimension, member, period_start
    from metric_values
    where grain = $grain
        and metric in (select unnest($metrics::varchar[]))
        and period_start >= $since - $window * ('1 ' || $grain)::interval
        and volume > 0
),

periods as (  -- from the first period with data: a full refresh's $since is 1900
    select unnest(generate_series(
        greatest($since::timestamp, (select min(period_start) from seen)),
        $watermark + to_minutes($grace) - ('1 ' || $grain)::interval, ('1 ' || $grain)::interval
    )) as period_start
),

held_back as (
    select first_event, last_event
    from batches
    where status = 'quarantined' and last_event >= $since - $window * ('1 ' || $grain)::interval
),

fillable as (
    select period_start
    from periods
    where not exists (
        select 1 from held_back
        where held_back.first_event < periods.period_start + ('1 ' || $grain)::interval
            and held_back.last_event >= periods.period_start
    )
),

expected as (
    select distinct seen.metric, seen.dimension, seen.member, fillable.period_start
    from fillable
    join seen
        on seen.period_start < fillable.period_start
        and seen.period_start >= fillable.period_start - $window * ('1 ' || $grain)::interval
)

select
    expected.metric,
    $grain as grain,
    expected.period_start,
    expected.dimension,
    expected.member,
    0.0 as value,
    0.0 as volume,
    true as complete,
    $cycle_id as cycle_id
from expected
anti join metric_values existing
    on existing.metric = expected.metric
    and existing.grain = $grain
    and existing.period_start = expected.period_start
    and existing.dimension = expected.dimension
    and existing.member = expected.member
