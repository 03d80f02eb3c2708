-- the rows behind each value (a count: the count; a sum, average, min or max: the rows it aggregated; a ratio: its
-- denominator's rows), so an average of two rows is not read like one of two thousand; 0 for a period with no row
-- filled in as zero
alter table metric_values add column if not exists volume double;
-- how a metric's changes are read: relative (in %, on a log scale), absolute (in its own units, for signed or
-- near-zero values), points (percentage points, for shares); declared or inferred at each refresh
alter table metrics add column if not exists scale varchar;
