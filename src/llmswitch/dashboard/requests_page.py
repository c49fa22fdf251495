"""The requests list (search, filters, pages) and one request's decision tree."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from llmswitch.dashboard.html import Markup, h, ms, query, table, usd, when
from llmswitch.dashboard.queries import PERIODS, STATUSES, RequestDetail, RequestFilter, RequestRow

ATTEMPT_HEAD = ["#", "time", "provider", "model", "status", "error type", "HTTP",
                "input tokens", "output tokens", "cached", "reasoning", "cost", "latency",
                "TTFT", "served"]


def _key(key_id: str | None, names: Mapping[str, str]) -> str:
    if key_id is None:
        return "-"
    name = names.get(key_id)
    return f"{name} ({key_id})" if name and name != key_id else key_id


def _select(name: str, label: str, options: Sequence[str], current: str) -> Markup:
    return h("label", None, label, " ", h(
        "select", {"name": name},
        [h("option", {"value": "", "selected": not current}, "any"),
         *[h("option", {"value": o, "selected": o == current}, o) for o in options]]))


def requests_page(mount: str, filt: RequestFilter, rows: Sequence[RequestRow],
                  older: str | None, key_names: Mapping[str, str]) -> Markup:
    """The list: time, key, route, model(s), status, cost, latency, trace id."""
    base = f"{mount}/requests"
    form = h("form", {"method": "get", "action": base, "class": "search", "role": "search"},
             h("label", None, "Search ", h("input", {
                 "type": "search", "name": "q", "value": filt.q,
                 "placeholder": "provider/model, model, route, key, error type or trace id"})),
             _select("status", "Status", STATUSES, filt.status),
             _select("period", "Period", [p for p in PERIODS if p != "all"],
                     "" if filt.period == "all" else filt.period),
             h("input", {"type": "hidden", "name": "route", "value": filt.route or None}),
             h("input", {"type": "hidden", "name": "key", "value": filt.key or None}),
             h("button", {"type": "submit"}, "Search"))
    body = [[when(r.ts), _key(r.key_id, key_names), r.route, " → ".join(r.models),
             h("span", {"class": f"status {r.status}"}, r.status + (
                 f" ({r.error_type})" if r.error_type else "")),
             usd(r.cost_usd), ms(r.latency_ms),
             h("a", {"href": f"{base}/{quote(r.trace_id)}", "class": "trace"}, r.trace_id)]
            for r in rows]
    more = h("p", None, h("a", {"href": query(base, q=filt.q, status=filt.status,
                                              route=filt.route, key=filt.key,
                                              period=filt.period, before=older),
                                "rel": "next"}, "Older requests →")) if older else None
    return h("div", None, form,
             table(["time (UTC)", "key", "route", "model", "status", "cost", "latency",
                    "trace id"], body, caption=f"{len(rows)} request(s), newest first")
             if rows else h("p", {"class": "empty"}, "No requests match."), more)


def attempt_row(a: Mapping[str, Any]) -> list[Any]:
    """One ledger attempt as table cells."""
    return [a["attempt"], when(a["ts"]), a["provider"] or "-", a["model"] or "-",
            h("span", {"class": f"status {a['status']}"}, a["status"]),
            a["error_type"] or "-", a["http_status"] or "-", a["input_tokens"],
            a["output_tokens"], a["cached_input_tokens"], a["reasoning_tokens"],
            usd(a["cost_usd"]), ms(a["latency_ms"]), ms(a["ttft_ms"]),
            "yes" if a["served"] else "no"]


_SHOWN = ("llmswitch.strategy", "llmswitch.route", "llmswitch.candidates", "llmswitch.chosen",
          "llmswitch.reason", "llmswitch.skipped", "llmswitch.policy", "llmswitch.attempts",
          "llmswitch.retry_wait_s", "llmswitch.stream_failover", "gen_ai.provider.name",
          "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
          "gen_ai.usage.output_tokens", "llmswitch.cost_usd", "llmswitch.target",
          "llmswitch.attempt", "http.response.status_code", "error.type")
_CONTENT = ("gen_ai.input.messages", "gen_ai.output.messages")


def _value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:.6f}".rstrip("0").rstrip(".") if v else "0"
    return str(v)


def span_tree(span: Mapping[str, Any], depth: int = 0) -> Markup:
    """A trace span and its children as nested lists (bounded depth)."""
    attrs = span.get("attributes") or {}
    kind = str(span.get("kind", ""))
    status = str(span.get("status", ""))
    error = span.get("error") or {}
    facts = [h("li", None, h("span", {"class": "attr"}, k.split(".", 1)[1]), " ", _value(attrs[k]))
             for k in _SHOWN if k in attrs and attrs[k] not in (None, "", [])]
    head = h("div", {"class": f"span {kind}"}, h("strong", None, str(span.get("name", ""))),
             " ", h("span", {"class": f"status {status}"}, status), " ",
             ms(span.get("duration_ms")),
             h("div", {"class": "error"}, f"{error.get('type')}: {error.get('message')}")
             if error else None)
    children = span.get("children") or []
    kids = h("ul", {"class": "tree"}, [h("li", None, span_tree(c, depth + 1))
                                       for c in children]) if children and depth < 32 else None
    return h("div", None, head, h("ul", {"class": "facts"}, facts) if facts else None, kids)


def _messages(value: Any) -> Markup:
    items = value if isinstance(value, list) else [value]
    out = []
    for m in items:
        if isinstance(m, Mapping):
            text = m.get("content")
            if not isinstance(text, str):
                text = json.dumps(m.get("parts", text), ensure_ascii=False)
            out.append(h("div", {"class": "message"}, h("strong", None, str(m.get("role", ""))),
                         h("pre", None, text)))
        else:
            out.append(h("pre", None, str(m)))
    return h("div", None, out)


def request_page(mount: str, d: RequestDetail, key_names: Mapping[str, str]) -> Markup:
    """One request: summary, every attempt, the decision tree, tags, stored content."""
    s = d.summary
    facts = [("trace id", d.trace_id)]
    if s is not None:
        facts += [("time (UTC)", when(s.ts)), ("route", s.route),
                  ("key", _key(s.key_id, key_names)),
                  ("status", s.status + (f" ({s.error_type})" if s.error_type else "")),
                  ("cost", usd(s.cost_usd)), ("latency", ms(s.latency_ms)),
                  ("attempts", str(s.attempts))]
    root_attrs = (d.trace or {}).get("attributes") or {}
    content = [k for k in _CONTENT if k in root_attrs]
    return h("div", None,
             h("dl", {"class": "facts"}, [h("div", None, h("dt", None, k), h("dd", None, v))
                                          for k, v in facts]),
             h("section", {"id": "attempts"}, h("h2", None, "Attempts"),
               table(ATTEMPT_HEAD, [attempt_row(a) for a in d.attempts])
               if d.attempts else h("p", {"class": "empty"}, "No attempt reached a provider.")),
             h("section", {"id": "tree"}, h("h2", None, "Decision tree"),
               span_tree(d.trace) if d.trace else h(
                   "p", {"class": "empty"}, "No stored trace (observe.traces is off).")),
             h("section", {"id": "tags"}, h("h2", None, "Tags"),
               table(["tag", "value"], sorted(d.tags.items())) if d.tags
               else h("p", {"class": "empty"}, "No tags.")),
             h("section", {"id": "content"}, h("h2", None, "Prompt and answer"),
               [h("div", None, h("h3", None, "prompt" if k.endswith("input.messages")
                                 else "answer"), _messages(root_attrs[k])) for k in content]
               if content else h("p", {"class": "empty"}, "Not stored: the config keeps "
                                 "prompts and answers only with observe.content: true.")))
