"""Resilience building blocks: retry policy, deadlines, circuit breakers, rate limiters.

Strategies (`fallback`, `loadbalance`) compose these; nothing here does I/O except sleeping
through an injectable `Clock`, so tests run without waiting.
"""
