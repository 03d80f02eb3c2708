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

gaps as (  -- each real value and the next one of its series: the periods between them are its gap
    select
        metric, dimension, member, period_start as seen_at,
        lead(period_start) over (partition by metric, dimension, member order by period_start) as seen_next
    from seen
),

missing as (  -- a gap's periods up to $window after its value, and not past the last complete period
    select
        metric, dimension, member,
        unnest(generate_series(
            seen_at + ('1 ' || $grain)::interval,
            least(
                coalesce(seen_next - ('1 ' || $grain)::interval, 'infinity'::timestamp),
                seen_at + $window * ('1 ' || $grain)::interval,
                $watermark + to_minutes($grace) - ('1 ' || $grain)::interval
            ),
            ('1 ' || $grain)::interval
        )) as period_start
    from gaps
),

held_back as (
    select first_event, last_event
    from batches
    where status = 'quarantined' and last_event >= $since - $window * ('1 ' || $grain)::interval
)

select
    missing.metric,
    $grain as grain,
    missing.period_start,
    missing.dimension,
    missing.member,
    0.0 as value,
    0.0 as volume,
    true as complete,
    $cycle_id as cycle_id
from missing
anti join metric_values existing  -- a row of no volume (a sum of nulls) is kept as it is
    on existing.metric = missing.metric
    and existing.grain = $grain
    and existing.period_start = missing.period_start
    and existing.dimension = missing.dimension
    and existing.member = missing.member
where missing.period_start >= $since
    and not exists (
        select 1 from held_back
        where held_back.first_event < missing.period_start + ('1 ' || $grain)::interval
            and held_back.last_event >= missing.period_start
    )
