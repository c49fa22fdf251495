"""Who may call, and how much: the interfaces the app asks before and after every call.

`Authenticator.authenticate` turns a request's headers into a `Principal` (or refuses with a
`GatewayError`); `Limiter.admit` reserves room under every limit and budget that applies
(or refuses with `limit_exceeded` + retry-after, or `budget_exceeded`), and `Limiter.settle`
gives back the difference once the true usage and cost are known — on every way out of the
call, cancellations included. The defaults here serve a gateway with no keys configured:
everyone may call, nothing is limited. `gateway/keys.py` and `gateway/limits.py` implement
virtual keys, rate limits and budgets (in-process or on Redis) behind the same interfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmswitch import CallEstimate, Usage
from llmswitch.gateway.protocols.common import Call
from llmswitch.gateway.protocols.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a virtual key (its id and rules), the admin, or anyone (no auth)."""

    key_id: str | None = None
    name: str | None = None
    admin: bool = False
    models: frozenset[str] | None = None
    """Models, aliases and routes this key may use (`None`: all)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """The key's `meta` tags, stored with every ledger row of its calls."""
    limits: Mapping[str, Any] = field(default_factory=dict)
    """`rpm`, `tpm`, `budget_usd`, `period` (for the limiter)."""

    def may_use(self, model: str) -> bool:
        """Whether this caller may ask for `model`."""
        return self.models is None or model in self.models

    def check_model(self, model: str) -> None:
        """Refuse a model the key is not allowed (403)."""
        if not self.may_use(model):
            allowed = ", ".join(sorted(self.models or ())) or "none"
            raise GatewayError("model_not_allowed",
                               f"this key may not use {model!r} (allowed: {allowed})", "model")


ANONYMOUS = Principal()


class Authenticator(Protocol):
    """Turns request headers (lower-case bytes names) into a principal, or refuses."""

    async def authenticate(self, headers: Mapping[bytes, bytes]) -> Principal:
        """The caller, or `GatewayError('unauthenticated' | 'model_not_allowed')`."""
        ...

    @property
    def required(self) -> bool:
        """Whether callers must present a key."""
        ...


@dataclass(slots=True)
class Admission:
    """What `admit` reserved for one call, given back to `settle`."""

    principal: Principal
    model: str
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    handles: list[Any] = field(default_factory=list)
    """Store-specific reservation handles."""


class Limiter(Protocol):
    """Rate limits and budgets."""

    async def admit(self, principal: Principal, call: Call,
                    estimate: Callable[[], CallEstimate]) -> Admission:
        """Reserve room for the call or refuse (429 with retry-after, or 402). `estimate()`
        (input tokens, maximum output, maximum cost) is computed only when asked for."""
        ...

    async def settle(self, admission: Admission, usage: Usage | None,
                     cost_usd: float | None) -> None:
        """Replace the reservation by the true usage and cost (also after errors/cancels)."""
        ...


def bearer(headers: Mapping[bytes, bytes]) -> str | None:
    """The key a client sent: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key`
    (Anthropic SDKs)."""
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, value = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1").strip() or None if key is not None else None


class OpenAccess:
    """No keys configured: everyone may call; an admin key, when set, marks the admin."""

    def __init__(self, admin_key: str | None = None) -> None:
        self.admin_key = admin_key

    @property
    def required(self) -> bool:
        """Keys are required once an admin key exists (it is the only key then)."""
        return self.admin_key is not None

    async def authenticate(self, headers: Mapping[bytes, bytes]) -> Principal:
        """Anyone, or only the admin key when one is set."""
        if self.admin_key is None:
            return ANONYMOUS
        if bearer(headers) == self.admin_key:
            return Principal(key_id="admin", name="admin", admin=True)
        raise GatewayError("unauthenticated", "missing or invalid API key (send "
                           "'Authorization: Bearer <key>' or 'x-api-key: <key>')")


class NoLimits:
    """Nothing limited (a gateway with no keys, limits or budgets configured)."""

    async def admit(self, principal: Principal, call: Call,
                    estimate: Callable[[], CallEstimate]) -> Admission:
        """Always room."""
        return Admission(principal, call.model)

    async def settle(self, admission: Admission, usage: Usage | None,
                     cost_usd: float | None) -> None:
        """Nothing to give back."""
