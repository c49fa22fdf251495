"""`POST /v1/chat/completions`: OpenAI's Chat Completions request in, its answer out.

Supported: messages with text and image parts (system, developer, user, assistant with tool
calls, tool results), `temperature`, `top_p`, `max_tokens` / `max_completion_tokens`, `stop`,
`seed`, `tools` + `tool_choice`, `response_format` (`text`, `json_object`, `json_schema`),
`n: 1`, `user`, `metadata`, `stream` with `stream_options.include_usage`. Other OpenAI fields
(penalties, `logit_bias`, `parallel_tool_calls`, `store`, ...) are accepted and ignored.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llmswitch import (
    Completion,
    ImagePart,
    Message,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmswitch.gateway.protocols.common import (
    Call,
    bad,
    boolean,
    dumps,
    number,
    positive_int,
    require_model,
    require_object,
    sse,
    stop_sequences,
    string_map,
)
from llmswitch.gateway.protocols.errors import error_body

DONE = b"data: [DONE]\n\n"
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool"}


def parse(raw: Any) -> Call:
    """Translate a Chat Completions request; a bad field is a 400 naming it."""
    body = require_object(raw)
    model = require_model(body)
    settings: dict[str, Any] = {}
    number(body, "temperature", 0, 2, settings)
    number(body, "top_p", 0, 1, settings)
    positive_int(body, "max_completion_tokens", settings, "max_tokens")
    if "max_tokens" not in settings:
        positive_int(body, "max_tokens", settings)
    stop = stop_sequences(body.get("stop"), "stop")
    if stop:
        settings["stop"] = stop
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise bad(f"seed must be an integer, not {seed!r}", "seed")
        settings["seed"] = seed
    n = body.get("n")
    if n is not None and n != 1:
        raise bad("only n=1 is supported (send several requests for several answers)", "n")
    _tools(body, settings)
    fmt = body.get("response_format")
    if fmt is not None:
        settings["response_format"] = _response_format(fmt)
    stream = boolean(body, "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("stream_options must be an object", "stream_options")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise bad("user must be a string", "user")
    return Call("openai", model, messages(body.get("messages")), settings, stream,
                bool(options.get("include_usage")) and stream,
                string_map(body.get("metadata"), "metadata"), user)


def messages(value: Any) -> list[Message]:
    """The conversation; each message is checked where it is."""
    if not isinstance(value, list) or not value:
        raise bad("messages must be a non-empty list", "messages")
    out = []
    for i, item in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise bad(f"{where} must be an object", where)
        role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise bad(f"{where}.role must be system, developer, user, assistant or tool, not "
                      f"{item.get('role')!r}", f"{where}.role")
        out.append(_message(item, role, where))
    return out


def _message(item: dict[str, Any], role: str, where: str) -> Message:
    content = item.get("content")
    parts: list[TextPart | ImagePart] = []
    if isinstance(content, str):
        parts.append(TextPart(content))
    elif isinstance(content, list):
        parts.extend(_part(part, f"{where}.content[{j}]") for j, part in enumerate(content))
    elif content is not None:
        raise bad(f"{where}.content must be a string, a list of parts or null",
                  f"{where}.content")
    if role == "tool":
        call_id = item.get("tool_call_id")
        if not isinstance(call_id, str):
            raise bad(f"{where}.tool_call_id is required for a tool message",
                      f"{where}.tool_call_id")
        return Message("tool", tuple(parts), tool_call_id=call_id, name=item.get("name"))
    calls = _tool_calls(item.get("tool_calls"), where) if role == "assistant" else ()
    name = item.get("name")
    return Message(role, tuple(parts), calls,  # type: ignore[arg-type]
                   name=name if isinstance(name, str) else None)


def _part(part: Any, where: str) -> TextPart | ImagePart:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return TextPart(part["text"])
    if kind == "image_url":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if isinstance(url, str) and url:
            return ImagePart(url=url)
        raise bad(f"{where}.image_url.url must be a URL or a data: URL", f"{where}.image_url")
    raise bad(f"{where}: unsupported content part {kind!r} (text and image_url are)", where)


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad(f"{where}.tool_calls must be a list", f"{where}.tool_calls")
    out = []
    for k, call in enumerate(value):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad(f"{where}.tool_calls[{k}] must be {{id, type: function, function: "
                      "{name, arguments}}", f"{where}.tool_calls[{k}]")
        args = fn.get("arguments", "{}")
        out.append(ToolCall(str(call.get("id", "")), fn["name"],
                            args if isinstance(args, str) else json.dumps(args)))
    return tuple(out)


def _tools(body: dict[str, Any], settings: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools must be a list", "tools")
        specs = [_tool_spec(tool, i) for i, tool in enumerate(tools)]
        if specs:
            settings["tools"] = specs
    choice = _tool_choice(body.get("tool_choice"))
    if choice is None:
        return
    if choice not in ("auto", "none", "required") and choice not in {
            t["name"] for t in settings.get("tools", ())}:
        raise bad(f"tool_choice names {choice!r}, which is not in tools", "tool_choice")
    if settings.get("tools") or choice == "none":
        settings["tool_choice"] = choice


def _tool_spec(tool: Any, i: int) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or (
            not isinstance(fn, dict) or not isinstance(fn.get("name"), str)):
        raise bad(f"tools[{i}] must be {{type: function, function: {{name, ...}}}}",
                  f"tools[{i}]")
    params = fn.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise bad(f"tools[{i}].function.parameters must be a JSON Schema object",
                  f"tools[{i}].function.parameters")
    return fn


def _tool_choice(choice: Any) -> str | None:
    if isinstance(choice, dict):
        fn = choice.get("function")
        choice = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(choice, str):
            raise bad("tool_choice must be auto, none, required or "
                      "{type: function, function: {name}}", "tool_choice")
    if choice is not None and not isinstance(choice, str):
        raise bad("tool_choice must be a string or an object", "tool_choice")
    return choice


def _response_format(fmt: Any) -> Any:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return "text"
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        inner = fmt.get("json_schema")
        if not isinstance(inner, dict) or not isinstance(inner.get("schema"), dict):
            raise bad("response_format.json_schema.schema must be a JSON Schema object",
                      "response_format.json_schema.schema")
        return {"type": "json_schema", "json_schema": inner}
    raise bad("response_format.type must be text, json_object or json_schema",
              "response_format.type")


def usage_object(usage: Usage) -> dict[str, Any]:
    """Chat Completions' `usage`."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def render(completion: Completion, call: Call, created: int | None = None) -> dict[str, Any]:
    """The `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": completion.text or (
        None if completion.tool_calls else ""), "refusal": completion.refusal}
    if completion.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls]
    return {
        "id": f"chatcmpl-{completion.trace_id}",
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": completion.model or call.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": completion.finish_reason}],
        "usage": usage_object(completion.usage),
        "system_fingerprint": None,
    }


class ChatStream:
    """Renders a `Switch.stream` as Chat Completions chunks (server-sent events).

    Each chunk's fixed part is encoded once; only the delta is encoded per event.
    """

    def __init__(self, call: Call, trace_id: str, created: int | None = None) -> None:
        self.call = call
        head = dumps({"id": f"chatcmpl-{trace_id}", "object": "chat.completion.chunk",
                      "created": created or int(time.time()), "model": call.model})
        self._head = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._usage_head = b"data: " + head[:-1] + b',"choices":[],"usage":'
        self._started = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        tail = b',"logprobs":null,"finish_reason":' + (
            b'"' + finish.encode() + b'"' if finish else b"null") + b"}]}\n\n"
        return self._head + dumps(delta) + tail

    def start(self) -> bytes:
        """The first chunk: the assistant role."""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, event: StreamEvent) -> bytes:
        """The bytes for one stream event (empty when it has no wire form)."""
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text}) if event.text else b""
        if isinstance(event, ToolCallDelta):
            call: dict[str, Any] = {"index": event.index}
            if event.id is not None:
                call["id"] = event.id
                call["type"] = "function"
            function: dict[str, Any] = {"arguments": event.arguments}
            if event.name is not None:
                function["name"] = event.name
            call["function"] = function
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, StreamEnd):
            return self.end(event.completion)
        return b""

    def end(self, completion: Completion) -> bytes:
        """The finish chunk, the usage chunk when asked for, and `[DONE]`."""
        out = self._chunk({}, completion.finish_reason)
        if self.call.include_usage:
            out += self._usage_head + dumps(usage_object(completion.usage)) + b"}\n\n"
        return out + DONE

    def error(self, kind: str, message: str) -> bytes:
        """An error after the stream began: an error event and no `[DONE]` (the OpenAI SDK
        raises `APIError` on it), so a cut answer is never taken for a whole one."""
        return sse(dumps(error_body(kind, message, "openai")))


def tool_arguments(text: str) -> Any:
    """Tool-call arguments as a JSON value (for APIs that send objects)."""
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return {"arguments": text}
