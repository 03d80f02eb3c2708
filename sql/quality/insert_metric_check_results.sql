-- One metric sanity check's outcome, stored with the batch checks under suite and source 'metrics'.
insert into quality_results (
    cycle_id, suite, source, batch, expectation, column_name, severity, success,
    element_count, unexpected_count, sample, checked_at, message
)
values (
    $cycle_id, 'metrics', 'metrics', $metric, $check, null, $severity, $success,
    $total, $unexpected, $sample, now(), $message
)
