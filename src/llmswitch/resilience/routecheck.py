"""Load-time checks of the route graph, without building any model: every string target names
a route, a configured model, `provider/model` of a known provider, or a catalog entry, and no
route reaches itself. Errors name the route."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from llmswitch.catalog.catalog import Catalog
from llmswitch.config.schema import Config
from llmswitch.errors import ConfigError


def _known(name: str, config: Config, catalog: Catalog, extra: Collection[str]) -> bool:
    if name in config.routes or name in config.models or name in extra:
        return True
    if "/" in name:
        from llmswitch.providers.specs import SPECS

        provider = name.split("/", 1)[0]
        if provider in SPECS or provider in config.providers:
            return True
    return catalog.lookup(name) is not None


def _names(targets: list[Any]) -> list[str | None]:
    """Target names: strings, or a mapping's `model` (other shapes are the strategy's)."""
    out: list[str | None] = []
    for t in targets:
        name = t.get("model") if isinstance(t, dict) else t
        out.append(name if isinstance(name, str) else None)
    return out


def _where(target: Any, i: int) -> str:
    """``targets.<key>`` for an entry of a `targets:` mapping, else ``targets[i]``."""
    if isinstance(target, dict) and isinstance(target.get("key"), str):
        return f"targets.{target['key']}"
    return f"targets[{i}]"


def check_routes(config: Config, catalog: Catalog, extra: Collection[str] = ()) -> None:
    """Raise ConfigError for an unknown target or a cycle of routes (`extra`: names of
    models given directly to the Switch)."""
    for route_name, route in config.routes.items():
        for i, target in enumerate(_names(route.targets)):
            if target is not None and not _known(target, config, catalog, extra):
                suggestions = catalog.suggest(target)
                hint = ("did you mean " + ", ".join(f'"{s}"' for s in suggestions) + "?"
                        if suggestions else "run `llmswitch models` to list known models")
                raise ConfigError(f"{config.source}: routes.{route_name}: "
                                  f"{_where(route.targets[i], i)}: "
                                  f'unknown model "{target}"', hint=hint)
    done: set[str] = set()
    for start in config.routes:
        _visit(start, [], done, config)


def _visit(name: str, path: list[str], done: set[str], config: Config) -> None:
    if name in path:
        cycle = " -> ".join([*path[path.index(name):], name])
        raise ConfigError(f"{config.source}: routes.{name}: routes form a cycle: {cycle}",
                          hint="a route may not reach itself through its targets")
    if name in done or name not in config.routes:
        return
    path.append(name)
    for target in _names(config.routes[name].targets):
        if target is not None:
            _visit(target, path, done, config)
    path.pop()
    done.add(name)
