"""Run examples/plans/feature.yaml with no API key, for docs/plans.md: every cloud model the
plan names is stood in for by the embedded local model (real answers and real token counts,
output capped at 256 tokens so each prompt fits SmolLM2's 2,048-token window; one llama.cpp
thread, deadlines lifted: on a shared 2-core machine the local model is slower than the
cloud), each call priced at the named model's catalog prices and labelled with its provider
and name. One
provider is down (Anthropic answers 529), so `business_logic` moves to its fallback.

    .venv/bin/python benchmarks/plans/feature_standin.py /tmp/feature-standin
    .venv/bin/llmswitch plan report /tmp/feature-standin --png docs/plans-report.png

The run folder is an ordinary one: `plan report`, `plan resume` and the manifest work as for
a real run. The figures are what these token counts cost at catalog prices, not a benchmark
of the cloud models' answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

from llmswitch import Completion, OverloadedError, Request, Switch, Usage, cost_usd
from llmswitch.models import Model
from llmswitch.plans import Plan, run_plan

ROOT = Path(__file__).resolve().parents[2]
DOWN = {"anthropic"}
CAP = 256


class StandIn(Model):
    """Answers as `model_id` with the local model, priced at `model_id`'s catalog prices."""

    def __init__(self, switch: Switch, model_id: str) -> None:
        self.name = model_id
        self.switch = switch
        self.card = switch.catalog.get(model_id)

    async def complete(self, request: Request) -> Completion:
        provider, _, wire = self.name.partition("/")
        if provider in DOWN:
            raise OverloadedError("stand-in outage (529)", provider=provider, model=wire,
                                  status=529)
        capped = min(request.settings.max_tokens or CAP, CAP)
        answer = await self.switch.model("local/smollm2-135m").complete(
            request.with_settings(max_tokens=capped))
        usage = Usage(answer.usage.input_tokens, answer.usage.output_tokens)
        return answer.replace(provider=provider, model=wire, usage=usage,
                              cost_usd=cost_usd(self.card, usage))


async def main(out: str) -> None:
    from llmswitch.local import default_smollm2_path, get_engine

    # One thread: two llama.cpp threads that spin-wait for each other crawl when other
    # processes take a core (measured here: 128 tokens in 4 s with one, >120 s with two).
    get_engine(default_smollm2_path(), n_threads=1).load()
    plan = Plan.load(ROOT / "examples/plans/feature.yaml")
    plan = plan.with_streams({sid: dataclasses.replace(spec, deadline=None)
                              for sid, spec in plan.streams.items()})
    names = {m for s in plan.streams.values() for m in (s.model, *s.fallback, *s.candidates)
             if m != "auto"}
    async with Switch({"observe": {"ledger": False}}) as switch:
        switch_models = {name: StandIn(switch, name) for name in sorted(names)}
        async with Switch({"observe": {"ledger": False}}, models=switch_models) as standin:
            run = await run_plan(standin, plan, run_dir=out, concurrency=2)
    print(run.status, run.run_dir, f"${run.total_cost_usd:.6f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "runs/feature-standin"))
