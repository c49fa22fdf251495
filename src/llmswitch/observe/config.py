"""The `observe:` section of llmswitch.yaml, parsed and checked.

```yaml
observe:
  ledger: .llmswitch/ledger.sqlite     # a path, a postgresql:// URL, or false
  traces: true                         # keep each request's trace tree in the ledger database
  content: false                       # opt in to storing prompts and answers in traces
  otel: {endpoint: http://127.0.0.1:4318/v1/traces, service_name: llmswitch}
```

Where the ledger goes: `observe.ledger` (relative to the config file), else
`$LLMSWITCH_LEDGER` (the Switch's `env`, then the process environment), else
`.llmswitch/ledger.sqlite` beside the config file. A Switch built from a dict or from the
built-in defaults (no config file) uses `$LLMSWITCH_HOME/ledger.sqlite` (default
`~/.llmswitch/ledger.sqlite`). `false`/`off` (in either) turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.scrub import REDACTED, redact_url

LEDGER_ENV = "LLMSWITCH_LEDGER"
DEFAULT_LEDGER = ".llmswitch/ledger.sqlite"
OFF = frozenset({"", "off", "false", "no", "0", "none"})
KEYS = frozenset({"ledger", "traces", "content", "otel", "queue_size", "batch_size",
                  "flush_interval"})


@dataclass(frozen=True)
class OtelConfig:
    """Export traces through the OpenTelemetry SDK (extra `otel`)."""

    endpoint: str | None = None
    """OTLP/HTTP traces endpoint; needs `opentelemetry-exporter-otlp-proto-http`."""
    exporter: str = "otlp"
    """`otlp`, `console`, or `global` (the application's providers: the default)."""
    service_name: str = "llmswitch"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Sent to the exporter (often an API key): never in `repr`, dumps or errors."""


@dataclass(frozen=True)
class ObserveConfig:
    """What to record and where."""

    ledger: str | None = None
    traces: bool = True
    content: bool = False
    otel: OtelConfig | None = field(default_factory=lambda: OtelConfig(exporter="global"))
    """`None`: no OpenTelemetry export (`otel: false`)."""
    queue_size: int = 50_000
    batch_size: int = 500
    flush_interval: float = 0.5

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.ledger is not None:
            shown["ledger"] = redact_url(self.ledger)  # a DSN may hold a password
        return "ObserveConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def parse_observe(data: Mapping[str, Any], env: Mapping[str, str] | None = None,
                  source: str = "<config>") -> ObserveConfig:
    """Check the `observe` mapping; unknown keys and wrong types are ConfigErrors."""
    env = os.environ if env is None else env
    where = f"{source}: observe"
    unknown = set(data) - KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                          hint="known: " + ", ".join(sorted(KEYS)))
    return ObserveConfig(
        ledger=_ledger(data.get("ledger"), env, where, _config_dir(source)),
        traces=_flag(data, "traces", True, where),
        content=_flag(data, "content", False, where),
        otel=_otel(data.get("otel"), where),
        queue_size=_number(data, "queue_size", 50_000, where, int),
        batch_size=_number(data, "batch_size", 500, where, int),
        flush_interval=_number(data, "flush_interval", 0.5, where, float),
    )


HOME_ENV = "LLMSWITCH_HOME"


def home_dir(env: Mapping[str, str]) -> Path:
    """Where llmswitch keeps state without a config file: `$LLMSWITCH_HOME`, else ~/.llmswitch."""
    value = env.get(HOME_ENV, os.environ.get(HOME_ENV))
    return Path(value).expanduser() if value else Path.home() / ".llmswitch"


def _config_dir(source: str) -> Path | None:
    """The directory of the config file, or `None` for a dict or the built-in defaults."""
    if source.startswith("<"):
        return None
    return Path(source).expanduser().resolve().parent


def _ledger(value: Any, env: Mapping[str, str], where: str, base: Path | None) -> str | None:
    if value is False or (isinstance(value, str) and value.strip().lower() in OFF):
        return None
    if value is None or value is True:
        from_env = env.get(LEDGER_ENV, os.environ.get(LEDGER_ENV))
        if from_env is not None:
            return None if from_env.strip().lower() in OFF else _check_url(from_env, LEDGER_ENV)
        if base is None:
            return str(home_dir(env) / "ledger.sqlite")
        return str(base / DEFAULT_LEDGER)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.ledger: give a file path, a postgresql:// URL or false")
    if "://" in value or base is None or Path(value).expanduser().is_absolute():
        return _check_url(value, f"{where}.ledger")
    return str(base / value)


LEDGER_SCHEMES = ("postgresql://", "postgres://", "sqlite://")


def _check_url(value: str, where: str) -> str:
    if "://" in value and not value.startswith(LEDGER_SCHEMES):
        scheme = value.split("://", 1)[0]
        raise ConfigError(f"{where}: unsupported ledger URL scheme {scheme!r}",
                          hint="use a file path, sqlite:///PATH or postgresql://…")
    return value


def _flag(data: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: must be true or false, not {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, default: float, where: str,
            kind: type[int] | type[float]) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}.{key}: must be a positive number, not {value!r}")
    return kind(value)


def _otel(value: Any, where: str) -> OtelConfig | None:
    if value is None:
        return OtelConfig(exporter="global")
    if value is False:
        return None
    if value is True:
        return OtelConfig(exporter="console")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.otel: give a mapping with endpoint (or exporter: console)")
    unknown = set(value) - {"endpoint", "exporter", "service_name", "headers"}
    if unknown:
        raise ConfigError(f"{where}.otel: unknown key(s) {', '.join(sorted(unknown))}")
    exporter = str(value.get("exporter", "otlp"))
    if exporter not in ("otlp", "console", "global"):
        raise ConfigError(f"{where}.otel.exporter: 'otlp', 'console' or 'global', "
                          f"not {exporter!r}")
    if exporter == "otlp" and not value.get("endpoint"):
        raise ConfigError(f"{where}.otel: the otlp exporter needs an endpoint",
                          hint="e.g. endpoint: http://127.0.0.1:4318/v1/traces")
    return OtelConfig(value.get("endpoint"), exporter,
                      str(value.get("service_name", "llmswitch")),
                      dict(value.get("headers") or {}))


def public_observe(data: Mapping[str, Any]) -> dict[str, Any]:
    """The raw `observe` mapping fit to print or dump: OpenTelemetry exporter header values
    and a ledger DSN's password replaced by `[redacted]`."""
    out = dict(data)
    if isinstance(out.get("ledger"), str):
        out["ledger"] = redact_url(out["ledger"])
    otel = out.get("otel")
    if isinstance(otel, Mapping) and isinstance(otel.get("headers"), Mapping):
        out["otel"] = {**otel, "headers": {k: REDACTED for k in otel["headers"]}}
    return out
