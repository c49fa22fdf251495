# Copied unchanged (below this header) from the shared gateway benchmark harness,
# shared/bench/gateway/mock_upstream.py: a mock OpenAI chat-completions server costing a few
# microseconds per request, used by benchmarks/engine.py. Not part of the package.
# ruff: noqa
#!/usr/bin/env python3
"""Cheap mock of the OpenAI chat-completions API, for gateway benchmarks.

One process, one event loop (uvloop if importable), a hand-written HTTP/1.1
parser (keep-alive, pipelining-safe, Content-Length bodies only) and
pre-rendered response bytes, so the mock costs a few microseconds a request.

  POST /v1/chat/completions (or /chat/completions)
    body without "stream": true -> one JSON chat.completion with a usage block
    body with    "stream": true -> text/event-stream, chunked: a role chunk,
                                   N content chunks, a finish chunk, a usage
                                   chunk if "include_usage" is in the body,
                                   then `data: [DONE]`
  GET  /v1/models, GET /health  -> small JSON

Each --listen PORT[:TTFT_MS[:CHUNK_MS]] opens a port with its own emulated
model delay: TTFT_MS before the response (or before the first SSE event) and
CHUNK_MS between SSE events (event i is due at TTFT + i*CHUNK after the request,
an absolute schedule, so timer lag does not accumulate).  Example:
  mock_upstream.py --listen 18001:0 --listen 18002:50:5
"""
import argparse
import asyncio
import json
import re
import signal
import sys

STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
MODEL_RE = re.compile(rb'"model"\s*:\s*"([^"]{1,100})"')

CONTENT = (
    "Sure! Here is a short answer to your question. A gateway forwards the "
    "request to the upstream model, waits for the completion and returns it "
    "unchanged, adding as little latency as it can."
)


def words(text):
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


TOKENS = words(CONTENT)  # ~38 "tokens"
PROMPT_TOKENS = 25
CREATED = 1735689600


def render_json(model):
    body = {
        "id": "chatcmpl-mock0123456789abcdef",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": CONTENT, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": len(TOKENS),
            "total_tokens": PROMPT_TOKENS + len(TOKENS),
        },
    }
    b = json.dumps(body, separators=(",", ":")).encode()
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(b)).encode() + b"\r\n\r\n" + b)


def sse_chunk(obj):
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n" % len(data) + data + b"\r\n"


def render_stream(model):
    base = {"id": "chatcmpl-mock0123456789abcdef", "object": "chat.completion.chunk",
            "created": CREATED, "model": model, "system_fingerprint": "fp_mock"}
    ev = [sse_chunk(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "logprobs": None, "finish_reason": None}]))]
    for t in TOKENS:
        ev.append(sse_chunk(dict(base, choices=[{"index": 0, "delta": {"content": t},
                                                 "logprobs": None, "finish_reason": None}])))
    ev.append(sse_chunk(dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None,
                                             "finish_reason": "stop"}])))
    usage = sse_chunk(dict(base, choices=[], usage={
        "prompt_tokens": PROMPT_TOKENS, "completion_tokens": len(TOKENS),
        "total_tokens": PROMPT_TOKENS + len(TOKENS)}))
    done = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
    return head, ev, usage, done


_json_cache, _stream_cache = {}, {}


def json_resp(model):
    r = _json_cache.get(model)
    if r is None:
        if len(_json_cache) > 64:
            _json_cache.clear()
        r = _json_cache[model] = render_json(model.decode("utf-8", "replace"))
    return r


def stream_resp(model):
    r = _stream_cache.get(model)
    if r is None:
        if len(_stream_cache) > 64:
            _stream_cache.clear()
        r = _stream_cache[model] = render_stream(model.decode("utf-8", "replace"))
    return r


SMALL = {
    b"/v1/models": b'{"object":"list","data":[{"id":"mock","object":"model","owned_by":"mock"}]}',
    b"/health": b'{"status":"ok"}',
}
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"error\":\"not found\"}"
STATS = {"requests": 0, "stream": 0}


class Proto(asyncio.Protocol):
    __slots__ = ("t", "buf", "ttft", "chunk", "loop", "busy", "closed")

    def __init__(self, ttft, chunk):
        self.ttft, self.chunk = ttft, chunk
        self.buf = b""
        self.busy = False     # a delayed response is pending: hold later pipelined requests
        self.closed = False

    def connection_made(self, t):
        self.t = t
        self.loop = asyncio.get_running_loop()

    def connection_lost(self, exc):
        self.closed = True

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.process()

    def process(self):
        while not self.busy:
            buf = self.buf
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                if len(buf) > 65536:
                    self.t.close()
                return
            head = buf[:i]
            hl = head.lower()
            clen = 0
            j = hl.find(b"\ncontent-length:")
            if j >= 0:
                k = hl.find(b"\r\n", j + 1)
                clen = int(hl[j + 16:k if k >= 0 else len(hl)].strip())
            elif b"\ntransfer-encoding:" in hl:
                self.t.close()  # chunked request bodies are not supported
                return
            end = i + 4 + clen
            if len(buf) < end:
                return
            body = buf[i + 4:end]
            self.buf = buf[end:]
            line = head[:head.find(b"\r\n")] if b"\r\n" in head else head
            parts = line.split(b" ")
            method, path = parts[0], parts[1] if len(parts) > 1 else b"/"
            path = path.split(b"?", 1)[0]
            self.handle(method, path, body)

    def handle(self, method, path, body):
        if method == b"POST" and (path == b"/v1/chat/completions" or path == b"/chat/completions"):
            STATS["requests"] += 1
            m = MODEL_RE.search(body)
            model = m.group(1) if m else b"mock"
            if STREAM_RE.search(body):
                STATS["stream"] += 1
                head, ev, usage, done = stream_resp(model)
                events = list(ev)
                if b"include_usage" in body:
                    events.append(usage)
                events.append(done)
                self.busy = True
                if self.ttft <= 0 and self.chunk <= 0:
                    self.t.write(head + b"".join(events))  # no model delay: one write
                    self._resume()
                else:
                    self.t.write(head)  # headers at once, like a real API; events after TTFT
                    # absolute schedule (t_first + i*chunk): timer lag does not add up over the
                    # stream, and a slow reader does not slow the "model" down
                    t_first = self.loop.time() + self.ttft
                    self.loop.call_at(t_first, self._stream_step, events, 0, t_first)
                return
            resp = json_resp(model)
            if self.ttft > 0:
                self.busy = True
                self.loop.call_later(self.ttft, self._send_later, resp)
            else:
                self.t.write(resp)
            return
        if method == b"GET" and path in SMALL:
            b = SMALL[path]
            self.t.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(b)).encode() + b"\r\n\r\n" + b)
            return
        self.t.write(NOT_FOUND)

    def _send_later(self, resp):
        if not self.closed:
            self.t.write(resp)
        self._resume()

    def _stream_step(self, events, idx, t_first):
        if self.closed:
            return
        if self.chunk <= 0:
            self.t.write(b"".join(events[idx:]))
            self._resume()
            return
        self.t.write(events[idx])
        idx += 1
        if idx >= len(events):
            self._resume()
        elif idx == len(events) - 1:
            self.t.write(events[idx])  # [DONE] right after the last event
            self._resume()
        else:
            self.loop.call_at(t_first + idx * self.chunk, self._stream_step, events, idx, t_first)

    def _resume(self):
        self.busy = False
        if self.buf and not self.closed:
            self.process()


async def main(args):
    loop = asyncio.get_running_loop()
    servers = []
    for spec in args.listen:
        p = spec.split(":")
        port = int(p[0])
        ttft = float(p[1]) / 1000 if len(p) > 1 else 0.0
        chunk = float(p[2]) / 1000 if len(p) > 2 else 0.0
        srv = await loop.create_server(lambda t=ttft, c=chunk: Proto(t, c), args.host, port,
                                       backlog=4096, reuse_address=True)
        servers.append(srv)
        print(f"mock_upstream listening on {args.host}:{port} ttft={ttft*1000:.0f}ms "
              f"chunk={chunk*1000:.0f}ms", flush=True)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    if args.max_seconds:
        loop.call_later(args.max_seconds, stop.set)  # bounded life even if orphaned
    await stop.wait()
    for s in servers:
        s.close()
    print(f"mock_upstream stats {STATS}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--listen", action="append", default=[], help="PORT[:TTFT_MS[:CHUNK_MS]]")
    ap.add_argument("--max-seconds", type=float, default=4 * 3600)
    ap.add_argument("--no-uvloop", action="store_true")
    a = ap.parse_args()
    if not a.listen:
        a.listen = ["18001:0"]
    runner = asyncio.run
    if not a.no_uvloop:
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            print("uvloop not available, using asyncio", file=sys.stderr)
    runner(main(a))
