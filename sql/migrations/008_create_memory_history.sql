-- Every change to memory: what, old, new, when, by which cycle.
create table if not exists memory_history (
    memory_id     varchar not null,
    change        varchar not null,   -- insert | confirm | supersede | retract | expire | feedback
    field         varchar,
    old_value     varchar,
    new_value     varchar,
    changed_at    timestamp not null,
    cycle_id      varchar
);
