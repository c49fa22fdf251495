"""Shared test helpers: recorded fixtures and a loopback server that replays them."""
