"""The gateway: an OpenAI- and Anthropic-compatible HTTP server over `Switch`.

`create_app(config)` builds the ASGI app; `llmswitch serve` runs it. See docs/gateway.md.
"""
