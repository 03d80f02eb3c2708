-- One channel's attempt this cycle: sent, failed or held for quiet hours, with the alerts it carried.
insert into deliveries (cycle_id, channel, target, fingerprints, delivered_at, status, error, insight_ids, alerts)
values ($cycle_id, $channel, $target, $fingerprints, $now, $status, $error, $insight_ids, $alerts)
