-- The catalogue entries of the metrics whose declaration (fingerprint), file or model changed, replaced at once:
-- one list per column, a metric per position. (Deleted and inserted, not upserted: a lakehouse warehouse has no
-- key to replace on.)
delete from metrics where name in (select unnest($name::varchar[]));
insert into metrics (
    name, description, measure, favourability, grains, dimensions, goal, definition, fingerprint, model
)
select
    unnest($name::varchar[]),
    unnest($description::varchar[]),
    unnest($measure::varchar[]),
    unnest($favourability::varchar[]),
    unnest($grains::varchar[][]),
    unnest($dimensions::varchar[][]),
    unnest($goal::varchar[])::json,
    unnest($definition::varchar[]),
    unnest($fingerprint::varchar[]),
    unnest($model::varchar[]);
