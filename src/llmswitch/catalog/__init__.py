"""The model catalog: capabilities, windows and prices as data, loaded on first use."""

from llmswitch.catalog.card import CAPABILITIES, Capability, Latency, ModelCard
from llmswitch.catalog.catalog import Catalog, parse_catalog
from llmswitch.catalog.pricing import cost_usd

__all__ = [
    "CAPABILITIES", "Capability", "Catalog", "Latency", "ModelCard", "cost_usd", "parse_catalog",
]
