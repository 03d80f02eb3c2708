-- The other names of the members of a slice, so a question or a search in people's words finds them: a
-- country's names for its code (Germany for DE), and the project's own map ([aliases] in reverie.toml).
-- Written whole by each cycle's prepare stage; lowercase aliases.
create table if not exists member_aliases (
    member     varchar not null,
    dimension  varchar not null,
    alias      varchar not null
);
