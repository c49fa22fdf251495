"""In-process local models (provider `local`): GGUF files served by llama.cpp via xllamacpp.

Importing this package does not import xllamacpp; it is loaded with the first model.
"""

from llmswitch.local.engine import (
    LocalDependencyError,
    LocalEngine,
    LocalModelError,
    LocalRequestError,
    close_engines,
    get_engine,
)
from llmswitch.local.paths import SMOLLM2_ENV, default_smollm2_path
from llmswitch.local.transport import DEFAULT_LOCAL_MODEL, LocalTransport

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "SMOLLM2_ENV",
    "LocalDependencyError",
    "LocalEngine",
    "LocalModelError",
    "LocalRequestError",
    "LocalTransport",
    "close_engines",
    "default_smollm2_path",
    "get_engine",
]
