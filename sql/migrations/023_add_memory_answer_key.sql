-- A prepared answer's question, as the key a parsed question is looked up by (intent | metric | slice | day).
alter table memory add column if not exists answer_key varchar;
