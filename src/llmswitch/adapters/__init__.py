"""Wire-protocol adapters: pure functions that translate llmswitch's types to and from each
protocol, behind a thin `Adapter` class per protocol."""
