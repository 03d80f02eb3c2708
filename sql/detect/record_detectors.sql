-- The detector catalogue written whole: one row per detector, a list per column.
delete from detectors;
insert into detectors (name, describes_change, neutral, weight, baseline, source)
select
    unnest($name::varchar[]),
    unnest($describes_change::boolean[]),
    unnest($neutral::boolean[]),
    unnest($weight::double[]),
    unnest($baseline::varchar[]),
    unnest($source::varchar[]);
