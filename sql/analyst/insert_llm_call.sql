-- One LLM call in the ledger: what it was for (reflect | ask), what it cost, how it ended.
insert into llm_calls (cycle_id, purpose, model, prompt_tokens, completion_tokens, latency_seconds, outcome, called_at)
values ($cycle_id, $purpose, $model, $prompt_tokens, $completion_tokens, $latency_seconds, $outcome, $called_at)
