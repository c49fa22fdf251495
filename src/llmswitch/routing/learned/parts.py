"""A `LearnedRouter` as a JSON-able meta document plus named arrays, and back.

The building block of router files (`io`) and of routers nested in other routers (the cascade's
base router).
"""

from __future__ import annotations

from typing import Any

from llmswitch.routing.learned.cost import CostModel
from llmswitch.routing.learned.features import Featurizer
from llmswitch.routing.learned.quality import QualityModel
from llmswitch.routing.learned.router import QUALITY_KINDS, LearnedRouter


class RouterFileError(ValueError):
    """A router file is missing, unreadable, of another format or version, or inconsistent."""


def _group(arrays: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def router_to_arrays(router: LearnedRouter) -> tuple[dict[str, Any], dict[str, Any]]:
    """Meta document and arrays of a `LearnedRouter` (used for nesting inside other routers)."""
    arrays: dict[str, Any] = {}
    for k, v in router.featurizer.to_arrays().items():
        arrays[f"features/{k}"] = v
    for k, v in router.cost_model.to_arrays().items():
        arrays[f"cost/{k}"] = v
    parts = []
    for i, qm in enumerate(router.quality_models):
        parts.append({"kind": qm.kind, "params": qm.params()})
        for k, v in qm.to_arrays().items():
            arrays[f"quality{i}/{k}"] = v
    meta = {
        "kind": router.kind,
        "models": list(router.models),
        "lambda": router.lam,
        "quality_parts": parts,
        "info": router.info,
    }
    return meta, arrays


def router_from_arrays(meta: dict[str, Any], arrays: dict[str, Any]) -> LearnedRouter:
    """Inverse of `router_to_arrays`."""
    try:
        parts: list[QualityModel] = []
        for i, part in enumerate(meta["quality_parts"]):
            cls = QUALITY_KINDS.get(part["kind"])
            if cls is None:
                raise RouterFileError(f"unknown quality model kind {part['kind']!r}")
            parts.append(cls.from_arrays(part["params"], _group(arrays, f"quality{i}")))
        return LearnedRouter(
            kind=meta["kind"],
            models=tuple(meta["models"]),
            featurizer=Featurizer.from_arrays(_group(arrays, "features")),
            quality_models=parts,
            cost_model=CostModel.from_arrays(_group(arrays, "cost")),
            lam=float(meta.get("lambda", 0.0)),
            info=dict(meta.get("info", {})),
        )
    except RouterFileError:
        raise
    except (KeyError, TypeError) as exc:
        raise RouterFileError(f"router file is inconsistent: missing {exc}") from None
    except ValueError as exc:
        raise RouterFileError(f"router file is inconsistent: {exc}") from None

