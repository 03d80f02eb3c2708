-- Every attempt of a channel, also the ones that failed or waited for the end of quiet hours, and which insights a
-- notification carried: what keeps an alert from being sent twice, and a changed value sent as an update.
alter table deliveries add column if not exists status varchar default 'sent';  -- sent | failed | held
alter table deliveries add column if not exists error varchar;                  -- why it failed, with no URL or token in it
alter table deliveries add column if not exists insight_ids varchar[];
alter table deliveries add column if not exists alerts struct(insight_id varchar, fingerprint varchar, title varchar, is_update boolean)[];
