-- warehouses made before the detector catalogue
alter table candidates add column if not exists period_end date;
alter table candidates add column if not exists comparison varchar;   -- what expected is: "median of the same weekday, 4 weeks", ...
alter table candidates add column if not exists headline varchar;     -- one sentence, every number from observed/expected
alter table candidates add column if not exists detectors varchar[];  -- every detector that saw this change
alter table candidates add column if not exists drivers json;         -- per dimension: members' contributions, mix and rate
alter table candidates add column if not exists related json;         -- the other findings merged into this one
