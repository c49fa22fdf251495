"""The gateway's pure translation layer, checked with the official SDKs as clients.

Each test puts an `httpx.MockTransport` under the real `openai` / `anthropic` SDK: the handler
parses the SDK's request with our `parse`, answers with a scripted completion rendered by our
`render` / stream renderer, and the SDK must read it as it reads the real API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from llmswitch import (
    Completion,
    OverloadedError,
    RateLimitedError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llmswitch.gateway.protocols import anthropic_messages, errors, openai_chat, openai_responses
from llmswitch.gateway.protocols.common import Call
from llmswitch.gateway.protocols.errors import GatewayError

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

TRACE = "0123456789abcdef0123456789abcdef"
USAGE = Usage(input_tokens=12, output_tokens=5, cached_input_tokens=2, reasoning_tokens=1)


def answer(text: str = "Paris.", tool_calls: Sequence[ToolCall] = (),
           finish: str = "stop") -> Completion:
    return Completion(text, finish, USAGE, 0.001, "openai", "gpt-4o-mini",  # type: ignore[arg-type]
                      tuple(tool_calls), trace_id=TRACE)


def stream_of(completion: Completion) -> list[StreamEvent]:
    events: list[StreamEvent] = [TextDelta(w) for w in completion.text.split(" ")]
    if len(events) > 1:
        events = [TextDelta(e.text + " ") for e in events[:-1]] + [events[-1]]  # type: ignore[union-attr]
    for i, call in enumerate(completion.tool_calls):
        events.append(ToolCallDelta(i, call.id, call.name, ""))
        events.append(ToolCallDelta(i, None, None, call.arguments))
    return [*events, StreamEnd(completion)]


Seen = list[Call]


def handler(module: Any, renderer: Any, completion: Completion, seen: Seen,
            fail_after: int | None = None, error: BaseException | None = None,
            http: Any = httpx) -> Callable[[Any], Any]:
    api = {"openai_chat": "openai", "anthropic_messages": "anthropic",
           "openai_responses": "responses"}[module.__name__.rsplit(".", 1)[1]]

    def handle(request: Any) -> Any:
        try:
            call = module.parse(json.loads(request.content))
        except GatewayError as exc:
            out = errors.render(exc, api)  # type: ignore[arg-type]
            return http.Response(out.status, json=out.body, headers=out.headers)
        seen.append(call)
        if error is not None and fail_after is None:
            out = errors.render(error, api)  # type: ignore[arg-type]
            return http.Response(out.status, json=out.body, headers=out.headers)
        if not call.stream:
            return http.Response(200, json=module.render(completion, call))
        stream = renderer(call, TRACE)
        body = stream.start()
        for i, event in enumerate(stream_of(completion)):
            if fail_after is not None and i == fail_after:
                body += stream.error("overloaded", "the upstream failed mid-stream")
                break
            body += stream.event(event)
        return http.Response(200, content=body, headers={"content-type": "text/event-stream"})
    return handle


def openai_client(handle: Callable[[httpx.Request], httpx.Response]) -> Any:
    return openai.OpenAI(api_key="sk-test", base_url="http://gw.test/v1", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(handle)))


def anthropic_client(module: Any, renderer: Any, completion: Completion, seen: Seen,
                     **kw: Any) -> Any:
    """The Anthropic SDK speaks through `httpx2`, so its mock transport comes from there."""
    httpx2 = pytest.importorskip("httpx2")
    handle = handler(module, renderer, completion, seen, http=httpx2, **kw)
    return anthropic.Anthropic(api_key="sk-test", base_url="http://gw.test", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(handle)))


TOOLS = [{"type": "function", "function": {
    "name": "weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def test_openai_chat_plain_answer_and_request_mapping() -> None:
    seen: Seen = []
    client = openai_client(handler(openai_chat, openai_chat.ChatStream, answer(), seen))
    out = client.chat.completions.create(
        model="cheap", messages=[{"role": "developer", "content": "be brief"},
                                 {"role": "user", "content": "Capital of France?"}],
        temperature=0.2, max_completion_tokens=50, stop=["\n\n"], seed=7, user="u1",
        metadata={"team": "search"})
    assert out.choices[0].message.content == "Paris."
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.prompt_tokens == 12 and out.usage.completion_tokens == 5
    assert out.usage.prompt_tokens_details.cached_tokens == 2
    assert out.id == f"chatcmpl-{TRACE}"
    call = seen[0]
    assert call.model == "cheap" and not call.stream
    assert [m.role for m in call.messages] == ["system", "user"]
    assert call.settings == {"temperature": 0.2, "max_tokens": 50, "stop": ("\n\n",),
                             "seed": 7}
    assert call.user == "u1" and call.metadata == {"team": "search"}


def test_openai_chat_tools_round_trip_and_tool_results() -> None:
    seen: Seen = []
    calls = [ToolCall("call_1", "weather", '{"city": "Paris"}')]
    client = openai_client(handler(openai_chat, openai_chat.ChatStream,
                                   answer("", calls, "tool_calls"), seen))
    out = client.chat.completions.create(model="m", messages=[
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_0", "type": "function",
             "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}],
        tools=TOOLS, tool_choice={"type": "function", "function": {"name": "weather"}})
    message = out.choices[0].message
    assert out.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].function.name == "weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    call = seen[0]
    assert call.settings["tool_choice"] == "weather"
    assert call.messages[1].tool_calls[0].arguments == '{"city": "Rome"}'
    assert call.messages[2].role == "tool" and call.messages[2].tool_call_id == "call_0"


def test_openai_chat_stream_with_usage_and_tool_calls() -> None:
    calls = [ToolCall("call_1", "weather", '{"city": "Paris"}')]
    client = openai_client(handler(openai_chat, openai_chat.ChatStream,
                                   answer("Let me check.", calls, "tool_calls"), []))
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}],
                                        stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Let me check."
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert final.usage is not None and final.usage.total_tokens == 17
    chunks = list(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"  # no usage chunk unasked


def test_openai_chat_stream_cut_after_first_byte_raises_in_the_sdk() -> None:
    client = openai_client(handler(openai_chat, openai_chat.ChatStream,
                                   answer("one two three four"), [], fail_after=2))
    got: list[str] = []
    with pytest.raises(openai.APIError, match="mid-stream"):
        for chunk in client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "one two "


def test_openai_chat_json_schema_and_bad_requests() -> None:
    seen: Seen = []
    client = openai_client(handler(openai_chat, openai_chat.ChatStream, answer('{"a": 1}'),
                                   seen))
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                   response_format={"type": "json_schema", "json_schema": {
                                       "name": "r", "schema": schema}})
    assert seen[0].settings["response_format"]["json_schema"]["schema"] == schema
    for kwargs, param in [({"temperature": 3}, "temperature"), ({"n": 2}, "n"),
                          ({"messages": []}, "messages"),
                          ({"messages": [{"role": "wizard", "content": "x"}]},
                           "messages[0].role"),
                          ({"tool_choice": "nope", "tools": TOOLS}, "tool_choice")]:
        base: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(**{**base, **kwargs})
        assert caught.value.body["param"] == param  # type: ignore[index]
        assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_anthropic_messages_answer_tools_and_request_mapping() -> None:
    seen: Seen = []
    calls = [ToolCall("toolu_1", "weather", '{"city": "Paris"}')]
    client = anthropic_client(anthropic_messages, anthropic_messages.MessageStream,
                              answer("Checking.", calls, "tool_calls"), seen)
    out = client.messages.create(
        model="cheap", max_tokens=100, system="be brief",
        messages=[{"role": "user", "content": "Weather?"},
                  {"role": "assistant", "content": [
                      {"type": "tool_use", "id": "toolu_0", "name": "weather",
                       "input": {"city": "Rome"}}]},
                  {"role": "user", "content": [
                      {"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"},
                      {"type": "text", "text": "and Paris?"}]}],
        tools=[{"name": "weather", "description": "w",
                "input_schema": TOOLS[0]["function"]["parameters"]}],  # type: ignore[index]
        tool_choice={"type": "any"}, stop_sequences=["END"])
    assert out.stop_reason == "tool_use"
    assert out.content[0].text == "Checking."
    assert out.content[1].input == {"city": "Paris"}
    assert out.usage.input_tokens == 10 and out.usage.cache_read_input_tokens == 2
    call = seen[0]
    assert [m.role for m in call.messages] == ["system", "user", "assistant", "tool", "user"]
    assert call.settings["tool_choice"] == "required" and call.settings["max_tokens"] == 100
    assert call.settings["stop"] == ("END",)


def test_anthropic_stream_event_sequence_in_the_sdk() -> None:
    calls = [ToolCall("toolu_1", "weather", '{"city": "Paris"}')]
    client = anthropic_client(anthropic_messages, anthropic_messages.MessageStream,
                              answer("Let me check.", calls, "tool_calls"), [])
    with client.messages.stream(model="m", max_tokens=50,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me check."
    assert final.stop_reason == "tool_use" and final.content[1].input == {"city": "Paris"}
    assert final.usage.output_tokens == 5


def test_anthropic_stream_cut_raises_and_max_tokens_is_required() -> None:
    client = anthropic_client(anthropic_messages, anthropic_messages.MessageStream,
                              answer("one two three"), [], fail_after=1)
    with (pytest.raises(anthropic.APIStatusError, match="mid-stream"),
          client.messages.stream(model="m", max_tokens=50,
                                 messages=[{"role": "user", "content": "hi"}]) as stream):
        stream.get_final_message()
    plain = httpx.Client(transport=httpx.MockTransport(
        handler(anthropic_messages, None, answer(), [])))
    raw = plain.post("http://gw.test/v1/messages", json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert raw.status_code == 400
    assert raw.json()["error"] == {"type": "invalid_request_error",
                                   "message": "max_tokens: field required"}


def test_responses_subset_plain_and_stream() -> None:
    seen: Seen = []
    client = openai_client(handler(openai_responses, openai_responses.ResponseStream,
                                   answer("Paris is the capital."), seen))
    out = client.responses.create(model="m", input="Capital of France?", instructions="brief",
                                  max_output_tokens=40)
    assert out.output_text == "Paris is the capital."
    assert out.usage.input_tokens == 12
    assert [m.role for m in seen[0].messages] == ["system", "user"]
    events = list(client.responses.create(model="m", input=[
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}], stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Paris is the capital."
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Paris is the capital."
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input="x", tools=[{"type": "web_search"}])


@pytest.mark.parametrize(("error", "status", "otype", "atype"), [
    (RateLimitedError("slow down", retry_after=2.5), 429, "rate_limit_error", "rate_limit_error"),
    (OverloadedError("busy"), 503, "server_error", "overloaded_error"),
    (GatewayError("budget_exceeded", "budget reached"), 402, "insufficient_quota",
     "billing_error"),
    (GatewayError("unauthenticated", "bad key"), 401, "authentication_error",
     "authentication_error"),
    (RuntimeError("boom"), 500, "server_error", "api_error"),
])
def test_one_error_table_for_both_apis(error: BaseException, status: int, otype: str,
                                       atype: str) -> None:
    o = errors.render(error, "openai")
    a = errors.render(error, "anthropic")
    assert o.status == a.status == status
    assert o.body["error"]["type"] == otype and a.body["error"]["type"] == atype
    assert "boom" not in json.dumps(o.body)  # internal errors never leak their text
    if status == 429:
        assert o.headers["retry-after"] == "3"
