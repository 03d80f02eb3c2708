-- Shared by the detectors in sql/detect/. Never NaN: a NaN inside a windowed median makes
-- DuckDB 1.5.5 fail with a bare "std::exception".
-- How long a period of a grain lasts: its last day is period_start + period_length(grain) - 1 day.
create or replace macro period_length(grain) as
    case grain when 'hour' then interval 1 hour when 'day' then interval 1 day when 'week' then interval 7 day
               else interval 1 month end;

-- A change on a log scale: symmetric (halving is as far as doubling), so drops are not underrated
-- and the noise of small series is not skewed. Counts and ratios get half a unit of continuity
-- (no refund in 60 orders is not an infinite drop); other values going to zero are a very large one.
create or replace macro change_floor(measure, expected, denominator) as
    case
        when measure = 'ratio' then 0.5 / greatest(denominator, 1)
        when measure in ('count', 'count_distinct') then 0.5
        else 1e-9 * expected
    end;

create or replace macro log_change(measure, value, expected, denominator) as
    if(expected > 0 or (expected = 0 and measure in ('ratio', 'count', 'count_distinct')),
       ln(greatest(value, change_floor(measure, expected, denominator))
          / greatest(expected, change_floor(measure, expected, denominator))),
       null);

-- A change in units of sampling noise, for counts and for ratios of counts: the signed deviance
-- residual of a Poisson count x against its expected value l (the statistic of Poisson regression),
-- which stays accurate in the tails of small counts: 10 refunds in 28 orders where one is usual is
-- news (5.6), 3 is not (1.6), and none where 5 are usual is not either (-3.2). Other measures
-- (sums, averages) change on the log scale.
create or replace macro deviance_residual(x, l) as
    sign(x - greatest(l, 0.5)) * sqrt(greatest(0, 2 * (
        if(x > 0, x * ln(x / greatest(l, 0.5)), 0) - (x - greatest(l, 0.5)))));

create or replace macro stable_change(measure, value, expected, numerator, denominator) as
    case
        when measure in ('count', 'count_distinct') and value >= 0 and expected >= 0
            then deviance_residual(value, expected)
        when measure = 'ratio' and numerator >= 0 and denominator > 0 and expected >= 0
            then deviance_residual(numerator, denominator * expected)
        else log_change(measure, value, expected, denominator)
    end;

-- Whether a count (or a ratio's numerator) is expected to be so small that sampling alone is its
-- noise: a median absolute deviation of a few discrete values (0, 1, 2 refunds) is not a measure
-- of spread, and inflates it about twofold.
create or replace macro sampling_only(measure, expected, denominator) as
    (measure in ('count', 'count_distinct') and expected < 10)
    or (measure = 'ratio' and denominator * expected < 10);

-- The least noise a series of `measure` can have on that scale: one sampling unit for counts and
-- ratios (their history may be too short or too quiet to show it), 1% otherwise.
create or replace macro least_noise(measure) as
    if(measure in ('count', 'count_distinct', 'ratio'), 1.0, 0.01);
