"""Configuration: `llmswitch.yaml` and its validation."""

from llmswitch.config.loader import CONFIG_ENV, config_from_dict, find_config, load_config
from llmswitch.config.schema import DEFAULT_MODEL, Config, ModelEntry, ProviderConfig, RouteConfig

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_MODEL",
    "Config",
    "ModelEntry",
    "ProviderConfig",
    "RouteConfig",
    "config_from_dict",
    "find_config",
    "load_config",
]
