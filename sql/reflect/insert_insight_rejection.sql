-- One insight an analyst tried to write and the grounding check refused, with the reason.
insert into insight_rejections (cycle_id, source, title, body, reason, rejected_at)
values ($cycle_id, $source, $title, $body, $reason, $rejected_at)
