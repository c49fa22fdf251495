"""A small HTML builder that escapes everything it is not told is markup, the page layout,
and number formatting. Pages never hold inline scripts or styles (the CSP forbids them)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

Node = object
"""Markup, text (escaped), a number, `None` (nothing) or an iterable of nodes."""
VOID = frozenset({"input", "br", "meta", "link", "img", "hr"})


class Markup(str):
    """Text that is already HTML."""

    __slots__ = ()


def render(node: Node) -> str:
    """HTML text of a node: strings escaped, markup kept, lists joined, `None` dropped."""
    if node is None:
        return ""
    if isinstance(node, Markup):
        return node
    if isinstance(node, str):
        return html.escape(node, quote=False)
    if isinstance(node, Iterable):
        return "".join(render(n) for n in node)
    return html.escape(str(node), quote=False)


def h(tag: str, attrs: Mapping[str, object] | None = None, *children: Node) -> Markup:
    """`<tag attrs>children</tag>`; attribute values are escaped, `None`/`False` left out,
    `True` written bare."""
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        key = name.rstrip("_").replace("_", "-")
        parts.append(key if value is True else f'{key}="{html.escape(str(value))}"')
    open_tag = f"<{' '.join(parts)}>"
    if tag in VOID:
        return Markup(open_tag)
    return Markup(f"{open_tag}{render(list(children))}</{tag}>")


def usd(value: float | None) -> str:
    """A dollar amount with six decimals (as `llmswitch report` prints it)."""
    if value is None:
        return "-"
    return f"-${-value:.6f}" if value < 0 else f"${value:.6f}"


def ms(value: float | None) -> str:
    """Milliseconds, rounded."""
    return "-" if value is None else f"{value:.0f} ms"


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal."""
    return "-" if value is None else f"{value * 100:.1f}%"


def when(ts: float | None) -> str:
    """An epoch time as `YYYY-MM-DD HH:MM:SS` UTC."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")


def query(base: str, **params: object) -> str:
    """A URL with the non-empty parameters."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def table(head: Iterable[str], rows: Iterable[Iterable[object]], caption: str | None = None,
          cls: str = "data") -> Markup:
    """A data table inside a scrolling wrapper (narrow screens scroll it sideways)."""
    return h("div", {"class": "scroll"}, h(
        "table", {"class": cls},
        h("caption", None, caption) if caption else None,
        h("thead", None, h("tr", None, [h("th", {"scope": "col"}, c) for c in head])),
        h("tbody", None, [h("tr", None, [h("td", None, c) for c in row]) for row in rows])))


NAV = (("Overview", ""), ("Savings", "/savings"), ("Requests", "/requests"),
       ("Keys", "/keys"), ("Plans", "/plans"))


def layout(mount: str, title: str, body: Node, *, active: str = "", csrf: str | None = None,
           footer: str = "") -> Markup:
    """A whole page: head, navigation (with sign-out when signed in), main, footer."""
    nav = [h("a", {"href": mount + path or "/", "aria-current": "page" if name == active
                   else None}, name) for name, path in NAV] if csrf is not None else []
    signout = h("form", {"method": "post", "action": f"{mount}/logout", "class": "signout"},
                h("input", {"type": "hidden", "name": "csrf", "value": csrf}),
                h("button", {"type": "submit"}, "Sign out")) if csrf is not None else None
    doc = h("html", {"lang": "en"},
            h("head", None,
              h("meta", {"charset": "utf-8"}),
              h("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
              h("title", None, f"{title} · llmswitch"),
              h("link", {"rel": "icon", "href": "data:,"}),
              h("link", {"rel": "stylesheet", "href": f"{mount}/static/dashboard.css"})),
            h("body", None,
              h("header", None, h("span", {"class": "brand"}, "llmswitch"),
                h("nav", None, nav), signout),
              h("main", None, h("h1", None, title), body),
              h("footer", None, footer)))
    return Markup("<!doctype html>\n" + doc)
