"""The model catalog: the shipped data file, plus a user's additions and overrides."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from typing import Any

from pydantic import ValidationError

from llmswitch.catalog.card import ModelCard
from llmswitch.errors import ConfigError

DATA_FILE = "models.yaml"
"""The shipped catalog's source; the package reads `models.json`, compiled from it
(`python -m llmswitch.catalog.compile`; a test keeps the two equal)."""
COMPILED_FILE = "models.json"


class Catalog:
    """Model cards by id (`provider/name`) and by alias. Immutable; `extended` makes a new one."""

    def __init__(self, cards: Iterable[ModelCard]) -> None:
        self._cards: dict[str, ModelCard] = {}
        self._aliases: dict[str, str] = {}
        for card in cards:
            self._cards[card.id] = card
        for card in self._cards.values():
            for alias in card.aliases:
                self._aliases.setdefault(alias, card.id)

    @classmethod
    def shipped(cls) -> Catalog:
        """The catalog shipped inside the package (parsed once per process, on first use)."""
        return cls(_shipped_cards())

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self._cards.values())

    def __len__(self) -> int:
        return len(self._cards)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._cards

    def get(self, model_id: str) -> ModelCard | None:
        """The card with this id, or `None`."""
        return self._cards.get(model_id)

    def lookup(self, name: str) -> ModelCard | None:
        """The card for an id or an alias, or `None`."""
        return self._cards.get(name) or self._cards.get(self._aliases.get(name, ""))

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Ids or aliases close to `name` (for "did you mean")."""
        names = [*self._cards, *self._aliases]
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.55)
        if not close and "/" in name:
            close = difflib.get_close_matches(name.split("/", 1)[1], names, n=n, cutoff=0.55)
        return close

    def extended(self, entries: Mapping[str, Mapping[str, Any]], source: str = "config") -> Catalog:
        """A catalog with `entries` added or merged over existing cards, field by field."""
        cards = dict(self._cards)
        for model_id, fields in entries.items():
            base = cards[model_id].model_dump(exclude_defaults=True) if model_id in cards else {}
            data = {**base, **fields, "id": model_id}
            data.setdefault("context_window", 8192)
            data.setdefault("max_output_tokens", 4096)
            try:
                cards[model_id] = ModelCard.model_validate(data)
            except ValidationError as exc:
                raise ConfigError(f"{source}: models.{model_id}: {_first_error(exc)}") from None
        return Catalog(cards.values())

    def by_provider(self, provider: str) -> list[ModelCard]:
        """Cards of one provider, in catalog order."""
        return [c for c in self._cards.values() if c.provider == provider]


@functools.cache
def _shipped_cards() -> tuple[ModelCard, ...]:
    text = resources.files("llmswitch.catalog").joinpath("data", COMPILED_FILE).read_text("utf-8")
    return tuple(parse_catalog(json.loads(text), source=f"llmswitch/catalog/data/{DATA_FILE}"))


def parse_catalog(data: Any, source: str) -> list[ModelCard]:
    """Validate a catalog document (`schema_version`, `prices_as_of`, `models: [...]`)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), list):
        raise ConfigError(f"{source}: expected a mapping with a 'models' list")
    default_date = data.get("prices_as_of")
    cards: list[ModelCard] = []
    seen_aliases: dict[str, str] = {}
    for i, entry in enumerate(data["models"]):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{source}: models[{i}]: expected a mapping")
        fields = dict(entry)
        if default_date and "prices_as_of" not in fields:
            fields["prices_as_of"] = str(default_date)
        try:
            card = ModelCard.model_validate(fields)
        except ValidationError as exc:
            raise ConfigError(
                f"{source}: models[{i}] ({entry.get('id')}): {_first_error(exc)}"
            ) from None
        for alias in card.aliases:
            if alias in seen_aliases:
                raise ConfigError(
                    f"{source}: alias {alias!r} used by {seen_aliases[alias]} and {card.id}"
                )
            seen_aliases[alias] = card.id
        cards.append(card)
    return cards


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])
