-- The detector catalogue as of the last detect stage: what each detector's findings mean, from its header, so
-- what reads memory (ask, the brief's charts, consolidate's stories) asks the detector rather than naming it.
create table if not exists detectors (
    name              varchar not null,
    describes_change  boolean not null,  -- its findings describe a change in a metric (a concentration does not)
    neutral           boolean not null,  -- neither good nor bad news, whatever the metric
    weight            double not null,
    baseline          varchar not null,
    source            varchar not null   -- the file that declares it
);
