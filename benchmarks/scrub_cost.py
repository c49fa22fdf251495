"""What scrubbing secrets costs: once per key set (building the scrubber) and per failed call.

A successful call never scrubs (only `HttpModel._failed` calls `Provider.scrub`), so its cost
there is zero by construction. Run: `.venv/bin/python benchmarks/scrub_cost.py` (CPU time).
"""

from __future__ import annotations

import time

from llmswitch.config.schema import ProviderConfig
from llmswitch.errors import AuthenticationError
from llmswitch.providers.provider import Provider

KEY = "sk-proj-Zq9LmX2vB7nR4tY8wK1pD6sF3hJ0aC5eG9iU2oQ7xV4bN8mE1rT6yW3zA5sD0fH"
N = 20_000


def main() -> None:
    provider = Provider("openai", ProviderConfig(headers={"OpenAI-Organization": "org-1234567890"}),
                        {"OPENAI_API_KEY": KEY})
    started = time.process_time()
    provider.scrubber()
    build = time.process_time() - started
    body = {"error": {"message": f"Incorrect API key provided: {KEY}",
                      "type": "invalid_request_error", "code": "invalid_api_key"}}

    def errors(scrub: bool) -> float:
        started = time.process_time()
        for _ in range(N):
            error = AuthenticationError(f"Incorrect API key provided: {KEY}", status=401,
                                        body=body, hint="check the API key")
            if scrub:
                provider.scrub(error)
        return (time.process_time() - started) / N

    per_error = errors(True) - errors(False)
    print(f"scrubber build (once per key set): {build * 1e6:.0f} µs CPU")
    print(f"scrub one failed call's error: {per_error * 1e6:.1f} µs CPU (mean of {N:,})")


if __name__ == "__main__":
    main()
