-- A metric's entry in the catalogue, replaced when its declaration (fingerprint), file or model changes.
insert or replace into metrics (
    name, description, measure, favourability, grains, dimensions, goal, definition, fingerprint, model
)
values (
    $name, $description, $measure, $favourability, $grains, $dimensions, $goal, $definition, $fingerprint, $model
)
