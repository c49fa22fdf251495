"""Pure translation between each client API and the library's types (no I/O)."""
