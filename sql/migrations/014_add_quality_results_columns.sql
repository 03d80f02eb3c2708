alter table quality_results add column if not exists message varchar;  -- warehouses made before it
