"""The analyst's tools as the model sees them: their JSON schemas, names and kinds of insight."""

from __future__ import annotations

INSIGHT_KINDS = ["pattern", "hypothesis", "risk", "recommendation", "question", "anomaly"]
SEVERITIES = ["info", "warning", "critical"]
# The embedded model's title names its subject first, then words and references to its candidate's values (no
# digits; a word starts with a letter, so no "- {c1.expected}" reads as arithmetic); its body is words only.
# [.]: llama.cpp's grammar keeps a \. as it is.
EMBEDDED_TITLE = (r"^\{c1[.]metric\} \(\{c1[.]slice\}\)"
                  r"( [A-Za-z(][A-Za-z,;:()'-]*| \{c1[.](observed|expected|change|period|direction)\}){1,8}$")
EMBEDDED_BODY = r"^[A-Za-z ,.;:()'-]{1,100}$"

EVIDENCE = {"type": "array", "items": {"type": "string"}, "maxItems": 3,
            "description": "SELECT queries q1, q2, q3 whose results hold every number you write; re-run when you write."}
REFERENCES = ("Write numbers as references, and reverie fills in the values: {c1.observed}, {c1.expected}, "
              "{c1.change}, {c1.period} for a candidate; {q1.column} (first row) or {q1[2].column} (second row) "
              "for an evidence query's result.")


def function_tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    """One function tool in the OpenAI format."""
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


def tool_schemas(candidate_ids: list[str], embedded: bool = False) -> list[dict]:
    """The analyst's tools; candidate ids are an enum so a constrained decoder cannot invent one. For the
    `embedded` model, only a short write_insight."""
    title = {"type": "string", "maxLength": 120, "description": "One line."}
    body = {"type": "string", "maxLength": 500, "description": "Two or three sentences."}
    if embedded:  # a 135M model otherwise writes about nothing in particular: it starts with the metric
        title = {"type": "string", "pattern": EMBEDDED_TITLE}
        body = {"type": "string", "pattern": EMBEDDED_BODY}
    write = function_tool("write_insight", "Store one insight in memory. " + REFERENCES + " Any number you type must be "
                                   "returned by the evidence queries or be a value of the cited candidates.", {
        "kind": {"type": "string", "enum": INSIGHT_KINDS},
        "title": title,
        "body": body,
        "severity": {"type": "string", "enum": SEVERITIES},
        **({"candidate_ids": {"type": "array", "items": {"type": "string", "enum": candidate_ids}, "maxItems": 5},
            "evidence_queries": EVIDENCE, "memory_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 5}}
           if not embedded else {}),  # the embedded model writes about the one candidate it is shown
    }, ["kind", "title", "body", "severity"] + (["candidate_ids"] if not embedded else []))
    if embedded:
        return [write]
    return [
        function_tool("run_sql", "Run one read-only SELECT on the warehouse (tables: metric_values, metrics, candidates, "
                         "memory, quality_results, batches, and the models); at most 200 rows.",
              {"sql": {"type": "string"}}, ["sql"]),
        function_tool("describe_metric", "A metric's definition and its last 14 days overall.",
              {"metric": {"type": "string"}}, ["metric"]),
        function_tool("search_memory", "Search what reverie already knows (insights from earlier cycles).",
              {"query": {"type": "string"}, "metric": {"type": "string"}}, ["query"]),
        write,
        function_tool("update_insight", "Replace an insight in memory with a corrected one (it is kept, superseded). "
                                + REFERENCES, {
            "memory_id": {"type": "string"}, "title": {"type": "string", "maxLength": 120},
            "body": {"type": "string", "maxLength": 500}, "evidence_queries": EVIDENCE},
            ["memory_id", "title", "body"]),
        function_tool("retract_insight", "Withdraw an insight in memory that the data no longer supports. The reason "
                      "names the metric; any number in it comes from evidence_queries.",
              {"memory_id": {"type": "string"}, "reason": {"type": "string", "maxLength": 300},
               "evidence_queries": {"type": "array", "items": {"type": "string"}}},
              ["memory_id", "reason"]),
        function_tool("finish", "End the investigation.", {"summary": {"type": "string"}}, ["summary"]),
    ]
