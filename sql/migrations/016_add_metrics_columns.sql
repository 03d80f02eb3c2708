alter table metrics add column if not exists model varchar;  -- the source or model it is computed from
