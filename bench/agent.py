"""An outside agent, as the benchmarks and tests run one: a model behind the `openai` client, a set of tools and a
question; it calls tools until it answers in words (or its turns run out). The same loop runs with reverie's MCP
tools (through the SDK's client) and with read-only SQL on the warehouse (reverie's sandbox), so what differs
between the two is the tools."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

SYSTEM = ("You answer a data team's business questions with the tools you are given. Call the tools you need, then "
          "reply in one or two sentences with the answer, numbers exactly as the tools gave them. If the tools "
          "cannot answer the question, say so.")
MAX_TURNS = 6

Call = Callable[[str, dict], Awaitable[str]]


@dataclass
class AgentRun:
    """One question's run: the answer, each tool called (name, arguments, its result), tokens and time."""
    answer: str = ""
    calls: list[dict] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


async def run_agent(llm, model: str, question: str, tools: list[dict], call: Call, instructions: str = "",
                    max_turns: int = MAX_TURNS, max_tokens: int | None = None, first: str | None = None) -> AgentRun:
    """Ask `question` of the model with `tools` (OpenAI function schemas); `call` runs one and returns its text.
    `first` names a tool the first turn must call (a small model left to choose calls none); the last turn may call
    none, so the run ends with words."""
    started, run = time.monotonic(), AgentRun()
    messages: list[dict] = [{"role": "system", "content": "\n\n".join(filter(None, [SYSTEM, instructions]))},
                            {"role": "user", "content": question}]
    for turn in range(max_turns):
        choice = ({"type": "function", "function": {"name": first}} if first and turn == 0 else
                  "none" if turn == max_turns - 1 else "auto")
        reply = await llm.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice=choice,
                                                  **({"max_tokens": max_tokens} if max_tokens else {}))
        if reply.usage:
            run.prompt_tokens += reply.usage.prompt_tokens
            run.completion_tokens += reply.usage.completion_tokens
        message = reply.choices[0].message
        if not message.tool_calls:
            run.answer = (message.content or "").strip()
            break
        # llama.cpp's server takes no null content from the assistant
        messages.append({"role": "assistant", "content": message.content or "", "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls]})
        for c in message.tool_calls:
            try:
                args = json.loads(c.function.arguments or "{}")
                text = await call(c.function.name, args if isinstance(args, dict) else {})
            except ValueError as exc:
                text = f"error: arguments are not valid JSON ({exc})"
            run.calls.append({"tool": c.function.name, "arguments": c.function.arguments, "result": text})
            messages.append({"role": "tool", "tool_call_id": c.id, "content": text})
    run.seconds = round(time.monotonic() - started, 3)
    return run


def mcp_tools(listed) -> list[dict]:
    """An MCP server's tools (`list_tools()`'s result) as OpenAI function schemas."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description or "",
                                              "parameters": t.input_schema}} for t in listed.tools]


def mcp_call(client) -> Call:
    """A tool call through an MCP client session; a failed call's text goes back to the model as it is."""
    async def call(name: str, args: dict) -> str:
        result = await client.call_tool(name, args)
        return "\n".join(getattr(c, "text", "") for c in result.content)

    return call
