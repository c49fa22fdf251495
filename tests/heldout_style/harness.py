"""A replay harness in the style of the held-out evaluation: a loopback server that answers with
a recorded response, and `llmswitch chat PROVIDER/MODEL PROMPT --json [--stream]` run against it
(in-process through click's runner for the bulk, or as a real subprocess).

The server can deliver the body in small delayed chunks, with or without `content-length`
(chunked transfer encoding), rewrite SSE line ends to CRLF, and answer 404 when the request's
method and path differ from the recording (a path-matching harness).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from click.testing import CliRunner

from tests.support.fixtures import ROOT, body_bytes

Json = dict[str, Any]

# The base URL a harness would set, as a suffix of the server's root: the path part of each
# provider's public base URL (OpenAI's and OpenRouter's include a version prefix).
BASE_SUFFIX = {"openai": "/v1", "openrouter": "/api/v1"}

# Variables that carry a key, per provider (set to a dummy value in the "with key" runs).
KEY_ENV: dict[str, dict[str, str]] = {
    "openai": {"OPENAI_API_KEY": "sk-dummy"},
    "azure": {"AZURE_OPENAI_API_KEY": "dummy"},
    "deepseek": {"DEEPSEEK_API_KEY": "sk-dummy"},
    "openrouter": {"OPENROUTER_API_KEY": "sk-or-dummy"},
    "ollama": {"OLLAMA_API_KEY": "dummy"},
    "anthropic": {"ANTHROPIC_API_KEY": "sk-ant-dummy"},
    "gemini": {"GEMINI_API_KEY": "dummy"},
    "bedrock": {"AWS_ACCESS_KEY_ID": "AKIDDUMMY", "AWS_SECRET_ACCESS_KEY": "dummy"},
}


def all_fixtures() -> list[str]:
    """`provider/stem` of every fixture file."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in ROOT.glob("*/*.json"))


def load(name: str) -> Json:
    """A fixture by `provider/stem`."""
    data: Json = json.loads((ROOT / f"{name}.json").read_text(encoding="utf-8"))
    return data


def model_of(fixture: Json) -> str:
    """The wire model name from the recorded request (body `model`, else the path)."""
    request = fixture.get("request")
    if request is None:  # a documentation example without its request
        return str(json.loads(body_bytes(fixture).splitlines()[0])["model"])
    path = unquote(request["path"])
    for pattern in (r"/models/([^/:]+):", r"/model/([^/]+)/", r"/openai/deployments/([^/]+)/"):
        found = re.search(pattern, path)
        if found:
            return found.group(1)
    return str((request.get("body_json") or {})["model"])


def request_streams(fixture: Json) -> bool:
    """Whether the recorded *request* asked for a stream (even if it was refused)."""
    request = fixture.get("request")
    if request is None:
        return bool(fixture["stream"])
    path = request["path"]
    if "streamGenerateContent" in path or path.endswith("/converse-stream"):
        return True
    body = request.get("body_json") or {}
    if fixture["api"].startswith("ollama.api_"):
        return body.get("stream", True) is not False
    return body.get("stream") is True


@dataclass
class Delivery:
    """How the server sends the recorded response."""

    chunk_size: int | None = None
    delay: float = 0.0
    chunked: bool = False
    """Transfer-Encoding: chunked, no content-length."""
    close_delimited: bool = False
    """No content-length and no chunking: the body ends when the server closes (HTTP/1.0 style)."""
    crlf: bool = False
    """Rewrite LF line ends to CRLF (text bodies only)."""
    strict_path: bool = False
    """404 unless method and path equal the recording's."""
    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: bytes | None = None


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """The running server and what it saw."""

    url: str
    seen: list[Seen] = field(default_factory=list)


def _response_parts(fixture: Json, how: Delivery) -> tuple[int, dict[str, str], bytes]:
    response = fixture["response"]
    status = how.status or int(response["status"])
    headers = dict(how.headers if how.headers is not None else response["headers"])
    body = how.body if how.body is not None else body_bytes(fixture)
    if how.crlf and response.get("body_encoding") != "base64":
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return status, headers, body


class _HTTPServer(ThreadingHTTPServer):
    """Carries the response to send and the requests seen."""

    daemon_threads = True

    def __init__(self, fixture: Json, how: Delivery) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.how = how
        self.reply = _response_parts(fixture, how)
        self.recorded = fixture.get("request") or {}
        host, port = self.server_address[:2]
        self.state = Server(f"http://{host!s}:{port}")

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is the recorded one (decoded path)."""
        want = (self.recorded.get("method"), unquote(self.recorded.get("path", "")))
        return (method, unquote(path)) == want


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""
        out = b""
        while size := int(self.rfile.readline().strip() or b"0", 16):
            out += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return out

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        self.server.state.seen.append(Seen(
            self.command, parts.path, dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()}, self._read_body()))
        if self.server.how.strict_path and not self.server.matches(self.command, parts.path):
            self._send(404, {"content-type": "text/plain"}, b"no recording for this path")
            return
        self._send(*self.server.reply)

    def _send(self, code: int, headers: Mapping[str, str], data: bytes) -> None:
        how = self.server.how
        self.send_response(code)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(k, v)
        if how.chunked:
            self.send_header("transfer-encoding", "chunked")
        elif how.close_delimited:
            self.send_header("connection", "close")
            self.close_connection = True
        else:
            self.send_header("content-length", str(len(data)))
        self.end_headers()
        size = how.chunk_size or len(data) or 1
        try:
            for i in range(0, len(data), size):
                piece = data[i : i + size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if how.chunked else piece)
                self.wfile.flush()
                if how.delay:
                    time.sleep(how.delay)
            if how.chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


@contextmanager
def serve(fixture: Json, how: Delivery | None = None) -> Iterator[Server]:
    """Serve `fixture`'s recorded response on 127.0.0.1 for every request."""
    httpd = _HTTPServer(fixture, how or Delivery())
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()


def base_env(fixture: Json, server: Server, with_key: bool, suffix: str | None = None) -> dict[
        str, str]:
    """The environment a harness would set: the base URL, and optionally a dummy key."""
    provider = str(fixture["provider"])
    suffix = BASE_SUFFIX.get(provider, "") if suffix is None else suffix
    env = {f"LLMSWITCH_{provider.upper()}_BASE_URL": server.url + suffix}
    if with_key:
        env.update(KEY_ENV[provider])
    return env


def cli_args(fixture: Json, stream: bool) -> list[str]:
    """`chat PROVIDER/MODEL PROMPT --json [--stream]`."""
    args = ["chat", f"{fixture['provider']}/{model_of(fixture)}", "Hello", "--json"]
    return [*args, "--stream"] if stream else args


@dataclass
class Outcome:
    """Exit code and the one JSON object printed."""

    code: int
    data: Json
    output: str


def _outcome(code: int, stdout: str, stderr: str) -> Outcome:
    lines = [line for line in stdout.splitlines() if line.strip().startswith("{")]
    data = json.loads(lines[-1]) if lines else {}
    return Outcome(code, data, stdout + stderr)


def run_inprocess(args: list[str], env: Mapping[str, str]) -> Outcome:
    """Run the CLI in this process (os.environ is patched for the call only)."""
    from llmswitch.cli.main import cli

    result = CliRunner().invoke(cli, args, env=dict(env), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return _outcome(result.exit_code, result.stdout, result.stderr)


def run_subprocess(args: list[str], env: Mapping[str, str], home: Path) -> Outcome:
    """Run `python -m llmswitch.cli.main` as a user's shell would (no inherited keys)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(
        ("LLMSWITCH_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_API", "AZURE_OPENAI",
         "DEEPSEEK_", "OPENROUTER_", "OLLAMA_", "AWS_"))}
    full = {**clean, "LLMSWITCH_HOME": str(home), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", *args], capture_output=True, text=True,
        env=full, cwd=home, timeout=60, check=False,
    )
    return _outcome(proc.returncode, proc.stdout, proc.stderr)
