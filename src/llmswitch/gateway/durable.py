"""`gateway.durable_ledger: true`: a request is answered only once its ledger rows are
committed (`llmswitch.observe.CommitLedger`, which the gateway's access layer puts in place of
the ledger), so a replica killed at any moment (SIGKILL included) has lost no row of a request
it answered. The gateway awaits `CommitLedger.committed` before the last bytes of a response
(the whole body, or a stream's final event: `committed_events`).
"""

from __future__ import annotations

from typing import Any

from llmswitch import StreamEnd
from llmswitch.observe import CommitLedger, LedgerNotWritten

__all__ = ["CommitLedger", "LedgerNotWritten", "committed_events"]


async def committed_events(events: Any, commit: Any) -> Any:
    """`events` (a Switch stream), with the final `StreamEnd` held back until `commit(trace_id)`
    says the call's rows are committed (the Switch has queued them just before yielding it)."""
    try:
        async for event in events:
            if isinstance(event, StreamEnd):
                await commit(event.completion.trace_id)
            yield event
    finally:
        await events.aclose()
