-- how the change reads (its metric's scale), its size in the metric's units, how much it deserves attention, and
-- the days the whole change covers (a three-day spike headed by its strongest day: memory's valid_from/valid_to)
alter table candidates add column if not exists scale varchar;
alter table candidates add column if not exists difference double;
alter table candidates add column if not exists severity varchar;
alter table candidates add column if not exists valid_from date;
alter table candidates add column if not exists valid_to date;
-- a later finding of the same metric, slice and direction this close to the span is the same change found again
-- (a changepoint placed two days later, a spike that grew by a day): memory keeps one item for it; 0 for findings
-- that describe no change (concentration, pace to goal)
alter table candidates add column if not exists same_change_days integer;
