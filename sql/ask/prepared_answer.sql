-- The active prepared answer to a question, found by its key (a literal: a query with parameters makes DuckDB
-- import pandas, a second more than the whole prepared path).
select id, body, related_ids, evidence
from memory
where status = 'active' and kind = 'prepared_answer' and answer_key = {{ key }}
limit 1
