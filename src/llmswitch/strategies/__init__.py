"""Strategies: models that wrap models (fallback, cascade, route, …), so they nest."""
