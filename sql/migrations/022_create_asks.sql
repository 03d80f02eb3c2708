-- Every question asked of reverie (`reverie ask`): how it was answered, what it cited, what it cost.
create table if not exists asks (
    ask_id             varchar primary key,
    asked_at           timestamp not null,
    question           varchar not null,
    path               varchar not null,   -- prepared | memory | cold
    answer             varchar not null,
    cited              varchar[] not null, -- memory ids the answer rests on
    prompt_tokens      integer not null,
    completion_tokens  integer not null,
    seconds            double not null,
    snapshot_cycle_id  varchar,            -- the cycle whose snapshot answered (prepared and memory paths)
    grounded           boolean not null    -- false: the answer says it could not be grounded
);
