"""Load `llmswitch.yaml`: find the file, expand `${ENV}`, validate, explain errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmswitch.config.schema import Config
from llmswitch.errors import ConfigError

CONFIG_ENV = "LLMSWITCH_CONFIG"
DEFAULT_FILE = "llmswitch.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def find_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: the argument, else `$LLMSWITCH_CONFIG`, else `./llmswitch.yaml`."""
    if path is not None:
        return Path(path)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read and validate a config file; with no file anywhere, the built-in defaults."""
    found = find_config(path)
    if found is None:
        return Config()
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {found} does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"config path {found} is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{found}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {found}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{found}: nested too deeply to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{found}: not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    return config_from_dict(data, source=str(found), env=env)


def config_from_dict(
    data: Any, source: str = "<config>", env: Mapping[str, str] | None = None
) -> Config:
    """Validate a config given as a dict, expanding `${VAR}` and `${VAR:-default}`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    _check_size(data, source)
    expanded = expand_env(dict(data), os.environ if env is None else env, source, ())
    expanded["source"] = source
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(explain(exc, source)) from None
    check_entries(config)
    return config


MAX_NODES = 200_000
"""Most values (strings, numbers, lists, mappings) a configuration may hold once YAML aliases
are expanded: `&a [*b, *b, …]` chains grow exponentially (a 1 KB file held 43 million)."""
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings in a configuration."""


def _check_size(data: Any, source: str) -> None:
    """`ConfigError` for a configuration too large or too deep to expand (walked without
    recursion and without expanding anything, so the check itself is bounded)."""
    todo: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while todo:
        value, depth = todo.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(f"{source}: more than {MAX_NODES:,} values once YAML aliases "
                              "are expanded", hint="is an anchor (&name) repeated in a loop?")
        if isinstance(value, Mapping | list):
            if depth >= MAX_DEPTH:
                raise ConfigError(f"{source}: nested more than {MAX_DEPTH} levels deep")
            items = value.values() if isinstance(value, Mapping) else value
            todo.extend((item, depth + 1) for item in items)


def expand_env(value: Any, env: Mapping[str, str], source: str, where: tuple[str, ...]) -> Any:
    """Replace `${VAR}` in every string; an unset variable without default is an error."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            key = ".".join(where) or "(top level)"
            raise ConfigError(
                f"{source}: {key}: environment variable {name} is not set",
                hint=f"export {name}=... or write ${{{name}:-default}}",
            )
        return _ENV_REF.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, env, source, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, source, (*where, str(i))) for i, v in enumerate(value)]
    return value


def explain(exc: ValidationError, source: str) -> str:
    """One line per problem: `file: key.path: what is wrong`."""
    lines = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {loc}: {msg}")
    more = len(exc.errors()) - 5
    if more > 0:
        lines.append(f"… and {more} more")
    return "; ".join(lines)


def check_settings(settings: Mapping[str, Any], where: str) -> None:
    """`ConfigError` naming `where` unless `settings` are valid call settings."""
    from llmswitch.request import Settings, coerce_settings

    try:
        Settings(**coerce_settings(settings))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_entries(config: Config) -> None:
    """Checks pydantic cannot express: unknown model-entry keys, alias settings (names,
    ranges, schemas), names that clash."""
    for name, entry in config.models.items():
        if entry.settings:
            check_settings(entry.settings, f"{config.source}: models.{name}.settings")
        bad = entry.unknown_fields()
        if bad:
            raise ConfigError(
                f"{config.source}: models.{name}: unknown key(s) {', '.join(bad)}",
                hint="allowed: model, provider, name, path, settings, system and catalog fields",
            )
        if entry.model is not None and entry.card_fields():
            raise ConfigError(
                f"{config.source}: models.{name}: an alias cannot set catalog fields "
                f"({', '.join(sorted(entry.card_fields()))})",
                hint=f"put them on the target's own entry: models.{entry.model}",
            )
        if entry.model is not None and entry.provider is not None:
            raise ConfigError(
                f"{config.source}: models.{name}: give either 'model' (an alias) or "
                "'provider' (a new model), not both"
            )
    _check_alias_cycles(config)
    clash = set(config.models) & set(config.routes)
    if clash:
        raise ConfigError(
            f"{config.source}: {', '.join(sorted(clash))} is both a model and a route name"
        )


def _check_alias_cycles(config: Config) -> None:
    """An alias that leads back to itself through other aliases is refused at load (it failed
    only when called, and only under some of its names)."""
    for start, entry in config.models.items():
        chain, name = [start], entry.model
        while name is not None and name in config.models and name not in chain:
            chain.append(name)
            name = config.models[name].model
        if name == start:
            hint = (f"to give {start} default settings, write models.{start}: {{settings: "
                    "...} without 'model'" if len(chain) == 1 else
                    "point one of them at a model or a route")
            raise ConfigError(f"{config.source}: models.{start}: aliases form a cycle: "
                              f"{' -> '.join([*chain, start])}", hint=hint)
