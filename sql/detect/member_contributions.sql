-- Drivers and detractors of one change: each member's part of it, per dimension, comparing the
-- average over the changed periods ($current) with the average over the periods it is compared
-- to ($baseline). For a ratio, a member's part splits into mix (its share of the denominator
-- moved) and rate (its own ratio moved), so a shift towards a weaker segment is not mistaken for
-- every segment getting worse (Simpson's paradox).
with members as (
    select
        dimension,
        member,
        avg(coalesce(numerator, value)) filter (where list_contains($current, period_start)) as numerator_now,
        avg(denominator) filter (where list_contains($current, period_start)) as denominator_now,
        avg(coalesce(numerator, value)) filter (where list_contains($baseline, period_start)) as numerator_before,
        avg(denominator) filter (where list_contains($baseline, period_start)) as denominator_before
    from metric_values
    where metric = $metric and grain = $grain and dimension <> 'overall'
      and (list_contains($current, period_start) or list_contains($baseline, period_start))
    group by all
),

weighted as (
    select
        *,
        coalesce(denominator_now, 0) / nullif(sum(denominator_now) over dimension_members, 0) as weight_now,
        coalesce(denominator_before, 0) / nullif(sum(denominator_before) over dimension_members, 0) as weight_before,
        numerator_now / nullif(denominator_now, 0) as rate_now,
        numerator_before / nullif(denominator_before, 0) as rate_before,
        sum(numerator_before) over dimension_members / nullif(sum(denominator_before) over dimension_members, 0)
            as overall_rate_before
    from members
    window dimension_members as (partition by dimension)
),

parts as (
    select
        dimension,
        member,
        if($ratio, rate_now, numerator_now) as observed,
        if($ratio, rate_before, numerator_before) as expected,
        if($ratio, (weight_now - weight_before) * (coalesce(rate_before, overall_rate_before) - overall_rate_before), null) as mix,
        if($ratio, weight_now * (coalesce(rate_now, 0) - coalesce(rate_before, rate_now, 0)), null) as rate,
        if($ratio,
           (weight_now - weight_before) * (coalesce(rate_before, overall_rate_before) - overall_rate_before)
               + weight_now * (coalesce(rate_now, 0) - coalesce(rate_before, rate_now, 0)),
           coalesce(numerator_now, 0) - coalesce(numerator_before, 0)) as contribution
    from weighted
)

select
    *,
    contribution / nullif(sum(contribution) over (partition by dimension), 0) as share_of_change
from parts
order by dimension, abs(contribution) desc
