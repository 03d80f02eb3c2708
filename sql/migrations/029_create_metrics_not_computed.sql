-- A dbt project's metrics reverie does not compute, and why, as of the last metrics stage: so `ask` declines a
-- question about one saying so, instead of answering another question.
create table if not exists metrics_not_computed (
    name    varchar not null,
    reason  varchar not null
);
