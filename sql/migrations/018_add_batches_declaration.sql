-- the fingerprint of the source's declaration (format, time column, options) a batch was loaded or refused under:
-- a batch refused under an older declaration is tried again; status 'retry' asks the next cycle to try it again
alter table batches add column if not exists declaration varchar;
