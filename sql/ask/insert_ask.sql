-- One question asked of reverie: how it was answered, what it cited, what it cost. Values are filled in as
-- literals: a query with parameters makes DuckDB import pandas, longer than a prepared answer takes.
insert into asks (ask_id, asked_at, question, path, answer, cited, prompt_tokens, completion_tokens, seconds,
                  snapshot_cycle_id, grounded)
values ({{ ask_id }}, cast({{ asked_at }} as timestamp), {{ question }}, {{ path }}, {{ answer }},
        cast({{ cited }} as varchar[]), {{ prompt_tokens }}, {{ completion_tokens }}, {{ seconds }},
        {{ snapshot_cycle_id }}, {{ grounded }})
