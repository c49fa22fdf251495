"""Routers: pure decisions over candidates, and the scorers behind them."""
