-- the analyst's corrections: a row replacing (supersedes) or withdrawing (retracts) a memory item
alter table agent_insights add column if not exists supersedes varchar;
alter table agent_insights add column if not exists retracts varchar;
