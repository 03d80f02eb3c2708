-- A trend change's evidence: the daily average of one series in the window after the changepoint and before.
-- Stored with the insight and re-run by grounding and by people, so its values are written in, quoted.
select
    avg(value) filter (where period_start >= timestamp {{ start }}) as daily_average_after,
    avg(value) filter (where period_start < timestamp {{ start }}) as daily_average_before
from metric_values
where metric = {{ metric }}
    and grain = 'day'
    and dimension = {{ dimension }}
    and member = {{ member }}
    and complete
    and period_start between timestamp {{ start }} - interval {{ window_days }} day and timestamp {{ end }}
