-- A metric's entry in the catalogue, replaced when its declaration (fingerprint), file or model changes.
-- (Deleted and inserted, not upserted: a lakehouse warehouse has no key to replace on.)
delete from metrics where name = $name;
insert into metrics (
    name, description, measure, favourability, grains, dimensions, goal, definition, fingerprint, model
)
values (
    $name, $description, $measure, $favourability, $grains, $dimensions, $goal, $definition, $fingerprint, $model
);
