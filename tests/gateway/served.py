"""A real `llmswitch serve` process for tests: started on 127.0.0.1 with `--port 0`, its port
read from the line it prints, stopped with SIGTERM (bounded waits everywhere)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

START_TIMEOUT = 90.0  # the machine is shared and busy: generous, but bounded
STOP_TIMEOUT = 60.0


@dataclass
class Served:
    """A running gateway process."""

    proc: asyncio.subprocess.Process
    port: int
    stderr: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Signal the process and wait for its exit status."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError("the gateway did not exit in time:\n" + self.log) from None

    @property
    def log(self) -> str:
        return "".join(self.stderr)


def write_config(path: Path, config: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def start(*args: str, env: dict[str, str] | None = None,
                cwd: str | None = None) -> Served:
    """`llmswitch serve --port 0 ARGS...`, once it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmswitch.cli.main", "serve", "--port", "0", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})}, cwd=cwd)
    assert proc.stderr is not None
    lines: list[str] = []
    port = await asyncio.wait_for(_port(proc.stderr, lines), START_TIMEOUT)
    if port is None:
        await proc.wait()
        raise AssertionError("the gateway did not start:\n" + "".join(lines))
    served = Served(proc, port, lines)
    asyncio.get_running_loop().create_task(_drain(proc.stderr, lines))
    return served


async def _port(stream: asyncio.StreamReader, lines: list[str]) -> int | None:
    while True:
        raw = await stream.readline()
        if not raw:
            return None
        line = raw.decode(errors="replace")
        lines.append(line)
        if "listening on http://" in line:
            return int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1])


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while raw := await stream.readline():
        lines.append(raw.decode(errors="replace"))


@contextlib.asynccontextmanager
async def serving(*args: str, env: dict[str, str] | None = None,
                  cwd: str | None = None) -> AsyncIterator[Served]:
    """A gateway for the length of a `with` block; stopped (SIGTERM) at its end."""
    served = await start(*args, env=env, cwd=cwd)
    try:
        yield served
    finally:
        if served.proc.returncode is None:
            await served.stop()


def access_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
