"""The keys page: every virtual key with its limits, spend against budget and last use; a form
to create one (its secret shown once, on the answer to that form) and a Revoke button per row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from llmswitch.dashboard.html import Markup, h, pct, table, usd


def _iso(value: Any) -> str:
    if not value:
        return "-"
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value).replace("T", " ").replace("Z", "")


def _budget(key: Mapping[str, Any]) -> tuple[str, str, str]:
    usage = key.get("usage") or {}
    spent = float(usage.get("spent_usd") or 0.0)
    budget = key.get("budget_usd")
    period = usage.get("period") or key.get("period") or "month"
    if budget is None:
        return f"{usd(spent)} this {period}" if period != "total" else usd(spent), "-", "-"
    return (f"{usd(spent)} of {usd(float(budget))} ({period})",
            pct(spent / float(budget) if budget else None),
            usd(usage.get("remaining_usd")))


def _revoke(mount: str, key: Mapping[str, Any], csrf: str) -> Markup:
    revocable = key.get("status") != "revoked"  # an expired key may still be revoked
    return h("form", {"method": "post", "action": f"{mount}/keys/{quote(str(key['id']))}/revoke",
                      "class": "inline"},
             h("input", {"type": "hidden", "name": "csrf", "value": csrf}),
             h("button", {"type": "submit", "class": "danger", "disabled": not revocable,
                          "title": f"Revoke {key['name']}"}, "Revoke"))


def keys_table(mount: str, keys: Sequence[Mapping[str, Any]], csrf: str) -> Markup:
    """One row per key (never its secret: only the prefix that names it)."""
    rows = []
    for k in keys:
        spent, share, remaining = _budget(k)
        models = k.get("models")
        limits = " · ".join(f"{label} {k[name]}" for name, label in (("rpm", "RPM"),
                                                                      ("tpm", "TPM"))
                            if k.get(name)) or "-"
        rows.append([k["name"], _revoke(mount, k, csrf),
                     h("span", {"class": f"status {k.get('status')}"}, str(k.get("status"))),
                     spent, share, remaining, _iso((k.get("usage") or {}).get("last_used_at")),
                     ", ".join(models) if models else "all", limits,
                     f"{k.get('prefix', '')}…", k["id"], _iso(k.get("expires_at")),
                     _iso(k.get("created_at"))])
    return table(["name", "", "status", "spend", "of budget", "remaining", "last use (UTC)",
                  "models", "limits", "key", "id", "expires", "created"], rows,
                 caption=f"{len(keys)} key(s)", cls="data keys")


def create_form(mount: str, csrf: str, values: Mapping[str, str] | None = None) -> Markup:
    """The form that creates a key through the same store as `llmswitch keys create`."""
    v = values or {}

    def field(name: str, label: str, kind: str = "text", **extra: object) -> Markup:
        return h("label", None, label, h("input", {"type": kind, "name": name,
                                                   "value": v.get(name) or None, **extra}))

    period = v.get("period", "")
    return h("form", {"method": "post", "action": f"{mount}/keys", "class": "create"},
             h("input", {"type": "hidden", "name": "csrf", "value": csrf}),
             field("name", "Name", required=True, maxlength=64),
             field("models", "Models (comma-separated; empty: all)"),
             field("rpm", "Requests per minute", "number", min=1),
             field("tpm", "Tokens per minute", "number", min=1),
             field("budget_usd", "Budget (USD)", "number", min=0, step="any"),
             h("label", None, "Budget period", h("select", {"name": "period"}, [
                 h("option", {"value": p, "selected": p == period}, p or "(month)")
                 for p in ("", "day", "month", "total")])),
             field("expires", "Expires (2026-12-31 or 30d)"),
             field("meta", "Tags (k=v, comma-separated)"),
             h("button", {"type": "submit"}, "Create key"))


def keys_page(mount: str, keys: Sequence[Mapping[str, Any]] | None, csrf: str, *,
              created: tuple[str, Mapping[str, Any]] | None = None, error: str | None = None,
              notice: str | None = None, form: Mapping[str, str] | None = None) -> Markup:
    """The whole keys page."""
    if keys is None:
        return h("p", {"class": "empty"}, "Virtual keys need the ledger's database "
                 "(observe.ledger is off).")
    shown = None
    if created is not None:
        secret, key = created
        shown = h("div", {"class": "secret", "role": "status"},
                  h("p", None, f"Key {key['name']} ({key['id']}) created. Copy it now: it is "
                    "shown this once and never again."),
                  h("code", {"id": "new-key"}, secret))
    return h("div", None,
             h("p", {"class": "error", "role": "alert"}, error) if error else None,
             h("p", {"class": "notice", "role": "status"}, notice) if notice else None,
             shown,
             h("section", {"id": "keys"}, h("h2", None, "Keys"), keys_table(mount, keys, csrf)
               if keys else h("p", {"class": "empty"}, "No keys yet.")),
             h("section", {"id": "create"}, h("h2", None, "Create a key"),
               create_form(mount, csrf, form)))
