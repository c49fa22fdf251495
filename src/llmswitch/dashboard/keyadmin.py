"""The Keys page's one door to virtual keys: the gateway's own key store and admin logic
(`llmswitch.gateway.keys` / `.admin`), the same code `llmswitch keys` and `/admin/keys` run,
so a key created or revoked here is the same row the gateway checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llmswitch.errors import LLMSwitchError


class KeyAdmin:
    """List, create and revoke keys in the ledger's database. `on_change` is called after a
    revocation (the gateway forgets its cached lookups, so this replica refuses the key at
    once; other replicas within their cache time)."""

    def __init__(self, store: Any, on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_change = on_change

    @classmethod
    def for_ledger(cls, url: str | None) -> KeyAdmin | None:
        """The key store in a ledger's database (`None` when the ledger is off)."""
        if url is None:
            return None
        from llmswitch.gateway.keys import KeyStore

        return cls(KeyStore(url))

    def records(self) -> list[Any]:
        """Every stored key (`KeyRecord`s, without secrets), oldest first."""
        out: list[Any] = self.store.list()
        return out

    def create(self, form: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """A new key from the page's form fields; returns its secret (shown once) and its
        object. A bad field is a `LLMSwitchError` naming it."""
        from llmswitch.gateway.keys import KeySpec, parse_expiry

        models = [m.strip() for m in form.get("models", "").replace("\n", ",").split(",")
                  if m.strip()]
        meta: dict[str, str] = {}
        for pair in form.get("meta", "").replace("\n", ",").split(","):
            if pair.strip():
                k, sep, v = pair.partition("=")
                if not sep:
                    raise LLMSwitchError(f"meta: {pair.strip()!r} is not key=value")
                meta[k.strip()] = v.strip()
        spec = KeySpec(
            name=form.get("name", "").strip(), models=tuple(models) or None,
            rpm=_whole(form, "rpm"), tpm=_whole(form, "tpm"),
            budget_usd=_number(form, "budget_usd"), period=form.get("period") or None,
            expires_at=parse_expiry(form.get("expires", "").strip() or None), meta=meta)
        secret, record = self.store.create(spec)
        return secret, record.to_dict()

    def revoke(self, id_or_name: str) -> dict[str, Any]:
        """Revoke a key; the gateway refuses it from now on."""
        record = self.store.revoke(id_or_name)
        if self.on_change is not None:
            self.on_change()
        data: dict[str, Any] = record.to_dict()
        return data

    def close(self) -> None:
        """Release the store's connection."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


def period_start(record: Any, now: float) -> float:
    """Where a key's budget period began (UTC day or month; 0 for `total`), as the gateway's
    budgets count it. Keys without a budget report the calendar month."""
    from llmswitch.gateway.keys import period_bounds

    return period_bounds(record.period or "month", now)[1]


def describe(record: Any, usage: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A key as the admin API shows it (`GET /admin/keys`: never the secret), with `usage`
    in its budget period from the ledger's sums."""
    from llmswitch.gateway.keys import iso, period_bounds

    period = record.period or "month"
    _, start, resets = period_bounds(period, now)
    spent = float(usage.get("spent_usd") or 0.0)
    last = usage.get("last")
    out: dict[str, Any] = {
        "period": period, "period_start": iso(start) if period != "total" else None,
        "resets_at": iso(resets), "spent_usd": spent, "requests": int(usage.get("requests") or 0),
        "last_used_at": iso(float(last)) if last is not None else None}
    if record.budget_usd is not None:
        out["budget_usd"] = record.budget_usd
        out["remaining_usd"] = max(0.0, record.budget_usd - spent)
    return {**record.to_dict(), "usage": out}


def _whole(form: Mapping[str, str], name: str) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise LLMSwitchError(f"{name} must be a whole number, not {text!r}") from None


def _number(form: Mapping[str, str], name: str) -> float | None:
    text = form.get(name, "").strip().lstrip("$")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise LLMSwitchError(f"{name} must be a number of USD, not {text!r}") from None
