"""In-process local models (provider `local`): GGUF files served by llama.cpp via xllamacpp.

Importing this package does not import xllamacpp; it is loaded with the first model.
"""

from llmswitch.local.engine import (
    Defaults,
    LocalDependencyError,
    LocalEngine,
    LocalModelError,
    LocalRequestError,
    choose_threads,
    close_engines,
    get_engine,
)
from llmswitch.local.paths import SMOLLM2_ENV, default_smollm2_path, defaults_for
from llmswitch.local.transport import DEFAULT_LOCAL_MODEL, LocalTransport

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "SMOLLM2_ENV",
    "Defaults",
    "LocalDependencyError",
    "LocalEngine",
    "LocalModelError",
    "LocalRequestError",
    "LocalTransport",
    "choose_threads",
    "close_engines",
    "default_smollm2_path",
    "defaults_for",
    "get_engine",
]
