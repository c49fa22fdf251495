"""The dashboard: spend, routing decisions, traces, keys and plan runs in the browser.

Served by the gateway at `/ui` (`llmswitch serve`) and alone, over a ledger, by
`llmswitch ui`. Build it from a config with `create_dashboard(config)`, or from a running
gateway with `for_gateway(gateway)`. See docs/dashboard.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmswitch import Config, Switch
    from llmswitch.dashboard.app import Dashboard

ADMIN_KEY_ENV = "LLMSWITCH_ADMIN_KEY"
MOUNT = "/ui"

__all__ = ["ADMIN_KEY_ENV", "MOUNT", "create_dashboard", "for_gateway", "ledger_url_of"]


def _runs_dirs(config: Config | None, extra: Sequence[str | os.PathLike[str]] = ()
               ) -> tuple[Path, ...]:
    """Where plan run folders are looked for: the given folders, `./runs`, and `runs/`
    beside the config file."""
    dirs = [Path(d).expanduser() for d in extra] + [Path.cwd() / "runs"]
    source = getattr(config, "source", None)
    if source and Path(source).is_file():
        dirs.append(Path(source).resolve().parent / "runs")
    return tuple(dict.fromkeys(d.resolve() for d in dirs))


def ledger_url_of(switch: Switch, env: Mapping[str, str] | None = None) -> str | None:
    """The ledger a switch writes to (its ledger observer's, else its config's)."""
    from llmswitch.observe import Ledger

    for observer in switch.observers:
        if isinstance(observer, Ledger):
            return observer.url
    from llmswitch.observe import parse_observe

    return parse_observe(switch.config.observe, env, switch.config.source).ledger


def create_dashboard(config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
                     *, env: Mapping[str, str] | None = None,
                     runs: Sequence[str | os.PathLike[str]] = (), mount: str = MOUNT,
                     ledger_url: str | None = None) -> Dashboard:
    """The dashboard over the ledger of a config (a file, a dict, a `Config`, or `None` for
    the defaults), signing in with the admin key from the environment."""
    from llmswitch import Switch
    from llmswitch.dashboard.app import Dashboard
    from llmswitch.dashboard.keyadmin import KeyAdmin
    from llmswitch.gateway.settings import parse_gateway

    environ = os.environ if env is None else env
    switch = Switch(config, env=env, observers=[])
    settings = parse_gateway(switch.config.gateway, switch.config.source)
    url = ledger_url or ledger_url_of(switch, env)
    return Dashboard(url, switch.catalog, environ.get(settings.admin_key_env) or None,
                     keys=KeyAdmin.for_ledger(url), runs_dirs=_runs_dirs(switch.config, runs),
                     mount=mount)


def for_gateway(gateway: Any, mount: str = MOUNT) -> Dashboard:
    """The dashboard of a running gateway: its ledger, catalog and admin key, and its own key
    store (a key revoked on the page is refused by this gateway at once)."""
    from llmswitch.dashboard.app import Dashboard
    from llmswitch.dashboard.keyadmin import KeyAdmin

    switch = gateway.switch
    url = ledger_url_of(switch)
    auth = gateway.auth
    store = getattr(auth, "store", None)
    forget = getattr(auth, "forget", None)
    keys = KeyAdmin(store, forget) if store is not None else KeyAdmin.for_ledger(url)
    from llmswitch.observe import Ledger

    ledger = next((o for o in switch.observers if isinstance(o, Ledger)), None)
    return Dashboard(url, switch.catalog, getattr(auth, "admin_key", None), keys=keys,
                     runs_dirs=_runs_dirs(switch.config), mount=mount,
                     flush=ledger.flush if ledger is not None else None)
