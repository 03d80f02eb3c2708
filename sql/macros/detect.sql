-- Shared by the detectors in sql/detect/detectors/. Never NaN: a NaN inside a windowed median makes
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

-- A metric's scale (metrics.scale), for a catalogue refreshed before scales were inferred: a ratio read as a share.
create or replace macro metric_scale(scale, measure) as
    coalesce(scale, if(measure = 'ratio', 'points', 'relative'));

-- The rows behind a value (metric_values.volume), for values stored before it was: a ratio's denominator, else
-- the value itself (right for counts).
create or replace macro rows_behind(volume, denominator, value) as
    coalesce(volume, denominator, abs(value));

-- A change as its metric's scale reads it (metrics.scale, sql/metrics/infer_scales.sql): counts and shares in units
-- of sampling noise (deviance residuals, above); `relative` values on a log scale; `absolute` values (signed or
-- near zero: delays, margins, temperatures) as a difference in their own units, never divided by an expected value
-- that may be zero or of the other sign.
create or replace macro scaled_change(measure, scale, value, expected, numerator, denominator) as
    case
        when scale = 'absolute' or (scale = 'points' and numerator is null) then value - expected
        when measure in ('count', 'count_distinct') and value >= 0 and expected >= 0
            then deviance_residual(value, expected)
        when measure = 'ratio' and scale = 'points' and numerator >= 0 and denominator > 0 and expected >= 0
            then deviance_residual(numerator, denominator * expected)
        else log_change(measure, value, expected, denominator)
    end;

-- Whether a change is large enough to tell: $min_rel_change of the expected value on a relative scale (a share
-- too: from 0.4% to 0.5% is not news however sure), of the series' usual size (`level`, its typical absolute
-- value) on an absolute one.
create or replace macro big_enough(measure, scale, value, expected, denominator, level, min_change) as
    if(scale = 'absolute' or (scale = 'points' and measure <> 'ratio'),
       abs(value - expected) >= min_change * level,
       abs(exp(log_change(measure, value, expected, denominator)) - 1) >= min_change);

-- Whether sampling alone is the noise of a change as its scale reads it (see sampling_only).
create or replace macro sampled_only(measure, scale, expected, denominator) as
    scale <> 'absolute' and (
        (measure in ('count', 'count_distinct') and expected < 10)
        or (measure = 'ratio' and scale = 'points' and denominator * expected < 10));

-- The least noise a series can have on its scale: one sampling unit for counts and shares, 1% relative, 1% of its
-- usual size in absolute units.
create or replace macro scaled_least_noise(measure, scale, level) as
    case
        when scale <> 'absolute' and (measure in ('count', 'count_distinct') or (measure = 'ratio' and scale = 'points'))
            then 1.0
        when scale = 'absolute' or scale = 'points' then greatest(0.01 * level, 1e-9)
        else 0.01
    end;

-- Enough behind a change: an average, a min, a max or a ratio needs $min_volume rows that period and usually (an
-- average of two flights is not a day's delay); a count its usual value (the rows it counts), and a sum its usual
-- value or rows (a daily export of one row holding 10,000 births is plenty). A count or a sum may drop to nothing:
-- that is the news.
create or replace macro enough_rows(measure, rows_now, rows_usual, usual, min_volume) as
    case
        when measure in ('count', 'count_distinct') then abs(usual) >= min_volume
        when measure = 'sum' then abs(usual) >= min_volume or rows_usual >= min_volume
        else rows_now >= min_volume and rows_usual >= min_volume
    end;

-- Whether a count's or a sum's day is far outside every day of the four weeks before (at least two weeks of
-- them), the bad way for the business (or either way for a metric with no good way): below the lowest by
-- twice min_change, or above the highest by as much. However wide its learned noise (a weather-driven
-- series), such a day is news on its own; a calm day of a bursty count of bad things is not.
create or replace macro far_outside(measure, scale, favourability, value, recent_low, recent_high, recent_days,
                                    min_change) as
    scale = 'relative' and measure in ('count', 'count_distinct', 'sum') and recent_days >= 14 and recent_low > 0
    and ((value < recent_low * (1 - 2 * min_change) and favourability <> 'down')
         or (value > recent_high * (1 + 2 * min_change) and favourability <> 'up'));
