"""The overview, savings and sign-in pages (bodies only; `html.layout` wraps them)."""

from __future__ import annotations

from collections.abc import Sequence

from llmswitch.dashboard.charts import hbars, legend, stacked_bars, swatch
from llmswitch.dashboard.html import Markup, h, ms, pct, query, table, usd
from llmswitch.dashboard.queries import GROUPS, PERIODS, Overview, Savings, SavingsLine


def pills(base: str, name: str, values: Sequence[str], current: str, label: str,
          **keep: str) -> Markup:
    """A row of links choosing one value of a query parameter (the period picker)."""
    links = [h("a", {"href": query(base, **{**keep, name: v}),
                     "aria-current": "true" if v == current else None,
                     "class": "pill"}, v) for v in values]
    return h("nav", {"class": "pills", "aria-label": label}, h("span", None, label + ":"),
             links)


def cards(items: Sequence[tuple[str, str]]) -> Markup:
    """Headline figures."""
    return h("dl", {"class": "cards"},
             [h("div", {"class": "card"}, h("dt", None, k), h("dd", None, v))
              for k, v in items])


def overview_page(mount: str, data: Overview) -> Markup:
    """Spend over time (stacked by the chosen grouping), requests, errors, latency."""
    base = mount
    failed = data.failed_requests / data.requests if data.requests else None
    names = list(data.series.groups)
    chart = stacked_bars(data.series.buckets, data.series.bucket_s, data.series.groups,
                         f"Spend over time by {data.by}")
    totals = {g: (cost, n) for g, cost, n in data.groups}
    spend_rows = [[Markup(swatch(names.index(g)) if g in names else ""), g, usd(cost), n,
                   pct(cost / data.cost_usd if data.cost_usd else None)]
                  for g, (cost, n) in totals.items()]
    model_rows = [[s.model, s.attempts, s.served, s.errors, pct(s.error_rate), usd(s.cost_usd),
                   s.input_tokens, s.output_tokens, ms(s.latency.get("p50")),
                   ms(s.latency.get("p95")), ms(s.ttft.get("p50")), ms(s.ttft.get("p95"))]
                  for s in data.models]
    error_rows = [[kind, n, pct(n / data.attempts if data.attempts else None)]
                  for kind, n in data.errors.items()]
    return h("div", None,
             pills(base, "period", list(PERIODS), data.period, "Period", by=data.by),
             pills(base, "by", list(GROUPS), data.by, "Spend by", period=data.period),
             cards([("Spend", usd(data.cost_usd)), ("Requests", str(data.requests)),
                    ("Attempts", str(data.attempts)),
                    ("Failed requests", f"{data.failed_requests} ({pct(failed)})")]),
             h("section", {"id": "spend"},
               h("h2", None, f"Spend over time by {data.by}"),
               chart if data.series.buckets else h("p", {"class": "empty"},
                                                   "No calls recorded in this period."),
               legend(names),
               table(["", data.by, "cost", "attempts", "share"], spend_rows,
                     caption=f"Spend by {data.by}")),
             h("section", {"id": "models"},
               h("h2", None, "Models"),
               table(["model", "attempts", "answers", "errors", "error rate", "cost",
                      "input tokens", "output tokens", "latency p50", "latency p95",
                      "TTFT p50", "TTFT p95"], model_rows, caption="Per model (latency over "
                     "successful attempts)")),
             h("section", {"id": "errors"},
               h("h2", None, "Errors by type"),
               table(["error type", "attempts", "share of attempts"], error_rows)
               if error_rows else h("p", {"class": "empty"}, "No failed attempts.")))


def _answers(line: SavingsLine) -> Markup:
    total = sum(line.answers.values())
    return h("ul", {"class": "shares"},
             [h("li", None, f"{model} {pct(n / total if total else None)} ({n})")
              for model, n in line.answers.items()])


def _savings_table(lines: Sequence[SavingsLine], what: str, baseline: str | None) -> Markup:
    rows = [[line.name, _answers(line), usd(line.actual_usd), usd(line.baseline_usd),
             usd(line.saved_usd), pct(line.saving_share)] for line in lines]
    return table([what, "answers per model", "actual cost", f"on {baseline or 'baseline'}",
                  "saved", "saving"], rows)


def savings_page(mount: str, data: Savings) -> Markup:
    """Share of answers per model and money saved per route and plan run."""
    base = f"{mount}/savings"
    options = [h("option", {"value": m, "selected": m == data.baseline}, m)
               for m in [*[u for u in data.used if u in data.choices],
                         *[c for c in data.choices if c not in data.used]]]
    picker = h("form", {"method": "get", "action": base, "class": "inline"},
               h("input", {"type": "hidden", "name": "period", "value": data.period}),
               h("label", {"for": "baseline"}, "Baseline model"),
               h("select", {"id": "baseline", "name": "baseline"}, options),
               h("button", {"type": "submit"}, "Compare"))
    note = ("Baseline: every answer re-priced at the baseline model's catalog prices from its "
            "recorded token counts (an estimate: another model would have written answers of "
            "other lengths). Actual cost includes failed attempts and cascade probes.")
    if not data.baseline_priced:
        note = (f"No catalog price for {data.baseline!r}: choose a priced baseline model."
                if data.baseline else "No priced model in this period: choose a baseline.")
    chart_rows = [(line.name, [line.actual_usd, line.baseline_usd or 0.0])
                  for line in data.routes[:12]]
    series = ["actual", f"on {data.baseline}"]
    return h("div", None,
             pills(base, "period", list(PERIODS), data.period, "Period",
                   baseline=data.baseline or ""),
             picker, h("p", {"class": "note"}, note),
             h("section", {"id": "routes"},
               h("h2", None, "Routes"),
               hbars(chart_rows, series, "Actual cost and baseline cost per route"),
               legend(series) if chart_rows else None,
               _savings_table(data.routes, "route", data.baseline) if data.routes
               else h("p", {"class": "empty"}, "No calls recorded in this period.")),
             h("section", {"id": "runs"},
               h("h2", None, "Plan runs"),
               _savings_table(data.runs, "run", data.baseline) if data.runs
               else h("p", {"class": "empty"}, "No plan runs in this period.")))


def login_page(mount: str, error: str | None, enabled: bool, next_url: str) -> Markup:
    """The sign-in form: one password field, `key`, for the admin key."""
    if not enabled:
        return h("p", {"class": "error"}, "The dashboard is off: no admin key is set. Start "
                 "the gateway (or `llmswitch ui`) with LLMSWITCH_ADMIN_KEY set.")
    return h("form", {"method": "post", "action": f"{mount}/login", "class": "login"},
             h("p", {"class": "error", "role": "alert"}, error) if error else None,
             h("input", {"type": "hidden", "name": "next", "value": next_url}),
             h("label", {"for": "key"}, "Admin key"),
             h("input", {"type": "password", "id": "key", "name": "key", "required": True,
                         "autocomplete": "current-password", "autofocus": True}),
             h("button", {"type": "submit"}, "Sign in"))
