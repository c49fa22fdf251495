"""httpx, imported without its command-line client: `from llmswitch._httpx import httpx`.

httpx's package imports `httpx._main` (click, rich and pygments: ~50 ms of CPU at start-up)
whenever those are installed, only to offer `httpx.main`, which llmswitch never calls. The first
import of httpx made here skips it; afterwards nothing is left blocked, so an explicit
`import httpx._main` still works. Only the modules that use httpx (the httpx transport, the
local model's transport) import it through here, so code paths without httpx never load it.
"""

import sys


def import_httpx_without_cli() -> None:
    """Import httpx (if nobody has yet) with its CLI module held back for that one import."""
    if "httpx" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]  # httpx falls back to a stub
    try:
        import httpx  # noqa: F401
    finally:
        if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]


import_httpx_without_cli()

import httpx  # noqa: E402  # the module imported just above

__all__ = ["httpx"]
