"""Providers: who we talk to (credentials, base URL, HTTP client). No translation here."""

from llmswitch.providers.http_model import HttpModel, UnknownPriceWarning
from llmswitch.providers.provider import Provider
from llmswitch.providers.specs import SPECS, ProviderSpec, base_url_env

__all__ = ["SPECS", "HttpModel", "Provider", "ProviderSpec", "UnknownPriceWarning", "base_url_env"]
