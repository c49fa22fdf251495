"""The `llmswitch` command-line interface: one module per command group."""
