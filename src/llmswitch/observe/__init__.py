"""Observability: traces, metrics and the spend ledger."""
